"""Tests for painterly.images and painterly.demo_images, on real files written with Pillow."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
import textwrap
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from painterly import images
from painterly.demo_images import demo_content, demo_style
from painterly.errors import InputError
from painterly.images import (
    MAX_PIXELS,
    OUTPUT_FORMATS,
    check_min_size,
    check_output_path,
    image_to_tensor,
    open_image,
    resize_long_side,
    resize_to,
    save_image,
    tensor_to_image,
    write_text_atomic,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int64)


def assert_rgb(image: Image.Image) -> None:
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"


def can_deny_access(folder: Path) -> bool:
    """False when chmod does not stop us (running as root, some file systems)."""
    probe = folder / "probe"
    probe.mkdir()
    probe.chmod(0o500)
    try:
        (probe / "x").write_bytes(b"")
    except PermissionError:
        return True
    else:
        return False
    finally:
        probe.chmod(0o700)


def png_with_header(path: Path, width: int, height: int) -> None:
    """Write a valid, tiny 1-bit PNG of width x height (all black): a decompression bomb."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    block_rows = 500
    compressor = zlib.compressobj(9)
    parts = []
    for start in range(0, height, block_rows):
        parts.append(compressor.compress(row * min(block_rows, height - start)))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------------
# open_image: modes


def test_rgb_file_round_trips_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    Image.fromarray(data).save(tmp_path / "a.png")
    out = open_image(tmp_path / "a.png")
    assert_rgb(out)
    np.testing.assert_array_equal(np.asarray(out), data)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_becomes_rgb(tmp_path: Path, mode: str) -> None:
    value = 77 if mode == "L" else 255
    Image.new(mode, (5, 4), value).save(tmp_path / "g.png")
    out = open_image(str(tmp_path / "g.png"))
    assert_rgb(out)
    assert out.size == (5, 4)
    assert (pixels(out) == value).all()


def test_la_alpha_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("LA", (3, 1))
    image.putpixel((0, 0), (100, 255))
    image.putpixel((1, 0), (100, 0))
    image.putpixel((2, 0), (200, 128))
    image.save(tmp_path / "la.png")
    out = pixels(open_image(tmp_path / "la.png"))
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[0, 1].tolist() == [255, 255, 255]
    expected = 200 * 128 / 255 + 255 * 127 / 255
    assert np.abs(out[0, 2] - expected).max() <= 1


def test_rgba_alpha_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (2, 1))
    image.putpixel((0, 0), (10, 20, 30, 0))
    image.putpixel((1, 0), (10, 20, 30, 255))
    image.save(tmp_path / "rgba.png")
    out = pixels(open_image(tmp_path / "rgba.png"))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [10, 20, 30]


def _palette_image() -> Image.Image:
    image = Image.new("P", (3, 1))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0, 0, 0] * 253)
    for x in range(3):
        image.putpixel((x, 0), x)
    return image


def test_palette_without_transparency(tmp_path: Path) -> None:
    _palette_image().save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    out = pixels(open_image(tmp_path / "p.png"))
    assert out[0].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]


def test_palette_with_transparency(tmp_path: Path) -> None:
    _palette_image().save(tmp_path / "pt.png", transparency=1)
    assert "transparency" in Image.open(tmp_path / "pt.png").info
    out = pixels(open_image(tmp_path / "pt.png"))
    assert out[0].tolist() == [[255, 0, 0], [255, 255, 255], [0, 0, 255]]


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    image = Image.new("I;16", (4, 1))
    for x, value in enumerate([65535, 32768, 257, 0]):
        image.putpixel((x, 0), value)
    image.save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode in ("I;16", "I")  # depends on Pillow version
    out = pixels(open_image(tmp_path / "g16.png"))
    assert out[0, :, 0].tolist() == [255, 128, 1, 0]
    assert (out[0] == out[0, :, :1]).all()  # gray


def test_16bit_big_endian_and_32bit_int_images() -> None:
    big = Image.frombytes("I;16B", (2, 1), struct.pack(">HH", 65535, 32768))
    assert pixels(open_image(big))[0, :, 0].tolist() == [255, 128]
    wide = Image.fromarray(np.array([[65535, 32768, 0]], dtype=np.int32))
    assert wide.mode == "I"
    assert pixels(open_image(wide))[0, :, 0].tolist() == [255, 128, 0]


def test_float_image() -> None:
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert unit.mode == "F"
    assert pixels(open_image(unit))[0, :, 0].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[0.0, 100.0, 300.0]], dtype=np.float32))
    assert pixels(open_image(wide))[0, :, 0].tolist() == [0, 100, 255]


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    out = open_image(tmp_path / "cmyk.jpg")
    assert_rgb(out)
    assert np.abs(pixels(out)[8, 8] - [255, 0, 0]).max() <= 8


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV"])
def test_other_color_spaces(mode: str) -> None:
    original = Image.new("RGB", (4, 4), (200, 30, 60))
    converted = original.convert(mode)
    out = open_image(converted)
    assert_rgb(out)
    assert np.abs(pixels(out)[0, 0] - [200, 30, 60]).max() <= 4


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    assert Image.open(tmp_path / "rot.jpg").size == (40, 20)
    out = open_image(tmp_path / "rot.jpg")
    assert out.size == (20, 40)
    top, bottom = pixels(out)[5, 10], pixels(out)[35, 10]
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert out.getexif().get(0x0112) in (None, 1)


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), color) for color in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    assert getattr(Image.open(tmp_path / "anim.gif"), "n_frames", 1) == 2
    out = pixels(open_image(tmp_path / "anim.gif"))
    assert out[4, 4].tolist() == [255, 0, 0]


def test_pil_input_is_converted_and_not_modified() -> None:
    source = Image.new("RGBA", (2, 2), (10, 20, 30, 0))
    out = open_image(source)
    assert_rgb(out)
    assert pixels(out)[0, 0].tolist() == [255, 255, 255]
    assert source.mode == "RGBA"
    assert source.getpixel((0, 0)) == (10, 20, 30, 0)

    rgb = Image.new("RGB", (2, 2), (1, 2, 3))
    copy = open_image(rgb)
    assert copy is not rgb
    copy.putpixel((0, 0), (9, 9, 9))
    assert rgb.getpixel((0, 0)) == (1, 2, 3)


def test_returned_image_is_fully_loaded(tmp_path: Path) -> None:
    Image.new("RGB", (6, 6), (5, 6, 7)).save(tmp_path / "a.jpg")
    out = open_image(tmp_path / "a.jpg")
    os.remove(tmp_path / "a.jpg")  # the result must not still depend on the file
    assert out.getpixel((3, 3))[0] < 20


# --------------------------------------------------------------------------------------------
# open_image: errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match=r"content image .*nope\.jpg.* does not exist"):
        open_image(path, role="content image")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"style image .* is a folder") as info:
        open_image(tmp_path, role="style image")
    assert str(tmp_path) in str(info.value)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image\n")
    with pytest.raises(InputError, match=r"style image .*notes\.jpg.* not an image"):
        open_image(path, role="style image")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="not an image"):
        open_image(tmp_path / "empty.png")


def test_truncated_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert open_image(tmp_path / "full.jpg").size == (64, 64)
    with pytest.raises(InputError, match=r"content image .*cut\.jpg.* damaged") as info:
        open_image(tmp_path / "cut.jpg", role="content image")
    assert "\n" not in str(info.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupt_png(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), (1, 2, 3)).save(tmp_path / "ok.png")
    data = bytearray((tmp_path / "ok.png").read_bytes())
    data[40:60] = b"\xff" * 20  # smash the IDAT chunk
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad\.png"):
        open_image(tmp_path / "bad.png")


def test_unreadable_file(tmp_path: Path) -> None:
    if not can_deny_access(tmp_path):
        pytest.skip("permissions are not enforced here (running as root?)")
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    try:
        with pytest.raises(InputError, match="permission denied"):
            open_image(path, role="content image")
    finally:
        path.chmod(0o600)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_device_is_not_a_regular_file() -> None:
    with pytest.raises(InputError, match="not a regular file"):
        open_image("/dev/null")


def test_path_with_newline_gives_one_line_message(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        open_image(tmp_path / "a\nb.png")
    assert "\n" not in str(info.value)


def test_too_many_pixels_is_refused_from_the_header(tmp_path: Path) -> None:
    # 8000 x 8000 = 64 M pixels: over our limit, under Pillow's own warning threshold.
    path = tmp_path / "big.png"
    png_with_header(path, 8000, 8000)
    assert path.stat().st_size < 200_000
    assert MAX_PIXELS < 8000 * 8000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        with pytest.raises(InputError, match=r"8000x8000") as info:
            open_image(path, role="style image")
        elapsed = time.perf_counter() - start
    message = str(info.value)
    assert "style image" in message and "big.png" in message and "50,000,000" in message
    assert elapsed < 1.0, "the pixels were decoded"
    assert not caught


def test_decompression_bomb_beyond_pillow_limit(tmp_path: Path) -> None:
    # 20000 x 20000 = 400 M pixels: Pillow itself raises DecompressionBombError on open.
    path = tmp_path / "bomb.png"
    png_with_header(path, 20000, 20000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=r"400,000,000 pixels.*50,000,000"):
            open_image(path, role="content image")
    assert not caught


def test_decompression_bomb_uses_little_time_and_memory(tmp_path: Path) -> None:
    """144 M pixels (Pillow only warns): decoding would cost >= 144 MB; we must not decode."""
    pytest.importorskip("resource")
    if sys.platform != "linux":
        pytest.skip("ru_maxrss units differ off Linux")
    path = tmp_path / "warn.png"
    png_with_header(path, 12000, 12000)
    script = textwrap.dedent(
        f"""
        import resource, sys, time, warnings
        warnings.simplefilter("error")  # any DecompressionBombWarning escaping fails
        from painterly.errors import InputError
        from painterly.images import open_image
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            open_image({str(path)!r})
        except InputError as exc:
            print("InputError:", exc)
        elapsed = time.perf_counter() - start
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(f"grown_mb={{grown_mb:.1f}} elapsed={{elapsed:.3f}}")
        """
    )
    path_list = [str(SRC), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path_list)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("InputError:") and "12000x12000" in lines[0]
    stats = dict(item.split("=") for item in lines[-1].split())
    assert float(stats["grown_mb"]) < 40
    assert float(stats["elapsed"]) < 1.0


def test_pil_image_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 99)
    with pytest.raises(InputError, match="10x10"):
        open_image(Image.new("RGB", (10, 10)), role="content image")
    assert open_image(Image.new("RGB", (9, 11))).size == (9, 11)


# --------------------------------------------------------------------------------------------
# geometry


def test_resize_long_side() -> None:
    assert resize_long_side(Image.new("RGB", (400, 300)), 200).size == (200, 150)
    assert resize_long_side(Image.new("RGB", (30, 100)), 50).size == (15, 50)
    assert resize_long_side(Image.new("RGB", (101, 50)), 10).size == (10, 5)  # 4.95 rounds up
    assert resize_long_side(Image.new("RGB", (1000, 1)), 10).size == (10, 1)  # min 1 px
    assert resize_long_side(Image.new("RGB", (64, 48)), 128).size == (128, 96)  # upscale
    with pytest.raises(ValueError):
        resize_long_side(Image.new("RGB", (4, 4)), 0)


def test_resize_long_side_same_size_returns_copy() -> None:
    source = Image.new("RGB", (64, 32), (1, 2, 3))
    out = resize_long_side(source, 64)
    assert out is not source and out.size == (64, 32)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(source))


def test_resize_long_side_is_smooth() -> None:
    """LANCZOS (not nearest): a black/white checkerboard averages to mid-gray when shrunk."""
    board = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    out = pixels(resize_long_side(Image.fromarray(board).convert("RGB"), 16))
    assert np.abs(out[4:12, 4:12] - 127.5).max() < 10


def test_resize_to() -> None:
    out = resize_to(Image.new("RGB", (40, 30), (9, 9, 9)), (17, 23))
    assert out.size == (17, 23)
    assert pixels(out)[10, 10].tolist() == [9, 9, 9]


def test_check_min_size() -> None:
    with pytest.raises(InputError) as info:
        check_min_size(Image.new("RGB", (12, 9)), 16, role="content image")
    assert str(info.value) == (
        "content image is 12x9 px; the network needs at least 16 px on each side"
    )
    with pytest.raises(InputError, match="style image is 16x15 px"):
        check_min_size(Image.new("RGB", (16, 15)), 16, role="style image")
    check_min_size(Image.new("RGB", (16, 16)), 16, role="content image")


# --------------------------------------------------------------------------------------------
# tensors


def test_tensor_round_trip_is_exact() -> None:
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, (7, 11, 3), dtype=np.uint8)
    data[0, 0] = [0, 128, 255]
    tensor = image_to_tensor(Image.fromarray(data))
    assert tensor.shape == (1, 3, 7, 11)
    assert tensor.dtype == torch.float32
    assert tensor.min() >= 0 and tensor.max() <= 1
    assert tensor[0, :, 0, 0].tolist() == pytest.approx([0.0, 128 / 255, 1.0])
    assert tensor[0, 1, 3, 5].item() == pytest.approx(data[3, 5, 1] / 255)  # channel order
    back = tensor_to_image(tensor)
    assert_rgb(back)
    np.testing.assert_array_equal(np.asarray(back), data)


def test_tensor_to_image_rounds_and_clamps() -> None:
    tensor = torch.zeros(3, 1, 4, dtype=torch.float64)
    tensor[:, 0, 0] = 10.4 / 255
    tensor[:, 0, 1] = 10.6 / 255  # floor would give 10
    tensor[:, 0, 2] = -0.5
    tensor[:, 0, 3] = 1.7
    out = tensor_to_image(tensor)
    assert out.size == (4, 1)
    assert pixels(out)[0, :, 0].tolist() == [10, 11, 0, 255]


def test_tensor_to_image_accepts_half_precision_and_rejects_bad_shapes() -> None:
    out = tensor_to_image(torch.full((1, 3, 2, 2), 0.5, dtype=torch.float16, requires_grad=True))
    assert pixels(out)[0, 0].tolist() == [128, 128, 128]
    with pytest.raises(ValueError):
        tensor_to_image(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError):
        tensor_to_image(torch.zeros(2, 3, 2, 2))


# --------------------------------------------------------------------------------------------
# output paths and saving


def test_output_formats_table() -> None:
    assert OUTPUT_FORMATS == {
        ".png": "PNG",
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".webp": "WEBP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
    }


def test_check_output_path_accepts_good_paths(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "out.png") == tmp_path / "out.png"
    assert check_output_path(str(tmp_path / "OUT.JPG")) == tmp_path / "OUT.JPG"
    (tmp_path / "exists.webp").write_bytes(b"old")
    assert check_output_path(tmp_path / "exists.webp") == tmp_path / "exists.webp"
    assert [p.name for p in tmp_path.iterdir()] == ["exists.webp"]  # the probe was removed


@pytest.mark.parametrize("name", ["out.gif", "out", "out.png.bak"])
def test_check_output_path_bad_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError) as info:
        check_output_path(tmp_path / name)
    for ext in OUTPUT_FORMATS:
        assert ext in str(info.value)


def test_check_output_path_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "nowhere" / "out.png")


def test_check_output_path_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        check_output_path(tmp_path / "file" / "out.png")


def test_check_output_path_is_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    with pytest.raises(InputError, match="existing folder"):
        check_output_path(tmp_path / "out.png")


def test_check_output_path_unwritable_folder(tmp_path: Path) -> None:
    if not can_deny_access(tmp_path):
        pytest.skip("permissions are not enforced here (running as root?)")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            check_output_path(folder / "out.png")
    finally:
        folder.chmod(0o700)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("o.png", "PNG"),
        ("o.jpg", "JPEG"),
        ("o.jpeg", "JPEG"),
        ("o.webp", "WEBP"),
        ("o.tif", "TIFF"),
        ("o.TIFF", "TIFF"),
    ],
)
def test_save_image_formats(tmp_path: Path, name: str, fmt: str) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    save_image(Image.fromarray(data), tmp_path / name)
    with Image.open(tmp_path / name) as saved:
        assert saved.format == fmt
        assert saved.size == (32, 24)
        if fmt in ("PNG", "TIFF"):
            np.testing.assert_array_equal(np.asarray(saved.convert("RGB")), data)
    assert leftovers(tmp_path) == []


def test_save_jpeg_uses_high_quality(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    save_image(
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), tmp_path / "q.jpg"
    )
    with Image.open(tmp_path / "q.jpg") as saved:
        assert max(saved.quantization[0]) <= 12  # quality 90 gives 24, quality 75 gives 61


def test_save_rgba_as_jpeg(tmp_path: Path) -> None:
    save_image(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), tmp_path / "a.jpg")
    with Image.open(tmp_path / "a.jpg") as saved:
        assert saved.mode == "RGB"
        assert min(saved.getpixel((4, 4))) > 245  # transparent -> white


def test_save_overwrites_and_keeps_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "o.png"
    target.write_bytes(b"old")
    save_image(Image.new("RGB", (4, 4), (1, 2, 3)), target)
    with Image.open(target) as saved:
        assert saved.getpixel((0, 0)) == (1, 2, 3)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_save_unsupported_extension_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "o.gif")
    assert list(tmp_path.iterdir()) == []


def test_save_to_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "nowhere" / "o.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_old_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "o.png"
    target.write_bytes(b"previous result")
    with pytest.raises(OSError, match="cannot write mode F"):
        save_image(Image.new("F", (4, 4)), target)  # PNG cannot store float pixels
    assert target.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]


def test_save_into_unwritable_folder(tmp_path: Path) -> None:
    if not can_deny_access(tmp_path):
        pytest.skip("permissions are not enforced here (running as root?)")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="cannot write"):
            save_image(Image.new("RGB", (4, 4)), folder / "o.png")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_write_text_atomic(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    write_text_atomic('{"a": "ü"}\n', target)
    assert target.read_text(encoding="utf-8") == '{"a": "ü"}\n'
    write_text_atomic("{}", target)
    assert target.read_text(encoding="utf-8") == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    with pytest.raises(InputError):
        write_text_atomic("{}", tmp_path / "missing" / "run.json")


# --------------------------------------------------------------------------------------------
# demo images


def test_demo_content_is_a_photo() -> None:
    image = demo_content()
    assert_rgb(image)
    assert min(image.size) >= 256
    data = pixels(image)
    assert data.std() > 30  # not flat
    assert len(np.unique(data.reshape(-1, 3), axis=0)) > 5000  # photographic, many colors


def test_demo_style_is_deterministic_and_sized() -> None:
    first = demo_style(96, seed=0)
    assert_rgb(first)
    assert first.size == (96, 96)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(demo_style(96, seed=0)))
    assert not np.array_equal(np.asarray(first), np.asarray(demo_style(96, seed=1)))
    assert demo_style(40, seed=3).size == (40, 40)


def test_demo_style_looks_like_a_painting() -> None:
    start = time.perf_counter()
    image = demo_style()
    elapsed = time.perf_counter() - start
    assert image.size == (512, 512)
    assert elapsed < 5.0  # < 2 s on an idle core; slack for shared CI machines
    data = pixels(image)
    r, g, b = data[..., 0], data[..., 1], data[..., 2]
    blue = (b > r + 40).mean()
    yellow = ((r > 180) & (g > 140) & (b < 130)).mean()
    assert blue > 0.4  # a blue night sky dominates
    assert yellow > 0.005  # bright yellow lights
    # Visible strokes: strong local contrast everywhere, unlike a smooth gradient.
    edges = np.abs(np.diff(data.astype(np.float64).mean(axis=-1), axis=1))
    assert edges.mean() > 6
