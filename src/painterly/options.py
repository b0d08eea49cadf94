"""Every option of a run and its default, in one place.

The CLI builds its flags from these dataclasses' fields and defaults, and the Python API takes
the same names as keyword arguments, so the two cannot drift apart.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from PIL import Image

from .controls import parse_mask_map
from .errors import InputError
from .strength import DEFAULT_STRENGTH, MAX_STRENGTH
from .vgg import LAYER_NAMES, check_layer

PAPER_STYLE_LAYERS: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
PAPER_CONTENT_LAYER = "conv4_2"
INITS = ("auto", "noise", "content", "style")
PRESERVE_COLOR = ("none", "luminance", "histogram")
MAX_STYLE_SCALE = 4.0
OPTIMIZERS = ("lbfgs", "adam")
DEVICES = ("auto", "cpu", "cuda", "mps")
# CUDA's float32 arithmetic: "full" (IEEE float32) or "fast" (TF32 matmuls and convolutions,
# which change L-BFGS's path and so the picture; docs/gpu.md)
PRECISIONS = ("full", "fast")
MAX_SIZE = 8192
DEFAULT_SCALES = 3  # up to LARGE_SIZE
LARGE_SIZE = 2048  # above this, the default scales start at COARSEST_SIDE or below
COARSEST_SIDE = 512  # strokes keep their size relative to the picture (docs/large.md)
MIN_TILE = 64  # smaller tiles would be mostly halo (tiling.py)
TILE_GRID = 16  # the pooling grid of conv5_1: tile origins must lie on it


@dataclass(frozen=True)
class Options:
    """Options shared by transfer, texture and reconstruction (docs/cli.md, docs/method.md: why)."""

    # Defaults tuned for time to quality (docs/method.md); `painterly paper` and `--scales 1
    # --init noise --tolerance 0 --iterations 500` give the paper's own procedure.
    size: int = 512
    iterations: int = 20  # at full size; each coarser scale may take twice its finer one's
    # None: 3 up to 2048 px (128, 256, 512 px at --size 512), and beyond as many as start the
    # run at 512 px or less (`resolved_scales`)
    scales: int | None = None
    tolerance: float = 0.01
    # how painted a transfer is, 0-10, the same for every pair and size (strength.py says how)
    strength: float = DEFAULT_STRENGTH
    ratio: float | None = None  # the paper's alpha/beta itself, for experts: overrides strength
    content_layer: str = PAPER_CONTENT_LAYER
    style_layers: tuple[str, ...] = PAPER_STYLE_LAYERS
    init: str = "auto"  # the content image for a transfer, white noise otherwise
    optimizer: str = "lbfgs"
    learning_rate: float = 0.02
    pooling: str = "avg"
    normalize: bool = True
    weights: str | None = None
    seed: int | None = None
    device: str = "auto"
    precision: str = "full"  # CUDA only; the CPU is always full
    deterministic: bool = False  # torch's deterministic kernels: the same bytes on CUDA too
    # run the network in tiles of this many px (docs/large.md): None tiles only sizes that would
    # not fit in memory otherwise, 0 never tiles; the loss and gradient are the same either way
    tile: int | None = None
    # 16: the output as 16-bit PNG/TIFF, straight from the optimizer's floats (docs/large.md)
    bit_depth: int = 8
    # creative controls (docs/controls.md)
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    preserve_color: str = "none"
    tv_weight: float = 0.0
    mask: str | None = None  # a path; the Python API also takes a PIL image
    mask_map: str | None = None

    def validated(self) -> Options:
        """Return self after checking every value; raise InputError naming the bad one."""
        _check(
            isinstance(self.size, int) and 16 <= self.size <= MAX_SIZE,
            f"{{size}} must be a whole number of pixels from 16 to {MAX_SIZE}, not {self.size!r}",
        )
        _check(
            isinstance(self.iterations, int) and self.iterations >= 1,
            f"{{iterations}} must be a whole number of at least 1, not {self.iterations!r}",
        )
        _check(
            self.scales is None or (isinstance(self.scales, int) and 1 <= self.scales <= 8),
            f"{{scales}} must be a whole number from 1 to 8, not {self.scales!r}",
        )
        _check(
            isinstance(self.tolerance, (int, float)) and 0 <= self.tolerance < 1,
            f"{{tolerance}} must be a number from 0 to 1, not {self.tolerance!r}",
        )
        _check(
            _number(self.strength) and 0 <= self.strength <= MAX_STRENGTH,
            f"{{strength}} must be a number from 0 to {MAX_STRENGTH:g}, not {self.strength!r}",
        )
        _check(
            self.ratio is None or _positive(self.ratio),
            f"{{ratio}} must be a positive number, not {self.ratio!r}",
        )
        _check(
            _positive(self.learning_rate),
            f"{{learning_rate}} must be a positive number, not {self.learning_rate!r}",
        )
        for name in (self.content_layer, *self.style_layers):
            _check(
                name in LAYER_NAMES,
                f"unknown layer {name!r}: VGG-19's layers are {', '.join(LAYER_NAMES)}",
            )
        _check(len(self.style_layers) >= 1, "{style_layers} needs at least one layer")
        _check(
            len(set(self.style_layers)) == len(self.style_layers),
            "{style_layers} names a layer twice",
        )
        _check(
            self.init in INITS or Path(self.init).is_file(),
            f"{{init}} must be {', '.join(INITS)} or an image file; {self.init!r} is none of them",
        )
        _check(
            self.optimizer in OPTIMIZERS,
            f"{{optimizer}} must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}",
        )
        _check(
            self.pooling in ("avg", "max"), f"{{pooling}} must be avg or max, not {self.pooling!r}"
        )
        _check(
            self.device in DEVICES,
            f"{{device}} must be one of {', '.join(DEVICES)}, not {self.device!r}",
        )
        _check(
            self.precision in PRECISIONS,
            f"--precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}",
        )
        _check(
            isinstance(self.deterministic, bool),
            f"deterministic must be True or False, not {self.deterministic!r}",
        )
        _check(
            self.seed is None or (isinstance(self.seed, int) and 0 <= self.seed < 2**63),
            f"{{seed}} must be a whole number from 0 to 2^63-1, not {self.seed!r}",
        )
        _check(
            self.weights is None or os.path.isfile(self.weights),
            f"weights file {self.weights} does not exist",
        )
        self._validate_output()
        self._validate_controls()
        return self

    def _validate_output(self) -> None:
        """Tiling and bit depth (docs/large.md)."""
        _check(
            self.tile is None
            or (isinstance(self.tile, int) and not isinstance(self.tile, bool)
                and (self.tile == 0 or (self.tile >= MIN_TILE and self.tile % TILE_GRID == 0))),
            f"{{tile}} must be 0 (never tile) or a whole number of pixels from {MIN_TILE} on, "
            f"a multiple of {TILE_GRID}, not {self.tile!r}",
        )  # fmt: skip
        _check(
            self.bit_depth in (8, 16) and not isinstance(self.bit_depth, bool),
            f"{{bit_depth}} must be 8 or 16, not {self.bit_depth!r}",
        )
        _check(
            self.bit_depth == 8 or self.preserve_color != "luminance",
            "{bit_depth} 16 does not go with {preserve_color} luminance (its colors are 8-bit)",
        )

    def _validate_controls(self) -> None:
        blend = self.style_blend
        if blend is not None:
            _check(
                len(blend) >= 1 and all(_number(w) for w in blend),
                f"{{style_blend}} must be comma-separated numbers, not {blend!r}",
            )
            _check(
                all(w >= 0 for w in blend),
                f"{{style_blend}} weights must not be negative: {_show_weights(blend)}",
            )
            _check(sum(blend) > 0, "{style_blend} weights must not all be 0")
        _check(
            _positive(self.style_scale) and self.style_scale <= MAX_STYLE_SCALE,
            f"{{style_scale}} must be a number above 0 and at most {MAX_STYLE_SCALE:g}, "
            f"not {self.style_scale!r}",
        )
        _check(
            self.preserve_color in PRESERVE_COLOR,
            f"{{preserve_color}} must be one of {', '.join(PRESERVE_COLOR)}, "
            f"not {self.preserve_color!r}",
        )
        _check(
            _number(self.tv_weight) and self.tv_weight >= 0,
            f"{{tv_weight}} must be a number of 0 or more, not {self.tv_weight!r}",
        )
        _check(self.mask_map is None or self.mask is not None, "{mask_map} needs {mask}")
        _check(
            self.mask is None or self.style_blend is None,
            "{style_blend} does not go with {mask}: each mask region takes one style",
        )
        _check(
            self.mask is None or isinstance(self.mask, (str, Image.Image)),
            f"{{mask}} must be an image file, not {self.mask!r}",
        )
        if self.mask_map is not None:
            parse_mask_map(self.mask_map)  # the syntax is checked now, before any work

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
        if isinstance(values.get("style_blend"), str):
            values["style_blend"] = parse_blend(values["style_blend"])
        elif values.get("style_blend") is not None:
            values["style_blend"] = tuple(values["style_blend"])
        if isinstance(values.get("mask"), os.PathLike):
            values["mask"] = os.fspath(values["mask"])
        return replace(self, **values)


def resolved_scales(size: int, scales: int | None) -> int:
    """The number of scales a run uses: `scales` if given, else DEFAULT_SCALES, and above
    LARGE_SIZE as many as put the coarsest at COARSEST_SIDE or below (4096 px: 4, 8192 px: 5),
    so the style's strokes are laid out at the same size relative to the picture."""
    if scales is not None:
        return scales
    if size <= LARGE_SIZE:
        return DEFAULT_SCALES
    return max(DEFAULT_SCALES, 1 + math.ceil(math.log2(size / COARSEST_SIDE)))


@dataclass(frozen=True)
class VideoOptions:
    """What `painterly video` adds to `Options` (docs/video.md: the method and how the defaults
    were measured). Frame 1 is a normal transfer with `Options`; later frames start from the frame
    before, warped (repainted at half size where the warp is not reliable), and run one scale at
    full size."""

    temporal_weight: float = 2000.0  # lambda of the temporal term, in 0-1 pixel units
    later_iterations: int = 10  # most iterations of each later frame (the tolerance may stop it)
    # most iterations of a later frame's half-size pass that paints what the warp cannot carry
    # over (uncovered areas, motion boundaries); 0: none (the warp's streaks stay there)
    coarse_iterations: int = 12
    long_term: tuple[int, ...] = ()  # further earlier frames also held to, e.g. (2, 4): t-2, t-4
    fps: float | None = None  # frame rate for a folder of frames (a video keeps its own); 24

    def validated(self) -> VideoOptions:
        _check(
            _number(self.temporal_weight) and self.temporal_weight >= 0,
            f"{{temporal_weight}} must be a number of 0 or more, not {self.temporal_weight!r}",
        )
        _check(
            isinstance(self.later_iterations, int) and self.later_iterations >= 1,
            f"{{later_iterations}} must be a whole number of at least 1, "
            f"not {self.later_iterations!r}",
        )
        _check(
            isinstance(self.coarse_iterations, int) and self.coarse_iterations >= 0,
            f"{{coarse_iterations}} must be a whole number of 0 or more, "
            f"not {self.coarse_iterations!r}",
        )
        _check(
            all(isinstance(j, int) and 2 <= j <= 1000 for j in self.long_term),
            f"{{long_term}} must be frame offsets from 2 to 1000, not {self.long_term!r}",
        )
        _check(
            self.fps is None or (_positive(self.fps) and self.fps <= 1000),
            f"{{fps}} must be a positive number up to 1000, not {self.fps!r}",
        )
        return self


def parse_offsets(text: str) -> tuple[int, ...]:
    """'2,4' -> (2, 4): earlier frames for long-term consistency (checked by `validated`)."""
    try:
        return tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise InputError(
            f"{{long_term}} must be comma-separated frame offsets such as 2,4, not {text!r}"
        ) from None


def parse_layers(text: str) -> tuple[str, ...]:
    """'conv1_1,conv2_1' -> ('conv1_1', 'conv2_1'), each checked."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    try:
        return tuple(check_layer(n) for n in names)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def parse_blend(text: str) -> tuple[float, ...]:
    """'0.7,0.3' -> (0.7, 0.3); the weights are checked (and normalized) later."""
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InputError(
            f"{{style_blend}} must be comma-separated numbers such as 0.7,0.3, not {text!r}"
        ) from None
    if not all(math.isfinite(w) for w in weights):
        raise InputError(f"{{style_blend}} weights must be finite numbers, not {text!r}")
    return weights


def normalized_blend(blend: tuple[float, ...] | None, styles: int) -> tuple[float, ...]:
    """The blend weights for `styles` styles, summing to 1 (equal when none were given)."""
    if blend is None:
        return tuple(1 / styles for _ in range(styles))
    if len(blend) != styles:
        raise InputError(
            f"{{style_blend}} has {len(blend)} weight{'s' * (len(blend) != 1)} but "
            f"{styles} style{'s were' if styles != 1 else ' was'} given"
        )
    total = sum(blend)
    return tuple(w / total for w in blend)


def _show_weights(blend: tuple[float, ...]) -> str:
    return ",".join(f"{w:g}" for w in blend)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)
