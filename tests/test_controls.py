"""Creative controls end to end (CLI and API): several styles, style scale, color preservation,
masks, total variation, animation, loss plot and the grid; each test fails if its control were
ignored. Real weights, small images made here, 64 px and a few iterations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import same_bytes_flags
from PIL import Image
from skimage.color import rgb2yiq

import painterly.api as api
import painterly.synthesis as synthesis
from painterly import InputError, StyleTarget, prepare_style, run_transfer
from painterly.animation import AnimationRecorder
from painterly.cli import main
from painterly.controls import (
    layer_guides,
    match_colors,
    parse_mask_map,
    read_mask,
    region_maps,
)
from painterly.images import resize_to
from painterly.losses import GuidedStyleTarget, total_variation
from painterly.network import build_network
from painterly.plot import plot_losses

# The paper's single-scale procedure from noise (not the speed-tuned defaults): the controls'
# effects are measured against it.
PAPER = {"scales": 1, "init": "noise", "ratio": 1e-3, "tolerance": 0.0}
FAST = {"size": 64, "iterations": 5, "seed": 3, **PAPER}
CLI_PAPER = ["--scales", "1", "--init", "noise", "--ratio", "1e-3", "--tolerance", "0"]
CLI_FAST = ["--size", "64", "--iterations", "5", "--seed", "3", "--quiet", *CLI_PAPER]


def run(capsys, *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.startswith("painterly: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def _save(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def style2_path(tmp_path: Path) -> Path:
    """A warm style (red and orange), unlike the first style's rainbow stripes."""
    y, x = np.mgrid[0:72, 0:72]
    r = 200 + 50 * np.sin((x + y) / 2.0)
    g = 90 + 60 * np.cos(x / 7.0) * np.sin(y / 5.0)
    b = 30 + 25 * np.sin(y / 3.0)
    return _save(np.stack([r, g, b], -1), tmp_path / "style2.png")


@pytest.fixture
def cool_path(tmp_path: Path) -> Path:
    """A cool style (blue and cyan)."""
    y, x = np.mgrid[0:72, 0:72]
    r = 30 + 25 * np.sin(x / 3.0)
    g = 120 + 60 * np.sin((x - y) / 4.0)
    b = 210 + 40 * np.cos(y / 2.5)
    return _save(np.stack([r, g, b], -1), tmp_path / "cool.png")


@pytest.fixture
def green_path(tmp_path: Path) -> Path:
    """A content image that is mostly green."""
    from conftest import _photo_like

    pixels = np.asarray(_photo_like(96, 64, seed=1)).astype(np.float64)
    pixels[..., 1] = 0.5 * pixels[..., 1] + 120
    pixels[..., (0, 2)] *= 0.5
    return _save(pixels, tmp_path / "green.png")


def half_mask(path: Path, size: tuple[int, int], left: str, right: str) -> Path:
    image = Image.new("RGB", size, left)
    image.paste(Image.new("RGB", (size[0] - size[0] // 2, size[1]), right), (size[0] // 2, 0))
    image.save(path)
    return path


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> dict:
    """One plain transfer (FAST options) that several tests compare against."""
    from conftest import _photo_like, _stripes

    folder = tmp_path_factory.mktemp("plain")
    content, style = folder / "content.png", folder / "style.jpg"
    _photo_like(96, 64, seed=1).save(content)
    _stripes(80, 80, seed=2).save(style, quality=95)
    return {"result": run_transfer(content, style, **FAST), "content": content, "style": style}


# --------------------------------------------------------------------------------------------
# several styles


def test_blend_one_zero_is_byte_identical_to_the_single_style(
    capsys, plain, style2_path, tmp_path, same_bytes
) -> None:
    # on the CPU, and on CUDA with --deterministic (conftest's same_bytes)
    alone = run_transfer(plain["content"], plain["style"], **FAST, **same_bytes)
    out = tmp_path / "blend.png"
    code, err = run(capsys, "transfer", plain["content"], plain["style"], style2_path,
                    "--style-blend", "2,0", "-o", out, *CLI_FAST,
                    *same_bytes_flags(same_bytes))  # fmt: skip
    assert code == 0, err
    with Image.open(out) as image:
        assert image.tobytes() == alone.image.tobytes()
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["style_blend"] == [1.0, 0.0]  # normalized
    assert record["styles"] == ["style.jpg", "style2.png"]


def test_equal_blend_differs_from_either_style(plain, style2_path) -> None:
    blended = run_transfer(plain["content"], [plain["style"], style2_path], **FAST)
    assert blended.record["style_blend"] == [0.5, 0.5]
    alone = run_transfer(plain["content"], style2_path, **FAST)
    for other in (plain["result"].image, alone.image):
        assert np.abs(pixels(blended.image) - pixels(other)).mean() > 0.02


def test_blended_targets_are_the_weighted_mean_of_the_grams() -> None:
    a = StyleTarget({"conv1_1": torch.ones(2, 2)}, {"conv1_1": 1.0})
    b = StyleTarget({"conv1_1": torch.full((2, 2), 3.0)}, {"conv1_1": 1.0})
    mixed = StyleTarget.blend([a, b], [0.75, 0.25])
    assert torch.allclose(mixed.grams["conv1_1"], torch.full((2, 2), 1.5))


# --------------------------------------------------------------------------------------------
# style scale


def test_style_scale_resizes_the_style_before_its_grams(style_path) -> None:
    plain_targets = prepare_style(style_path, size=64).targets[64]
    scaled = prepare_style(style_path, size=64, style_scale=2).targets[64]
    # A style scale of 2 at 64 px sees the style as a 128 px run does.
    reference = prepare_style(style_path, size=128).targets[128]
    for name in plain_targets.grams:
        assert torch.equal(scaled.grams[name], reference.grams[name])
        assert not torch.allclose(scaled.grams[name], plain_targets.grams[name], rtol=0.05)


def test_style_scale_from_the_cli_changes_the_result(capsys, plain, tmp_path) -> None:
    out = tmp_path / "scaled.png"
    code, err = run(capsys, "transfer", plain["content"], plain["style"], "--style-scale", "0.5",
                    "-o", out, *CLI_FAST)  # fmt: skip
    assert code == 0, err
    with Image.open(out) as image:
        assert np.abs(pixels(image) - pixels(plain["result"].image)).mean() > 0.01
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["options"]["style_scale"] == 0.5


# --------------------------------------------------------------------------------------------
# color preservation


def chroma(image: Image.Image) -> np.ndarray:
    return rgb2yiq(pixels(image))[..., 1:]


def test_luminance_transfer_keeps_the_contents_chroma(capsys, plain, tmp_path) -> None:
    out = tmp_path / "lum.png"
    code, err = run(capsys, "transfer", plain["content"], plain["style"],
                    "--preserve-color", "luminance", "-o", out, *CLI_FAST)  # fmt: skip
    assert code == 0, err
    with Image.open(out) as image:
        result = pixels(image)
        content = resize_to(Image.open(plain["content"]).convert("RGB"), image.size)
        kept = np.abs(chroma(image) - chroma(content)).max(axis=-1)
        plain_diff = np.abs(chroma(plain["result"].image) - chroma(content)).max(axis=-1)
    # Where the new luminance with the old chroma leaves the RGB gamut, clipping changes the
    # chroma; everywhere else it is the content's, up to 8-bit rounding.
    inside = ((result > 0) & (result < 1)).all(axis=-1)
    assert inside.mean() > 0.5
    assert kept[inside].max() < 0.01 and np.median(kept) < 0.005
    assert np.median(plain_diff) > 0.05
    # and the luminance did change: it is a transfer, not a copy
    luma = np.abs(rgb2yiq(result)[..., 0] - rgb2yiq(pixels(content))[..., 0])
    assert luma.mean() > 0.05


def test_histogram_matching_moves_style_colors_to_the_contents(plain) -> None:
    content, style = Image.open(plain["content"]), Image.open(plain["style"])
    matched = match_colors(style, content)
    for stat in (np.mean, np.std):
        before = np.abs(stat(pixels(style), axis=(0, 1)) - stat(pixels(content), axis=(0, 1)))
        after = np.abs(stat(pixels(matched), axis=(0, 1)) - stat(pixels(content), axis=(0, 1)))
        assert after.sum() < 0.25 * before.sum()


def test_histogram_transfer_keeps_the_contents_colors(green_path, style2_path) -> None:
    """A green photo in a red style: plainly it turns red; with histogram matching it stays
    green, as the style's colors were matched to the photo's first."""
    options = {**FAST, "init": "content", "iterations": 8, "ratio": 1e-4}
    content = Image.open(green_path).convert("RGB")
    results = {
        mode: run_transfer(content, style2_path, preserve_color=mode, **options)
        for mode in ("none", "histogram")
    }
    reference = pixels(resize_to(content, results["none"].image.size)).mean(axis=(0, 1))

    def color_shift(mode: str) -> float:
        return float(np.abs(pixels(results[mode].image).mean(axis=(0, 1)) - reference).sum())

    assert color_shift("histogram") < 0.1 < 0.3 < color_shift("none")


def test_color_preservation_cannot_be_prepared_ahead(style_path) -> None:
    with pytest.raises(InputError, match="cannot be prepared"):
        prepare_style(style_path, size=64, preserve_color="luminance")


# --------------------------------------------------------------------------------------------
# masks


def test_masked_region_keeps_the_content_and_a_resized_mask_is_reported(
    capsys, plain, tmp_path
) -> None:
    mask = half_mask(tmp_path / "mask.png", (48, 32), "black", "white")  # content is 96x64
    out = tmp_path / "masked.png"
    code, err = run(capsys, "transfer", plain["content"], plain["style"], "--mask", mask,
                    "--mask-map", "black=1,white=content", "-o", out, *CLI_FAST)  # fmt: skip
    assert code == 0, err
    assert "painterly: warning: mask is 48x32 px but the content image is 96x64 px" in err
    assert "Traceback" not in err
    with Image.open(out) as image:
        result = pixels(image)
        content = pixels(resize_to(Image.open(plain["content"]).convert("RGB"), image.size))
    half = result.shape[1] // 2
    kept = np.abs(result[:, half + 2 :] - content[:, half + 2 :]).max()
    styled = np.abs(result[:, : half - 2] - content[:, : half - 2]).mean()
    assert kept <= 1.5 / 255 and styled > 0.05
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert [r["takes"] for r in record["mask_regions"]] == ["style 1 (style.jpg)", "content"]


def test_a_one_color_mask_is_the_plain_transfer(plain, tmp_path) -> None:
    mask = tmp_path / "all.png"
    Image.new("L", (96, 64), 128).save(mask)
    masked = run_transfer(plain["content"], plain["style"], mask=mask, **FAST)
    # The same objective; the plain one adds its style gradient in place (losses.
    # _StyleLayerLoss), so float rounding differs, which L-BFGS's steps from noise then amplify.
    difference = np.abs(pixels(masked.image) - pixels(plain["result"].image))
    assert difference.mean() < 1 / 255
    assert masked.record["final_loss"]["total"] == pytest.approx(
        plain["result"].record["final_loss"]["total"], rel=0.02
    )


def test_one_full_region_has_the_plain_objective_and_gradient() -> None:
    # The exact form of the check above, one evaluation without L-BFGS to amplify rounding.
    layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    network, _, _ = build_network(layers)
    generator = torch.Generator().manual_seed(0)
    style, start = (torch.rand(1, 3, 48, 48, generator=generator) * 255 for _ in range(2))
    with torch.no_grad():
        plain = StyleTarget.from_features(network(style, layers))
    guided = GuidedStyleTarget([(layer_guides(torch.ones(1, 1, 48, 48), layers)[0], plain)],
                               dict(plain.layer_weights))  # fmt: skip
    values, gradients = [], []
    for target in (plain, guided):
        x = start.clone().requires_grad_(True)
        losses = target.layer_losses(network(x, layers))
        total = sum(target.layer_weights[name] * loss for name, loss in losses.items())
        total.backward()
        values.append(float(total.detach()))
        gradients.append(x.grad)
    assert values[0] == pytest.approx(values[1], rel=1e-5)
    torch.testing.assert_close(gradients[0], gradients[1], rtol=1e-4, atol=1e-9)


def test_guided_grams_match_each_region_to_its_own_style(plain, style2_path) -> None:
    """An image made of style 1 on the left and style 2 on the right fits the mask that says
    so far better than the swapped mask."""
    network, convention, _ = build_network(["conv1_1", "conv2_1", "conv3_1"], device="cpu")
    layers = ("conv1_1", "conv2_1", "conv3_1")
    styles = [Image.open(plain["style"]).convert("RGB"), Image.open(style2_path).convert("RGB")]

    def target(image: Image.Image) -> StyleTarget:
        tensor = convention.to_network(torch.from_numpy(pixels(image)).permute(2, 0, 1)[None])
        with torch.no_grad():
            return StyleTarget.from_features(network(tensor.float(), layers))

    targets = [target(resize_to(s, (64, 64))) for s in styles]
    collage = Image.new("RGB", (128, 64))
    collage.paste(resize_to(styles[0], (64, 64)), (0, 0))
    collage.paste(resize_to(styles[1], (64, 64)), (64, 0))
    collage_tensor = convention.to_network(
        torch.from_numpy(pixels(collage)).permute(2, 0, 1)[None].float()
    )
    with torch.no_grad():
        features = network(collage_tensor, layers)

    def loss(mask_map: str) -> float:
        mask = half_mask(Path(str(plain["content"]) + ".mask.png"), (128, 64), "black", "white")
        layout = read_mask(mask, (128, 64), 2, mask_map)
        guides = layer_guides(region_maps(layout, (128, 64)), layers)
        regions = [(guides[r], targets[t]) for r, t in enumerate(layout.targets)]
        guided = GuidedStyleTarget(regions, {n: 1 / 3 for n in layers})
        return float(sum(guided.layer_losses(features).values()))

    assert loss("black=1,white=2") < 0.01 * loss("black=2,white=1")


def test_two_styles_by_mask_from_the_cli(
    capsys, content_path, cool_path, style2_path, tmp_path
) -> None:
    mask = half_mask(tmp_path / "mask.png", (96, 64), "#202020", "#e0e0e0")
    out = tmp_path / "two.png"
    # 20 iterations, not a handful: after 6 from noise the halves' warmth differed by 0.00-0.08
    # over seeds 0-7 (seed 3 cleared the 0.08 asked by 0.004), so any change to L-BFGS's path,
    # such as CUDA's other rounding, could undo it. After 20, seeds 0-5 gave 0.21-0.27.
    code, err = run(capsys, "transfer", content_path, cool_path, style2_path,
                    "--mask", mask, "-o", out, "--size", "64", "--iterations", "20",
                    "--seed", "3", *CLI_PAPER)  # fmt: skip
    assert code == 0, err
    # sorted by hex code: the darker half takes style 1
    assert "mask regions: #202020 -> style 1 (cool.png), #e0e0e0 -> style 2 (style2.png)" in err
    with Image.open(out) as image:
        result = pixels(image)
    half = result.shape[1] // 2

    def warmth(part: np.ndarray) -> float:  # red minus blue
        return float(part[..., 0].mean() - part[..., 2].mean())

    # the right half took the warm style, the left half the cool one
    assert warmth(result[:, half + 2 :]) > warmth(result[:, : half - 2]) + 0.15


def test_guides_have_the_size_of_every_layers_features() -> None:
    from painterly.controls import MaskLayout

    labels = np.zeros((37, 53), dtype=np.int64)
    labels[:, 20:] = 1
    layout = MaskLayout(labels, [(0, 0, 0), (255, 255, 255)], [0, 1])
    maps = region_maps(layout, (53, 37))
    assert torch.allclose(maps.sum(dim=1), torch.ones(1, 37, 53))
    layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    network, _, _ = build_network(layers, device="cpu")
    with torch.no_grad():
        features = network(torch.zeros(1, 3, 37, 53), layers)
    for guides in layer_guides(maps, layers):
        for name in layers:
            assert guides[name].shape[-2:] == features[name].shape[-2:]


def test_mask_map_syntax() -> None:
    assert parse_mask_map("#ff0000=1, white=content,0=2, 00ff00=3") == [
        ((255, 0, 0), 0), ((255, 255, 255), None), ((0, 0, 0), 1), ((0, 255, 0), 2)
    ]  # fmt: skip
    for bad in ("red", "red=0", "red=style", "nocolor=1", "300=1", "red=1,#ff0000=2", ""):
        with pytest.raises(InputError):
            parse_mask_map(bad)


def test_jpeg_noise_and_soft_edges_do_not_make_regions(tmp_path) -> None:
    image = Image.new("RGB", (100, 60), (250, 10, 10))
    image.paste(Image.new("RGB", (50, 60), (10, 10, 240)), (50, 0))
    image = image.resize((200, 120), Image.Resampling.BICUBIC)  # soft edge
    image.save(tmp_path / "mask.jpg", quality=70)  # and compression noise
    layout = read_mask(tmp_path / "mask.jpg", (200, 120), 2)
    assert len(layout.colors) == 2
    assert abs(layout.shares[0] - 0.5) < 0.02


# --------------------------------------------------------------------------------------------
# total variation


def test_tv_weight_smooths_the_output(capsys, plain, tmp_path) -> None:
    out = tmp_path / "smooth.png"
    code, err = run(capsys, "transfer", plain["content"], plain["style"], "--tv-weight", "100",
                    "-o", out, *CLI_FAST)  # fmt: skip
    assert code == 0, err

    def tv(image: Image.Image) -> float:
        return float(total_variation(torch.from_numpy(pixels(image)).permute(2, 0, 1)[None]))

    with Image.open(out) as image:
        assert tv(image) < 0.7 * tv(plain["result"].image)
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["final_loss"]["tv"] > 0 and plain["result"].record["final_loss"]["tv"] == 0


# --------------------------------------------------------------------------------------------
# animation and loss plot


def test_cli_animation_has_a_frame_every_n_iterations_and_a_plot(capsys, plain, tmp_path) -> None:
    import imageio.v3 as iio

    out, gif, plot = tmp_path / "out.png", tmp_path / "run.gif", tmp_path / "loss.png"
    code, err = run(capsys, "transfer", plain["content"], plain["style"], "-o", out,
                    "--size", "64", "--iterations", "5", "--seed", "3", "--quiet",
                    "--animation", gif, "--frame-every", "2", "--plot", plot)  # fmt: skip
    assert code == 0, err
    frames = iio.imread(gif, index=None)
    # iterations 2 and 4, then the result, unless that is iteration 4's image (the best seen at
    # the end can be the image from before the last step; a GIF keeps no repeated frame)
    assert frames.shape[0] in (2, 3) and frames.shape[1:3] == (43, 64)
    with Image.open(out) as image:  # GIF frames have 256 colors: close, not equal
        final = np.asarray(image).astype(int)
        assert np.abs(frames[-1] - final).mean() < 0.5 * np.abs(frames[0] - final).mean()
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 300


def test_api_animation_across_scales_and_mp4(plain, tmp_path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    recorder = AnimationRecorder(tmp_path / "run.mp4", every=2)
    result = run_transfer(plain["content"], plain["style"], size=128, scales=2, iterations=2,
                          seed=3, callback=recorder)  # fmt: skip
    frames = recorder.save(result)
    # 4 iterations at the coarse scale (twice the cap), 2 at full size: frames at 2, 4 and 6
    assert frames == 3
    reader = imageio.get_reader(tmp_path / "run.mp4", format="FFMPEG")
    assert reader.count_frames() == 3 and reader.get_meta_data()["size"] == (128, 86)  # even
    plot_losses(result, tmp_path / "loss.svg")
    assert (tmp_path / "loss.svg").read_text().lstrip().startswith("<?xml")
    assert [h["scale"] for h in result.history] == [0] * 4 + [1] * 2


# --------------------------------------------------------------------------------------------
# grid


def test_grid_prepares_each_style_once_and_draws_a_contact_sheet(
    capsys, monkeypatch, content_path, style_path, style2_path, tmp_path
) -> None:
    calls: list[int] = []
    real = synthesis.style_target

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(synthesis, "style_target", counted)
    second = tmp_path / "second.png"
    Image.open(content_path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    outdir = tmp_path / "grid"
    code, err = run(capsys, "grid", content_path, second, "--styles", style_path, style2_path,
                    "-o", outdir, "--size", "64", "--iterations", "2", "--seed", "1")  # fmt: skip
    assert code == 0, err
    assert len(calls) == 2  # one per style, not one per pair
    names = sorted(p.name for p in outdir.glob("*.png"))
    assert names == ["contact-sheet.png", "content-style.png", "content-style2.png",
                     "second-style.png", "second-style2.png"]  # fmt: skip
    assert len(list(outdir.glob("*.png.json"))) == 4
    with Image.open(outdir / "contact-sheet.png") as sheet:
        # 3 columns of 256 px; rows: the styles (square, 256 px), then two rows of 3:2 images
        header, row = 256 + 18 + 8, 172 + 18 + 8
        assert sheet.size == (3 * 256 + 4 * 8, 8 + header + 2 * row)
        pixels_ = np.asarray(sheet.convert("RGB"))
        for r in range(2):  # each result sits where its row and column meet
            for c in range(2):
                y, x = 8 + header + r * row + 86, 8 + (c + 1) * (256 + 8) + 128
                assert not (pixels_[y - 40 : y + 40, x - 40 : x + 40] == 255).all()
    assert "grid 4/4" in err


# --------------------------------------------------------------------------------------------
# bad input: one line, exit 2


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--style-blend", "0.5,0.3,0.2"], ["--style-blend has 3 weights but 2 styles"]),
        (["--style-blend", "1,-1"], ["must not be negative"]),
        (["--style-blend", "a,b"], ["comma-separated numbers"]),
        (["--style-blend", "0,0"], ["must not all be 0"]),
        (["--style-scale", "0"], ["--style-scale must be"]),
        (["--tv-weight", "-1"], ["--tv-weight must be"]),
        (["--preserve-color", "sepia"], ["invalid choice"]),
        (["--mask-map", "black=1"], ["--mask-map needs --mask"]),
        (["--animation", "run.avi"], ["supported extensions: .gif, .mp4"]),
        (["--plot", "loss.txt"], ["supported extensions: .png"]),
        (["--frame-every", "0"], ["--frame-every"]),
    ],
)
def test_bad_controls_are_one_line_errors(
    capsys, content_path, style_path, style2_path, tmp_path, extra, words
) -> None:
    extra = [str(tmp_path / e) if e.endswith((".avi", ".txt")) else e for e in extra]
    code, err = run(capsys, "transfer", content_path, style_path, style2_path,
                    "-o", tmp_path / "out.png", *CLI_FAST, *extra)  # fmt: skip
    one_line_error(code, err, *words)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    ("colors", "mask_map", "words"),
    [
        (["black", "white", "red"], None, ["the mask has 3 colors", "but 2 styles"]),
        (["black", "white", "red"], "black=1,white=2", ["mask color #ff0000", "maps to no style"]),
        (["black", "white"], "black=1,white=3", ["style 3, but 2 styles"]),
        (["black", "white"], "black=1,white=content", ["style 2 takes no region"]),
        (["black", "white"], "black=1,white=2,blue=2", ["#0000ff is not in the mask"]),
        (["black", "white"], "black=1,#101010=2", ["too close"]),
    ],
)
def test_bad_masks_are_one_line_errors(
    capsys, content_path, style_path, style2_path, tmp_path, colors, mask_map, words
) -> None:
    mask = Image.new("RGB", (96, 64))
    for i, color in enumerate(colors):
        mask.paste(Image.new("RGB", (96 // len(colors) + 1, 64), color), (i * 96 // len(colors), 0))
    mask.save(tmp_path / "mask.png")
    extra = ["--mask", tmp_path / "mask.png"] + (["--mask-map", mask_map] if mask_map else [])
    code, err = run(capsys, "transfer", content_path, style_path, style2_path,
                    "-o", tmp_path / "out.png", *CLI_FAST, *extra)  # fmt: skip
    one_line_error(code, err, *words)


def test_controls_that_do_not_apply_are_refused(content_path, style_path, tmp_path) -> None:
    with pytest.raises(InputError, match=r"^mask needs a content image") as refused:
        api.run_texture(style_path, size=64, iterations=1, mask=str(content_path))
    assert refused.value.field == "mask"
    with pytest.raises(InputError, match="style_blend does not go with mask"):
        run_transfer(content_path, [style_path, style_path], mask=str(content_path),
                     style_blend=(1, 1), size=64, iterations=1)  # fmt: skip
    code = main(["texture", str(style_path), "-o", str(tmp_path / "t.png"), "--mask", "m.png"])
    assert code == 2
