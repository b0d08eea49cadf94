"""Very large images: tiled evaluation's exactness, and peak memory and wall time by size.

Prints Markdown tables with the date and machine (docs/large.md holds a copy).

    python benchmarks/bench_large.py --part exact                  # 1. tiled vs untiled, 256/512
    python benchmarks/bench_large.py --part memory --first 2       # 2. 2048/4096/8192, the first
                                                                   #    2 iterations of each scale
    python benchmarks/bench_large.py --part memory --sizes 4096    # the full 4096 px run (quiet
                                                                   #    machine: up to 90 min)

Each size of part 2 runs in its own process with the defaults (Tübingen + The Starry Night from
../shared/images, seed 0): its peak RSS (getrusage's high-water mark) and wall time, next to
memory.py's estimate for the tile size the run chose. `--first N` caps every scale at N
iterations (labelled so in the table): the peak is reached in the first iterations of the last
scale, and the seconds per iteration of each scale give the time the full schedule would take
(every scale run to its cap, an upper bound: scales stop earlier once converged).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from painterly.images import image_to_tensor, open_image, resize_long_side, resize_to
from painterly.losses import ContentTarget, Objective, StyleTarget, equal_weights
from painterly.memory import estimate_peak_bytes, estimate_tiled_peak_bytes
from painterly.network import build_network
from painterly.optimize import lbfgs_history, network_evaluator
from painterly.options import PAPER_CONTENT_LAYER, PAPER_STYLE_LAYERS, Options, resolved_scales
from painterly.synthesis import iteration_caps, scale_sides
from painterly.tiling import tiled_evaluator

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENT, STYLE = "tubingen.jpg", "starry_night.jpg"
LAYERS = [PAPER_CONTENT_LAYER, *PAPER_STYLE_LAYERS]


def machine() -> str:
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")  # fmt: skip


def header(title: str) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n**{title}** ({now}; {machine()})\n", flush=True)


# --------------------------------------------------------------------------------------------
# 1. exactness


def exactness(sizes: list[int], tile: int) -> None:
    """Loss terms and gradient, tiled vs untiled, at the full objective (content, style, TV)."""
    header(f"Tiled ({tile} px tiles) vs untiled evaluation")
    print("| size (px) | tiles | total | content | style | tv | gradient (max abs) | "
          "untiled (s) | tiled (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    network, convention, _ = build_network(LAYERS)
    for size in sizes:
        content = resize_long_side(open_image(IMAGES / CONTENT), size)
        style = resize_to(open_image(IMAGES / STYLE), content.size)
        c = convention.to_network(image_to_tensor(content))
        s = convention.to_network(image_to_tensor(style))
        with torch.no_grad():
            objective = Objective(
                ContentTarget(network(c, [PAPER_CONTENT_LAYER])),
                StyleTarget.from_features(network(s, PAPER_STYLE_LAYERS),
                                          equal_weights(PAPER_STYLE_LAYERS)),
                alpha=1e-3, tv_weight=10.0, tv_unit=(1 / 58, 1 / 57, 1 / 58),
            )  # fmt: skip
        image = c + 20 * torch.randn(c.shape, generator=torch.Generator().manual_seed(0))
        results = []
        for evaluator in (network_evaluator(network), tiled_evaluator(network, tile)):
            x = image.clone().requires_grad_(True)
            start = time.perf_counter()
            terms = evaluator(objective, x)
            terms.total.backward()
            results.append((terms.detached(), x.grad, time.perf_counter() - start))
        (full, full_grad, full_s), (tiled, tiled_grad, tiled_s) = results
        count = -(-c.shape[-2] // tile) * -(-c.shape[-1] // tile)
        diffs = [_relative(getattr(tiled, n), getattr(full, n))
                 for n in ("total", "content", "style", "tv")]  # fmt: skip
        grad = _relative(tiled_grad, full_grad)
        print(f"| {content.size[0]}x{content.size[1]} | {count} | "
              + " | ".join(f"{d:.1e}" for d in diffs)
              + f" | {grad:.1e} | {full_s:.2f} | {tiled_s:.2f} |", flush=True)  # fmt: skip


def _relative(a, b) -> float:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


# --------------------------------------------------------------------------------------------
# 2. memory and time


def one_run(size: int, first: int | None) -> dict:
    """One transfer with the defaults at `size` (in this process): its numbers as a dict."""
    from painterly import run_transfer, synthesis

    if first is not None:  # the first iterations of every scale
        synthesis.iteration_caps = lambda iterations, scales: [first] * scales
    start = time.perf_counter()
    result = run_transfer(IMAGES / CONTENT, IMAGES / STYLE, size=size, seed=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    record = result.record
    return {
        "size": list(result.image.size),
        "tile": record.get("tile"),
        "seconds": seconds,
        "setup": record["timings"]["setup_seconds"],
        "peak": peak,
        "scales": [
            {"size": s["size"], "iterations": s["iterations"], "seconds": s["seconds"]}
            for s in record["scales"]
        ],
    }


def memory(sizes: list[int], first: int | None) -> None:
    mode = f"the first {first} iterations of every scale" if first else "full runs"
    header(f"Peak memory and wall time with the defaults ({mode})")
    print("| size (px) | tile | scales: iterations @ s/iteration | wall (min) | full schedule "
          "(min, upper bound) | peak RSS (GiB) | + L-BFGS history to come (GiB) | "
          "estimate (GiB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        argv = [sys.executable, __file__, "--one", str(size)]
        if first:
            argv += ["--first", str(first)]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            print(f"| {size} | failed: {last} | | | | | | |", flush=True)
            continue
        stats = json.loads(done.stdout.strip().splitlines()[-1])
        width, height = stats["size"]
        tile, iterations = stats["tile"], Options().iterations
        estimate = (estimate_tiled_peak_bytes(width, height, LAYERS, tile, iterations=iterations,
                                              content_layer=PAPER_CONTENT_LAYER)
                    if tile else estimate_peak_bytes(width, height, LAYERS,
                                                     iterations=iterations))  # fmt: skip
        caps = iteration_caps(iterations, len(scale_sides(size, resolved_scales(size, None))))
        per = [s["seconds"] / max(1, s["iterations"]) for s in stats["scales"]]
        projected = stats["setup"] + sum(c * p for c, p in zip(caps, per, strict=False))
        shown = ", ".join(f"{s['size'][0]}: {s['iterations']} @ {p:.1f}"
                          for s, p in zip(stats["scales"], per, strict=True))  # fmt: skip
        # L-BFGS fills its memory one step per iteration: a run cut short has not yet
        # allocated what the full schedule's last scale keeps (2 image-sized vectors a step)
        numel = 3 * width * height
        steps = min(lbfgs_history(numel), caps[-1])
        to_come = 2 * 4 * numel * max(0, steps - (first - 1)) if first else 0
        print(f"| {width}x{height} | {tile or 'none'} | {shown} | {stats['seconds'] / 60:.1f} | "
              f"{projected / 60:.0f} | {stats['peak'] / 1024**3:.2f} | "
              f"{to_come / 1024**3:.2f} | {estimate / 1024**3:.2f} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("exact", "memory", "all"), default="all")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--tile", type=int, default=128, help="tile size for --part exact")
    parser.add_argument("--first", type=int, default=None,
                        help="cap every scale at this many iterations (part memory)")  # fmt: skip
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one, args.first)))
        return
    if args.part in ("exact", "all"):
        exactness(args.sizes or [256, 512], args.tile)
    if args.part in ("memory", "all"):
        memory(args.sizes or [2048, 4096, 8192], args.first)


if __name__ == "__main__":
    main()
