"""A figure's contact sheet: its inputs on the first row, then its runs at their places, every
tile captioned, under a header that says what to look for and with which settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image, ImageDraw

from ..options import PAPER_CONTENT_LAYER, PAPER_STYLE_LAYERS
from ..sheets import Font, fit, font, row_heights, wrap
from .cache import Rendered
from .figures import Figure, Input, Run, layers_label
from .inputs import Found
from .settings import Settings, ours_ratio, ratio_label, sci

MARGIN, GAP, LINE, TITLE_LINE, LABEL_WIDTH = 16, 12, 17, 26, 150


@dataclass(frozen=True)
class Rendering:
    """A figure's finished images and what they came from: what its sheet or plot shows."""

    figure: Figure
    found: Found
    sources: Mapping[str, Image.Image]  # the input images, by the figure's input names
    results: Mapping[str, Rendered]  # by run name
    settings: Settings
    seconds: float  # what the images cost (kept ones included)


def image_count(images: int) -> str:
    return f"{images} image" + ("" if images == 1 else "s")


def settings_line(figure: Figure, settings: Settings, seconds: float) -> str:
    kinds = {run.kind for run in figure.runs}
    layers = []
    if kinds & {"transfer", "reconstruct"}:
        layers.append(f"content {PAPER_CONTENT_LAYER}")
    if kinds & {"transfer", "texture"}:
        layers.append(f"style {layers_label(PAPER_STYLE_LAYERS)} (w_l = 1/5)")
    return (
        f"{settings.size} px, {settings.iterations} L-BFGS iterations, seed {settings.seed}; "
        f"normalized VGG-19, average pooling, white-noise start, {', '.join(layers)}, "
        f"unless a tile says otherwise. Runs took {seconds:.0f} s."
    )


@dataclass
class _Tile:
    image: Image.Image | None  # None: a skipped run (a grey box)
    caption: str


@dataclass
class _Fonts:
    caption: Font
    label: Font
    title: Font
    text: Font

    @classmethod
    def load(cls) -> _Fonts:
        return cls(font(13), font(14, bold=True), font(20, bold=True), font(13))


def _input_tile(item: Input, found: Found, sources: Mapping[str, Image.Image]) -> _Tile:
    if item.key not in sources:
        return _Tile(None, f"{item.label}\n(not found)")
    name = found.paths[item.key].name
    if item.key in found.stood_in:
        return _Tile(sources[item.key], f"{name}\n(stands in for {item.label})")
    return _Tile(sources[item.key], f"{item.label}\n({name})")


def _run_tile(run: Run, found: Found, results: Mapping[str, Rendered], size: int) -> _Tile:
    caption = run.label.strip()
    if run.paper_ratio is not None:
        caption += f"\n{ratio_label(run.paper_ratio, size)}"
    if run.name not in results:
        return _Tile(None, f"{caption}\nskipped: {found.skipped[run.name]} not found")
    if results[run.name].stop_reason == "diverged":
        caption += "\n(diverged: last finite image)"
    return _Tile(results[run.name].image, caption)


def _rows(
    figure: Figure,
    found: Found,
    sources: Mapping[str, Image.Image],
    results: Mapping[str, Rendered],
    size: int,
) -> list[tuple[str, list[_Tile | None]]]:
    """(label, tiles) per row of the sheet: the inputs, then the runs' grid."""
    n_rows = max(run.at[0] for run in figure.runs) + 1
    grid: list[list[_Tile | None]] = [
        [None] * (max(r.at[1] for r in figure.runs) + 1) for _ in range(n_rows)
    ]
    for run in figure.runs:
        grid[run.at[0]][run.at[1]] = _run_tile(run, found, results, size)
    rows: list[tuple[str, list[_Tile | None]]] = [
        ("inputs", [_input_tile(item, found, sources) for item in figure.inputs])
    ]
    rows += [(figure.rows[r] if r < len(figure.rows) else "", grid[r]) for r in range(n_rows)]
    return rows


def tile_sheet(rendering: Rendering) -> Image.Image:
    """Inputs on the first row, then the runs at their (row, col), every tile captioned."""
    layout = _layout(rendering)
    sheet = Image.new("RGB", (layout.width, layout.height), "white")
    draw = ImageDraw.Draw(sheet)
    y = _draw_header(draw, layout)
    _draw_rows(sheet, draw, layout, rendering.figure.columns, rendering.settings.size, y)
    return sheet


@dataclass
class _Layout:
    """Everything on a sheet, measured before anything is drawn (the page's size needs it)."""

    box: int  # the side of a tile's square
    fonts: _Fonts
    rows: list[tuple[str, list[_Tile | None]]]
    images: list[list[Image.Image | None]]  # each tile's image fitted to the box
    heights: list[int]  # each row's images
    captions: list[list[list[str]]]  # each tile's caption, wrapped to the box
    caption_heights: list[int]
    title_lines: list[str]
    body_lines: list[str]
    column_height: int  # Figure 4's column heads, else 0
    width: int

    @property
    def height(self) -> int:
        header = len(self.title_lines) * TITLE_LINE + len(self.body_lines) * LINE + GAP
        rows = sum(self.heights) + sum(self.caption_heights) + GAP * len(self.rows)
        return MARGIN + header + rows + self.column_height + MARGIN


def _layout(rendering: Rendering) -> _Layout:
    figure, found, settings = rendering.figure, rendering.found, rendering.settings
    box = max(settings.size, 224)
    fonts = _Fonts.load()
    rows = _rows(figure, found, rendering.sources, rendering.results, settings.size)
    n_cols = max(len(tiles) for _, tiles in rows)
    width = MARGIN * 2 + LABEL_WIDTH + n_cols * box + (n_cols - 1) * GAP
    images = [[fit(t.image, box) if t and t.image else None for t in tiles] for _, tiles in rows]
    captions = [
        [wrap(t.caption, fonts.caption, box) if t else [] for t in tiles] for _, tiles in rows
    ]
    text_width = width - 2 * MARGIN
    body = [figure.look_for, settings_line(figure, settings, rendering.seconds), *found.notes]
    return _Layout(
        box=box,
        fonts=fonts,
        rows=rows,
        images=images,
        heights=row_heights(images, round(box * 0.75)),
        captions=captions,
        caption_heights=[max(len(c) for c in row) * LINE + 6 for row in captions],
        title_lines=wrap(figure.title, fonts.title, text_width),
        body_lines=[wrapped for text in body for wrapped in wrap(text, fonts.text, text_width)],
        column_height=LINE * 2 + 4 if figure.columns else 0,
        width=width,
    )


def _draw_header(draw: ImageDraw.ImageDraw, layout: _Layout) -> int:
    """The title, what to look for, the settings and the notes; returns where the rows start."""
    y = MARGIN
    for text in layout.title_lines:
        draw.text((MARGIN, y), text, fill="black", font=layout.fonts.title)
        y += TITLE_LINE
    for text in layout.body_lines:
        draw.text((MARGIN, y), text, fill=(60, 60, 60), font=layout.fonts.text)
        y += LINE
    return y + GAP


def _draw_rows(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    layout: _Layout,
    columns: tuple[float, ...],
    size: int,
    y: int,
) -> None:
    """Each row from `y` down: its label, then its tiles (Figure 4's column heads after inputs)."""
    box = layout.box
    for index, ((label, tiles), images) in enumerate(zip(layout.rows, layout.images, strict=True)):
        if index == 1 and columns:
            _column_heads(draw, columns, y, box, size, layout.fonts)
            y += layout.column_height
        height = layout.heights[index]
        _row_label(draw, label, y, height, layout.fonts)
        for col, tile in enumerate(tiles):
            if tile is not None:
                place = (MARGIN + LABEL_WIDTH + col * (box + GAP), y, box, height)
                caption = layout.captions[index][col]
                _tile(sheet, draw, images[col], caption, place, layout.fonts.caption)
        y += height + layout.caption_heights[index] + GAP


def _column_heads(
    draw: ImageDraw.ImageDraw, ratios: tuple[float, ...], y: int, box: int, size: int, fonts: _Fonts
) -> None:
    """Figure 4's column heads: the paper's alpha/beta and ours."""
    for col, ratio in enumerate(ratios):
        x = MARGIN + LABEL_WIDTH + col * (box + GAP)
        draw.text((x, y), f"α/β = {sci(ratio)} (paper)", fill="black", font=fonts.label)
        draw.text(
            (x, y + LINE),
            f"= {sci(ours_ratio(ratio, size))} (ours)",
            fill=(60, 60, 60),
            font=fonts.caption,
        )


def _row_label(draw: ImageDraw.ImageDraw, label: str, y: int, height: int, fonts: _Fonts) -> None:
    label_lines = wrap(label, fonts.label, LABEL_WIDTH - GAP)
    label_y = y + (height - len(label_lines) * LINE) // 2
    for k, text in enumerate(label_lines):
        draw.text((MARGIN, label_y + k * LINE), text, fill="black", font=fonts.label)


def _tile(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    image: Image.Image | None,
    caption: list[str],
    place: tuple[int, int, int, int],
    caption_font: Font,
) -> None:
    """One tile: the image centred in its box (a grey box for a skipped run), its caption under."""
    x, y, box, height = place
    if image is None:
        draw.rectangle((x, y, x + box - 1, y + height - 1), fill=(225, 225, 225))
    else:
        sheet.paste(image, (x + (box - image.width) // 2, y))
    for k, text in enumerate(caption):
        draw.text((x, y + height + 3 + k * LINE), text, fill="black", font=caption_font)
