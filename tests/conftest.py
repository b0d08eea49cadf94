"""Shared fixtures: real weights, small real images (never mocks of either)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.network import resolve_device

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def _photo_like(width: int, height: int, seed: int) -> Image.Image:
    """A smooth random image with edges: cheap stand-in content that still excites VGG."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(image).astype(np.int16)
    pixels[height // 3 : height // 2, :, :] += 60
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _stripes(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 6.28)
    r = 127 + 120 * np.sin(x / 3.0 + phase)
    g = 127 + 120 * np.sin((x + y) / 5.0)
    b = 127 + 120 * np.cos(y / 4.0 + phase)
    return Image.fromarray(np.stack([r, g, b], -1).astype(np.uint8))


@pytest.fixture
def content_path(tmp_path: Path) -> Path:
    path = tmp_path / "content.png"
    _photo_like(96, 64, seed=1).save(path)
    return path


@pytest.fixture
def style_path(tmp_path: Path) -> Path:
    path = tmp_path / "style.jpg"
    _stripes(80, 80, seed=2).save(path, quality=95)
    return path


@pytest.fixture(scope="session")
def shared_images() -> Path:
    if not SHARED_IMAGES.is_dir():
        pytest.skip("../shared/images is not present")
    return SHARED_IMAGES


@pytest.fixture
def same_bytes() -> dict[str, bool]:
    """Options under which the same seed must give the same bytes, on the device tests run on.

    Promised on the CPU as it is, and on CUDA only with deterministic=True (docs/gpu.md): a test
    of the promise takes these options, so on a CUDA machine it checks the deterministic mode.
    MPS promises nothing.
    """
    device = resolve_device("auto")
    if device.type not in ("cpu", "cuda"):
        pytest.skip(f"byte-identical output is not promised on {device.type}")
    return {"deterministic": device.type == "cuda"}


def same_bytes_flags(options: dict[str, bool]) -> list[str]:
    """`same_bytes` as CLI flags."""
    return ["--deterministic"] if options["deterministic"] else []


def ctrl_c_once(proc: subprocess.Popen, marker: bytes, wait: float = 120) -> str:
    """Read a running CLI's stderr until `marker` shows (or `wait` s pass), press Ctrl-C, and
    return all it wrote to stderr once it has exited."""
    deadline, seen = time.time() + wait, b""
    while time.time() < deadline and marker not in seen:
        seen += os.read(proc.stderr.fileno(), 4096)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    return (seen + rest).decode()
