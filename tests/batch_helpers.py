"""Small real images in nested folders for the batch tests (made with Pillow, 64 px)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from painterly.options import Options

# Tiny and few iterations: the tests check the batch machinery, not the pictures.
OPTIONS = Options(size=64, iterations=3, seed=0)


def picture(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A smooth gradient plus noise, so every image differs and is a real photo-like file."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    pixels = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def corrupt(path: Path) -> Path:
    """A file named like a JPEG that is not one (a truncated download, say)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return path


def content_tree(root: Path, names: list[str]) -> Path:
    for number, name in enumerate(names):
        picture(root / name, seed=number)
    return root


def read_manifest(path: Path) -> dict[str, dict]:
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    by_output = {entry["output"]: entry for entry in entries}
    assert len(by_output) == len(entries), "a pair is listed twice"
    return by_output
