"""The optimization loop: gradient descent on the pixels, L-BFGS (default) or Adam.

The image is optimized in the network's own input space (e.g. Caffe's BGR 0-255 minus mean), so
the first L-BFGS step has a sensible scale. Progress leaves through a callback, called once per
iteration; Ctrl-C ends the loop cleanly and the current image is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .losses import LossTerms, Objective
from .vgg import VGGFeatures


@dataclass
class Progress:
    """What a callback sees after each iteration."""

    iteration: int
    iterations: int
    loss: LossTerms
    image: torch.Tensor  # the current image, decoded by optimize()'s `decode` (API: RGB in [0, 1])
    elapsed: float


ProgressCallback = Callable[[Progress], None]


@dataclass
class OptimizationResult:
    image: torch.Tensor
    loss: LossTerms
    iterations: int
    stop_reason: str  # "iterations", "interrupted" or "diverged"
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def evaluate(network: VGGFeatures, objective: Objective, image: torch.Tensor) -> LossTerms:
    """The objective at `image`, without gradients."""
    with torch.no_grad():
        return objective(network(image, objective.layers))


def optimize(
    network: VGGFeatures,
    objective: Objective,
    init: torch.Tensor,
    *,
    iterations: int,
    optimizer: str = "lbfgs",
    learning_rate: float = 1.0,
    callback: ProgressCallback | None = None,
    decode: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
) -> OptimizationResult:
    """Minimize `objective` over the pixels of an image starting at `init` (network space).

    For Adam, `learning_rate` is in network input units per step.
    """
    # L-BFGS flattens the parameter with view(), so it stays in the default layout; the network
    # sees a channels_last copy, the faster layout for CPU convolutions.
    image = init.detach().clone().contiguous()
    image.requires_grad_(True)
    if optimizer == "lbfgs":
        # One iteration per step() keeps a callback per iteration; L-BFGS's memory persists
        # across calls. Tolerances off: we decide when to stop.
        solver: torch.optim.Optimizer = torch.optim.LBFGS(
            [image], lr=1.0, max_iter=1, history_size=100, tolerance_grad=-1, tolerance_change=-1
        )
    elif optimizer == "adam":
        solver = torch.optim.Adam([image], lr=learning_rate)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}")

    last: list[LossTerms] = []

    def closure() -> torch.Tensor:
        solver.zero_grad(set_to_none=True)
        features = network(image.contiguous(memory_format=torch.channels_last), objective.layers)
        terms = objective(features)
        terms.total.backward()
        last[:] = [terms.detached()]
        return terms.total

    history: list[dict[str, float]] = []
    stop_reason = "iterations"
    start = time.perf_counter()
    done = 0
    good = image.detach().clone()
    try:
        for done in range(1, iterations + 1):
            solver.step(closure)
            terms = last[0]
            total = float(terms.total)
            if not math.isfinite(total) or not torch.isfinite(image).all():
                stop_reason = "diverged"
                break
            good.copy_(image.detach())
            history.append(
                {
                    "iteration": done,
                    "total": total,
                    "content": float(terms.content),
                    "style": float(terms.style),
                }
            )
            if callback is not None:
                callback(
                    Progress(
                        done, iterations, terms, decode(image.detach()), time.perf_counter() - start
                    )
                )
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    seconds = time.perf_counter() - start
    final = evaluate(network, objective, good)
    return OptimizationResult(good, final, len(history), stop_reason, seconds, history)
