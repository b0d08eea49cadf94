"""VGG-19's convolutional stack, described once as data, with the paper's layer names.

The network is built from `VGG19_LAYOUT`, the way torchvision describes its VGGs: a number is a
3x3 convolution (followed by a ReLU) with that many filters, "M" a 2x2 pooling. Layer names follow
Gatys et al.: `conv4_2` is the ReLU output of the second convolution of block 4, `pool4` the
pooling after block 4. Only the layers up to the deepest one a job asks for are built and run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import torch
from torch import nn

VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, 256, "M",
    512, 512, 512, 512, "M",
    512, 512, 512, 512, "M",
)  # fmt: skip

POOLING_MODES = ("avg", "max")
KERNEL = 3  # every convolution's size (padding KERNEL // 2 keeps the map's size)


def _layer_names(layout: tuple[int | str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    block, index = 1, 1
    for entry in layout:
        if entry == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names.append(f"conv{block}_{index}")
            index += 1
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names(VGG19_LAYOUT)
CONV_LAYERS: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("conv"))
POOL_LAYERS: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("pool"))
CONV_CHANNELS: dict[str, int] = {
    name: int(entry) for name, entry in zip(LAYER_NAMES, VGG19_LAYOUT, strict=True) if entry != "M"
}


def check_layer(name: str) -> str:
    """Return `name` if it is a VGG-19 layer, else raise ValueError listing the valid names."""
    if name not in LAYER_NAMES:
        raise ValueError(f"unknown layer {name!r}; VGG-19 layers are {', '.join(LAYER_NAMES)}")
    return name


def deepest_layer(layers: Collection[str]) -> str:
    """The layer that comes last in the network among `layers`."""
    return max((check_layer(n) for n in layers), key=LAYER_NAMES.index)


def min_input_side(layers: Collection[str]) -> int:
    """Smallest image side for which every layer in `layers` still has at least one position."""
    upto = LAYER_NAMES[: LAYER_NAMES.index(deepest_layer(layers)) + 1]
    return 2 ** sum(1 for n in upto if n.startswith("pool"))


def halo_and_grid(layers: Collection[str]) -> tuple[int, int]:
    """(halo, grid) in input pixels for tiled evaluation of `layers` (tiling.py).

    The halo is how far wrong values from a crop's edge reach inward by the deepest layer: each
    convolution reads KERNEL // 2 positions further at its resolution, each 2x2 pooling rounds
    the reach up to whole positions of its output. The grid is the deepest layer's stride: crop
    origins on it keep every pooling window where it lies in the whole image.
    """
    reach, stride = 0, 1
    for name in LAYER_NAMES[: LAYER_NAMES.index(deepest_layer(layers)) + 1]:
        if name.startswith("pool"):
            stride *= 2
            reach = -(-reach // stride) * stride
        else:
            reach += (KERNEL // 2) * stride
    return -(-reach // stride) * stride, stride


class FeatureMaps(dict):
    """The maps one forward returns, by layer name. `feeding` names those that also fed the next
    layer of that forward (all but the deepest): their gradient has a source besides the losses,
    which `losses` adds the style gradient into, in place."""

    def __init__(self, maps: Mapping[str, torch.Tensor], feeding: Collection[str]) -> None:
        super().__init__(maps)
        self.feeding = frozenset(feeding)


class VGGFeatures(nn.Module):
    """VGG-19 up to `last_layer`, returning the activations of the layers a caller names.

    `convs` maps conv layer names to (weight, bias) in torch layout (out, in, 3, 3). The network
    takes images in the input convention of the weights it was built from (see `weights.py`).
    """

    def __init__(
        self,
        convs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
        *,
        pooling: str = "avg",
        last_layer: str = "pool5",
    ) -> None:
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, not {pooling!r}")
        self.pooling = pooling
        self.layer_names = LAYER_NAMES[: LAYER_NAMES.index(check_layer(last_layer)) + 1]
        self.layers = nn.ModuleDict()
        in_channels = 3
        for name in self.layer_names:
            if name.startswith("pool"):
                pool = nn.AvgPool2d if pooling == "avg" else nn.MaxPool2d
                self.layers[name] = pool(kernel_size=2, stride=2)
                continue
            weight, bias = convs[name]
            conv = nn.Conv2d(
                in_channels, CONV_CHANNELS[name], kernel_size=KERNEL, padding=KERNEL // 2
            )
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(
                    f"{name}: weight has shape {tuple(weight.shape)}, "
                    f"expected {tuple(conv.weight.shape)}"
                )
            with torch.no_grad():
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)
            # conv and ReLU as one named unit: the paper's conv4_2 is the rectified response.
            self.layers[name] = nn.Sequential(conv, nn.ReLU(inplace=True))
            in_channels = CONV_CHANNELS[name]
        self.requires_grad_(False)
        self.eval()
        self.memory_format = torch.contiguous_format

    def use_memory_format(self, memory_format: torch.memory_format) -> VGGFeatures:
        """channels_last suits cuDNN and oneDNN (see `network.CHANNELS_LAST_DEVICES`)."""
        self.memory_format = memory_format
        return self.to(memory_format=memory_format)

    @property
    def last_layer(self) -> str:
        return self.layer_names[-1]

    def forward(self, image: torch.Tensor, layers: Collection[str]) -> FeatureMaps:
        wanted = set(layers)
        missing = wanted - set(self.layer_names)
        if missing:
            raise ValueError(f"layers {sorted(missing)} lie beyond {self.last_layer}")
        stop = max(self.layer_names.index(n) for n in wanted)
        features: dict[str, torch.Tensor] = {}
        x = image.contiguous(memory_format=self.memory_format)
        for name in self.layer_names[: stop + 1]:
            x = self.layers[name](x)
            if name in wanted:
                features[name] = x
        return FeatureMaps(features, feeding=wanted - {self.layer_names[stop]})
