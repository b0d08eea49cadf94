"""The peak-memory estimate that lets a run refuse a size up front (see also test_cli)."""

from __future__ import annotations

import pytest
import torch

from painterly import run_transfer
from painterly.memory import estimate_peak_bytes, largest_fitting_size
from painterly.optimize import lbfgs_history

LAYERS = ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
GiB = 1024**3


def test_memory_estimate_grows_with_size_and_counts_only_the_history_a_run_keeps() -> None:
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1"]
    sizes = [estimate_peak_bytes(s, s, layers) for s in (256, 512, 1024)]
    assert sizes[0] < sizes[1] < sizes[2]
    full = estimate_peak_bytes(1024, 1024, layers)
    capped = estimate_peak_bytes(1024, 1024, layers, iterations=25)
    # L-BFGS keeps 2 image-sized vectors per remembered step: 85 steps fit its cap at 1024 px
    assert full - capped == 4 * 3 * 1024 * 1024 * 2 * (lbfgs_history(3 * 1024 * 1024) - 25)
    assert estimate_peak_bytes(1024, 1024, layers, "adam") < capped
    budget = estimate_peak_bytes(700, 350, layers, iterations=25)
    assert largest_fitting_size(0.5, layers, "lbfgs", budget, iterations=25) == 700


def test_cuda_estimate_covers_the_peaks_measured_on_an_h200() -> None:
    # Issue 21, Tübingen (4:3) + The Starry Night with the defaults, TF32 and cuDNN's benchmark
    # mode off: peaks of 0.5, 1.6 and 22 GiB at 512, 1024 and 4096 px.
    for side, measured in ((512, 0.5), (1024, 1.6), (4096, 22.0)):
        estimate = estimate_peak_bytes(side, side * 3 // 4, LAYERS, iterations=20,
                                       device_type="cuda")  # fmt: skip
        assert measured * GiB < estimate < 2.5 * measured * GiB + GiB, (side, estimate / GiB)
    budget = estimate_peak_bytes(2000, 1500, LAYERS, iterations=20, device_type="cuda")
    assert largest_fitting_size(0.75, LAYERS, "lbfgs", budget, 20, device_type="cuda") == 2000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_stays_within_the_estimate(content_path, style_path) -> None:
    """What the caching allocator reserved at its peak (cuDNN's workspaces included) against the
    estimate a run makes before it starts; 1024 px so the tensors, not the base, dominate."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    already = torch.cuda.memory_reserved()  # tensors other tests left alive
    result = run_transfer(content_path, style_path, size=1024, scales=1, iterations=5, seed=0,
                          device="cuda")  # fmt: skip
    peak = torch.cuda.max_memory_reserved() - already
    width, height = result.image.size
    estimate = estimate_peak_bytes(width, height, LAYERS, iterations=5, device_type="cuda")
    assert peak <= estimate, (peak / GiB, estimate / GiB)
    # ... and not so generous that a card which can hold a size is told it cannot
    assert estimate < 5 * peak, (peak / GiB, estimate / GiB)
