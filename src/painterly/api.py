"""The Python API: PIL images (or paths) in, PIL images out.

`transfer`, `texture` and `reconstruct` are the paper's three uses of one machinery: match content
and style, style only (Figure 1, top), or content only (Figure 1, bottom). The `run_*` variants
return a `Result` with the record of the run as well. Nothing here touches output files.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import asdict, dataclass, field

import torch
from PIL import Image

from .errors import InputError
from .images import (
    check_min_size,
    image_to_tensor,
    open_image,
    resize_long_side,
    resize_to,
    tensor_to_image,
)
from .losses import ContentTarget, Objective, StyleTarget, equal_weights
from .network import build_network, resolve_device
from .optimize import OptimizationResult, ProgressCallback, optimize
from .options import Options
from .record import package_versions
from .vgg import VGGFeatures, min_input_side
from .weights import InputConvention

ImageSource = str | os.PathLike | Image.Image


@dataclass
class Result:
    """An output image and the record of how it was made (JSON-ready)."""

    image: Image.Image
    record: dict = field(repr=False)
    optimization: OptimizationResult = field(repr=False)

    @property
    def stop_reason(self) -> str:
        return self.optimization.stop_reason


def _options(options: Options | None, values: dict) -> Options:
    return (options or Options()).with_values(**values).validated()


def run_transfer(
    content: ImageSource,
    style: ImageSource | StyleTarget,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    **values: object,
) -> Result:
    """Paint `content` in the style of `style` (keyword options as in `Options`).

    `style` may be a `StyleTarget` from `prepare_style`, to reuse one style's targets.
    """
    return _synthesize(_options(options, values), content, style, callback)


def run_texture(
    style: ImageSource,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    **values: object,
) -> Result:
    """Style reconstruction: an image with `style`'s Gram statistics and no content."""
    return _synthesize(_options(options, values), None, style, callback)


def run_reconstruction(
    content: ImageSource,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    **values: object,
) -> Result:
    """Content reconstruction from one layer (`content_layer`) and no style."""
    return _synthesize(_options(options, values), content, None, callback)


def transfer(
    content: ImageSource, style: ImageSource | StyleTarget, **values: object
) -> Image.Image:
    return run_transfer(content, style, **values).image


def texture(style: ImageSource, **values: object) -> Image.Image:
    return run_texture(style, **values).image


def reconstruct(content: ImageSource, **values: object) -> Image.Image:
    return run_reconstruction(content, **values).image


def prepare_style(
    style: ImageSource, options: Options | None = None, **values: object
) -> StyleTarget:
    """The style's Gram targets, computed once, to reuse across many contents (batch, grid)."""
    options = _options(options, values)
    device = resolve_device(options.device)
    network, convention, _ = _network(options, list(options.style_layers), device)
    return _style_target(
        options, open_image(style, role="style image"), network, convention, device
    )


def _network(options: Options, layers: list[str], device: torch.device):
    return build_network(
        layers,
        weights=options.weights,
        normalize=options.normalize,
        pooling=options.pooling,
        device=device,
    )


def _style_key(options: Options) -> tuple:
    """What a style target depends on besides the image: reuse is only valid if these match."""
    return (options.weights, options.normalize, options.pooling, options.style_layers, options.size)


def _style_target(
    options: Options,
    style: Image.Image,
    network: VGGFeatures,
    convention: InputConvention,
    device: torch.device,
) -> StyleTarget:
    style = resize_long_side(style, options.size)
    check_min_size(style, min_input_side(options.style_layers), role="style image (at --size)")
    with torch.no_grad():
        features = network(
            _to_network(image_to_tensor(style), convention, device), options.style_layers
        )
    target = StyleTarget.from_features(features, equal_weights(options.style_layers))
    target.key = _style_key(options)
    target.image = style
    return target


def _synthesize(
    options: Options,
    content_source: ImageSource | None,
    style_source: ImageSource | StyleTarget | None,
    callback: ProgressCallback | None,
) -> Result:
    started = time.perf_counter()
    seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
    torch.manual_seed(seed)
    device = resolve_device(options.device)

    layers = ([options.content_layer] if content_source is not None else []) + (
        list(options.style_layers) if style_source is not None else []
    )
    content = open_image(content_source, role="content image") if content_source else None
    if isinstance(style_source, StyleTarget):
        if style_source.key != _style_key(options):
            raise ValueError("this StyleTarget was prepared with other options than this run's")
        style_image = style_source.image
    elif style_source is not None:
        style_image = open_image(style_source, role="style image")
    else:
        style_image = None
    min_side = min_input_side(layers)
    for image, role in ((content, "content image"), (style_image, "style image")):
        if image is not None:
            check_min_size(image, min_side, role=role)
    output = resize_long_side(content if content is not None else style_image, options.size)
    check_min_size(output, min_side, role="output at this --size")

    network, convention, weights_source = _network(options, layers, device)
    content_target = style_target = None
    if content is not None:
        with torch.no_grad():
            features = network(
                _to_network(image_to_tensor(output), convention, device), [options.content_layer]
            )
        content_target = ContentTarget(features)
    if isinstance(style_source, StyleTarget):
        style_target = style_source
    elif style_image is not None:
        style_target = _style_target(options, style_image, network, convention, device)

    if content_target is not None and style_target is not None:
        alpha, beta = options.ratio, 1.0
    else:
        alpha = beta = 1.0
    objective = Objective(content_target, style_target, alpha=alpha, beta=beta)
    init = _initial_image(options, output.size, output if content else None, style_image, seed)
    init = _to_network(init, convention, device)
    learning_rate = options.learning_rate * convention.scale / min(convention.std)
    setup_seconds = time.perf_counter() - started

    optimization = optimize(
        network,
        objective,
        init,
        iterations=options.iterations,
        optimizer=options.optimizer,
        learning_rate=learning_rate,
        callback=callback,
        decode=convention.from_network,
    )
    rgb = convention.from_network(optimization.image.float())
    image = tensor_to_image(rgb)
    record = {
        "command": "transfer"
        if content and style_target
        else "texture"
        if style_target
        else "reconstruct",
        "options": {**asdict(options), "seed": seed},
        "device": str(device),
        "weights": weights_source,
        "input_convention": convention.name,
        "output_size": list(image.size),
        "iterations": optimization.iterations,
        "stop_reason": optimization.stop_reason,
        "alpha": alpha,
        "beta": beta,
        "final_loss": optimization.loss.as_floats(),
        "timings": {
            "setup_seconds": round(setup_seconds, 3),
            "optimization_seconds": round(optimization.seconds, 3),
            "seconds_per_iteration": round(
                optimization.seconds / max(1, optimization.iterations), 4
            ),
        },
        "versions": package_versions(),
    }
    return Result(image, record, optimization)


def _to_network(
    rgb: torch.Tensor, convention: InputConvention, device: torch.device
) -> torch.Tensor:
    x = convention.to_network(rgb.to(device))
    return x.contiguous(memory_format=torch.channels_last)


def _initial_image(
    options: Options,
    size: tuple[int, int],
    content: Image.Image | None,
    style: Image.Image | None,
    seed: int,
) -> torch.Tensor:
    """White noise (the paper), the content or style image, or an image file, as RGB in [0, 1].

    The noise comes from its own CPU generator, so a seed gives the same start on every device.
    """
    width, height = size
    if options.init == "noise":
        generator = torch.Generator().manual_seed(seed)
        return torch.rand((1, 3, height, width), generator=generator)
    if options.init == "content":
        if content is None:
            raise InputError("--init content needs a content image")
        return image_to_tensor(content)
    if options.init == "style":
        if style is None:
            raise InputError("--init style needs a style image")
        return image_to_tensor(resize_to(style, size))
    return image_to_tensor(resize_to(open_image(options.init, role="init image"), size))
