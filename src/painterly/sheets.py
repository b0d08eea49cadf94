"""Drawing helpers shared by every sheet of images: `grid`'s contact sheet, `paper`'s figures.

Only layout: images in, an image out. No run, no file is touched here.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def fit(image: Image.Image, box: int) -> Image.Image:
    """`image` scaled (up or down) so its long side is `box` px, in RGB."""
    scale = box / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans from matplotlib (it has α, β and ü); Pillow's own font if that fails."""
    try:
        import matplotlib

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        return ImageFont.truetype(str(Path(matplotlib.get_data_path(), "fonts", "ttf", name)), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def wrap(text: str, font: Font, width: int) -> list[str]:
    """`text` broken into lines at most `width` px wide (at spaces; '\\n' starts a new line)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}".strip()
            if line and font.getlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def row_heights(rows: list[list[Image.Image | None]], empty: int) -> list[int]:
    """Each row as tall as its tallest image (`empty` px for a row of none)."""
    return [max([image.height for image in row if image is not None] or [empty]) for row in rows]
