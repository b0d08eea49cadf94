"""The optimization loop: gradient descent on the pixels, L-BFGS (default) or Adam.

The image is optimized in the network's own input space (e.g. Caffe's BGR 0-255 minus mean), so
the first L-BFGS step has a sensible scale. Progress leaves through a callback, called once per
iteration; a `Cancel` handle (or Ctrl-C) ends the loop cleanly and the current image is kept. The
loop stops at the iteration cap, or earlier once the loss stops improving by more than
`tolerance`. The image it
returns is the best one seen at a check (the start, every `CHECK_EVERY` iterations, the end),
since L-BFGS without a line search does not descend monotonically.

Loss values stay on the device and are read back in blocks of `CHECK_EVERY` iterations, so the
loop itself adds no per-iteration device sync (torch's L-BFGS does a few of its own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image

from .images import tensor_to_image
from .losses import LossTerms, Objective
from .vgg import VGGFeatures

CHECK_EVERY = 10  # iterations between convergence checks (and loss read-backs)
LBFGS_HISTORY_BYTES = 2 * 1024**3  # cap on L-BFGS's memory of past steps
# fewest steps L-BFGS remembers: the byte cap goes below it only above about 3000 x 3000 px, where
# each step costs hundreds of MiB (4096 px: 5-7 steps, so a tiled run fits in 8 GiB)
LBFGS_MIN_HISTORY = 5


@dataclass
class Progress:
    """What a callback sees after each iteration."""

    iteration: int  # counted over all scales
    iterations: int  # the cap, over all scales
    loss: LossTerms  # tensors: float() them only when you need the numbers
    image: torch.Tensor  # the current image, RGB in [0, 1] (1, 3, H, W); do not modify
    elapsed: float  # seconds since the run's optimization began
    scale: int = 0  # index of the current scale (coarse to fine)
    scales: int = 1
    fraction: float = 0.0  # estimated share of the run's work done, for a time-left estimate
    # how the run turns `image` into its output (e.g. putting the content's colors back)
    finish: Callable[[torch.Tensor], Image.Image] | None = None

    def picture(self) -> Image.Image:
        """The current image as the output would be if the run stopped now."""
        return self.finish(self.image) if self.finish is not None else tensor_to_image(self.image)


ProgressCallback = Callable[[Progress], None]


@dataclass
class OptimizationResult:
    image: torch.Tensor
    loss: LossTerms
    iterations: int
    stop_reason: str  # "iterations", "converged", "interrupted" or "diverged"
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


class Cancel:
    """A handle to stop a run from outside: Ctrl-C in the CLI, the web page's Cancel button, a
    batch shutting down. The optimizer checks it after every iteration and stops with
    stop_reason "interrupted", keeping the image; thread-safe, so any thread may cancel."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


# The objective at an image, differentiable (autograd gives the gradient). The default runs the
# network on the whole image; another (tiled, for very large images) may replace it.
Evaluator = Callable[[Objective, torch.Tensor], LossTerms]


def network_evaluator(network: VGGFeatures) -> Evaluator:
    """The default evaluator: the network on the whole image."""

    def evaluate(objective: Objective, image: torch.Tensor) -> LossTerms:
        return objective(network(image, objective.layers), image)

    return evaluate


def _as_evaluator(evaluator: Evaluator | VGGFeatures) -> Evaluator:
    if isinstance(evaluator, torch.nn.Module):
        return network_evaluator(evaluator)
    return evaluator


def evaluate(
    evaluator: Evaluator | VGGFeatures, objective: Objective, image: torch.Tensor
) -> LossTerms:
    """The objective at `image`, without gradients."""
    with torch.no_grad():
        return _as_evaluator(evaluator)(objective, image)


def lbfgs_history(numel: int) -> int:
    """L-BFGS keeps 2 vectors per remembered step: at 2048 px, 100 steps would take 7 GiB."""
    return max(LBFGS_MIN_HISTORY, min(100, LBFGS_HISTORY_BYTES // (2 * 4 * numel)))


def optimize(
    evaluator: Evaluator | VGGFeatures,
    objective: Objective,
    init: torch.Tensor,
    *,
    iterations: int,
    optimizer: str = "lbfgs",
    learning_rate: float = 1.0,
    tolerance: float = 0.0,
    loss_scale: float = 1.0,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    free: torch.Tensor | None = None,
    callback: Callable[[int, LossTerms, torch.Tensor], None] | None = None,
    cancel: Cancel | None = None,
) -> OptimizationResult:
    """Minimize `objective` over the pixels of an image starting at `init` (network space).

    `evaluator` computes the objective at an image (a network: `network_evaluator`). Stops after
    `iterations`, when the total loss improved by less than `tolerance` (relative) over the last
    `CHECK_EVERY` iterations, or when `cancel` is set. For Adam, `learning_rate` is in network
    input units. `free`, a (1, 1, H, W) map in [0, 1], scales each pixel's gradient: pixels where
    it is 0 keep their start value (regions that keep the content). `callback(iteration, loss,
    image)` runs after every iteration. With `bounds` (low, high, broadcastable to the image)
    every step is projected back into them: the saved image is clipped to valid pixels anyway,
    and optimizing past the clip leaves a worse image than it reports.
    """
    evaluator = _as_evaluator(evaluator)
    image = _parameter(init, free)
    solver = _solver(optimizer, image, learning_rate)
    step = _Step(solver, image, evaluator, objective, loss_scale, bounds, optimizer == "lbfgs")
    best = _Best(image)
    history: list[dict[str, float]] = []
    stop_reason = "iterations"
    start = time.perf_counter()
    try:
        for done in range(1, iterations + 1):
            check = done % CHECK_EVERY == 0 or done == iterations
            terms = step(remember=check)
            if callback is not None:
                callback(done, terms, image.detach())
            if cancel is not None and cancel.cancelled:
                stop_reason = "interrupted"
                _read_back(step.pending, history)
                break
            if not check:
                continue
            if not _read_back(step.pending, history):
                stop_reason = "diverged"
                break
            best.update(history, step.evaluated)
            if converged(history, tolerance):
                stop_reason = "converged"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
        _read_back(step.pending, history)
    seconds = time.perf_counter() - start
    image_kept, loss = best.final(image.detach(), evaluator, objective)
    return OptimizationResult(image_kept, loss, len(history), stop_reason, seconds, history)


def _parameter(init: torch.Tensor, free: torch.Tensor | None) -> torch.Tensor:
    """The image to optimize. L-BFGS flattens it with view(), so it stays in the default layout
    (the network makes its own channels_last copy where that layout is faster)."""
    image = init.detach().clone().contiguous()
    image.requires_grad_(True)
    if free is not None:
        # L-BFGS's steps are combinations of gradients, so zero gradients mean fixed pixels.
        mask = free.to(device=image.device, dtype=image.dtype)
        image.register_hook(lambda grad: grad * mask)
    return image


def _solver(optimizer: str, image: torch.Tensor, learning_rate: float) -> torch.optim.Optimizer:
    if optimizer == "lbfgs":
        # One iteration per step() gives a callback per iteration; L-BFGS's memory persists
        # across calls. Its own tolerances are off: this loop decides when to stop.
        return torch.optim.LBFGS(
            [image], lr=1.0, max_iter=1, history_size=lbfgs_history(image.numel()),
            tolerance_grad=-1, tolerance_change=-1,
        )  # fmt: skip
    if optimizer == "adam":
        return torch.optim.Adam([image], lr=learning_rate)
    raise ValueError(f"unknown optimizer {optimizer!r}")


class _Step:
    """One iteration: the solver's step, the projection into the bounds, the loss kept pending.

    A step evaluates the loss where it starts, then moves: the loss read back last is that of
    the image from before the last step, so `evaluated` holds that image at a check.
    """

    def __init__(self, solver, image, evaluator, objective, loss_scale, bounds, lbfgs) -> None:
        self.solver, self.image, self.bounds = solver, image, bounds
        self.evaluator, self.objective, self.loss_scale = evaluator, objective, loss_scale
        self.projected_lbfgs = bounds is not None and lbfgs
        self.evaluated = image.detach().clone()
        self.before = torch.empty_like(self.evaluated) if self.projected_lbfgs else self.evaluated
        self.last: list[LossTerms] = []
        self.pending: list[torch.Tensor] = []  # per iteration [total, content, style, tv]

    def closure(self) -> torch.Tensor:
        self.solver.zero_grad(set_to_none=True)
        terms = self.evaluator(self.objective, self.image)
        scaled = terms.total * self.loss_scale
        scaled.backward()
        if self.bounds is not None:
            _hold_pixels_at_bounds(self.image, self.bounds)
        self.last[:] = [terms.detached()]
        return scaled.detach()

    def __call__(self, remember: bool) -> LossTerms:
        image = self.image
        if remember:
            self.evaluated.copy_(image.detach())
        if self.projected_lbfgs:
            self.before.copy_(image.detach())
        self.solver.step(self.closure)
        if self.bounds is not None:
            with torch.no_grad():
                torch.maximum(torch.minimum(image, self.bounds[1]), self.bounds[0], out=image)
                if self.projected_lbfgs:
                    _record_projected_step(self.solver, image, self.before)
        terms = self.last[0]
        self.pending.append(torch.stack([terms.total, terms.content, terms.style,
                                         torch.as_tensor(terms.tv, device=terms.total.device,
                                                         dtype=terms.total.dtype)]))  # fmt: skip
        return terms


class _Best:
    """The best image seen at a check, since L-BFGS without a line search does not descend
    monotonically. The start is a candidate too: a scale never makes it worse."""

    def __init__(self, image: torch.Tensor) -> None:
        self.image, self.loss = image.detach().clone(), float("inf")

    def update(self, history: list[dict[str, float]], evaluated: torch.Tensor) -> None:
        if self.loss == float("inf"):
            self.loss = history[0]["total"]
        if history[-1]["total"] <= self.loss:
            self.loss = history[-1]["total"]
            self.image.copy_(evaluated)

    def final(
        self, last: torch.Tensor, evaluator: Evaluator, objective: Objective
    ) -> tuple[torch.Tensor, LossTerms]:
        """The last image if it is finite and no worse than the best seen, else the best."""
        if bool(torch.isfinite(last).all()):
            loss = evaluate(evaluator, objective, last)
            if float(loss.total) <= self.loss:  # the usual case: the last step went down
                return last.clone(), loss
        return self.image, evaluate(evaluator, objective, self.image)


def _hold_pixels_at_bounds(image: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Zero the gradient of pixels at a bound that it would push further out.

    The projection would undo their move anyway; left in, they steer L-BFGS's direction into the
    bounds and its steps shrink to nothing (with the projected step alone, a 64 px run from noise
    sat at 141 from iteration 20 on; with this too it fell to 0.99). With `_record_projected_step`
    it makes torch's L-BFGS a projected L-BFGS, in the spirit of L-BFGS-B.
    """
    with torch.no_grad():
        grad = image.grad
        held = ((image <= bounds[0]) & (grad > 0)) | ((image >= bounds[1]) & (grad < 0))
        grad.masked_fill_(held, 0)


def _record_projected_step(
    solver: torch.optim.Optimizer, image: torch.Tensor, before: torch.Tensor
) -> None:
    """Tell L-BFGS the step it actually took once the bounds have cut it short.

    torch's L-BFGS pairs each gradient change with the step it meant to take (its direction `d`
    times the step size `t`); after the projection the image moved less, and curvature pairs
    built on the intended step grow wrong until it climbs (seen: a 500-step run from noise at
    128 px fell to 0.027, then rose to 320). Rewriting `d` as the actual move over `t` keeps the
    pairs true.
    """
    state = solver.state[image]
    direction, step = state.get("d"), state.get("t")
    if direction is None or not step:
        return
    direction.copy_(image.detach().sub(before).view(-1)).div_(step)


def converged(history: list[dict[str, float]], tolerance: float) -> bool:
    """True once the total loss fell by less than `tolerance` (relative) over the last
    `CHECK_EVERY` iterations, below where it began. A rise is not convergence, nor a plateau above
    the start: L-BFGS without a line search climbs for a while early on (most after a start from
    the photo), may level off up there, and then drops far below where it began.
    """
    if tolerance <= 0 or len(history) <= CHECK_EVERY:
        return False
    before, now = history[-1 - CHECK_EVERY]["total"], history[-1]["total"]
    return now < history[0]["total"] and 0 <= before - now <= tolerance * abs(before)


def _read_back(pending: list[torch.Tensor], history: list[dict[str, float]]) -> bool:
    """Move pending loss values into `history` (one device sync); False if any is not finite."""
    if not pending:
        return True
    values = torch.stack(pending).cpu().tolist()
    pending.clear()
    finite = True
    for total, content, style, tv in values:
        if not all(map(_finite, (total, content, style, tv))):
            finite = False
            break
        history.append({"iteration": len(history) + 1, "total": total, "content": content,
                        "style": style, "tv": tv})  # fmt: skip
    return finite


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")
