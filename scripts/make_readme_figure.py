"""Draw docs/images/demo.png, the picture at the top of the README.

`painterly demo`'s inputs (scikit-image's photo of Chelsea the cat, CC0, and the night-sky
painting painterly generates itself; both may be published) and the default transfer of them at
a small size, side by side with captions. Nothing else goes into the picture: never an image
from a folder of test or user images.

    PYTHONPATH=src python scripts/make_readme_figure.py [--size 256] [-o docs/images/demo.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from painterly import run_transfer
from painterly.demo_images import demo_content, demo_style
from painterly.images import save_image
from painterly.sheets import font, wrap

GAP = 8
LINE = 16  # px a caption line; captions wrap to their panel's width


def to_height(image: Image.Image, height: int) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    return image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)


def draw(panels: list[tuple[Image.Image, str]], height: int) -> Image.Image:
    """The panels in a row, each `height` px tall, its caption under it, on white."""
    fitted = [(to_height(image, height), caption) for image, caption in panels]
    width = GAP + sum(image.width + GAP for image, _ in fitted)
    text_font = font(13)
    lines = [wrap(caption, text_font, image.width - 4) for image, caption in fitted]
    caption_height = max(len(wrapped) for wrapped in lines) * LINE + 6
    sheet = Image.new("RGB", (width, GAP + height + caption_height), "white")
    pen = ImageDraw.Draw(sheet)
    x = GAP
    for (image, _), wrapped in zip(fitted, lines, strict=True):
        sheet.paste(image, (x, GAP))
        for k, line in enumerate(wrapped):
            pen.text((x + 2, GAP + height + 4 + k * LINE), line, fill="black", font=text_font)
        x += image.width + GAP
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="output's long side (default 256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/images/demo.png"))
    args = parser.parse_args()
    # The same inputs as `painterly demo` (cli: the painting at 512 px or the run's size).
    content, style = demo_content(), demo_style(size=max(args.size, 512))
    result = run_transfer(content, style, size=args.size, seed=args.seed)
    seconds = result.record["timings"]["optimization_seconds"]
    print(f"transfer at {args.size} px: {result.stop_reason} in {seconds:.1f} s")
    sheet = draw(
        [
            (content, "photo (scikit-image, CC0)"),
            (style, "painting by painterly"),
            (result.image, f"painterly demo --size {args.size}"),
        ],
        height=result.image.height,  # the output at its own pixels, the inputs scaled to it
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_image(sheet, args.output)
    print(f"wrote {args.output} ({sheet.width}x{sheet.height}, {args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
