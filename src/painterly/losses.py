"""The paper's losses: content loss on feature maps, style loss on their Gram matrices.

With F^l the N_l x M_l matrix of layer l's responses (N_l filters, M_l positions):

- content:  L_content = 1/2 sum (F^l - P^l)^2 over the content layer(s);
- style:    G^l = F^l F^l^T,  E_l = 1/(4 N_l^2 M_l^2) sum (G^l - A^l)^2,  L_style = sum w_l E_l;
- total:    L_total = alpha L_content + beta L_style (+ tv_weight L_tv, see `total_variation`).

Gram targets are stored divided by their own number of positions (`G / M`), and the generated
image's Gram is divided by its M: then E_l = 1/(4 N^2) sum (G/M - A/M_A)^2, which is exactly the
paper's E_l when both images have the same size, and stays comparable when the style image has
another size than the output (its Gram then describes the same statistics per position).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch


def _positions_first(features: torch.Tensor) -> bool:
    """True for a channels_last map, whose memory is an M x N matrix (positions x channels)."""
    return (
        features.dim() == 4
        and features.is_contiguous(memory_format=torch.channels_last)
        and not features.is_contiguous()
    )


def _as_matrix(features: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The map as the matrix it is in memory, without a copy where its layout allows: M x N
    (positions first, True) for channels_last, else N x M."""
    if _positions_first(features):
        return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]), True
    return features.reshape(features.shape[-3], -1), False


def _gram(features: torch.Tensor) -> torch.Tensor:
    """F F^T of a map in either layout, without autograd."""
    matrix, positions_first = _as_matrix(features)
    return matrix.T @ matrix if positions_first else matrix @ matrix.T


class _Gram(torch.autograd.Function):
    """F F^T with a backward of one matmul, (dG + dG^T) F, where autograd would do two and add
    them: the Gram matmuls are the largest cost of an iteration beyond the network itself.

    A channels_last map is used as it lies in memory (M x N, G = F'^T F'), so neither pass
    copies it into N x M first.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(features)
        return _gram(features)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (features,) = ctx.saved_tensors
        symmetric = grad + grad.T
        matrix, positions_first = _as_matrix(features)
        if positions_first:
            batch, channels, height, width = features.shape
            return (matrix @ symmetric).view(batch, height, width, channels).permute(0, 3, 1, 2)
        return (symmetric @ matrix).view_as(features)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G = F F^T for a (1, N, H, W) or (N, H, W) feature map, as one (N, N) matmul."""
    return _Gram.apply(features)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1/2 sum (F - P)^2."""
    return 0.5 * (features - target).pow(2).sum()


def style_layer_loss(
    features: torch.Tensor, target_gram_per_position: torch.Tensor
) -> torch.Tensor:
    """E_l = 1/(4 N^2 M^2) sum (G - A)^2, with A given per position (see module doc)."""
    channels = features.shape[-3]
    positions = features.shape[-2] * features.shape[-1]
    gram_per_position = gram_matrix(features) / positions
    return (gram_per_position - target_gram_per_position).pow(2).sum() / (4 * channels**2)


class _StyleLayerLoss(torch.autograd.Function):
    """E_l of a map that also feeds the next layer, its gradient added where that layer's lands.

    dE_l/dF = D F / (N^2 M), D the symmetric part of G/M - A. Autograd would make it a new
    map-sized tensor and then add it to the gradient from the next layer; here the backward only
    keeps the N x N factor, and a hook on the map adds factor x F into the next layer's gradient
    in place, one matmul with no new map. (At 1024 px one fresh-plus-add costs more than the Gram
    matmuls themselves.) The hook runs after this backward: autograd finishes every use of a
    map, this one included, before it moves past the map.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, features: torch.Tensor, target: torch.Tensor, factors: list[torch.Tensor]
    ) -> torch.Tensor:
        channels = features.shape[-3]
        positions = features.shape[-2] * features.shape[-1]
        difference = _gram(features).div_(positions).sub_(target)
        ctx.difference, ctx.factors = difference, factors
        ctx.scale = channels * channels * positions
        return difference.pow(2).sum() / (4 * channels**2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, None, None]:  # type: ignore[override]
        difference = ctx.difference  # symmetric already for a Gram target
        ctx.factors.append((difference + difference.T) * (grad / (2 * ctx.scale)))
        return None, None, None


def _style_loss_into_gradient(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`style_layer_loss` for a map that feeds the next layer (see `_StyleLayerLoss`)."""
    factors: list[torch.Tensor] = []
    maps, positions_first = _as_matrix(features.detach())

    def add_style_gradient(grad: torch.Tensor) -> torch.Tensor:
        for factor in factors:
            if positions_first and _positions_first(grad):
                _as_matrix(grad)[0].addmm_(maps, factor)  # a view: adds into grad
            elif not positions_first and grad.is_contiguous():
                _as_matrix(grad)[0].addmm_(factor, maps)
            else:  # layouts that differ: out of place
                added = maps @ factor if positions_first else factor @ maps
                grad = grad + (added.T if positions_first else added).reshape(grad.shape)
        factors.clear()
        return grad

    features.register_hook(add_style_gradient)
    return _StyleLayerLoss.apply(features, target, factors)


def guided_gram(features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the features inside a region, per position of the region.

    Gatys et al. 2017 ("Controlling Perceptual Factors"): the features are multiplied by the
    region's guide T (a (1, 1, H, W) map in [0, 1], the mask at this layer's size), and the Gram
    is divided by sum T^2 instead of the number of positions. A guide of ones gives exactly the
    Gram per position of `StyleTarget`.
    """
    return gram_matrix(features * guide) / guide.pow(2).sum()


def total_variation(image: torch.Tensor, unit: Sequence[float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Squared total variation per position: 1/M sum (x[i+1,j] - x[i,j])^2 + (x[i,j+1] - x[i,j])^2.

    `unit` converts each channel of `image` into 0-1 pixel units (the network's input space has
    its own scale), so the weight means the same for every set of weights and every size.
    """
    scale = torch.tensor(unit, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    x = image * scale
    dy = (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum()
    dx = (x[..., :, 1:] - x[..., :, :-1]).pow(2).sum()
    return (dx + dy) / (image.shape[-2] * image.shape[-1])


@dataclass
class ContentTarget:
    """The content image's responses P^l at the content layer(s), computed once."""

    features: dict[str, torch.Tensor]

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.features)


@dataclass
class StyleTarget:
    """The style image's Gram matrices per layer (divided by positions) and the weights w_l."""

    grams: dict[str, torch.Tensor]
    layer_weights: dict[str, float]

    @classmethod
    def from_features(
        cls, features: Mapping[str, torch.Tensor], layer_weights: Mapping[str, float] | None = None
    ) -> StyleTarget:
        grams = {name: gram_matrix(f) / (f.shape[-2] * f.shape[-1]) for name, f in features.items()}
        if layer_weights is None:
            layer_weights = {name: 1 / len(grams) for name in grams}
        return cls(grams, dict(layer_weights))

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.grams)

    def layer_losses(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """E_l for each style layer (unweighted).

        For maps that fed the next layer of the forward that made them (`FeatureMaps.feeding`),
        the gradient goes straight into that layer's (`_StyleLayerLoss`).
        """
        feeding = getattr(features, "feeding", frozenset()) if torch.is_grad_enabled() else ()
        return {
            name: _style_loss_into_gradient(features[name], gram)
            if name in feeding and features[name].requires_grad
            else style_layer_loss(features[name], gram)
            for name, gram in self.grams.items()
        }

    @classmethod
    def blend(cls, targets: Sequence[StyleTarget], weights: Sequence[float]) -> StyleTarget:
        """Several styles as one: per layer, the weighted sum of their Grams (weights sum to 1).

        All targets must have the same layers and layer weights (those of the first are kept).
        """
        if len(targets) != len(weights) or not targets:
            raise ValueError("blend needs one weight per target")
        first = targets[0]
        for other in targets[1:]:
            if other.layers != first.layers or other.layer_weights != first.layer_weights:
                raise ValueError("blended style targets must have the same layers and weights")
        grams = {
            name: sum(
                (w * t.grams[name] for w, t in zip(weights[1:], targets[1:], strict=True)),
                weights[0] * first.grams[name],
            )
            for name in first.layers
        }
        return cls(grams, dict(first.layer_weights))


@dataclass
class GuidedStyleTarget:
    """Spatial control: each region of the output matches its own style (Gatys et al. 2017).

    `regions` pairs a guide per layer ((1, 1, h, w) maps in [0, 1], the region's mask at that
    layer's size) with the style target that region takes. Per layer, the loss is
    sum_r a_r E_l(guided Gram of region r, A_r), where a_r is the region's share of the layer's
    positions: one region covering everything gives exactly the unguided E_l, and the balance
    of style and content per pixel is the same in small and large regions. Parts of the image
    that no region covers get no style loss.
    """

    regions: list[tuple[dict[str, torch.Tensor], StyleTarget]]
    layer_weights: dict[str, float]
    shares: list[dict[str, float]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Read back once here, not at every evaluation (a device sync each on a GPU).
        self.shares = [
            {name: float(guides[name].mean()) for name in self.layer_weights}
            for guides, _ in self.regions
        ]

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.layer_weights)

    def layer_losses(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = {}
        for name in self.layer_weights:
            f = features[name]
            total = f.new_zeros(())
            for (guides, target), shares in zip(self.regions, self.shares, strict=True):
                if shares[name] <= 0:
                    continue  # the region vanished at this layer's resolution
                diff = guided_gram(f, guides[name].to(f.dtype)) - target.grams[name]
                total = total + shares[name] * diff.pow(2).sum() / (4 * f.shape[-3] ** 2)
            losses[name] = total
        return losses


def equal_weights(layers: Sequence[str]) -> dict[str, float]:
    """w_l = 1/(number of style layers), the paper's choice."""
    return {name: 1 / len(layers) for name in layers}


@dataclass
class LossTerms:
    """One evaluation of the objective; per-layer values are unweighted (E_l, or 1/2 sum ...)."""

    total: torch.Tensor
    content: torch.Tensor
    style: torch.Tensor
    content_layers: dict[str, torch.Tensor] = field(default_factory=dict)
    style_layers: dict[str, torch.Tensor] = field(default_factory=dict)
    tv: torch.Tensor | float = 0.0  # total variation (unweighted); 0 when its weight is 0
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # `LossTerm`s, by name

    def detached(self) -> LossTerms:
        return LossTerms(
            self.total.detach(),
            self.content.detach(),
            self.style.detach(),
            {k: v.detach() for k, v in self.content_layers.items()},
            {k: v.detach() for k, v in self.style_layers.items()},
            self.tv.detach() if isinstance(self.tv, torch.Tensor) else self.tv,
            {k: v.detach() for k, v in self.extra.items()},
        )

    def as_floats(self) -> dict[str, object]:
        values = {
            "total": float(self.total),
            "content": float(self.content),
            "style": float(self.style),
            "tv": float(self.tv),
            "content_layers": {k: float(v) for k, v in self.content_layers.items()},
            "style_layers": {k: float(v) for k, v in self.style_layers.items()},
        }
        if self.extra:
            values["extra"] = {k: float(v) for k, v in self.extra.items()}
        return values


class LossTerm(Protocol):
    """An extra term of the objective (e.g. video's temporal term, on pixels).

    `layers` are the network layers it needs (empty for a term on pixels); called with those
    features and the image (network space), it returns its weighted scalar, added to the total.
    """

    name: str
    layers: tuple[str, ...]

    def __call__(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor
    ) -> torch.Tensor: ...


@dataclass
class Objective:
    """L_total = alpha L_content + beta L_style + tv_weight L_tv over precomputed targets.

    Either target may be None (the paper's content-only and style-only reconstructions). The
    total variation term needs the image itself (in network space; `tv_unit` converts it to
    0-1 pixel units, see `total_variation`); it is left out when `tv_weight` is 0.
    """

    content: ContentTarget | None
    style: StyleTarget | GuidedStyleTarget | None
    alpha: float = 1.0
    beta: float = 1.0
    tv_weight: float = 0.0
    tv_unit: tuple[float, float, float] = (1.0, 1.0, 1.0)
    terms: tuple[LossTerm, ...] = ()  # extra terms, added to the total

    @property
    def layers(self) -> tuple[str, ...]:
        names = list(self.content.layers if self.content else ())
        names += [n for n in (self.style.layers if self.style else ()) if n not in names]
        for term in self.terms:
            names += [n for n in term.layers if n not in names]
        return tuple(names)

    def __call__(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor | None = None
    ) -> LossTerms:
        zero = next(iter(features.values())).new_zeros(())
        content_layers = {}
        if self.content is not None:
            content_layers = {
                name: content_loss(features[name], target)
                for name, target in self.content.features.items()
            }
        style_layers = self.style.layer_losses(features) if self.style is not None else {}
        content = sum(content_layers.values(), zero)
        style = (
            sum((self.style.layer_weights[n] * v for n, v in style_layers.items()), zero)
            if self.style is not None
            else zero
        )
        total = self.alpha * content + self.beta * style
        tv = zero
        if self.tv_weight:
            if image is None:
                raise ValueError("an objective with a tv_weight needs the image")
            tv = total_variation(image, self.tv_unit)
            total = total + self.tv_weight * tv
        extra = {}
        for term in self.terms:
            if image is None:
                raise ValueError(f"an objective with the term {term.name!r} needs the image")
            extra[term.name] = term(features, image)
            total = total + extra[term.name]
        return LossTerms(total, content, style, content_layers, style_layers, tv, extra)
