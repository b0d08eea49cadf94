"""Video's temporal loss term (Ruder, Dosovitskiy & Brox 2016), as an extra `LossTerm`.

L_temporal = lambda / D sum_j sum c_j (x - w_j)^2, D = W x H x C: x the frame being painted,
w_j an earlier painted frame warped into it, c_j where that warp is reliable. The difference is
taken in 0-1 RGB units, so `lambda` means the same whatever network convention the run uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .weights import InputConvention


@dataclass
class TemporalTerm:
    """Pixel term: `targets` (warped earlier outputs, RGB in [0, 1], (1, 3, H, W)) weighted per
    pixel by `weights` ((1, 1, H, W), the reliability of each)."""

    targets: Sequence[torch.Tensor]
    weights: Sequence[torch.Tensor]
    weight: float
    convention: InputConvention
    name: str = "temporal"
    layers: tuple[str, ...] = ()

    def __call__(self, features: Mapping[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        rgb = self.convention.from_network(image)
        total = image.new_zeros(())
        for target, weight in zip(self.targets, self.weights, strict=True):
            target, weight = target.to(image), weight.to(image)
            total = total + (weight * (rgb - target).pow(2)).sum()
        return self.weight * total / rgb.numel()
