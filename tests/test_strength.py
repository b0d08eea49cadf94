"""`strength`: alpha from the pair's own units, monotonic in how painted, the same at any size."""

from __future__ import annotations

import pytest

from painterly import run_transfer
from painterly.cli import main
from painterly.strength import DEFAULT_STRENGTH, alpha_for_strength, content_weight

FAST = {"iterations": 3, "scales": 1, "seed": 3}


def test_each_step_of_strength_halves_the_content_weight() -> None:
    assert content_weight(DEFAULT_STRENGTH + 1) == pytest.approx(
        content_weight(DEFAULT_STRENGTH) / 2
    )
    assert content_weight(0) == pytest.approx(content_weight(10) * 2**10)
    # alpha is that weight in the paper's units: style loss of the photo over content energy
    assert alpha_for_strength(5, content_energy=4e6, photo_style_loss=2.0) == pytest.approx(
        content_weight(5) * 2.0 / 4e6
    )


def test_the_record_shows_the_balance_and_the_alpha_it_gave(content_path, style_path) -> None:
    result = run_transfer(content_path, style_path, size=64, strength=7, **FAST)
    balance = result.record["balance"]
    assert balance["content_energy"] > 0 and balance["photo_style_loss"] > 0
    assert result.record["alpha"] == pytest.approx(alpha_for_strength(7, **balance))
    assert result.record["scales"][-1]["alpha"] == pytest.approx(result.record["alpha"])


def test_a_ratio_overrides_the_strength(content_path, style_path) -> None:
    result = run_transfer(content_path, style_path, size=64, strength=7, ratio=3e-6, **FAST)
    assert result.record["alpha"] == 3e-6 and "balance" not in result.record


def test_the_units_scale_with_the_image_so_a_strength_means_the_same_at_any_size(
    shared_images,
) -> None:
    """The content energy grows with the pixels and the photo's style loss does not, so alpha
    falls about as 1/pixels: what a fixed ratio needed by hand (docs/method.md)."""
    photo, painting = shared_images / "tubingen.jpg", shared_images / "starry_night.jpg"
    small = run_transfer(photo, painting, size=64, iterations=1, scales=1, seed=0)
    large = run_transfer(photo, painting, size=128, iterations=1, scales=1, seed=0)
    assert large.record["alpha"] / small.record["alpha"] == pytest.approx(1 / 4, rel=0.5)
    energy = large.record["balance"]["content_energy"] / small.record["balance"]["content_energy"]
    assert energy == pytest.approx(4, rel=0.5)


def test_more_strength_paints_more(shared_images) -> None:
    photo, painting = shared_images / "tubingen.jpg", shared_images / "starry_night.jpg"
    options = {"size": 96, "iterations": 30, "scales": 1, "seed": 0, "tolerance": 0}
    weak = run_transfer(photo, painting, strength=1, **options).record["final_loss"]
    strong = run_transfer(photo, painting, strength=9, **options).record["final_loss"]
    assert strong["style"] < weak["style"] and strong["content"] > weak["content"]


@pytest.mark.parametrize("value", ["11", "-1", "strong"])
def test_a_bad_strength_is_one_line_and_exit_2(capsys, content_path, style_path, tmp_path, value):
    out = tmp_path / "out.png"
    code = main(["transfer", str(content_path), str(style_path), "-o", str(out),
                 "--strength", value])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "strength" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
