"""Every option of a run and its default, in one place.

The CLI builds its flags from these dataclasses' fields and defaults, and the Python API takes
the same names as keyword arguments, so the two cannot drift apart.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .errors import InputError
from .vgg import LAYER_NAMES, check_layer

PAPER_STYLE_LAYERS: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
PAPER_CONTENT_LAYER = "conv4_2"
INITS = ("noise", "content", "style")
OPTIMIZERS = ("lbfgs", "adam")
DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_SIZE = 8192


@dataclass(frozen=True)
class Options:
    """Options shared by transfer, texture and reconstruction (see README for each one's why)."""

    size: int = 512
    iterations: int = 500
    scales: int = 1
    tolerance: float = 0.0
    ratio: float = 1e-3
    content_layer: str = PAPER_CONTENT_LAYER
    style_layers: tuple[str, ...] = PAPER_STYLE_LAYERS
    init: str = "noise"
    optimizer: str = "lbfgs"
    learning_rate: float = 0.02
    pooling: str = "avg"
    normalize: bool = True
    weights: str | None = None
    seed: int | None = None
    device: str = "auto"

    def validated(self) -> Options:
        """Return self after checking every value; raise InputError naming the bad one."""
        _check(
            isinstance(self.size, int) and 16 <= self.size <= MAX_SIZE,
            f"--size must be a whole number of pixels from 16 to {MAX_SIZE}, not {self.size!r}",
        )
        _check(
            isinstance(self.iterations, int) and self.iterations >= 1,
            f"--iterations must be a whole number of at least 1, not {self.iterations!r}",
        )
        _check(
            isinstance(self.scales, int) and 1 <= self.scales <= 8,
            f"--scales must be a whole number from 1 to 8, not {self.scales!r}",
        )
        _check(
            isinstance(self.tolerance, (int, float)) and 0 <= self.tolerance < 1,
            f"--tolerance must be a number from 0 to 1, not {self.tolerance!r}",
        )
        _check(_positive(self.ratio), f"--ratio must be a positive number, not {self.ratio!r}")
        _check(
            _positive(self.learning_rate),
            f"--learning-rate must be a positive number, not {self.learning_rate!r}",
        )
        for name in (self.content_layer, *self.style_layers):
            _check(
                name in LAYER_NAMES,
                f"unknown layer {name!r}: VGG-19's layers are {', '.join(LAYER_NAMES)}",
            )
        _check(len(self.style_layers) >= 1, "--style-layers needs at least one layer")
        _check(
            len(set(self.style_layers)) == len(self.style_layers),
            "--style-layers names a layer twice",
        )
        _check(
            self.init in INITS or Path(self.init).is_file(),
            f"--init must be {', '.join(INITS)} or an image file; {self.init!r} is none of them",
        )
        _check(
            self.optimizer in OPTIMIZERS,
            f"--optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}",
        )
        _check(
            self.pooling in ("avg", "max"), f"--pooling must be avg or max, not {self.pooling!r}"
        )
        _check(
            self.device in DEVICES,
            f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}",
        )
        _check(
            self.seed is None or (isinstance(self.seed, int) and 0 <= self.seed < 2**63),
            f"--seed must be a whole number from 0 to 2^63-1, not {self.seed!r}",
        )
        _check(
            self.weights is None or os.path.isfile(self.weights),
            f"weights file {self.weights} does not exist",
        )
        return self

    def with_values(self, **values: object) -> Options:
        """A copy with some options changed; unknown names are an error, not silently ignored."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}")
        if isinstance(values.get("style_layers"), str):
            values["style_layers"] = parse_layers(values["style_layers"])
        elif "style_layers" in values:
            values["style_layers"] = tuple(values["style_layers"])
        return replace(self, **values)


def parse_layers(text: str) -> tuple[str, ...]:
    """'conv1_1,conv2_1' -> ('conv1_1', 'conv2_1'), each checked."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    try:
        return tuple(check_layer(n) for n in names)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)
