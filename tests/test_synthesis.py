"""The synthesis over several scales, the cancel handle and the output contract.

Nearly every other test runs one 64 px scale; these run two (64 and 128 px), on real weights.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ctrl_c_once
from PIL import Image

import painterly.record as record_module
from painterly import Cancel, InputError, Options, run_reconstruction, run_texture, run_transfer
from painterly.cli import main
from painterly.losses import Objective
from painterly.synthesis import Plan, synthesize

TWO_SCALES = {"size": 128, "scales": 2, "seed": 1, "device": "cpu"}
DEFAULT_RUN = {"size": 128, "iterations": 3, "seed": 5, "device": "cpu"}  # 3 scales asked: 2 fit


def _positions(size: list[int]) -> int:
    return size[0] * size[1]


def test_alpha_per_scale_follows_its_positions(content_path, style_path) -> None:
    """The content term sums over positions, the style term does not: each scale's alpha is the
    run's alpha times full-size positions over its own, so every scale keeps the same balance."""
    for strength_or_ratio in ({"strength": 5}, {"ratio": 1e-3}):
        result = run_transfer(content_path, style_path, iterations=1, **TWO_SCALES,
                              **strength_or_ratio)  # fmt: skip
        record = result.record
        full = _positions(record["output_size"])
        assert [s["size"] for s in record["scales"]] == [[64, 43], [128, 85]]
        for scale in record["scales"]:
            assert scale["alpha"] == pytest.approx(
                record["alpha"] * full / _positions(scale["size"]), rel=1e-12
            )
            loss = scale["loss"]  # the objective optimized is the one recorded
            assert loss["total"] == pytest.approx(
                scale["alpha"] * loss["content"] + loss["style"], rel=1e-4
            )
        assert record["scales"][0]["alpha"] > 2 * record["scales"][1]["alpha"]
    assert record["alpha"] == 1e-3


def test_cancel_before_the_last_scale_keeps_a_full_size_image(content_path, style_path) -> None:
    cancel = Cancel()

    def press_cancel(progress) -> None:
        if progress.iteration == 3:
            cancel.cancel()

    result = run_transfer(content_path, style_path, iterations=50, tolerance=0, **TWO_SCALES,
                          callback=press_cancel, cancel=cancel)  # fmt: skip
    assert result.stop_reason == "interrupted"
    assert result.image.size == (128, 85)  # upsampled to the output's size
    assert len(result.record["scales"]) == 1 and result.record["iterations"] == 3
    assert result.record["output_size"] == [128, 85]


def test_the_default_multiscale_run_is_byte_identical_for_a_seed(
    content_path, style_path, tmp_path
) -> None:
    """Same seed, same options, same machine: the same bytes, from the photo and from noise."""
    runs = {
        "transfer": lambda: run_transfer(content_path, style_path, **DEFAULT_RUN),
        "texture": lambda: run_texture(style_path, **DEFAULT_RUN),
    }
    for name, run in runs.items():
        saved = []
        for attempt in range(2):
            path = tmp_path / f"{name}-{attempt}.png"
            result = run()
            assert len(result.record["scales"]) == 2  # 64 and 128 px
            result.save(path)
            saved.append(path.read_bytes())
        assert saved[0] == saved[1], name


def test_result_save_writes_the_image_then_its_record(content_path, tmp_path, monkeypatch) -> None:
    result = run_reconstruction(content_path, size=64, iterations=1, seed=1, device="cpu")
    written: list[str] = []
    save_image, write_text = record_module.save_image, record_module.write_text_atomic

    def image_first(image, path) -> None:
        save_image(image, path)
        written.append(Path(path).name)

    def record_last(text, path) -> None:
        assert written == ["out.png"]  # the image is complete before its record exists
        write_text(text, path)
        written.append(Path(path).name)

    monkeypatch.setattr(record_module, "save_image", image_first)
    monkeypatch.setattr(record_module, "write_text_atomic", record_last)
    record_path = result.save(tmp_path / "out.png", batch={"pair": 1})
    assert written == ["out.png", "out.png.json"] and record_path == tmp_path / "out.png.json"
    expected = json.loads(json.dumps({**result.record, "batch": {"pair": 1}}))
    assert json.loads(record_path.read_text()) == expected
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), np.asarray(result.image))
    monkeypatch.undo()

    # A failed image write (here: a folder is in the way) leaves neither a record nor a
    # temporary file behind.
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(InputError, match="cannot write"):
        result.save(tmp_path / "taken.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["content.png", "out.png", "out.png.json", "taken.png"]
    )


def test_an_unknown_format_writes_nothing(content_path, tmp_path) -> None:
    result = run_reconstruction(content_path, size=64, iterations=1, seed=1, device="cpu")
    with pytest.raises(InputError):
        result.save(tmp_path / "out.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png"]


def test_save_every_snapshots_look_like_the_output(capsys, content_path, style_path, tmp_path):
    """With --preserve-color luminance the run optimizes a gray image; its snapshots must have
    the content's colors put back, as the output will."""
    out = tmp_path / "out.png"
    code = main(["transfer", str(content_path), str(style_path), "-o", str(out), "--size", "64",
                 "--scales", "1", "--iterations", "2", "--save-every", "2",
                 "--preserve-color", "luminance", "--seed", "1", "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    snapshot = np.asarray(Image.open(tmp_path / "out_0002.png").convert("RGB")).astype(int)
    assert np.abs(snapshot[..., 0] - snapshot[..., 1]).mean() > 5  # not gray
    output = np.asarray(Image.open(out)).astype(int)
    assert np.abs(snapshot - output).mean() < 10  # looks like the output


def test_errors_name_option_fields_and_the_cli_words_them_as_flags(
    capsys, content_path, style_path
):
    with pytest.raises(InputError) as refused:
        Options(size=5).validated()
    assert refused.value.field == "size" and "--" not in str(refused.value)
    assert str(refused.value).startswith("size must be")
    code = main(["transfer", str(content_path), str(style_path), "-o", "x.png", "--size", "5"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("painterly: error: --size must be a whole number")


class _Brightness:
    """A pixel term: pulls the mean of the image (network space) towards `target`."""

    name, layers = "brightness", ()

    def __init__(self, target: float, weight: float) -> None:
        self.target, self.weight = target, weight

    def __call__(self, features, image: torch.Tensor) -> torch.Tensor:
        return self.weight * (image.mean() - self.target) ** 2


def test_extra_terms_and_the_evaluator_plug_into_the_same_loop(content_path, style_path) -> None:
    options = Options(size=64, iterations=3, scales=1, seed=1, device="cpu", ratio=1e-3)
    calls: list[tuple[str, ...]] = []
    plan = Plan.build(options, content_path, [style_path])

    def evaluator(objective: Objective, image: torch.Tensor):
        calls.append(objective.layers)
        return objective(plan.network(image, objective.layers), image)

    term = _Brightness(target=0.0, weight=1e3)
    result = synthesize(options, content_path, [style_path], terms=[term], evaluator=evaluator)
    assert calls and all(layers == calls[0] for layers in calls)
    assert result.record["final_loss"]["extra"]["brightness"] > 0
    loss = result.record["final_loss"]
    assert loss["total"] == pytest.approx(
        1e-3 * loss["content"] + loss["style"] + loss["extra"]["brightness"], rel=1e-4
    )


def test_ctrl_c_during_a_multiscale_cli_run_saves_a_full_size_image(
    content_path, style_path, tmp_path
) -> None:
    out = tmp_path / "interrupted.png"
    proc = subprocess.Popen(
        [sys.executable, "-m", "painterly", "transfer", str(content_path), str(style_path), "-o",
         str(out), "--size", "128", "--scales", "2", "--iterations", "100000", "--tolerance",
         "0", "--seed", "1", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    err = ctrl_c_once(proc, b"scale 1/2")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted after" in err
    assert Image.open(out).size == (128, 85)
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["stop_reason"] == "interrupted" and len(record["scales"]) == 1


def test_a_finer_scale_starts_from_the_upsampled_image_plus_seeded_detail(
    content_path, style_path
) -> None:
    """The detail noise that keeps the pooling grid out of short scales (synthesis.py,
    UPSAMPLED_DETAIL): its size in 0-1 pixel units, the same for a seed, none at the first scale."""
    from painterly import synthesis

    options = Options(size=128, scales=2, seed=5).validated()
    plan = Plan.build(options, content_path, [style_path])
    first, second = list(plan.stages())
    previous = plan.start_image(first, None)
    assert torch.equal(previous, plan.start_image(first, None))  # no noise at the first scale
    start = plan.start_image(second, previous)
    upsampled = torch.nn.functional.interpolate(
        previous, size=start.shape[-2:], mode="bicubic", align_corners=False
    )
    added = plan.convention.from_network(start) - plan.convention.from_network(upsampled)
    assert float(added.std()) > 0.01
    assert float(added.std()) == pytest.approx(synthesis.UPSAMPLED_DETAIL, rel=0.1)
    assert torch.equal(start, plan.start_image(second, previous))  # seeded
