"""The peak-memory estimate that lets a run refuse a size up front (see also test_cli)."""

from __future__ import annotations

from painterly.memory import estimate_peak_bytes, largest_fitting_size
from painterly.optimize import lbfgs_history


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
