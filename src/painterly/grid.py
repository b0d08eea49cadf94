"""Every content in every style, and a contact sheet of the lot.

Each style's Gram targets are computed once (`prepare_style`) and reused for every content;
outputs go to `OUTDIR/CONTENT-STYLE.png` with their JSON records beside them, and the contact
sheet to `OUTDIR/contact-sheet.png`: the styles along the top, the contents down the left, each
result where its row and column meet.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from .api import ImageSource, Result, prepare_style, run_transfer
from .errors import InputError
from .images import OUTPUT_FORMATS, open_image, save_image
from .optimize import Cancel
from .options import Options
from .sheets import fit, row_heights

SHEET_NAME = "contact-sheet.png"
CELL = 256  # longest side of a contact sheet cell, px
GAP = 8
LABEL = 18  # height of the name strip under the header images


@dataclass
class GridResult:
    outputs: dict[tuple[int, int], pathlib.Path]  # (content index, style index) -> image
    sheet: pathlib.Path | None  # None when the grid was cancelled before its end
    records: dict[tuple[int, int], dict] = field(default_factory=dict, repr=False)

    @property
    def interrupted(self) -> bool:
        return self.sheet is None


def run_grid(
    contents: Sequence[ImageSource],
    styles: Sequence[ImageSource],
    output_dir: str | os.PathLike[str],
    options: Options | None = None,
    *,
    output_format: str = "png",
    report: Callable[[str], None] | None = None,
    cancel: Cancel | None = None,
    **values: object,
) -> GridResult:
    """Paint every content in every style into `output_dir`, and draw a contact sheet.

    `report` gets a line per finished image. With `preserve_color`, each style is matched to
    each content, so its targets are made per pair instead of once. `cancel` stops the grid:
    the images finished so far are kept, the one in progress is not written, nor the sheet.
    """
    options = (options or Options()).with_values(**values).validated()
    if options.mask is not None or options.style_blend is not None:
        raise InputError("{mask} and {style_blend} are for one transfer, not for a grid")
    if not contents or not styles:
        raise InputError("a grid needs at least one content image and one style image")
    suffix = "." + output_format.lower().lstrip(".")
    if suffix not in OUTPUT_FORMATS:
        raise InputError(
            f"{{output_format}} must be one of {', '.join(f[1:] for f in OUTPUT_FORMATS)}"
        )
    out = pathlib.Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} is a file, not a folder")
    # Open everything first: a bad file fails now, not after an hour of painting.
    content_images = [open_image(c, role="content image") for c in contents]
    style_images = [open_image(s, role="style image") for s in styles]
    out.mkdir(parents=True, exist_ok=True)
    content_names = _unique_names(contents)
    style_names = _unique_names(styles)

    outputs: dict[tuple[int, int], pathlib.Path] = {}
    records: dict[tuple[int, int], dict] = {}
    done, total = 0, len(contents) * len(styles)
    for s, style in enumerate(style_images):
        # Prepared once per style and dropped after its column is done.
        target = prepare_style(style, options) if options.preserve_color == "none" else style
        for c, content in enumerate(content_images):
            result: Result = run_transfer(content, target, options, cancel=cancel)
            if result.stop_reason == "interrupted":
                return GridResult(outputs, None, records)
            path = out / f"{content_names[c]}-{style_names[s]}{suffix}"
            cell = {"content": _label(contents[c]), "style": _label(styles[s])}
            result.save(path, grid=cell)
            outputs[(c, s)] = path
            records[(c, s)] = record = {**result.record, "grid": cell}
            done += 1
            if report is not None:
                seconds = record["timings"]["optimization_seconds"]
                report(f"grid {done}/{total}: {path.name} ({seconds:.1f} s)")
        del target
    sheet = out / SHEET_NAME
    drawn = contact_sheet(content_images, style_images, outputs, content_names, style_names)
    save_image(drawn, sheet)
    return GridResult(outputs, sheet, records)


def contact_sheet(
    contents: Sequence[Image.Image],
    styles: Sequence[Image.Image],
    outputs: dict[tuple[int, int], pathlib.Path],
    content_names: Sequence[str],
    style_names: Sequence[str],
    cell: int = CELL,
) -> Image.Image:
    """Styles across the top, contents down the left, results in between (white background).

    Every image is scaled (up or down) to `cell` px on its long side; each row is as tall as its
    tallest image, plus a strip for the names.
    """
    rows: list[list[Image.Image | None]] = [[None, *(fit(s, cell) for s in styles)]]
    for c, content in enumerate(contents):
        row: list[Image.Image | None] = [fit(content, cell)]
        for s in range(len(styles)):
            if (c, s) in outputs:
                with Image.open(outputs[(c, s)]) as result:
                    row.append(fit(result, cell))
            else:
                row.append(None)
        rows.append(row)
    heights = row_heights(rows, cell)
    width = GAP + len(rows[0]) * (cell + GAP)
    height = GAP + sum(h + LABEL + GAP for h in heights)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    labels = [["", *style_names], *([name] + [""] * len(styles) for name in content_names)]
    y = GAP
    for row, row_height, row_labels in zip(rows, heights, labels, strict=True):
        for col, (image, label) in enumerate(zip(row, row_labels, strict=True)):
            x = GAP + col * (cell + GAP)
            if image is not None:
                sheet.paste(
                    image, (x + (cell - image.width) // 2, y + (row_height - image.height) // 2)
                )
            if label:
                draw.text((x + 2, y + row_height + 3), label[:40], fill="black", font=font)
        y += row_height + LABEL + GAP
    return sheet


def _label(source: object) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "image"


def _unique_names(sources: Sequence[object]) -> list[str]:
    """File stems, numbered where two are the same ('photo', 'photo-2'); 'image-N' for images."""
    names: list[str] = []
    for index, source in enumerate(sources, 1):
        if isinstance(source, (str, os.PathLike)):
            stem = pathlib.Path(source).stem or f"image-{index}"
        else:
            stem = f"image-{index}"
        name, n = stem, 1
        while name in names:
            n += 1
            name = f"{stem}-{n}"
        names.append(name)
    return names
