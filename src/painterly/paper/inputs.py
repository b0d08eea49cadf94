"""Finding a figure's inputs in a folder by file name, and checking the output folder.

Everything is checked before the first run: a missing or broken input fails in seconds, not
hours into `all`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import InputError
from ..images import IMAGE_SUFFIXES, open_image
from .figures import FIGURES, Figure

# Where several files have one name (tubingen.png, tubingen.gif), these formats come first, in
# name order, so a folder picks the file it picked before paper read every format `images`
# reads (.jfif, .gif, .ppm and .pgm came with it).
_FIRST_CHOICE = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})


def _normal(stem: str) -> str:
    return stem.lower().replace("-", "_").replace(" ", "_")


def _show(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    return f"'{text}'" if text.isprintable() else ascii(text)


def list_images(directory: str | os.PathLike) -> dict[str, Path]:
    """The image files of `directory` by normalized stem; a clear error if it is no folder.

    Only the folder itself, not its subfolders (`images.find_images` walks them): a figure's
    outputs under an OUTDIR inside it (fig3/starry_night.png) must never be taken for inputs.
    """
    folder = Path(directory)
    if not folder.exists():
        raise InputError(f"images folder {_show(folder)} does not exist")
    if not folder.is_dir():
        raise InputError(f"images folder {_show(folder)} is not a folder")
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(f"images folder {_show(folder)} cannot be read: {exc.strerror}") from None
    found: dict[str, Path] = {}
    for path in sorted(entries, key=lambda p: p.suffix.lower() not in _FIRST_CHOICE):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.setdefault(_normal(path.stem), path)
    return found


@dataclass
class Found:
    """Where each of a figure's inputs is, which stand in, and which runs cannot be made."""

    paths: dict[str, Path]
    notes: list[str]  # stand-ins and skipped runs, said on the sheet and on stderr
    skipped: dict[str, str]  # run name -> the missing files
    stood_in: set[str] = field(default_factory=set)  # inputs found under a stand-in's name
    images: dict[str, Image.Image] = field(default_factory=dict, repr=False)  # once loaded

    def load(self, cache: dict[Path, Image.Image] | None = None) -> Found:
        """Decode every input now, so a broken file fails before any run, not hours in."""
        cache = {} if cache is None else cache
        for key, path in self.paths.items():
            if path not in cache:
                cache[path] = open_image(path, role=f"{key} image")
            self.images[key] = cache[path]
        return self


def _needs(figure: Figure) -> str:
    parts = []
    for item in figure.inputs:
        names = " or ".join(f"{n}.*" for n in item.names)
        more = "".join(f"; else {n}.* stands in" for n in item.stand_ins)
        more += "; optional" if item.key in figure.optional else ""
        parts.append(f"{names} ({item.what}{more})")
    return f"{figure.name} needs: " + "; ".join(parts)


def find_inputs(
    figure: Figure, available: Mapping[str, Path], directory: str | os.PathLike
) -> Found:
    """Match the figure's inputs to files; raise InputError listing what it needs if it cannot run.

    A missing optional input skips the runs that need it; a missing required one, or no run
    left at all, is an error that names the missing files and everything the figure reads.
    """
    paths: dict[str, Path] = {}
    notes: list[str] = []
    missing: list[str] = []
    stood_in: set[str] = set()
    for item in figure.inputs:
        name = next((n for n in item.names if _normal(n) in available), None)
        if name is None:
            stand_in = next((n for n in item.stand_ins if _normal(n) in available), None)
            if stand_in is not None:
                name = stand_in
                stood_in.add(item.key)
                notes.append(
                    f"{item.label} ({'/'.join(item.names)}.*) not found: "
                    f"{available[_normal(name)].name} stands in"
                )
        if name is not None:
            paths[item.key] = available[_normal(name)]
        elif item.key not in figure.optional:
            missing.append(" or ".join(f"{n}.*" for n in item.names + item.stand_ins))
    skipped = {
        run.name: ", ".join(f"{figure.input(k).names[0]}.*" for k in run.inputs if k not in paths)
        for run in figure.runs
        if any(k not in paths for k in run.inputs)
    }
    if missing or len(skipped) == len(figure.runs):
        what = f"{', '.join(missing)} not found" if missing else "none of the optional inputs found"
        raise InputError(
            f"{figure.name}: {what} in {_show(directory)}; {_needs(figure)} "
            f"(any of {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    for run in figure.runs:
        if run.name in skipped:
            notes.append(f"skipped {run.label.strip()}: {skipped[run.name]} not found")
    return Found(paths, notes, skipped, stood_in)


def check_figures(names: Sequence[str], images: str | os.PathLike) -> dict[str, Found]:
    """Find every named figure's inputs up front, so `all` fails before hours of work, not after."""
    available = list_images(images)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise InputError(f"unknown figure {unknown[0]!r}; figures are {', '.join(FIGURES)} and all")
    return {name: find_inputs(FIGURES[name], available, images) for name in names}
