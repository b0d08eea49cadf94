"""The Python API: PIL images (or paths) in, PIL images out.

`transfer`, `texture` and `reconstruct` are the paper's three uses of one machinery: match content
and style, style only (Figure 1, top), or content only (Figure 1, bottom). The `run_*` variants
return a `Result` with the record of the run as well. Nothing here touches output files.

A run goes coarse to fine (Gatys et al. 2017, "Controlling Perceptual Factors"): it optimizes at a
fraction of the size first, upsamples the result as the start of the next scale and finishes at
full size; `scales=1` is the paper's single-scale procedure.

The creative controls (several styles, style scale, color preservation, masks, total variation)
are options too; their pieces live in `controls.py` and `losses.py`.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Sequence
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
    resize_long_side,
    resize_to,
)
from .losses import ContentTarget, GuidedStyleTarget, Objective, StyleTarget, equal_weights
from .memory import available_bytes, estimate_peak_bytes, largest_fitting_size
from .network import build_network, configure_device, resolve_device
from .optimize import CHECK_EVERY, OptimizationResult, Progress, ProgressCallback, optimize
from .options import Options, normalized_blend
from .record import package_versions
from .strength import alpha_for_strength
from .vgg import VGGFeatures, min_input_side
from .weights import InputConvention

ImageSource = str | os.PathLike | Image.Image
MIN_SCALE_SIDE = 64  # coarser scales than this teach the optimizer little
# A coarsest scale started from the photo that does not bring its loss below this share of its
# first is stuck: photo pairs fall 100-250-fold there (Tubingen with the paper's paintings, 128
# px, 80 steps), the demo's painted style 6-fold or less. It is redone from white noise and the
# lower one kept, so a false alarm costs time (that scale once more), never quality.
STALLED_AT = 0.05
STALL_EVIDENCE = 2 * CHECK_EVERY


@dataclass
class Result:
    """An output image and the record of how it was made (JSON-ready)."""

    image: Image.Image
    record: dict = field(repr=False)
    optimization: OptimizationResult = field(repr=False)  # of the last (full-size) scale
    # the loss at every iteration of every scale: iteration (counted over all scales), scale,
    # and total, content, style, tv as in `LossTerms` (the weights are in record["scales"])
    history: list[dict] = field(default_factory=list, repr=False)

    @property
    def stop_reason(self) -> str:
        return self.record["stop_reason"]


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
Styles = StyleSource | Sequence[StyleSource]


def run_transfer(
    content: ImageSource,
    style: Styles,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    **values: object,
) -> Result:
    """Paint `content` in the style of `style` (keyword options as in `Options`).

    `style` may be a `PreparedStyle` from `prepare_style`, to reuse one style's targets, or a
    list of styles: their Gram targets are blended (`style_blend`, equal by default), or with a
    `mask`, each region of the mask takes one of them.
    """
    return _synthesize(_options(options, values), content, _style_list(style), callback)


def run_texture(
    style: Styles,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    **values: object,
) -> Result:
    """Style reconstruction: an image with `style`'s Gram statistics and no content."""
    return _synthesize(_options(options, values), None, _style_list(style), callback)


def run_reconstruction(
    content: ImageSource,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    **values: object,
) -> Result:
    """Content reconstruction from one layer (`content_layer`) and no style."""
    return _synthesize(_options(options, values), content, [], callback)


def transfer(content: ImageSource, style: Styles, **values: object) -> Image.Image:
    return run_transfer(content, style, **values).image


def texture(style: Styles, **values: object) -> Image.Image:
    return run_texture(style, **values).image


def reconstruct(content: ImageSource, **values: object) -> Image.Image:
    return run_reconstruction(content, **values).image


def prepare_style(
    style: ImageSource, options: Options | None = None, **values: object
) -> PreparedStyle:
    """The style's Gram targets for every scale of a run with these options, computed once."""
    options = _options(options, values)
    if options.preserve_color != "none":
        raise InputError(
            f"--preserve-color {options.preserve_color} matches the style to each content "
            "image, so its targets cannot be prepared ahead; give the style image itself"
        )
    device = resolve_device(options.device)
    configure_device(device, options.precision, options.deterministic)
    image = open_image(style, role="style image")
    check_min_size(image, min_input_side(options.style_layers), role="style image")
    network, convention, _ = _network(options, list(options.style_layers), device)
    targets = {
        side: _style_target(options, image, side, network, convention, device)
        for side in scale_sides(options.size, options.scales)
    }
    return PreparedStyle(image, targets, _style_key(options))


def scale_sides(size: int, scales: int) -> list[int]:
    """Long sides of the scales, halving from `size`; none coarser than MIN_SCALE_SIDE."""
    sides = [round(size / 2**k) for k in range(scales)]
    return sorted({side for side in sides if side >= MIN_SCALE_SIDE} | {size})


def iteration_caps(iterations: int, scales: int) -> list[int]:
    """Most iterations per scale, coarse to fine: `iterations` at full size, twice as many at
    each coarser scale (a quarter of the cost each), so most of the work is done where it is cheap.
    """
    return [iterations * 2 ** (scales - 1 - k) for k in range(scales)]


def _options(options: Options | None, values: dict) -> Options:
    return (options or Options()).with_values(**values).validated()


def _network(
    options: Options, layers: list[str], device: torch.device
) -> tuple[VGGFeatures, InputConvention, str]:
    return build_network(
        layers,
        weights=options.weights,
        normalize=options.normalize,
        pooling=options.pooling,
        device=device,
    )


def _style_key(options: Options) -> tuple:
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


def _style_list(style: Styles) -> list[StyleSource]:
    if isinstance(style, (list, tuple)):
        if not style:
            raise InputError("give at least one style image")
        return list(style)
    return [style]


def _source_name(source: object) -> str:
    if isinstance(source, PreparedStyle):
        return "prepared style"
    if isinstance(source, (str, os.PathLike)):
        return os.path.basename(os.fspath(source))
    return "image"


def _check_controls(options: Options, has_content: bool, styles: int) -> None:
    """Controls that make no sense for this kind of run are errors, not silently ignored."""
    needs = [
        ("--preserve-color", options.preserve_color != "none", True),
        ("--mask", options.mask is not None, True),
        ("--style-blend", options.style_blend is not None, False),
    ]
    for flag, given, needs_content in needs:
        if given and not styles:
            raise InputError(f"{flag} needs a style image")
        if given and needs_content and not has_content:
            raise InputError(f"{flag} needs a content image")


def _to_network(
    rgb: torch.Tensor, convention: InputConvention, device: torch.device
) -> torch.Tensor:
    return convention.to_network(rgb.to(device))


def _style_target(
    options: Options,
    style: Image.Image,
    side: int,
    network: VGGFeatures,
    convention: InputConvention,
    device: torch.device,
) -> StyleTarget:
    """Gram targets of the style image at the scale's size, so strokes keep their proportion.

    `style_scale` resizes the style relative to the output: 2 gives strokes twice as big.
    """
    resized = resize_long_side(style, max(1, round(side * options.style_scale)))
    check_min_size(resized, min_input_side(options.style_layers), role=f"style image at {side} px")
    with torch.no_grad():
        rgb = _to_network(image_to_tensor(resized), convention, device)
        features = network(rgb, options.style_layers)
    return StyleTarget.from_features(features, equal_weights(options.style_layers))


def _check_memory(output: Image.Image, layers: list[str], options: Options, device) -> None:
    budget = available_bytes(device)
    if budget is None:
        return
    width, height = output.size
    kind = device.type
    needed = estimate_peak_bytes(width, height, layers, options.optimizer, options.iterations, kind)
    if needed > budget:
        fits = largest_fitting_size(
            height / width, layers, options.optimizer, budget, options.iterations, kind
        )
        raise InputError(
            f"--size {options.size} needs about {needed / 1024**3:.1f} GiB but only "
            f"{budget / 1024**3:.1f} GiB is free on {device.type}; the largest size that fits "
            f"is about --size {fits}"
        )


def _synthesize(
    options: Options,
    content_source: ImageSource | None,
    style_sources: list[StyleSource],
    callback: ProgressCallback | None,
) -> Result:
    started = time.perf_counter()
    photo_start = False  # "auto" chose the photo: may fall back to noise (see STALLED_AT)
    if options.init == "auto":
        # A transfer from the photo gets the paper's look in a fraction of the iterations that
        # white noise needs; a texture or a reconstruction from the photo would be no test.
        photo_start = content_source is not None and bool(style_sources)
        options = replace(options, init="content" if photo_start else "noise")
    seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
    torch.manual_seed(seed)
    device = resolve_device(options.device)
    configure_device(device, options.precision, options.deterministic)

    layers = ([options.content_layer] if content_source is not None else []) + (
        list(options.style_layers) if style_sources else []
    )
    min_side = min_input_side(layers)
    _check_controls(options, content_source is not None, len(style_sources))
    content = open_image(content_source, role="content image") if content_source else None
    prepared: list[PreparedStyle | None] = []
    styles: list[Image.Image] = []
    for number, source in enumerate(style_sources, 1):
        role = "style image" if len(style_sources) == 1 else f"style image {number}"
        if isinstance(source, PreparedStyle):
            if source.key != _style_key(options):
                raise ValueError("this PreparedStyle was made with other options than this run's")
            prepared.append(source)
            styles.append(source.image)
        else:
            prepared.append(None)
            styles.append(open_image(source, role=role))
    for image, role in ((content, "content image"), *((s, "style image") for s in styles)):
        if image is not None:
            check_min_size(image, min_side, role=role)
    shape_source = content if content is not None else styles[0]
    output = resize_long_side(shape_source, options.size)
    check_min_size(output, min_side, role="output at this --size")
    _check_memory(output, layers, options, device)
    blend = normalized_blend(options.style_blend, len(styles)) if styles else ()
    layout: MaskLayout | None = None
    if options.mask is not None and content is not None:
        layout = read_mask(options.mask, content.size, len(styles), options.mask_map)
    # What the network sees: with --preserve-color, gray or color-matched images.
    seen_content, seen_styles, finish = color_inputs(options.preserve_color, content, styles)

    network, convention, weights_source = _network(options, layers, device)
    sides = scale_sides(options.size, options.scales)
    ready_targets: dict[int, tuple] = {}

    def targets_at(side: int) -> tuple:
        """The scale's size, content target, content as the network sees it, style target and
        the map of regions that keep the content (once per side: the full size comes first, for
        the balance)."""
        if side not in ready_targets:
            scaled = resize_long_side(shape_source, side)
            check_min_size(scaled, min_side, role=f"output at scale {side} px")
            content_target = style_target = content_rgb = maps = keep = None
            if seen_content is not None:
                with torch.no_grad():
                    content_rgb = _to_network(image_to_tensor(resize_to(seen_content,
                                              scaled.size)), convention, device)  # fmt: skip
                    content_target = ContentTarget(network(content_rgb, [options.content_layer]))
            if styles:
                targets = [
                    ready.targets[side]
                    if ready is not None
                    else _style_target(options, style, side, network, convention, device)
                    for ready, style in zip(prepared, seen_styles, strict=True)
                ]
                if layout is not None:
                    maps = region_maps(layout, scaled.size).to(device)
                    keep = keep_map(layout, maps)
                style_target = combined_style_target(targets, blend, layout, maps)
            ready_targets[side] = (scaled, content_target, content_rgb, style_target, keep)
        return ready_targets[side]

    balance: dict[str, float] = {}
    if content is not None and styles:
        if options.ratio is not None:
            alpha = options.ratio
        else:
            _, content_target, content_rgb, style_target, _ = targets_at(sides[-1])
            balance = _photo_balance(network, content_rgb, content_target, style_target)
            alpha = alpha_for_strength(options.strength, **balance)
        beta = 1.0
    else:
        alpha = beta = 1.0
    tv_unit = tuple(s / convention.scale for s in convention.std)
    caps = iteration_caps(options.iterations, len(sides))
    work = [side * side * cap for side, cap in zip(sides, caps, strict=True)]  # for time left
    iterations_cap = sum(caps)
    setup_seconds = time.perf_counter() - started

    low = convention.to_network(torch.zeros(1, 3, 1, 1, device=device))
    high = convention.to_network(torch.ones(1, 3, 1, 1, device=device))
    bounds = (torch.minimum(low, high), torch.maximum(low, high))
    image: torch.Tensor | None = None
    stages: list[dict] = []
    history: list[dict] = []
    restarts: list[dict] = []
    iterations_before = 0
    optimization_started = time.perf_counter()
    for index, side in enumerate(sides):
        scaled, content_target, content_rgb, style_target, keep = targets_at(side)
        del ready_targets[side]  # a scale's targets are not needed after it
        # The content term sums over positions while E_l is per position: scaling alpha by the
        # ratio of positions keeps every scale's balance that of the full-size objective.
        positions = scaled.width * scaled.height
        scale_alpha = alpha * (output.width * output.height) / positions
        objective = Objective(content_target, style_target, alpha=scale_alpha, beta=beta,
                              tv_weight=options.tv_weight, tv_unit=tv_unit)  # fmt: skip

        if image is None:
            first = _initial_image(options, scaled, seen_content, seen_styles[:1], seed)
            start = _to_network(first, convention, device)
        else:
            start = F.interpolate(
                image, size=(scaled.height, scaled.width), mode="bicubic", align_corners=False
            )
        attempts: list[OptimizationResult] = []
        while start is not None:
            if keep is not None and content_rgb is not None:
                # Regions that keep the content start as the content and never move (free = 0).
                start = keep * content_rgb + (1 - keep) * start
            stage_callback = None
            if callback is not None:
                stage_callback = _stage_progress(
                    callback, convention, index, sides, work, iterations_before,
                    iterations_cap, optimization_started, finish,
                )  # fmt: skip
            optimization = optimize(
                network,
                objective,
                start,
                iterations=caps[index],
                optimizer=options.optimizer,
                learning_rate=options.learning_rate * convention.scale / min(convention.std),
                tolerance=options.tolerance,
                # Per-pixel gradients shrink with the number of positions; L-BFGS ignores
                # curvature pairs with s.y < 1e-10 and then never leaves its start. Scaling the
                # loss (not its minimum) by the positions keeps the gradients O(1) at every size.
                loss_scale=float(positions),
                bounds=bounds,
                free=None if keep is None else 1 - keep,
                callback=stage_callback,
            )
            history += [
                {**entry, "iteration": iterations_before + entry["iteration"], "scale": index}
                for entry in optimization.history
            ]
            iterations_before += optimization.iterations
            attempts.append(optimization)
            start = None
            if index == 0 and photo_start and len(attempts) == 1 and _stalled(optimization):
                # Some styles leave L-BFGS crawling from the photo (the loss falls by a fraction
                # of a percent per step) where from white noise it falls fast: redo this
                # cheapest scale from noise and go on from whichever start ended lower.
                iterations_cap += optimization.iterations
                noise = _initial_image(replace(options, init="noise"), scaled, None, [], seed)
                start = _to_network(noise, convention, device)
        if len(attempts) > 1:
            from_content, from_noise = attempts
            noise_won = float(from_noise.loss.total) <= float(from_content.loss.total)
            optimization = from_noise if noise_won else from_content
            if from_noise.stop_reason == "interrupted":  # Ctrl-C stops the run either way
                optimization = replace(optimization, stop_reason="interrupted")
            restarts.append(
                {
                    "scale": index,
                    "why": f"from the photo the loss fell less than {1 / STALLED_AT:.0f}-fold",
                    "kept": "noise" if noise_won else "content",
                    "from_content": _attempt(from_content),
                    "from_noise": _attempt(from_noise),
                }
            )
        image = optimization.image
        stages.append(
            {
                "size": [scaled.width, scaled.height],
                "iterations": optimization.iterations,
                "stop_reason": optimization.stop_reason,
                "seconds": round(optimization.seconds, 3),
                "alpha": scale_alpha,
                "beta": beta,
                "tv_weight": options.tv_weight,
                "loss": optimization.loss.as_floats(),
            }
        )
        if optimization.stop_reason in ("interrupted", "diverged"):
            break

    result_image = finish(convention.from_network(image.float()))
    if result_image.size != output.size:  # interrupted before the last scale
        result_image = resize_to(result_image, output.size)
    seconds = time.perf_counter() - optimization_started
    final = stages[-1]
    stop_reason = final["stop_reason"]
    if stop_reason in ("iterations", "converged") and len(stages) < len(sides):
        stop_reason = "interrupted"
    command = "transfer" if content is not None and styles else "texture" if styles else None
    record = {
        "command": command or "reconstruct",
        "options": {**_record_options(options), "seed": seed},
        "device": str(device),
        "weights": weights_source,
        "input_convention": convention.name,
        "output_size": list(result_image.size),
        "iterations": iterations_before,
        "stop_reason": stop_reason,
        "alpha": alpha,
        "beta": beta,
        **({"balance": balance} if balance else {}),
        "final_loss": final["loss"],
        "scales": stages,
        "restarts": restarts,
        "timings": {
            "setup_seconds": round(setup_seconds, 3),
            "optimization_seconds": round(seconds, 3),
            "seconds_per_iteration": round(seconds / max(1, iterations_before), 4),
        },
        "versions": package_versions(),
    }
    if len(styles) > 1 or layout is not None:
        names = [_source_name(source) for source in style_sources]
        record["styles"] = names
        if layout is None:
            record["style_blend"] = list(blend)
        else:
            record["mask_regions"] = layout.describe(names)
    return Result(result_image, record, optimization, history)


def _photo_balance(
    network: VGGFeatures,
    content_rgb: torch.Tensor,
    content_target: ContentTarget,
    style_target: StyleTarget | GuidedStyleTarget,
) -> dict[str, float]:
    """The pair's own units (strength.py): the photo's content energy and its own style loss."""
    with torch.no_grad():
        features = network(content_rgb, style_target.layers)
        photo_style_loss = float(Objective(None, style_target)(features).style)
    content_energy = sum(0.5 * float(p.double().pow(2).sum())
                         for p in content_target.features.values())  # fmt: skip
    return {"content_energy": content_energy, "photo_style_loss": photo_style_loss}


def _stalled(optimization: OptimizationResult) -> bool:
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


def _record_options(options: Options) -> dict:
    """The options as JSON: a mask given as a PIL image is recorded as '<image>'."""
    mask = options.mask
    values = asdict(replace(options, mask=None))
    values["mask"] = mask if mask is None or isinstance(mask, str) else "<image>"
    return values


def _stage_progress(
    callback: ProgressCallback,
    convention: InputConvention,
    index: int,
    sides: list[int],
    work: list[int],
    iterations_before: int,
    iterations_cap: int,
    started: float,
    finish: Callable[[torch.Tensor], Image.Image] | None = None,
):
    """Turn one scale's (iteration, loss, image) into the run-wide `Progress` callers see."""
    done_before, side = sum(work[:index]), sides[index]

    def stage_callback(iteration: int, loss, current: torch.Tensor) -> None:
        callback(
            Progress(
                iteration=iterations_before + iteration,
                iterations=iterations_cap,
                loss=loss,
                image=convention.from_network(current),
                elapsed=time.perf_counter() - started,
                scale=index,
                scales=len(sides),
                fraction=min(1.0, (done_before + side * side * iteration) / sum(work)),
                finish=finish,
            )
        )

    return stage_callback


def _initial_image(
    options: Options,
    output: Image.Image,
    content: Image.Image | None,
    styles: list[Image.Image],
    seed: int,
) -> torch.Tensor:
    """White noise (the paper), the content or style image, or an image file, as RGB in [0, 1].

    The noise comes from its own CPU generator, so a seed gives the same start on every device.
    """
    size = output.size
    if options.init == "noise":
        generator = torch.Generator().manual_seed(seed)
        return torch.rand((1, 3, size[1], size[0]), generator=generator)
    if options.init == "content":
        if content is None:
            raise InputError("--init content needs a content image")
        return image_to_tensor(resize_to(content, size))
    if options.init == "style":
        if not styles:
            raise InputError("--init style needs a style image")
        return image_to_tensor(resize_to(styles[0], size))
    return image_to_tensor(resize_to(open_image(options.init, role="init image"), size))
