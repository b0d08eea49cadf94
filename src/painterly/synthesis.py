"""The synthesis as named steps: plan, stages, objective, stage runner, record.

    plan = Plan.build(options, content, styles)   # inputs opened and checked, alpha, network
    for stage in plan.stages():                    # one per scale, coarse to fine
        start = plan.start_image(stage, image)     # init, or the scale before upsampled
        objective = stage.objective(plan, terms)   # content + style + TV (+ extra terms)
        report = run_stage(plan, stage, objective, start, evaluator, tracker, cancel)
    output = plan.finish_image(image)              # color preservation, full size
    record = build_record(plan, reports, output, iterations, seconds)

Two seams: `terms` are extra loss terms (`losses.LossTerm`: video's temporal term), and the
`evaluator` computes the objective at an image (`optimize.Evaluator`: the default runs the
network on the whole image; a tiled one would serve very large images). The stage runner owns
the one policy that is not plain optimization: a stalled start from the photo is redone from
noise.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from PIL import Image

from .controls import (
    MaskLayout,
    color_inputs,
    combined_style_target,
    keep_map,
    read_mask,
    region_maps,
)
from .errors import InputError
from .images import (
    check_min_size,
    image_to_tensor,
    open_image,
    print_info,
    resize_long_side,
    resize_to,
)
from .losses import (
    ContentTarget,
    GuidedStyleTarget,
    LossTerm,
    Objective,
    StyleTarget,
    equal_weights,
)
from .memory import (
    TILE_SIZES,
    available_bytes,
    estimate_peak_bytes,
    estimate_tiled_peak_bytes,
    fitting_tile,
    largest_fitting_size,
)
from .network import build_network, configure_device, resolve_device
from .optimize import (
    CHECK_EVERY,
    Cancel,
    Evaluator,
    OptimizationResult,
    Progress,
    ProgressCallback,
    evaluate,
    network_evaluator,
    optimize,
)
from .options import LARGE_SIZE, Options, normalized_blend, resolved_scales
from .record import Result, package_versions
from .strength import alpha_for_strength
from .tiling import TiledNetwork, tiled_cost, tiled_evaluator
from .vgg import VGGFeatures, min_input_side
from .weights import InputConvention

ImageSource = str | os.PathLike | Image.Image
MIN_SCALE_SIDE = 64  # coarser scales than this teach the optimizer little
# A coarsest scale started from the photo that does not bring its loss below this share of its
# first is stuck: photo pairs fall 100-250-fold there (Tubingen with the paper's paintings, 128
# px, 80 steps), the demo's painted style 6-fold or less. It is redone from white noise and the
# lower one kept, so a false alarm costs time (that scale once more), never quality.
STALLED_AT = 0.05
# A scale upsampled from the one before is smooth: it lacks the fine detail the finer scale's
# style target asks for (conv1_1 holds most of the style loss). L-BFGS's first steps then make
# that detail along the gradient, which average pooling makes constant over 2x2, 4x4... blocks,
# and a 20-step scale leaves a woven grid of short horizontal and vertical ribs (docs/strength.md).
# White noise of this standard deviation (0-1 pixel units) gives it detail in every direction to
# shape instead (docs/strength.md: the grid's autocorrelation peak at 4 px fell from 0.18 to 0.02).
UPSAMPLED_DETAIL = 0.04
STALL_EVIDENCE = 2 * CHECK_EVERY


@dataclass
class PreparedStyle:
    """A style image's Gram targets at every scale of a run, computed once to reuse (batch)."""

    image: Image.Image = field(repr=False)
    targets: dict[int, StyleTarget] = field(repr=False)  # by the scale's long side
    key: tuple  # the options they depend on: reuse is only valid where these match

    def to(self, device: torch.device | str) -> PreparedStyle:
        """The same targets on `device` (the CPU to ship them to workers, a GPU to use them)."""
        targets = {
            side: dataclasses.replace(t, grams={k: v.to(device) for k, v in t.grams.items()})
            for side, t in self.targets.items()
        }
        return dataclasses.replace(self, targets=targets)


StyleSource = ImageSource | PreparedStyle


# --------------------------------------------------------------------------------------------
# the run, step by step


def synthesize(
    options: Options,
    content_source: ImageSource | None,
    style_sources: list[StyleSource],
    callback: ProgressCallback | None = None,
    cancel: Cancel | None = None,
    *,
    terms: Sequence[LossTerm] = (),
    evaluator: Evaluator | None = None,
    start: torch.Tensor | None = None,
) -> Result:
    """Plan once, run the stages coarse to fine, finish the image and build its record.

    `start` (RGB in [0, 1], (1, 3, H, W)) replaces `init` as the first scale's start: video
    starts a frame from the frame before, warped into it."""
    plan = Plan.build(options, content_source, style_sources)
    tracker = Tracker(plan, callback)
    reports: list[StageReport] = []
    image: torch.Tensor | None = None
    for stage in plan.stages():
        begin = plan.start_image(stage, image, start)
        objective = stage.objective(plan, terms)
        stage_evaluator = evaluator or plan.evaluator(stage.side)
        report = run_stage(plan, stage, objective, begin, stage_evaluator, tracker, cancel)
        reports.append(report)
        image = report.optimization.image
        if report.optimization.stop_reason in ("interrupted", "diverged"):
            break
    output = plan.finish_image(image)
    seconds = time.perf_counter() - tracker.started
    record = build_record(plan, reports, output, tracker.iterations_done, seconds)
    rgb = plan.finish_rgb(image) if options.bit_depth == 16 else None
    return Result(output, record, reports[-1].optimization, tracker.history, rgb)


def _resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == (size[1], size[0]):
        return image
    return F.interpolate(image, size=(size[1], size[0]), mode="bilinear", align_corners=False)


def scale_sides(size: int, scales: int | None) -> list[int]:
    """Long sides of the scales, halving from `size`; none coarser than MIN_SCALE_SIDE. `scales`
    None is the default for this size (`options.resolved_scales`)."""
    sides = [round(size / 2**k) for k in range(resolved_scales(size, scales))]
    return sorted({side for side in sides if side >= MIN_SCALE_SIDE} | {size})


def iteration_caps(iterations: int, scales: int) -> list[int]:
    """Most iterations per scale, coarse to fine: `iterations` at full size, twice as many at
    each coarser scale (a quarter of the cost each), so most of the work is done where it is cheap.
    """
    return [iterations * 2 ** (scales - 1 - k) for k in range(scales)]


# --------------------------------------------------------------------------------------------
# the plan: everything decided before the first iteration


@dataclass
class Inputs:
    """The run's images, opened and checked, and what the network sees of them."""

    content: Image.Image | None
    styles: list[Image.Image]
    prepared: list[PreparedStyle | None]  # per style: its targets if prepared ahead
    names: list[str]  # per style, for the record
    output_size: tuple[int, int]
    layout: MaskLayout | None
    blend: tuple[float, ...]
    seen_content: Image.Image | None  # with color preservation: gray or color-matched
    seen_styles: list[Image.Image]
    finish: Callable[[torch.Tensor], Image.Image]  # RGB tensor in [0, 1] -> output image

    @property
    def shape_source(self) -> Image.Image:
        return self.content if self.content is not None else self.styles[0]


@dataclass
class ScaleTargets:
    """What one scale optimizes towards, at its own size."""

    size: tuple[int, int]
    content: ContentTarget | None
    content_rgb: torch.Tensor | None  # the content as the network sees it
    style: StyleTarget | GuidedStyleTarget | None
    keep: torch.Tensor | None  # 1 where a mask region keeps the content


@dataclass
class Stage:
    """One scale of the run."""

    index: int
    side: int
    iterations: int  # the cap
    alpha: float  # per scale: see `Plan.stages`
    targets: ScaleTargets

    @property
    def size(self) -> tuple[int, int]:
        return self.targets.size

    def objective(self, plan: Plan, terms: Sequence[LossTerm] = ()) -> Objective:
        return Objective(self.targets.content, self.targets.style, alpha=self.alpha,
                         beta=plan.beta, tv_weight=plan.options.tv_weight,
                         tv_unit=plan.tv_unit, terms=tuple(terms))  # fmt: skip


@dataclass
class Plan:
    """Everything a run decides before its first iteration (`Plan.build` makes one)."""

    options: Options  # with `init` resolved ("auto" -> content or noise) and `seed` drawn
    photo_start: bool  # "auto" chose the photo: may be redone from noise (see STALLED_AT)
    seed: int
    device: torch.device
    layers: list[str]
    inputs: Inputs
    network: VGGFeatures
    convention: InputConvention
    weights_source: str
    sides: list[int]
    caps: list[int]
    started: float
    alpha: float = 1.0
    beta: float = 1.0
    balance: dict[str, float] = field(default_factory=dict)  # strength's units, when used
    tile: int | None = None  # the network runs in tiles of this many px (None: whole images)
    whole_sides: frozenset[int] = frozenset()  # scales small enough to run whole all the same
    setup_seconds: float = 0.0
    _targets: dict[int, ScaleTargets] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, options: Options, content: ImageSource | None, styles: list[StyleSource]
    ) -> Plan:
        started = time.perf_counter()
        options, photo_start = resolve_init(options, content is not None, bool(styles))
        seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
        torch.manual_seed(seed)
        device = resolve_device(options.device)
        configure_device(device, options.precision, options.deterministic)
        layers = ([options.content_layer] if content is not None else []) + (
            list(options.style_layers) if styles else []
        )
        inputs = open_inputs(options, content, styles, layers, device)
        tile = check_memory(inputs.output_size, layers, options, device)
        if tile is not None and inputs.layout is not None:
            raise InputError("{mask} does not work with tiled evaluation (large sizes, {tile})",
                             field=("mask", "tile"))  # fmt: skip
        network, convention, source = run_network(options, layers, device)
        sides = scale_sides(options.size, options.scales)
        caps = iteration_caps(options.iterations, len(sides))
        whole = untiled_sides(inputs.output_size, sides, layers, options, device) if tile else []
        plan = cls(options, photo_start, seed, device, layers, inputs, network, convention,
                   source, sides, caps, started, tile=tile,
                   whole_sides=frozenset(whole))  # fmt: skip
        plan.alpha, plan.beta, plan.balance = plan.weights()
        plan.setup_seconds = time.perf_counter() - started
        return plan

    @property
    def tv_unit(self) -> tuple[float, float, float]:
        return tuple(s / self.convention.scale for s in self.convention.std)  # type: ignore

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The network-space values of black and white: every step is projected into them."""
        low = self.to_network(torch.zeros(1, 3, 1, 1))
        high = self.to_network(torch.ones(1, 3, 1, 1))
        return torch.minimum(low, high), torch.maximum(low, high)

    def to_network(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.convention.to_network(rgb.to(self.device))

    def tile_at(self, side: int) -> int | None:
        """The tile size at the scale of long side `side`: None where the whole image fits."""
        return None if side in self.whole_sides else self.tile

    def evaluator(self, side: int) -> Evaluator:
        """The objective at an image of long side `side`: the network on the whole image, or tile
        by tile."""
        tile = self.tile_at(side)
        if tile is None:
            return network_evaluator(self.network)
        return tiled_evaluator(self.network, tile)

    def cost(self, side: int) -> float:
        """An iteration's work at the scale of long side `side`, in untiled pixels: tiles cost
        more per pixel (`tiling.tiled_cost`), so the time left stays honest across scales."""
        width, height = self.inputs.output_size
        shrink = side / max(width, height)
        width, height = round(width * shrink), round(height * shrink)
        tile = self.tile_at(side)
        if tile is None:
            return float(width * height)
        return width * height * tiled_cost(height, width, tile, tuple(self.layers))

    def features(self, rgb: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        """The network's responses at `layers` (no gradients), tile by tile when tiling."""
        tile = self.tile_at(max(rgb.shape[-2:]))
        with torch.no_grad():
            if tile is None:
                return self.network(rgb, layers)
            return TiledNetwork(self.network, tile).features(rgb, tuple(layers))

    def weights(self) -> tuple[float, float, dict[str, float]]:
        """alpha, beta and the pair's own units: alpha from `ratio`, else from `strength`."""
        inputs = self.inputs
        if inputs.content is None or not inputs.styles:
            return 1.0, 1.0, {}
        if self.options.ratio is not None:
            return self.options.ratio, 1.0, {}
        full = self.targets_at(self.sides[-1])
        evaluator = self.evaluator(self.sides[-1])
        balance = photo_balance(evaluator, full.content_rgb, full.content, full.style)
        return alpha_for_strength(self.options.strength, **balance), 1.0, balance

    def targets_at(self, side: int) -> ScaleTargets:
        """The scale's targets, computed once per side (the full size may come first, for the
        balance)."""
        if side not in self._targets:
            self._targets[side] = scale_targets(self, side)
        return self._targets[side]

    def stages(self) -> Iterator[Stage]:
        """The scales, coarse to fine. The content term sums over positions while E_l is per
        position: scaling alpha by the ratio of positions keeps every scale's balance that of the
        full-size objective."""
        width, height = self.inputs.output_size
        for index, side in enumerate(self.sides):
            targets = self.targets_at(side)
            del self._targets[side]  # a scale's targets are not needed after it
            alpha = self.alpha * (width * height) / (targets.size[0] * targets.size[1])
            yield Stage(index, side, self.caps[index], alpha, targets)

    def detail_noise(self, stage: Stage) -> torch.Tensor:
        """UPSAMPLED_DETAIL's white noise in network units, from the seed and the scale (a CPU
        generator, so every device gets the same)."""
        width, height = stage.size
        generator = torch.Generator().manual_seed(self.seed + stage.index)
        noise = torch.randn((1, 3, height, width), generator=generator)
        noise = noise * UPSAMPLED_DETAIL
        std = torch.tensor(self.convention.std).view(1, 3, 1, 1)
        return (noise * self.convention.scale / std).to(self.device)

    def start_image(
        self, stage: Stage, previous: torch.Tensor | None, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The first scale starts from `start` (RGB in [0, 1]: video's warped frame) if given,
        else from `init`; each later one from the one before, upsampled."""
        width, height = stage.size
        if previous is not None:
            upsampled = F.interpolate(previous, size=(height, width), mode="bicubic",
                                      align_corners=False)  # fmt: skip
            return upsampled + self.detail_noise(stage)
        if start is not None:
            return self.to_network(_resized(start, stage.size))
        inputs = self.inputs
        first = initial_image(self.options, stage.size, inputs.seen_content,
                              inputs.seen_styles[:1], self.seed)  # fmt: skip
        return self.to_network(first)

    def noise_start(self, stage: Stage) -> torch.Tensor:
        noise = initial_image(replace(self.options, init="noise"), stage.size, None, [], self.seed)
        return self.to_network(noise)

    def finish_image(self, image: torch.Tensor) -> Image.Image:
        """The output: color preservation applied, at full size even if stopped early."""
        result = self.inputs.finish(self.convention.from_network(image.float()))
        if result.size != self.inputs.output_size:  # interrupted before the last scale
            result = resize_to(result, self.inputs.output_size)
        result.info.update(print_info(self.inputs.content))  # the photo's ICC profile and DPI
        return result

    def finish_rgb(self, image: torch.Tensor) -> torch.Tensor:
        """The output as RGB floats in [0, 1] on the CPU, not rounded to 8 bits (bit_depth 16;
        not with luminance color preservation, which options refuse)."""
        rgb = self.convention.from_network(image.detach().float()).clamp(0, 1)
        width, height = self.inputs.output_size
        if rgb.shape[-2:] != (height, width):
            rgb = F.interpolate(rgb, size=(height, width), mode="bicubic", align_corners=False)
        return rgb.clamp(0, 1).cpu()


def resolve_init(options: Options, has_content: bool, has_styles: bool) -> tuple[Options, bool]:
    """ "auto" starts a transfer from the photo (the paper's look in a fraction of the iterations
    white noise needs); a texture or a reconstruction from the photo would be no test."""
    if options.init != "auto":
        return options, False
    photo_start = has_content and has_styles
    return replace(options, init="content" if photo_start else "noise"), photo_start


def open_inputs(
    options: Options,
    content_source: ImageSource | None,
    style_sources: list[StyleSource],
    layers: list[str],
    device: torch.device,
) -> Inputs:
    """Open and check every input before any work: sizes, memory, controls, mask."""
    min_side = min_input_side(layers)
    check_controls(options, content_source is not None, len(style_sources))
    content = open_image(content_source, role="content image") if content_source else None
    prepared, styles = _open_styles(options, style_sources)
    for image, role in ((content, "content image"), *((s, "style image") for s in styles)):
        if image is not None:
            check_min_size(image, min_side, role=role)
    output = resize_long_side(content if content is not None else styles[0], options.size)
    check_min_size(output, min_side, role="output at this {size}", field="size")
    blend = normalized_blend(options.style_blend, len(styles)) if styles else ()
    layout = None
    if options.mask is not None and content is not None:
        layout = read_mask(options.mask, content.size, len(styles), options.mask_map)
    seen_content, seen_styles, finish = color_inputs(options.preserve_color, content, styles)
    names = [_source_name(source) for source in style_sources]
    return Inputs(content, styles, prepared, names, output.size, layout, blend, seen_content,
                  seen_styles, finish)  # fmt: skip


def _open_styles(
    options: Options, sources: list[StyleSource]
) -> tuple[list[PreparedStyle | None], list[Image.Image]]:
    prepared: list[PreparedStyle | None] = []
    styles: list[Image.Image] = []
    for number, source in enumerate(sources, 1):
        role = "style image" if len(sources) == 1 else f"style image {number}"
        if isinstance(source, PreparedStyle):
            if source.key != style_key(options):
                raise ValueError("this PreparedStyle was made with other options than this run's")
            prepared.append(source)
            styles.append(source.image)
        else:
            prepared.append(None)
            styles.append(open_image(source, role=role))
    return prepared, styles


def check_controls(options: Options, has_content: bool, styles: int) -> None:
    """Controls that make no sense for this kind of run are errors, not silently ignored."""
    needs = [
        ("preserve_color", options.preserve_color != "none", True),
        ("mask", options.mask is not None, True),
        ("style_blend", options.style_blend is not None, False),
    ]
    for name, given, needs_content in needs:
        if given and not styles:
            raise InputError(f"{{{name}}} needs a style image", field=name)
        if given and needs_content and not has_content:
            raise InputError(f"{{{name}}} needs a content image", field=name)


def check_memory(
    size: tuple[int, int], layers: list[str], options: Options, device: torch.device
) -> int | None:
    """The tile size the run needs (None: whole images fit), or an InputError if even tiles do
    not fit. `options.tile` forces a tile size; 0 never tiles."""
    width, height = size
    budget = available_bytes(device)
    kind, optimizer, iterations = device.type, options.optimizer, options.iterations
    content = options.content_layer if options.content_layer in layers else None

    def tiled(tile: int) -> int:
        return estimate_tiled_peak_bytes(width, height, layers, tile, optimizer, iterations, kind,
                                         content)  # fmt: skip

    if options.tile:
        if budget is not None and tiled(options.tile) > budget:
            raise InputError(
                f"{{size}} {options.size} needs about {tiled(options.tile) / 1024**3:.1f} GiB "
                f"even in tiles of {options.tile} px, but only {budget / 1024**3:.1f} GiB is "
                f"free on {kind}",
                field="size",
            )
        return options.tile
    needed = estimate_peak_bytes(width, height, layers, optimizer, iterations, kind)
    if budget is None or needed <= budget:
        return None
    if options.tile is None:
        tile = fitting_tile(width, height, layers, budget, optimizer, iterations, kind, content)
        if tile is not None:
            return tile
        raise InputError(f"{{size}} {options.size} needs about "
                         f"{tiled(TILE_SIZES[-1]) / 1024**3:.1f} GiB even in tiles of "
                         f"{TILE_SIZES[-1]} px, but only {budget / 1024**3:.1f} GiB is free on "
                         f"{kind}", field="size")  # fmt: skip
    fits = largest_fitting_size(height / width, layers, optimizer, budget, iterations, kind)
    raise InputError(
        f"{{size}} {options.size} needs about {needed / 1024**3:.1f} GiB but only "
        f"{budget / 1024**3:.1f} GiB is free on {kind}; untiled ({{tile}} 0), the largest "
        f"size that fits is about {{size}} {fits}",
        field=("size", "tile"),
    )


def scale_targets(plan: Plan, side: int) -> ScaleTargets:
    """The content target, the content as the network sees it, the style target and the map of
    regions that keep the content, at the scale whose long side is `side`."""
    inputs, options, network = plan.inputs, plan.options, plan.network
    scaled = resize_long_side(inputs.shape_source, side)
    check_min_size(scaled, min_input_side(plan.layers), role=f"output at scale {side} px")
    content = style = content_rgb = keep = None
    if inputs.seen_content is not None:
        with torch.no_grad():
            content_rgb = plan.to_network(image_to_tensor(resize_to(inputs.seen_content,
                                                                    scaled.size)))  # fmt: skip
            content = ContentTarget(plan.features(content_rgb, [options.content_layer]))
    if inputs.styles:
        targets = [
            ready.targets[side]
            if ready is not None
            else style_target(
                options, image, side, network, plan.convention, plan.device, tile=plan.tile_at(side)
            )
            for ready, image in zip(inputs.prepared, inputs.seen_styles, strict=True)
        ]
        maps = None
        if inputs.layout is not None:
            maps = region_maps(inputs.layout, scaled.size).to(plan.device)
            keep = keep_map(inputs.layout, maps)
        style = combined_style_target(targets, inputs.blend, inputs.layout, maps)
    return ScaleTargets(scaled.size, content, content_rgb, style, keep)


def prepared_style(
    options: Options,
    image: Image.Image,
    network: VGGFeatures,
    convention: InputConvention,
    device: torch.device,
    extra_sides: Sequence[int] = (),
) -> PreparedStyle:
    """A style's Gram targets at every scale of a run with these options (and at `extra_sides`:
    video's coarse pass), computed once (batch, video, `api.prepare_style`)."""
    sides = sorted({*scale_sides(options.size, options.scales), *extra_sides})
    targets = {
        side: style_target(
            options, image, side, network, convention, device, tile=style_tile(options, side)
        )
        for side in sides
    }
    return PreparedStyle(image, targets, style_key(options))


def untiled_sides(
    output_size: tuple[int, int],
    sides: Sequence[int],
    layers: list[str],
    options: Options,
    device: torch.device,
) -> list[int]:
    """The scales of a tiled run that fit in memory whole. A tile costs about 4/3 x its halo's
    area in time (two passes), so auto tiling (no `tile` given) tiles only the scales that need
    it; `tile` given tiles every scale, as asked."""
    if options.tile is not None:
        return []
    width, height = output_size
    budget = available_bytes(device)
    whole = []
    for side in sides:
        shrink = side / max(width, height)
        scaled = round(width * shrink), round(height * shrink)
        needed = estimate_peak_bytes(*scaled, layers, options.optimizer, options.iterations,
                                     device.type)  # fmt: skip
        if budget is None or needed <= budget:
            whole.append(side)
    return whole


def style_tile(options: Options, side: int) -> int | None:
    """Above LARGE_SIZE a style's Grams are taken in tiles (the same values, bounded memory)."""
    if options.tile == 0 or (options.tile is None and side <= LARGE_SIZE):
        return None
    return options.tile or TILE_SIZES[0]


def style_target(
    options: Options,
    style: Image.Image,
    side: int,
    network: VGGFeatures,
    convention: InputConvention,
    device: torch.device,
    *,
    tile: int | None = None,
) -> StyleTarget:
    """Gram targets of the style image at the scale's size, so strokes keep their proportion.

    `style_scale` resizes the style relative to the output: 2 gives strokes twice as big. With
    `tile`, the Grams are summed tile by tile (the style is as large as the output).
    """
    resized = resize_long_side(style, max(1, round(side * options.style_scale)))
    check_min_size(resized, min_input_side(options.style_layers), role=f"style image at {side} px")
    weights = equal_weights(options.style_layers)
    with torch.no_grad():
        rgb = convention.to_network(image_to_tensor(resized).to(device))
        if tile is not None:
            return TiledNetwork(network, tile).style_target(rgb, weights)
        features = network(rgb, options.style_layers)
    return StyleTarget.from_features(features, weights)


def photo_balance(
    evaluator: Evaluator,
    content_rgb: torch.Tensor,
    content_target: ContentTarget,
    style_target: StyleTarget | GuidedStyleTarget,
) -> dict[str, float]:
    """The pair's own units (strength.py): the photo's content energy and its own style loss."""
    photo_style_loss = float(evaluate(evaluator, Objective(None, style_target), content_rgb).style)
    content_energy = sum(0.5 * float(p.double().pow(2).sum())
                         for p in content_target.features.values())  # fmt: skip
    return {"content_energy": content_energy, "photo_style_loss": photo_style_loss}


def initial_image(
    options: Options,
    size: tuple[int, int],
    content: Image.Image | None,
    styles: list[Image.Image],
    seed: int,
) -> torch.Tensor:
    """White noise (the paper), the content or style image, or an image file, as RGB in [0, 1].

    The noise comes from its own CPU generator, so a seed gives the same start on every device.
    """
    if options.init == "noise":
        generator = torch.Generator().manual_seed(seed)
        return torch.rand((1, 3, size[1], size[0]), generator=generator)
    if options.init == "content":
        if content is None:
            raise InputError("{init} content needs a content image", field="init")
        return image_to_tensor(resize_to(content, size))
    if options.init == "style":
        if not styles:
            raise InputError("{init} style needs a style image", field="init")
        return image_to_tensor(resize_to(styles[0], size))
    return image_to_tensor(resize_to(open_image(options.init, role="init image"), size))


def style_key(options: Options) -> tuple:
    """The options a style's prepared targets depend on."""
    return (
        options.weights,
        options.normalize,
        options.pooling,
        options.style_layers,
        options.size,
        options.scales,
        options.device,
        options.precision,
        options.style_scale,
        options.preserve_color,
    )


def run_network(
    options: Options, layers: list[str], device: torch.device
) -> tuple[VGGFeatures, InputConvention, str]:
    """The network for these layers, with its input convention and where its weights came from."""
    return build_network(layers, weights=options.weights, normalize=options.normalize,
                         pooling=options.pooling, device=device)  # fmt: skip


def _source_name(source: object) -> str:
    if isinstance(source, PreparedStyle):
        return "prepared style"
    if isinstance(source, (str, os.PathLike)):
        return os.path.basename(os.fspath(source))
    return "image"


# --------------------------------------------------------------------------------------------
# running a stage


class Tracker:
    """The run-wide count of iterations, the loss history and the `Progress` callers see."""

    def __init__(self, plan: Plan, callback: ProgressCallback | None) -> None:
        self.plan, self.callback = plan, callback
        self.work = [plan.cost(side) * cap for side, cap in zip(plan.sides, plan.caps, strict=True)]
        self.iterations_cap = sum(plan.caps)  # grows when a scale is redone
        self.iterations_done = 0
        self.history: list[dict] = []
        self.started = time.perf_counter()

    def stage_callback(self, stage: Stage) -> Callable | None:
        """Turn one scale's (iteration, loss, image) into the run-wide `Progress`."""
        if self.callback is None:
            return None
        callback, plan, before = self.callback, self.plan, self.iterations_done
        done_before, cap = sum(self.work[: stage.index]), self.iterations_cap

        def stage_callback(iteration: int, loss, current: torch.Tensor) -> None:
            fraction = (done_before + plan.cost(stage.side) * iteration) / sum(self.work)
            callback(Progress(iteration=before + iteration, iterations=cap, loss=loss,
                              image=plan.convention.from_network(current),
                              elapsed=time.perf_counter() - self.started, scale=stage.index,
                              scales=len(plan.sides), fraction=min(1.0, fraction),
                              finish=plan.inputs.finish))  # fmt: skip

        return stage_callback

    def add(self, stage: Stage, optimization: OptimizationResult) -> None:
        self.history += [
            {**entry, "iteration": self.iterations_done + entry["iteration"], "scale": stage.index}
            for entry in optimization.history
        ]
        self.iterations_done += optimization.iterations


@dataclass
class StageReport:
    """How a stage went: the optimization kept, and the restart if there was one."""

    stage: Stage
    optimization: OptimizationResult
    restart: dict | None = None


def run_stage(
    plan: Plan,
    stage: Stage,
    objective: Objective,
    start: torch.Tensor,
    evaluator: Evaluator,
    tracker: Tracker,
    cancel: Cancel | None = None,
) -> StageReport:
    """Optimize one scale. Some styles leave L-BFGS crawling from the photo (the loss falls by a
    fraction of a percent per step) where from white noise it falls fast: the cheapest scale is
    then redone from noise and the run goes on from whichever start ended lower."""
    first = optimize_stage(plan, stage, objective, start, evaluator, tracker, cancel)
    if not (stage.index == 0 and plan.photo_start and stalled(first)):
        return StageReport(stage, first)
    tracker.iterations_cap += first.iterations
    second = optimize_stage(plan, stage, objective, plan.noise_start(stage), evaluator, tracker,
                            cancel)  # fmt: skip
    noise_won = float(second.loss.total) <= float(first.loss.total)
    kept = second if noise_won else first
    if second.stop_reason == "interrupted":  # a cancel stops the run either way
        kept = replace(kept, stop_reason="interrupted")
    restart = {
        "scale": stage.index,
        "why": f"from the photo the loss fell less than {1 / STALLED_AT:.0f}-fold",
        "kept": "noise" if noise_won else "content",
        "from_content": _attempt(first),
        "from_noise": _attempt(second),
    }
    return StageReport(stage, kept, restart)


def optimize_stage(
    plan: Plan,
    stage: Stage,
    objective: Objective,
    start: torch.Tensor,
    evaluator: Evaluator,
    tracker: Tracker,
    cancel: Cancel | None = None,
) -> OptimizationResult:
    """One optimization of one scale from `start`."""
    keep, content_rgb = stage.targets.keep, stage.targets.content_rgb
    if keep is not None and content_rgb is not None:
        # Regions that keep the content start as the content and never move (free = 0).
        start = keep * content_rgb + (1 - keep) * start
    convention, options = plan.convention, plan.options
    optimization = optimize(
        evaluator,
        objective,
        start,
        iterations=stage.iterations,
        optimizer=options.optimizer,
        learning_rate=options.learning_rate * convention.scale / min(convention.std),
        tolerance=options.tolerance,
        # Per-pixel gradients shrink with the number of positions; L-BFGS ignores curvature
        # pairs with s.y < 1e-10 and then never leaves its start. Scaling the loss (not its
        # minimum) by the positions keeps the gradients O(1) at every size.
        loss_scale=float(stage.size[0] * stage.size[1]),
        bounds=plan.bounds,
        free=None if keep is None else 1 - keep,
        callback=tracker.stage_callback(stage),
        cancel=cancel,
    )
    tracker.add(stage, optimization)
    return optimization


def stalled(optimization: OptimizationResult) -> bool:
    """True when a scale of at least STALL_EVIDENCE iterations ended above STALLED_AT of the loss
    it started with. Fewer steps say nothing: from the photo L-BFGS may climb for a while first.
    """
    if optimization.iterations < STALL_EVIDENCE:
        return False
    if optimization.stop_reason not in ("iterations", "converged"):
        return False
    return float(optimization.loss.total) > STALLED_AT * optimization.history[0]["total"]


def _attempt(optimization: OptimizationResult) -> dict:
    first = optimization.history[0]["total"] if optimization.history else None
    return {"iterations": optimization.iterations, "first_loss": first,
            "final_loss": float(optimization.loss.total)}  # fmt: skip


# --------------------------------------------------------------------------------------------
# the record


def build_record(
    plan: Plan, reports: list[StageReport], output: Image.Image, iterations: int, seconds: float
) -> dict:
    """The JSON record of the run: options, network, every scale, restarts, timings."""
    options, inputs = plan.options, plan.inputs
    stages = [_stage_record(plan, report) for report in reports]
    stop_reason = stages[-1]["stop_reason"]
    if stop_reason in ("iterations", "converged") and len(stages) < len(plan.sides):
        stop_reason = "interrupted"
    has_content, styles = inputs.content is not None, inputs.styles
    command = "transfer" if has_content and styles else "texture" if styles else "reconstruct"
    record = {
        "command": command,
        "options": {**_record_options(options), "seed": plan.seed},
        "device": str(plan.device),
        "weights": plan.weights_source,
        "input_convention": plan.convention.name,
        "output_size": list(output.size),
        "iterations": iterations,
        "stop_reason": stop_reason,
        "alpha": plan.alpha,
        "beta": plan.beta,
        **({"balance": plan.balance} if plan.balance else {}),
        **({"tile": plan.tile} if plan.tile is not None else {}),
        "final_loss": stages[-1]["loss"],
        "scales": stages,
        "restarts": [report.restart for report in reports if report.restart is not None],
        "timings": {
            "setup_seconds": round(plan.setup_seconds, 3),
            "optimization_seconds": round(seconds, 3),
            "seconds_per_iteration": round(seconds / max(1, iterations), 4),
        },
        "versions": package_versions(),
    }
    if len(styles) > 1 or inputs.layout is not None:
        record["styles"] = inputs.names
        if inputs.layout is None:
            record["style_blend"] = list(inputs.blend)
        else:
            record["mask_regions"] = inputs.layout.describe(inputs.names)
    return record


def _stage_record(plan: Plan, report: StageReport) -> dict:
    optimization = report.optimization
    return {
        "size": list(report.stage.size),
        "iterations": optimization.iterations,
        "stop_reason": optimization.stop_reason,
        "seconds": round(optimization.seconds, 3),
        "alpha": report.stage.alpha,
        "beta": plan.beta,
        **({"tile": plan.tile_at(report.stage.side)} if plan.tile is not None else {}),
        "tv_weight": plan.options.tv_weight,
        "loss": optimization.loss.as_floats(),
    }


def _record_options(options: Options) -> dict:
    """The options as JSON: a mask given as a PIL image is recorded as '<image>'."""
    mask = options.mask
    values = asdict(replace(options, mask=None))
    values["mask"] = mask if mask is None or isinstance(mask, str) else "<image>"
    return values
