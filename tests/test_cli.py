"""The `painterly` command end to end, at 64 px with few iterations, on real weights and files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ctrl_c_once, same_bytes_flags
from PIL import Image

from painterly.cli import main
from painterly.network import resolve_device

FAST = ["--size", "64", "--iterations", "4", "--seed", "7", "--quiet"]


def run(capsys, *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_transfer_writes_image_and_record(capsys, content_path, style_path, tmp_path) -> None:
    out = tmp_path / "out.png"
    code, err = run(capsys, "transfer", content_path, style_path, "-o", out, *FAST)
    assert code == 0, err
    image = Image.open(out)
    assert image.size == (64, 43) and image.mode == "RGB"  # content is 96x64
    record = json.loads((tmp_path / "out.png.json").read_text())
    assert record["command"] == "transfer" and record["iterations"] == 4
    assert record["options"]["seed"] == 7 and record["options"]["strength"] == 5
    assert record["options"]["ratio"] is None and record["alpha"] > 0  # alpha from strength
    assert record["options"]["init"] == "content"  # what the default "auto" chose
    assert set(record["final_loss"]["style_layers"]) == {
        "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"
    }  # fmt: skip
    assert set(record["final_loss"]["content_layers"]) == {"conv4_2"}
    assert record["versions"]["torch"] and record["device"] == str(resolve_device("auto"))
    assert record["timings"]["optimization_seconds"] > 0
    assert record["stop_reason"] == "iterations"


def test_texture_uses_the_chosen_style_layers(capsys, style_path, tmp_path) -> None:
    out = tmp_path / "texture.webp"
    code, err = run(capsys, "texture", style_path, "-o", out, *FAST,
                    "--style-layers", "conv1_1,conv2_1")  # fmt: skip
    assert code == 0, err
    assert Image.open(out).format == "WEBP" and Image.open(out).size == (64, 64)
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["command"] == "texture" and record["options"]["init"] == "noise"  # auto
    assert set(record["final_loss"]["style_layers"]) == {"conv1_1", "conv2_1"}
    assert record["final_loss"]["content"] == 0


def test_reconstruct_from_one_content_layer(capsys, content_path, tmp_path) -> None:
    out = tmp_path / "recon.jpg"
    code, err = run(capsys, "reconstruct", content_path, "-o", out, *FAST,
                    "--content-layer", "conv2_2")  # fmt: skip
    assert code == 0, err
    assert Image.open(out).format == "JPEG"
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["command"] == "reconstruct" and record["options"]["init"] == "noise"  # auto
    assert set(record["final_loss"]["content_layers"]) == {"conv2_2"}
    assert record["final_loss"]["style_layers"] == {}


def test_reconstruction_loss_goes_down(content_path) -> None:
    from painterly import run_reconstruction

    result = run_reconstruction(content_path, size=64, iterations=15, seed=1,
                                content_layer="conv2_2")  # fmt: skip
    history = result.optimization.history
    assert history[-1]["total"] < 0.5 * history[0]["total"]


def test_demo_runs_on_bundled_images(capsys, tmp_path) -> None:
    out = tmp_path / "demo.png"
    code, err = run(capsys, "demo", "-o", out, *FAST)
    assert code == 0, err
    assert Image.open(out).size[0] == 64
    assert (tmp_path / "demo-content.png").is_file() and (tmp_path / "demo-style.png").is_file()
    record = json.loads((tmp_path / "demo.png.json").read_text())
    assert record["options"]["init"] == "content"  # what "auto" chose; see the restarts
    dropped = [
        r["from_content" if r["kept"] == "noise" else "from_noise"] for r in record["restarts"]
    ]
    assert record["iterations"] == sum(s["iterations"] for s in record["scales"]) + sum(
        attempt["iterations"] for attempt in dropped
    )


def test_save_every_writes_snapshots(capsys, content_path, style_path, tmp_path) -> None:
    out = tmp_path / "run.png"
    code, err = run(capsys, "transfer", content_path, style_path, "-o", out, *FAST,
                    "--save-every", "2")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob("run_*.png")) == ["run_0002.png", "run_0004.png"]


def test_same_seed_gives_byte_identical_output(
    capsys, content_path, style_path, tmp_path, same_bytes
) -> None:
    # on the CPU, and on CUDA with --deterministic (conftest's same_bytes)
    outs = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    for out, seed in zip(outs, ("7", "7", "8"), strict=True):
        code, err = run(capsys, "transfer", content_path, style_path, "-o", out, *FAST[:-3],
                        "--seed", seed, "--init", "noise", "--quiet",
                        *same_bytes_flags(same_bytes))  # fmt: skip
        assert code == 0, err
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert outs[0].read_bytes() != outs[2].read_bytes()


@pytest.mark.parametrize(
    "extra",
    [
        ["--init", "content"],
        ["--init", "style"],
        ["--optimizer", "adam"],
        ["--pooling", "max", "--no-normalize"],
        ["--precision", "fast", "--deterministic"],  # TF32 is CUDA's; the CPU runs float32
    ],
)
def test_other_choices_run(capsys, content_path, style_path, tmp_path, extra) -> None:
    out = tmp_path / "out.tif"
    code, err = run(capsys, "transfer", content_path, style_path, "-o", out, *FAST, *extra)
    assert code == 0, err
    record = json.loads(out.with_name(out.name + ".json").read_text())
    for flag, value in zip(extra[::2], extra[1::2], strict=False):
        assert record["options"][flag[2:].replace("-", "_")] == value
    if "--no-normalize" in extra:
        assert record["options"]["normalize"] is False
    assert record["options"]["deterministic"] is ("--deterministic" in extra)


def test_init_from_an_image_file_starts_there(content_path, style_path, tmp_path) -> None:
    from painterly import run_transfer

    start = tmp_path / "start.png"
    Image.new("RGB", (30, 20), (250, 10, 10)).save(start)
    result = run_transfer(content_path, style_path, size=64, iterations=1, seed=0,
                          init=str(start), optimizer="adam", learning_rate=1e-6)  # fmt: skip
    r, g, b = result.image.resize((1, 1)).getpixel((0, 0))
    assert r > 200 and g < 60 and b < 60


def _write(tmp_path: Path, name: str, make) -> Path:
    path = tmp_path / name
    make(path)
    return path


def _awkward_images(tmp_path: Path) -> dict[str, Path]:
    import numpy as np

    gradient = np.tile(np.linspace(0, 65535, 80, dtype=np.uint16), (70, 1))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    return {
        "grayscale": _write(tmp_path, "gray.png", lambda p: Image.new("L", (80, 70), 90).save(p)),
        "rgba": _write(tmp_path, "rgba.png",
                       lambda p: Image.new("RGBA", (80, 70), (0, 0, 255, 0)).save(p)),
        "palette": _write(tmp_path, "pal.gif",
                          lambda p: Image.new("RGB", (80, 70), (20, 200, 20)).convert("P").save(p)),
        "16-bit": _write(tmp_path, "deep.png",
                         lambda p: Image.fromarray(gradient).save(p)),
        "cmyk": _write(tmp_path, "cmyk.jpg",
                       lambda p: Image.new("CMYK", (80, 70), (0, 200, 200, 0)).save(p)),
        "exif-rotated": _write(tmp_path, "rotated.jpg",
                               lambda p: Image.new("RGB", (80, 40), "white").save(p, exif=exif)),
    }  # fmt: skip


def test_awkward_but_valid_images_work(capsys, style_path, tmp_path) -> None:
    for kind, path in _awkward_images(tmp_path).items():
        out = tmp_path / f"out-{kind}.png"
        code, err = run(capsys, "transfer", path, style_path, "-o", out, "--size", "32",
                        "--iterations", "1", "--quiet")  # fmt: skip
        assert code == 0, (kind, err)
        size = Image.open(out).size
        assert size == ((16, 32) if kind == "exif-rotated" else (32, 28)), kind


def _bad_inputs(tmp_path: Path, content: Path, style: Path) -> dict[str, list[object]]:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    truncated = tmp_path / "cut.jpg"
    Image.new("RGB", (200, 200), "red").save(truncated)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (12, 9), "blue").save(tiny)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(bomb)
    out = tmp_path / "out.png"
    return {
        "missing file": ["transfer", tmp_path / "nope.jpg", style, "-o", out],
        "text named .jpg": ["transfer", text, style, "-o", out],
        "truncated jpeg": ["transfer", content, truncated, "-o", out],
        "too small": ["transfer", tiny, style, "-o", out],
        "too small at size": ["transfer", content, style, "-o", out, "--size", "20"],
        "decompression bomb": ["transfer", content, bomb, "-o", out],
        "size zero": ["transfer", content, style, "-o", out, "--size", "0"],
        "size not a number": ["transfer", content, style, "-o", out, "--size", "big"],
        "negative ratio": ["transfer", content, style, "-o", out, "--ratio", "-1"],
        "nan ratio": ["transfer", content, style, "-o", out, "--ratio", "nan"],
        "zero iterations": ["transfer", content, style, "-o", out, "--iterations", "0"],
        "unknown layer": ["texture", style, "-o", out, "--style-layers", "conv1_1,conv9_9"],
        "unknown content layer": ["reconstruct", content, "-o", out, "--content-layer", "fc7"],
        "bad init": ["transfer", content, style, "-o", out, "--init", "sunshine"],
        "bad optimizer": ["transfer", content, style, "-o", out, "--optimizer", "sgd"],
        "bad device": ["transfer", content, style, "-o", out, "--device", "tpu"],
        "bad precision": ["transfer", content, style, "-o", out, "--precision", "half"],
        "negative seed": ["transfer", content, style, "-o", out, "--seed", "-3"],
        "negative save-every": ["transfer", content, style, "-o", out, "--save-every", "-1"],
        "missing weights": ["transfer", content, style, "-o", out, "--weights", tmp_path / "w.pth"],
        "output folder missing": ["transfer", content, style, "-o", tmp_path / "no/dir/out.png"],
        "output extension": ["transfer", content, style, "-o", tmp_path / "out.gif"],
        "output is a folder": ["transfer", content, style, "-o", tmp_path],
        "missing argument": ["transfer", content, "-o", out],
        "unknown option": ["transfer", content, style, "-o", out, "--colour", "red"],
    }


def test_bad_input_is_one_line_exit_2_and_no_output(capsys, content_path, style_path, tmp_path):
    for case, argv in _bad_inputs(tmp_path, content_path, style_path).items():
        # Fast settings first, so that a case's own flag (given later) wins.
        code, err = run(capsys, argv[0], "--iterations", "2", "--size", "32", "--quiet", *argv[1:])
        lines = err.strip().splitlines()
        assert code == 2, (case, err)
        assert len(lines) == 1 and lines[0].startswith("painterly: error: "), (case, err)
        assert "Traceback" not in err
        assert not (tmp_path / "out.png").exists(), case
    assert "at least 16 px" in run(capsys, *_bad_inputs(tmp_path, content_path, style_path)
                                   ["too small"])[1]  # fmt: skip


def test_output_on_a_read_only_filesystem(capsys, content_path, style_path) -> None:
    if not os.path.isdir("/sys"):
        pytest.skip("no /sys here")
    code, err = run(capsys, "transfer", content_path, style_path, "-o", "/sys/painterly.png")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "/sys" in err


def test_unwritable_output_folder(capsys, content_path, style_path, tmp_path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        code, err = run(capsys, "transfer", content_path, style_path, "-o", folder / "o.png")
        assert code == 2 and len(err.strip().splitlines()) == 1
    finally:
        folder.chmod(0o700)


def _cli(*args: object, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "painterly", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )  # fmt: skip


def test_real_process_exit_code_and_message(tmp_path, style_path) -> None:
    proc = _cli("transfer", tmp_path / "missing.png", style_path, "-o", tmp_path / "o.png")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.decode().splitlines() == [
        f"painterly: error: content image '{tmp_path / 'missing.png'}' does not exist"
    ]


def test_ctrl_c_stops_cleanly_and_saves(tmp_path, content_path, style_path) -> None:
    out = tmp_path / "interrupted.png"
    proc = _cli("transfer", content_path, style_path, "-o", out, "--size", "64",
                "--iterations", "100000", "--seed", "1")  # fmt: skip
    err = ctrl_c_once(proc, b", it ")  # once the progress bar shows iterations
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted after" in err
    assert Image.open(out).size == (64, 43)
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["stop_reason"] == "interrupted" and record["iterations"] >= 1


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")
def test_size_that_will_not_fit_is_refused_naming_one_that_does(tmp_path, content_path) -> None:
    """Under a 6 GiB address-space limit (`ulimit -v`) a 2048 px run (8.7 GiB measured) cannot
    fit untiled (--tile 0; by default it would run in tiles, test_tiling): refused up front,
    naming the largest size that would, instead of dying halfway."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 * 1024**3, resource.RLIM_INFINITY))

    out = tmp_path / "big.png"
    # --device cpu: the limit is on the process's address space, which a GPU's memory is not
    proc = _cli("transfer", content_path, content_path, "-o", out, "--size", "2048",
                "--device", "cpu", "--tile", "0", preexec_fn=limit)  # fmt: skip
    _, err = proc.communicate(timeout=120)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert "GiB is free" in lines[0] and "--tile 0" in lines[0] and not out.exists()
    fits = int(lines[0].rsplit("--size ", 1)[1])
    assert 1024 < fits < 2048  # 1024 px measured 2.7 GiB at its peak
