"""Estimate a run's peak memory before it starts, so a size that will not fit is refused clearly
instead of the process being killed halfway.

The estimate counts what autograd keeps for the backward pass (every layer's activation up to the
deepest one used), the gradient buffers of the backward pass, and the optimizer's state (L-BFGS
keeps two image-sized vectors per remembered step). `ACTIVATION_FACTOR` and `BASE_BYTES` were fitted
to measured peaks (benchmarks/bench_speed.py prints estimate and measurement side by side).

On CUDA the same tensors live on the card, held by torch's caching allocator, which keeps freed
blocks reserved and rounds large ones up to 2 MiB: ACTIVATION_FACTOR's slack covers that as it
covers the CPU allocator's. What differs is the rest: the process itself stays in RAM, and the
card holds the weights, cuBLAS's and cuDNN's handles and workspaces, and the kernels they load at
the first convolution, after the free memory was read (CUDA_BASE_BYTES). With cuDNN's benchmark
mode off (network.configure_device) each convolution runs one algorithm picked by cuDNN's
heuristics, whose workspace torch takes from the caching allocator for that call only; one
activation's size more (CUDA_WORKSPACE_ACTIVATIONS) is the margin for it. Benchmark mode would try
every algorithm, each with its own workspace: 130 GiB reserved by a 1024 px run (issue 21).
"""

from __future__ import annotations

import os
from collections.abc import Collection

import torch

from .optimize import lbfgs_history
from .vgg import CONV_CHANNELS, LAYER_NAMES, deepest_layer, halo_and_grid

ACTIVATION_FACTOR = 1.6  # allocator slack and oneDNN/cuDNN workspaces, measured
# interpreter, torch, weights (raw and normalized), targets, and malloc's per-thread arenas: most
# 512 px runs peak near 1.05 GiB, but one measured 1.80 GiB
BASE_BYTES = 1300 * 1024**2
# On the card, not counted in torch.cuda.mem_get_info's free memory when a run checks it: the
# network's weights (0.08 GiB), cuBLAS/cuDNN handles, workspaces and lazily loaded kernels
CUDA_BASE_BYTES = 1024**3
CUDA_WORKSPACE_ACTIVATIONS = 1  # a convolution's workspace, in largest activations
FLOAT = 4


def activation_elements(width: int, height: int, layers: Collection[str]) -> tuple[int, int]:
    """(sum, max) of activation sizes, in elements, of the network cut at the deepest layer."""
    total = largest = 0
    channels, w, h = 3, width, height
    for name in LAYER_NAMES[: LAYER_NAMES.index(deepest_layer(layers)) + 1]:
        if name.startswith("pool"):
            w, h = w // 2, h // 2
        else:
            channels = CONV_CHANNELS[name]
        total += channels * w * h
        largest = max(largest, channels * w * h)
    return total, largest


def estimate_peak_bytes(
    width: int,
    height: int,
    layers: Collection[str],
    optimizer: str = "lbfgs",
    iterations: int | None = None,
    device_type: str = "cpu",
) -> int:
    """Peak bytes of a run at this output size on a `device_type` ("cpu": the process's RAM;
    "cuda": the card's memory). L-BFGS remembers at most one step per iteration, so a run capped
    at `iterations` (at full size) keeps no more history than that."""
    total, largest = activation_elements(width, height, layers)
    pixels = 3 * width * height
    history = lbfgs_history(pixels)
    if iterations is not None:
        history = min(history, iterations)
    state = 2 * history + 4 if optimizer == "lbfgs" else 3
    # image, its grad, a layout copy, last good copy, upsampled start + optimizer state
    image_bytes = FLOAT * pixels * (5 + state)
    tensors = FLOAT * ACTIVATION_FACTOR * (total + 2 * largest) + image_bytes
    if device_type == "cuda":
        return int(CUDA_BASE_BYTES + tensors + FLOAT * CUDA_WORKSPACE_ACTIVATIONS * largest)
    return int(BASE_BYTES + tensors)


# Tiled runs (tiling.py): the largest core tried first (bigger cores spend less on halos; 1024 px
# keeps a 4096 px run within 8 GiB), and the smallest worth running.
TILE_SIZES = (1024, 768, 512, 384, 256)
# image-sized buffers besides the optimizer's of a tiled run, in images (3 floats per pixel): the
# tiled gradient and its carrier, the content as the network sees it, the previous scale's image
TILED_IMAGE_BUFFERS = 4


def estimate_tiled_peak_bytes(
    width: int,
    height: int,
    layers: Collection[str],
    tile: int,
    optimizer: str = "lbfgs",
    iterations: int | None = None,
    device_type: str = "cpu",
    content_layer: str | None = None,
) -> int:
    """Peak bytes of a run evaluated in tiles of `tile` px: one crop's network (core and halo)
    with its backward, plus the image-sized buffers (image, optimizer state, gradient, and the
    content target at `content_layer`, if the run has one)."""
    halo, _ = halo_and_grid(layers)
    crop_w, crop_h = min(width, tile + 2 * halo), min(height, tile + 2 * halo)
    one_tile = estimate_peak_bytes(crop_w, crop_h, layers, optimizer, 1, device_type)
    pixels = 3 * width * height
    history = lbfgs_history(pixels)
    if iterations is not None:
        history = min(history, iterations)
    state = 2 * history + 4 if optimizer == "lbfgs" else 3
    content_target = _map_elements(width, height, content_layer) if content_layer else 0
    image_bytes = FLOAT * (pixels * (5 + state + TILED_IMAGE_BUFFERS) + content_target)
    return int(one_tile + image_bytes)


def _map_elements(width: int, height: int, layer: str) -> int:
    """Elements of one layer's map for an image of this size."""
    channels, w, h = 3, width, height
    for name in LAYER_NAMES[: LAYER_NAMES.index(deepest_layer([layer])) + 1]:
        if name.startswith("pool"):
            w, h = w // 2, h // 2
        else:
            channels = CONV_CHANNELS[name]
    return channels * w * h


def fitting_tile(
    width: int,
    height: int,
    layers: Collection[str],
    budget: int,
    optimizer: str = "lbfgs",
    iterations: int | None = None,
    device_type: str = "cpu",
    content_layer: str | None = None,
) -> int | None:
    """The largest of TILE_SIZES whose tiled run stays within `budget` bytes; None if none does."""
    for tile in TILE_SIZES:
        needed = estimate_tiled_peak_bytes(width, height, layers, tile, optimizer, iterations,
                                           device_type, content_layer)  # fmt: skip
        if needed <= budget:
            return tile
    return None


def available_bytes(device: torch.device) -> int | None:
    """Memory this process may still use on `device`; None where we cannot tell."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # blocks an earlier run left in torch's cache count as used on the card, yet are ours
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    if device.type != "cpu":
        return None
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            value = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if value != "max":
            limits.append(int(value) - used)
    except (OSError, ValueError):
        pass
    limits += _address_space_left()
    if not limits:
        try:
            limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(limits)


def _address_space_left() -> list[int]:
    """What a `ulimit -v` (RLIMIT_AS) leaves of this process's address space, if one is set."""
    try:
        import resource
    except ImportError:  # not on Windows
        return []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return []
    try:
        with open("/proc/self/status") as f:
            used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return []
    return [max(0, soft - used)]


def largest_fitting_size(
    aspect: float,
    layers: Collection[str],
    optimizer: str,
    budget: int,
    iterations: int | None = None,
    device_type: str = "cpu",
) -> int:
    """The largest long side (px) whose estimate stays within `budget` bytes; aspect = h / w."""
    low, high = 16, 65536
    while low < high:
        mid = (low + high + 1) // 2
        w, h = _dims(mid, aspect)
        if estimate_peak_bytes(w, h, layers, optimizer, iterations, device_type) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def _dims(long_side: int, aspect: float) -> tuple[int, int]:
    if aspect <= 1:
        return long_side, max(1, round(long_side * aspect))
    return max(1, round(long_side / aspect)), long_side
