"""The paper's settings, field by field, and the one mapping of its alpha/beta to ours.

Spelled out here so tuning the defaults of `painterly transfer` for speed never changes what the
figures show. The paper's alpha/beta does not carry over to our losses as it stands (its network
scaling and image sizes differ); `ours_ratio` maps it, with the one constant `PAPER_TO_OURS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..options import PAPER_CONTENT_LAYER, PAPER_STYLE_LAYERS, Options

if TYPE_CHECKING:
    from .figures import Run

#: Our alpha/beta = the paper's alpha/beta x PAPER_TO_OURS at REFERENCE_SIZE px (long side),
#: found by eye against the paper's Figure 3 (B, C, D at its 1e-3) in renders at 512 px, 500
#: steps from noise: at 1e-4 The Shipwreck and The Scream stayed mostly photo (The Starry
#: Night less so), at 3e-5 The Shipwreck still did; at 1e-5 The Scream's sky takes its orange
#: bands over readable houses and The Shipwreck its dark water and light. (At 256 px 3e-5
#: already looked right: with the same balance of the losses, a smaller image shows the
#: network's fixed-size strokes larger.) The content term sums over positions and the style
#: term does not, so at other sizes the equivalent ratio scales as 1/pixels (see
#: `ours_ratio`). Refine it here, and only here.
PAPER_TO_OURS = 1e-5
REFERENCE_SIZE = 512
PAPER_SIZE = 512  # default --size of `painterly paper`
PAPER_ITERATIONS = 500  # default --iterations: L-BFGS steps, a fixed count (tolerance 0)
CONTENT_LAYERS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")  # Figure 1


def ours_ratio(paper_ratio: float, size: int) -> float:
    """Our alpha/beta that balances content and style as the paper's `paper_ratio` did."""
    return paper_ratio * PAPER_TO_OURS * (REFERENCE_SIZE / size) ** 2


def ratio_label(paper_ratio: float, size: int) -> str:
    """'paper 1e-3 = ours 1.6e-6': both numbers, so a sheet can be checked against the paper."""
    return f"α/β paper {sci(paper_ratio)} = ours {sci(ours_ratio(paper_ratio, size))}"


def sci(value: float) -> str:
    """1e-05 -> '1e-5', 1.5625e-06 -> '1.6e-6': short enough for a tile caption."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def paper_options(
    size: int,
    iterations: int,
    seed: int,
    *,
    device: str = "auto",
    weights: str | None = None,
) -> Options:
    """The paper's procedure, every field explicit (not `Options` defaults, which may change).

    Normalized VGG-19 with average pooling, one scale, L-BFGS for a fixed number of iterations
    from white noise, content at conv4_2, style at conv1_1..conv5_1 with w_l = 1/5.
    """
    return Options(
        size=size,
        iterations=iterations,
        scales=1,
        tolerance=0.0,
        # The paper's alpha/beta is always given as `ratio`, which overrides `strength`; the
        # strength is fixed anyway, so a new default of it never changes a render's key.
        strength=5.0,
        ratio=ours_ratio(1e-3, size),
        content_layer=PAPER_CONTENT_LAYER,
        style_layers=PAPER_STYLE_LAYERS,
        init="noise",
        optimizer="lbfgs",
        pooling="avg",
        normalize=True,
        weights=weights,
        seed=seed,
        device=device,
        precision="full",  # float32 on CUDA too: TF32 changes the picture (docs/gpu.md)
        deterministic=False,
        # The paper has none of the later controls: one style, its own scale, no color
        # preservation, no total-variation term, no spatial mask.
        style_blend=None,
        style_scale=1.0,
        preserve_color="none",
        tv_weight=0.0,
        mask=None,
        mask_map=None,
    ).validated()


@dataclass(frozen=True)
class Settings:
    """What the user chose for a render; the rest is the paper's (see `paper_options`)."""

    size: int = PAPER_SIZE
    iterations: int = PAPER_ITERATIONS
    seed: int = 0
    device: str = "auto"
    weights: str | None = None
    fresh: bool = False  # re-render images an earlier run of the same settings left


def run_options(run: Run, settings: Settings) -> Options:
    """The options of one image of a figure: the paper's, its seed, then the run's own."""
    options = paper_options(
        settings.size,
        settings.iterations,
        settings.seed + run.seed_offset,
        device=settings.device,
        weights=settings.weights,
    ).with_values(**run.options)
    if run.paper_ratio is not None:
        options = options.with_values(ratio=ours_ratio(run.paper_ratio, settings.size))
    return options.validated()
