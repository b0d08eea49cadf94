"""Speed benchmark: iteration overhead, time to quality against pastiche, memory and wall time.

Prints Markdown tables (docs/benchmarks.md holds a copy with the date and machine it ran on).

    python benchmarks/bench_speed.py                    # everything (about 80 minutes on 2 cores)
    python benchmarks/bench_speed.py --part cost        # 1. iteration cost vs a bare pass
    python benchmarks/bench_speed.py --part quality     # 2. time to quality vs pastiche
    python benchmarks/bench_speed.py --part memory      # 3. peak memory and wall time
    python benchmarks/bench_speed.py --part gpu --device cuda   # 4. the GPU table (~3 min, H200)
    python benchmarks/bench_speed.py --part compare --device cuda|cpu  # CUDA vs CPU pictures,
    python benchmarks/bench_speed.py --part compare-report             # for gpu_check.sh

Quality is judged with the paper's objective, computed the same way for both outputs: content
loss at conv4_2 and style loss over conv1_1..conv5_1 (w_l = 1/5) on the normalized original
VGG-19 with average pooling, both outputs resized to the same evaluation size, each loss on its
own (no alpha/beta). Images come from ../shared/images (or --images) and are never copied into
the repo.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from painterly import run_transfer
from painterly.images import image_to_tensor, open_image, resize_long_side, resize_to
from painterly.losses import ContentTarget, Objective, StyleTarget, equal_weights
from painterly.memory import estimate_peak_bytes
from painterly.network import build_network, configure_device
from painterly.optimize import optimize
from painterly.options import PAPER_CONTENT_LAYER, PAPER_STYLE_LAYERS, Options

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
PAIRS = (("tubingen.jpg", "starry_night.jpg"), ("tubingen.jpg", "the_scream.jpg"))
LAYERS = [PAPER_CONTENT_LAYER, *PAPER_STYLE_LAYERS]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads"


def _targets(network, convention, content, style):
    with torch.no_grad():
        c = network(convention.to_network(image_to_tensor(content)), [PAPER_CONTENT_LAYER])
        s = network(convention.to_network(image_to_tensor(style)), PAPER_STYLE_LAYERS)
    return ContentTarget(c), StyleTarget.from_features(s, equal_weights(PAPER_STYLE_LAYERS))


def _paired_times(network, objective: Objective, x: torch.Tensor, bounds, seconds: float):
    """(ours, bare) seconds per pair: an iteration of `optimize`, then a bare pass beside it."""

    def bare() -> float:
        start = time.perf_counter()
        image = x.detach().clone().requires_grad_(True)
        network(image, ["conv5_1"])["conv5_1"].sum().backward()
        return time.perf_counter() - start

    first = bare()  # warm-up, and a first guess of how many pairs fit the time
    pairs = max(6, min(40, int(seconds / (2.2 * first))))
    ours_times: list[float] = []
    bare_times: list[float] = []
    mark = [time.perf_counter()]

    def pair(_iteration: int, _loss, _image) -> None:
        ours_times.append(time.perf_counter() - mark[0])
        bare_times.append(bare())
        mark[0] = time.perf_counter()

    optimize(network, objective, x, iterations=pairs + 1, bounds=bounds,
             loss_scale=x.shape[2] * x.shape[3], callback=pair)  # fmt: skip
    # the first iteration sets L-BFGS up (and its first pair follows the warm-up): left out
    return ours_times[1:], bare_times[1:]


def iteration_cost(sizes: list[int], seconds_per_size: float = 60.0) -> None:
    """Ours (an L-BFGS iteration of the full objective inside `optimize`, as a run does it)
    against a bare forward+backward of the same network on the same input, in pairs: after each
    of our iterations the callback times one bare pass, so both see the same state of a shared
    machine. The medians of the pairs count; the spread shows how noisy the machine was."""
    print("\n### 1. Iteration cost: ours vs a bare VGG-19 pass (to conv5_1)\n")
    print("| size (px) | pairs | bare fwd+bwd (s) | ours per iteration (s) | ratio (median) | "
          "ratio (middle half of pairs) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    network, convention, _ = build_network(LAYERS)
    photo, painting = open_image(IMAGES / "tubingen.jpg"), open_image(IMAGES / "starry_night.jpg")
    low = convention.to_network(torch.zeros(1, 3, 1, 1))
    high = convention.to_network(torch.ones(1, 3, 1, 1))
    bounds = (torch.minimum(low, high), torch.maximum(low, high))
    for size in sizes:
        content = resize_long_side(photo, size)
        content_target, style_target = _targets(
            network, convention, content, resize_long_side(painting, size)
        )
        objective = Objective(content_target, style_target, alpha=1e-8)
        x = convention.to_network(image_to_tensor(content))

        ours_times, bare_times = _paired_times(network, objective, x, bounds, seconds_per_size)
        ratios = sorted(o / b for o, b in zip(ours_times, bare_times, strict=True))
        quarter = len(ratios) // 4
        print(f"| {size} | {len(ratios)} | {statistics.median(bare_times):.3f} | "
              f"{statistics.median(ours_times):.3f} | {statistics.median(ratios):.3f} | "
              f"{ratios[quarter]:.3f} - {ratios[-1 - quarter]:.3f} |", flush=True)  # fmt: skip


def paper_losses(output, content, style, size: int) -> tuple[float, float]:
    """Content and style loss of `output` by the paper's definitions at evaluation `size`."""
    network, convention, _ = build_network(LAYERS)
    output = resize_long_side(output, size)
    content = resize_to(content, output.size)
    content_target, style_target = _targets(
        network, convention, content, resize_long_side(style, size)
    )
    terms = Objective(content_target, style_target)
    with torch.no_grad():
        features = network(convention.to_network(image_to_tensor(output)), LAYERS)
        loss = terms(features)
    return float(loss.content), float(loss.style)


def run_pastiche(
    content: Path, style: Path, size: int, steps: int, out: Path, device: str = "cpu"
) -> float:
    from pastiche.pastiche import PasticheArtist, save_image

    torch.manual_seed(0)
    start = time.perf_counter()
    artist = PasticheArtist(str(content), [str(style)], size=size, device=device)
    for _ in range(steps):
        artist.draw()
    save_image(artist.pastiche, str(out))
    _sync(device)
    return time.perf_counter() - start


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_to_quality(size: int, steps: int, out_dir: Path, reuse_pastiche: bool = False) -> None:
    print(f"\n### 2. Time to quality at {size} px: pastiche ({steps} L-BFGS steps) vs ours "
          "(defaults)\n")  # fmt: skip
    print("| content + style | method | wall time (s) | content loss | style loss | "
          "time vs pastiche |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for content_name, style_name in PAIRS:
        content_path, style_path = IMAGES / content_name, IMAGES / style_name
        content, style = open_image(content_path), open_image(style_path)
        tag = f"{Path(content_name).stem}+{Path(style_name).stem}"
        peer_out = out_dir / f"{tag}-pastiche.png"
        peer_record = peer_out.with_suffix(".json")
        if reuse_pastiche and peer_record.is_file():  # pastiche's image and time from a run before
            peer_s = json.loads(peer_record.read_text())["seconds"]
        else:
            peer_s = run_pastiche(content_path, style_path, size, steps, peer_out)
            peer_record.write_text(json.dumps({"seconds": peer_s, "steps": steps, "size": size}))
        start = time.perf_counter()
        result = run_transfer(content_path, style_path, size=size, seed=0)
        ours_s = time.perf_counter() - start
        result.image.save(out_dir / f"{tag}-painterly.png")
        (out_dir / f"{tag}-painterly.json").write_text(json.dumps(result.record, indent=1))
        peer_c, peer_st = paper_losses(open_image(peer_out), content, style, size)
        ours_c, ours_st = paper_losses(result.image, content, style, size)
        print(f"| {tag} | pastiche | {peer_s:.0f} | {peer_c:.4g} | {peer_st:.4g} | 1 |")
        verdict = "yes" if ours_c <= peer_c and ours_st <= peer_st else "NO"
        print(
            f"| {tag} | painterly | {ours_s:.0f} | {ours_c:.4g} | {ours_st:.4g} | "
            f"1/{peer_s / ours_s:.1f} (both losses at or below: {verdict}) |",
            flush=True,
        )


def memory_and_time(sizes: list[int]) -> None:
    """Each size in a fresh process, so ru_maxrss is that run's peak."""
    print("\n### 3. Peak memory and wall time (defaults, tubingen + starry_night)\n")
    print("| size (px) | wall time (s) | iterations per scale | peak RSS (GiB) | "
          "estimate (GiB) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for size in sizes:
        code = (
            "import json, resource, sys, time\n"
            "from painterly import run_transfer\n"
            "t = time.perf_counter()\n"
            f"r = run_transfer({str(IMAGES / 'tubingen.jpg')!r}, "
            f"{str(IMAGES / 'starry_night.jpg')!r}, size={size}, seed=0)\n"
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
            "print(json.dumps({'seconds': time.perf_counter() - t, 'peak': peak, "
            "'size': r.image.size, 'scales': [s['iterations'] for s in r.record['scales']]}))\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {size} | failed: {done.stderr.strip().splitlines()[-1]} | | | |")
            continue
        stats = json.loads(done.stdout.strip().splitlines()[-1])
        width, height = stats["size"]
        estimate = estimate_peak_bytes(width, height, LAYERS, iterations=Options().iterations)
        print(
            f"| {size} | {stats['seconds']:.0f} | {stats['scales']} | "
            f"{stats['peak'] / 1024**3:.2f} | {estimate / 1024**3:.2f} |",
            flush=True,
        )


PAPER_PROCEDURE = {"scales": 1, "init": "noise", "tolerance": 0.0, "iterations": 500,
                   "ratio": 1e-8}  # fmt: skip


def gpu_machine() -> str:
    props = torch.cuda.get_device_properties(0)
    return (f"{torch.cuda.get_device_name(0)} ({props.total_memory / 1024**3:.0f} GiB), "
            f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}")  # fmt: skip


def timed_run(device: str, out: Path | None = None, **values) -> dict:
    """One transfer of Tübingen + The Starry Night with its wall time and, on CUDA, the peaks of
    the caching allocator (counted from an emptied cache) next to the run's own estimate."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = run_transfer(IMAGES / "tubingen.jpg", IMAGES / "starry_night.jpg", device=device,
                          **{"seed": 0, **values})  # fmt: skip
    _sync(device)
    seconds = time.perf_counter() - start
    record = result.record
    width, height = result.image.size
    estimate = estimate_peak_bytes(width, height, LAYERS, record["options"]["optimizer"],
                                   record["options"]["iterations"], device)  # fmt: skip
    stats = {
        "size": [width, height],
        "options": values,
        "seconds": round(seconds, 2),
        "iterations_per_scale": [stage["iterations"] for stage in record["scales"]],
        "restarts": record["restarts"],
        "final_loss": record["final_loss"],
        "estimate_gib": round(estimate / 1024**3, 2),
    }
    if device == "cuda":
        stats["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)
        stats["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 1024**3, 2)
    if out is not None:
        result.image.save(out)
        stats["image"] = out.name
    return stats


def gpu_table(sizes: list[int], out_dir: Path, pastiche_steps: int) -> None:
    """4. The GPU table: defaults at each size in both precisions, the paper's procedure and
    pastiche, one process (a 128 px run first takes cuDNN's and cuBLAS's start-up)."""
    print(f"\nGPU: {gpu_machine()}")
    timed_run("cuda", size=128, iterations=2)
    print("\n### 4. GPU: wall time and peak memory (tubingen + starry_night, seed 0)\n")
    print("| run | size (px) | precision | wall time (s) | iterations per scale | restarts | "
          "content loss | style loss | peak allocated (GiB) | peak reserved (GiB) | "
          "estimate (GiB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    runs = [("defaults", size, {}) for size in sizes] + [("paper, 500 steps", 512, PAPER_PROCEDURE)]
    for name, size, values in runs:
        for precision in ("full", "fast"):
            tag = f"{'paper' if values else 'default'}-{size}-{precision}"
            stats = timed_run("cuda", out_dir / f"{tag}.png", size=size, precision=precision,
                              **values)  # fmt: skip
            (out_dir / f"{tag}.json").write_text(json.dumps(stats, indent=1))
            loss = stats["final_loss"]
            print(f"| {name} | {size} | {precision} | {stats['seconds']:.1f} | "
                  f"{stats['iterations_per_scale']} | {len(stats['restarts'])} | "
                  f"{loss['content']:.4g} | {loss['style']:.4g} | "
                  f"{stats['peak_allocated_gib']:.2f} | {stats['peak_reserved_gib']:.2f} | "
                  f"{stats['estimate_gib']:.2f} |", flush=True)  # fmt: skip
    if pastiche_steps:
        seconds = run_pastiche(IMAGES / "tubingen.jpg", IMAGES / "starry_night.jpg", 512,
                               pastiche_steps, out_dir / "pastiche-512.png", "cuda")  # fmt: skip
        print(f"\npastiche, {pastiche_steps} L-BFGS steps at 512 px on CUDA: {seconds:.1f} s")


def compare(device: str, sizes: list[int], out_dir: Path) -> None:
    """The default transfer at each size on one device, seed 0, into compare-DEVICE.json. On
    CUDA also: a second run in the same process (the same picture without --deterministic?) and
    two deterministic runs (the same bytes?)."""
    if device == "cuda":
        timed_run("cuda", size=128, iterations=2)  # cuDNN's and cuBLAS's start-up
    runs = {f"{size}": timed_run(device, out_dir / f"{device}-{size}.png", size=size)
            for size in sizes}  # fmt: skip
    if device == "cuda":
        runs["512-again"] = timed_run(device, out_dir / "cuda-512-again.png", size=512)
        for name in ("deterministic-a", "deterministic-b"):
            runs[f"512-{name}"] = timed_run(device, out_dir / f"cuda-512-{name}.png", size=512,
                                            deterministic=True)  # fmt: skip
    summary = {"device": device, "machine": gpu_machine() if device == "cuda" else machine(),
               "runs": runs}  # fmt: skip
    (out_dir / f"compare-{device}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1), flush=True)


def compare_report(out_dir: Path) -> None:
    """compare-cuda.json and compare-cpu.json side by side, with how far the pictures differ
    (mean absolute difference in 0-1 units; the paper's losses of each, taken on the CPU)."""
    import numpy as np

    def pixels(name: str) -> np.ndarray:
        return np.asarray(open_image(out_dir / name), dtype=np.float64) / 255

    found = {d: json.loads((out_dir / f"compare-{d}.json").read_text()) for d in ("cuda", "cpu")}
    configure_device(torch.device("cpu"))
    content, style = open_image(IMAGES / "tubingen.jpg"), open_image(IMAGES / "starry_night.jpg")
    report: dict = {"machines": {d: found[d]["machine"] for d in found}, "sizes": {}}
    for size, cpu_run in found["cpu"]["runs"].items():
        cuda_run = found["cuda"]["runs"][size]
        entry = {"cpu": cpu_run, "cuda": cuda_run,
                 "mean_abs_diff": float(np.abs(pixels(cpu_run["image"])
                                               - pixels(cuda_run["image"])).mean())}  # fmt: skip
        for device, run in (("cpu", cpu_run), ("cuda", cuda_run)):
            entry[f"paper_losses_{device}"] = paper_losses(
                open_image(out_dir / run["image"]), content, style, int(size)
            )
        report["sizes"][size] = entry
    cuda_runs = found["cuda"]["runs"]
    report["same_process"] = {}
    for again, first in (("512-again", "512"), ("512-deterministic-b", "512-deterministic-a")):
        if again in cuda_runs:
            a, b = pixels(cuda_runs[again]["image"]), pixels(cuda_runs[first]["image"])
            report["same_process"][again] = {
                "identical": bool((a == b).all()),
                "mean_abs_diff": float(np.abs(a - b).mean()),
            }
    print(json.dumps(report, indent=1))


def main() -> None:
    global IMAGES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part",
        choices=("cost", "quality", "memory", "all", "gpu", "compare", "compare-report"),
        default="all",
        help="all: the CPU tables 1-3; gpu: table 4 (needs --device cuda)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--images", default=str(IMAGES), help="folder with tubingen.jpg etc.")
    parser.add_argument("--gpu-sizes", default="512,1024,2048,4096")
    parser.add_argument("--compare-sizes", default="512,1024")
    parser.add_argument("--cost-sizes", default="256,512,1024")
    parser.add_argument("--memory-sizes", default="512,1024,2048")
    parser.add_argument("--size", type=int, default=512, help="time-to-quality size")
    parser.add_argument("--pastiche-steps", type=int, default=400)
    parser.add_argument("--out", default="/tmp/painterly-bench", help="where images go")
    parser.add_argument(
        "--reuse-pastiche",
        action="store_true",
        help="take pastiche's images and times from an earlier run's --out (to retune ours)",
    )
    args = parser.parse_args()
    IMAGES = Path(args.images)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this machine has no CUDA device")
    if args.part == "compare-report":
        return compare_report(out)
    if args.part == "compare":
        return compare(args.device, [int(s) for s in args.compare_sizes.split(",")], out)
    if args.part == "gpu":
        if args.device != "cuda":
            parser.error("--part gpu needs --device cuda")
        return gpu_table([int(s) for s in args.gpu_sizes.split(",")], out, args.pastiche_steps)
    print(f"Machine: {machine()}")
    if args.part in ("cost", "all"):
        iteration_cost([int(s) for s in args.cost_sizes.split(",")])
    if args.part in ("quality", "all"):
        time_to_quality(args.size, args.pastiche_steps, out, args.reuse_pastiche)
    if args.part in ("memory", "all"):
        memory_and_time([int(s) for s in args.memory_sizes.split(",")])


if __name__ == "__main__":
    main()
