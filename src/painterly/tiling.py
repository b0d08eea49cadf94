"""Exact tiled evaluation: the objective and its gradient at a very large image, one tile at a
time, equal to the untiled ones to float tolerance.

Each tile is a core (the positions it owns) plus a halo wide enough that the network's responses
over the core equal the whole image's: every 3x3 convolution reads one position further, and
every pooling rounds the reach up to its grid (`vgg.halo_and_grid`). Tile origins lie on the pooling
grid of the deepest layer (16 px for conv5_1), and a crop stops where the image really ends, so
the network's zero padding falls where it does untiled.

The style loss is not a sum over tiles, but its Gram matrices are. So an evaluation runs twice:

1. without gradients, over every tile: the cores' Gram matrices summed, their content loss
   summed; then the global loss and D_l = dL/dG_l;
2. with gradients, tile by tile: the scalar sum_l <D_l, F_core F_core^T> + alpha * content loss
   of the core, whose gradient with respect to the tile's pixels is exactly the tile's share of
   the whole gradient; the shares are added into one image-sized gradient.

Total variation and extra terms on pixels are cheap and use the whole image. Memory: one tile's
network plus a few image-sized buffers (the image, its gradient, the content target).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from .losses import (
    LossTerms,
    Objective,
    StyleTarget,
    content_loss,
    gram_matrix,
    total_variation,
)
from .optimize import Evaluator
from .options import MIN_TILE
from .vgg import VGGFeatures, halo_and_grid


@dataclass(frozen=True)
class Tile:
    """A core [y0, y1) x [x0, x1) and the crop [cy0, cy1) x [cx0, cx1) the network runs on."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        return image[..., self.cy0 : self.cy1, self.cx0 : self.cx1]

    def core(self, features: torch.Tensor, stride: int, height: int, width: int) -> torch.Tensor:
        """The core's positions of a map the crop gave, at a layer of this `stride`; a core that
        ends where the image ends keeps every position the network gave there."""
        top, left = (self.y0 - self.cy0) // stride, (self.x0 - self.cx0) // stride
        bottom = features.shape[-2] if self.y1 == height else (self.y1 - self.cy0) // stride
        right = features.shape[-1] if self.x1 == width else (self.x1 - self.cx0) // stride
        return features[..., top:bottom, left:right]

    def target(self, target: torch.Tensor, stride: int, height: int, width: int) -> torch.Tensor:
        """The same positions of an image-sized map (the content target)."""
        top, left = self.y0 // stride, self.x0 // stride
        bottom = target.shape[-2] if self.y1 == height else self.y1 // stride
        right = target.shape[-1] if self.x1 == width else self.x1 // stride
        return target[..., top:bottom, left:right]


def tiles(height: int, width: int, tile: int, halo: int, grid: int) -> Iterator[Tile]:
    """Cores of `tile` px (rounded up to the grid) covering the image, each with its halo."""
    size = math.ceil(tile / grid) * grid
    for y0 in range(0, height, size):
        for x0 in range(0, width, size):
            y1, x1 = min(height, y0 + size), min(width, x0 + size)
            yield Tile(y0, y1, x0, x1, max(0, y0 - halo), min(height, y1 + halo),
                       max(0, x0 - halo), min(width, x1 + halo))  # fmt: skip


class TiledNetwork:
    """A network run tile by tile: layer strides, the halo and the tiles of an image."""

    def __init__(self, network: VGGFeatures, tile: int) -> None:
        if tile < MIN_TILE:
            raise ValueError(f"a tile must be at least {MIN_TILE} px, not {tile}")
        self.network, self.tile = network, tile
        self.strides: dict[str, int] = {}
        stride = 1
        for name in network.layer_names:
            if name.startswith("pool"):
                stride *= 2
            self.strides[name] = stride

    def fits_one_tile(self, image: torch.Tensor) -> bool:
        return image.shape[-2] <= self.tile and image.shape[-1] <= self.tile

    def tiles(self, image: torch.Tensor, layers: tuple[str, ...]) -> Iterator[Tile]:
        halo, grid = halo_and_grid(layers)
        return tiles(image.shape[-2], image.shape[-1], self.tile, halo, grid)

    def cores(
        self, image: torch.Tensor, layers: tuple[str, ...]
    ) -> Iterator[tuple[Tile, dict[str, torch.Tensor]]]:
        """Each tile with its cores' responses at `layers` (with autograd if it is enabled)."""
        height, width = image.shape[-2:]
        for tile in self.tiles(image, layers):
            crop = tile.crop(image)
            features = self.network(crop, layers)
            yield tile, {n: tile.core(features[n], self.strides[n], height, width) for n in layers}

    def features(self, image: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The whole image's responses at `layers`, assembled from the cores (no gradients):
        image-sized maps, for the content target."""
        height, width = image.shape[-2:]
        maps: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for tile, cores in self.cores(image, layers):
                for name, core in cores.items():
                    if name not in maps:
                        shape = _map_shape(core, height, width, self.strides[name])
                        maps[name] = core.new_zeros(shape)
                    tile.target(maps[name], self.strides[name], height, width).copy_(core)
        return maps

    def grams(
        self, image: torch.Tensor, layers: tuple[str, ...]
    ) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """Per layer, the Gram matrix of the whole image summed over cores, and its positions."""
        grams: dict[str, torch.Tensor] = {}
        positions = dict.fromkeys(layers, 0)
        with torch.no_grad():
            for _, cores in self.cores(image, layers):
                for name, core in cores.items():
                    if core.numel() == 0:
                        continue
                    gram = gram_matrix(core.contiguous())
                    grams[name] = grams[name] + gram if name in grams else gram
                    positions[name] += core.shape[-2] * core.shape[-1]
        return grams, positions

    def style_target(self, image: torch.Tensor, layer_weights: Mapping[str, float]) -> StyleTarget:
        """`StyleTarget.from_features` of the whole image, tile by tile."""
        grams, positions = self.grams(image, tuple(layer_weights))
        return StyleTarget({n: g / positions[n] for n, g in grams.items()}, dict(layer_weights))


def tiled_cost(height: int, width: int, tile: int, layers: tuple[str, ...]) -> float:
    """An evaluation's work tiled over its work untiled, for honest progress: a forward over
    every crop, then a forward and backward (about twice a forward) over every crop again,
    against one forward and backward of the image."""
    if height <= tile and width <= tile:
        return 1.0
    halo, grid = halo_and_grid(layers)
    crops = sum((t.cy1 - t.cy0) * (t.cx1 - t.cx0) for t in tiles(height, width, tile, halo, grid))
    return crops * (1 + 3) / (3 * height * width)


def _map_shape(core: torch.Tensor, height: int, width: int, stride: int) -> tuple[int, ...]:
    # floor at every pooling equals floor by the product for strides that are powers of 2
    return (*core.shape[:-2], height // stride, width // stride)


def tiled_evaluator(network: VGGFeatures, tile: int) -> Evaluator:
    """An `optimize.Evaluator` that runs `network` tile by tile (see the module doc).

    The LossTerms it returns hold the loss's values; their `total` carries the gradient computed
    tile by tile, as image * gradient with its value taken out, so the optimizer's backward lands
    the exact gradient in image.grad. An image that fits in one tile is evaluated untiled.
    """
    tiled = TiledNetwork(network, tile)

    def evaluate(objective: Objective, image: torch.Tensor) -> LossTerms:
        check_tileable(objective)
        if tiled.fits_one_tile(image):
            return objective(network(image, objective.layers), image)
        terms, factors = _first_pass(tiled, objective, image.detach())
        if not (torch.is_grad_enabled() and image.requires_grad):
            return _with_pixel_terms(terms, objective, image, None)
        gradient = _second_pass(tiled, objective, image.detach(), factors)
        return _with_pixel_terms(terms, objective, image, gradient)

    return evaluate


def check_tileable(objective: Objective) -> None:
    """Tiling supports plain style targets and terms on pixels; say so for anything else."""
    if objective.style is not None and not isinstance(objective.style, StyleTarget):
        raise ValueError("tiled evaluation does not support masks (guided style targets)")
    for term in objective.terms:
        if term.layers:
            raise ValueError(f"tiled evaluation does not support the term {term.name!r} on layers")


def _first_pass(
    tiled: TiledNetwork, objective: Objective, image: torch.Tensor
) -> tuple[LossTerms, dict[str, torch.Tensor]]:
    """The loss's network part over all tiles, and D_l = dL/dG_l (already times beta * w_l)."""
    style = objective.style
    zero = image.new_zeros(())
    grams, positions, content_layers = _accumulate(tiled, objective, image)
    style_layers: dict[str, torch.Tensor] = {}
    factors: dict[str, torch.Tensor] = {}
    if style is not None:
        for name, target in style.grams.items():
            channels, count = target.shape[-1], positions[name]
            difference = grams[name] / count - target
            style_layers[name] = difference.pow(2).sum() / (4 * channels**2)
            # dE/dG = (G/M - A) / (2 N^2 M); the surrogate's gradient is (D + D^T) F
            weight = objective.beta * style.layer_weights[name]
            factors[name] = difference * (weight / (2 * channels**2 * count))
    content_total = sum(content_layers.values(), zero)
    style_total = (
        sum((style.layer_weights[n] * v for n, v in style_layers.items()), zero)
        if style is not None
        else zero
    )
    total = objective.alpha * content_total + objective.beta * style_total
    return LossTerms(total, content_total, style_total, content_layers, style_layers), factors


def _accumulate(
    tiled: TiledNetwork, objective: Objective, image: torch.Tensor
) -> tuple[dict[str, torch.Tensor], dict[str, int], dict[str, torch.Tensor]]:
    """One forward per tile, no gradients: the style layers' Grams summed over cores, their
    positions, and the content loss per content layer."""
    height, width = image.shape[-2:]
    style, content = objective.style, objective.content
    style_layers = style.layers if style is not None else ()
    grams: dict[str, torch.Tensor] = {}
    positions = dict.fromkeys(style_layers, 0)
    losses = {name: image.new_zeros(()) for name in (content.layers if content else ())}
    with torch.no_grad():
        for tile, cores in tiled.cores(image, objective.layers):
            for name in style_layers:
                core = cores[name]
                if core.numel():
                    gram = gram_matrix(core.contiguous())
                    grams[name] = grams[name] + gram if name in grams else gram
                    positions[name] += core.shape[-2] * core.shape[-1]
            for name in losses:
                target = tile.target(content.features[name], tiled.strides[name], height, width)
                losses[name] += content_loss(cores[name], target)
    return grams, positions, losses


def _second_pass(
    tiled: TiledNetwork,
    objective: Objective,
    image: torch.Tensor,
    factors: dict[str, torch.Tensor],
) -> torch.Tensor:
    """The gradient of the network part, tile by tile: each tile's surrogate backward to its
    crop's pixels, added into one image-sized gradient."""
    height, width = image.shape[-2:]
    gradient = torch.zeros_like(image)
    content = objective.content
    layers = objective.layers
    for tile in tiled.tiles(image, layers):
        crop = tile.crop(image).detach().requires_grad_(True)
        with torch.enable_grad():
            features = tiled.network(crop, layers)
            surrogate = crop.new_zeros(())
            for name, factor in factors.items():
                core = tile.core(features[name], tiled.strides[name], height, width)
                if core.numel():
                    surrogate = surrogate + (gram_matrix(core.contiguous()) * factor).sum()
            if content is not None:
                for name, target in content.features.items():
                    core = tile.core(features[name], tiled.strides[name], height, width)
                    part = tile.target(target, tiled.strides[name], height, width)
                    surrogate = surrogate + objective.alpha * content_loss(core, part)
            if surrogate.requires_grad:
                (grad,) = torch.autograd.grad(surrogate, crop)
                tile.crop(gradient).add_(grad)
    return gradient


def _with_pixel_terms(
    terms: LossTerms, objective: Objective, image: torch.Tensor, gradient: torch.Tensor | None
) -> LossTerms:
    """Add total variation and pixel terms on the whole image; with `gradient`, make `total`
    carry it: total's value is unchanged, and its gradient is `gradient` plus the pixel terms'."""
    total = terms.total
    if gradient is not None:
        carried = (image * gradient).sum()
        total = total + carried - carried.detach()
    tv = terms.tv
    if objective.tv_weight:
        tv = total_variation(image, objective.tv_unit)
        total = total + objective.tv_weight * tv
    extra = {}
    for term in objective.terms:
        extra[term.name] = term({}, image)
        total = total + extra[term.name]
    return LossTerms(total, terms.content, terms.style, terms.content_layers,
                     terms.style_layers, tv, extra)  # fmt: skip
