"""The paper's losses: content loss on feature maps, style loss on their Gram matrices.

With F^l the N_l x M_l matrix of layer l's responses (N_l filters, M_l positions):

- content:  L_content = 1/2 sum (F^l - P^l)^2 over the content layer(s);
- style:    G^l = F^l F^l^T,  E_l = 1/(4 N_l^2 M_l^2) sum (G^l - A^l)^2,  L_style = sum w_l E_l;
- total:    L_total = alpha L_content + beta L_style.

Gram targets are stored divided by their own number of positions (`G / M`), and the generated
image's Gram is divided by its M: then E_l = 1/(4 N^2) sum (G/M - A/M_A)^2, which is exactly the
paper's E_l when both images have the same size, and stays comparable when the style image has
another size than the output (its Gram then describes the same statistics per position).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G = F F^T for a (1, N, H, W) or (N, H, W) feature map, as one (N, N) matmul."""
    flat = features.reshape(features.shape[-3], -1)
    return flat @ flat.T


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

    def detached(self) -> LossTerms:
        return LossTerms(
            self.total.detach(),
            self.content.detach(),
            self.style.detach(),
            {k: v.detach() for k, v in self.content_layers.items()},
            {k: v.detach() for k, v in self.style_layers.items()},
        )

    def as_floats(self) -> dict[str, object]:
        return {
            "total": float(self.total),
            "content": float(self.content),
            "style": float(self.style),
            "content_layers": {k: float(v) for k, v in self.content_layers.items()},
            "style_layers": {k: float(v) for k, v in self.style_layers.items()},
        }


@dataclass
class Objective:
    """L_total = alpha L_content + beta L_style over precomputed targets.

    Either target may be None (the paper's content-only and style-only reconstructions).
    """

    content: ContentTarget | None
    style: StyleTarget | None
    alpha: float = 1.0
    beta: float = 1.0

    @property
    def layers(self) -> tuple[str, ...]:
        names = list(self.content.layers if self.content else ())
        names += [n for n in (self.style.layers if self.style else ()) if n not in names]
        return tuple(names)

    def __call__(self, features: Mapping[str, torch.Tensor]) -> LossTerms:
        zero = next(iter(features.values())).new_zeros(())
        content_layers = {}
        if self.content is not None:
            content_layers = {
                name: content_loss(features[name], target)
                for name, target in self.content.features.items()
            }
        style_layers = {}
        if self.style is not None:
            style_layers = {
                name: style_layer_loss(features[name], gram)
                for name, gram in self.style.grams.items()
            }
        content = sum(content_layers.values(), zero)
        style = (
            sum((self.style.layer_weights[n] * v for n, v in style_layers.items()), zero)
            if self.style is not None
            else zero
        )
        total = self.alpha * content + self.beta * style
        return LossTerms(total, content, style, content_layers, style_layers)
