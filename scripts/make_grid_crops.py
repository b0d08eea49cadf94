"""Draw docs/images/grid-before-after.png: the woven grid of short scales, before and after.

`painterly demo`'s inputs (publishable: scikit-image's CC0 cat and painterly's own painting), the
default transfer at 512 px twice with the same seed: once without the detail noise that each
upsampled scale now starts with (`synthesis.UPSAMPLED_DETAIL = 0`, the old behaviour), once with
it. A crop of each at 3x, nearest-neighbour, so single pixels show. docs/strength.md explains.

    PYTHONPATH=src python scripts/make_grid_crops.py [-o docs/images/grid-before-after.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from make_readme_figure import draw

from painterly import run_transfer, synthesis
from painterly.demo_images import demo_content, demo_style
from painterly.images import save_image

BOX = (140, 80, 268, 208)  # a 128 px square of the 512x341 output: an eye and the fur around it
ZOOM = 3


def crop(image, box=BOX, zoom=ZOOM):
    part = image.crop(box)
    return part.resize((part.width * zoom, part.height * zoom), resample=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("docs/images/grid-before-after.png")
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    content, style = demo_content(), demo_style(size=512)
    kept = synthesis.UPSAMPLED_DETAIL
    panels = []
    for detail, caption in ((0.0, "before: upsampled scales start smooth"),
                            (kept, f"after: + white noise, std {kept:g}")):  # fmt: skip
        synthesis.UPSAMPLED_DETAIL = detail
        result = run_transfer(content, style, size=512, seed=args.seed)
        panels.append((crop(result.image), f"{caption} (3x crop)"))
    synthesis.UPSAMPLED_DETAIL = kept
    sheet = draw(panels, height=panels[0][0].height)
    save_image(sheet, args.output)
    print(f"wrote {args.output} ({sheet.width}x{sheet.height}, {args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
