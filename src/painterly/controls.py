"""Creative controls around a transfer: color preservation and spatial control by a mask.

Color (Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving Color in Neural Artistic Style
Transfer"), with scikit-image for the color spaces and the matching:

- `luminance`: the transfer runs on luminance images only (YIQ's Y, as gray RGB), the style's
  luminance first matched to the content's mean and standard deviation; the output's luminance
  is then joined to the content's I and Q channels (`recombine_luminance`).
- `histogram`: the style image's colors are matched to the content image's (per channel
  histogram matching) before its Gram matrices are taken.

Spatial control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style
Transfer"): a mask image divides the output into regions by color; each region takes one style
(guided Gram matrices, see `losses.GuidedStyleTarget`) or keeps the content. `read_mask` finds
the regions and their targets, `region_maps` resizes them to a scale's size, `layer_guides`
follows them down the network to every style layer.

Nothing here runs the network; `api.py` puts the pieces together.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageColor

from .errors import InputError, PainterlyWarning
from .images import open_image, resize_to, tensor_to_image
from .losses import GuidedStyleTarget, StyleTarget
from .vgg import LAYER_NAMES

# Mask colors closer than this (Euclidean, 0-255 RGB) are the same region: JPEG noise and
# anti-aliased edges do not make regions of their own.
COLOR_TOLERANCE = 48.0
# A color must cover at least this share of the mask to be a region of its own; rarer colors
# (anti-aliased or feathered edges, compression noise) join the nearest region.
MIN_REGION_SHARE = 0.01
CONTENT = "content"

Color = tuple[int, int, int]


# --------------------------------------------------------------------------------------------
# color preservation


def _float_rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def _to_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8))


def luminance(image: Image.Image) -> np.ndarray:
    """YIQ's Y channel of an RGB image, in [0, 1]."""
    from skimage.color import rgb2yiq

    return rgb2yiq(_float_rgb(image))[..., 0]


def gray_image(y: np.ndarray) -> Image.Image:
    """A luminance channel as a gray RGB image (what the network sees in luminance mode)."""
    return _to_image(np.repeat(y[..., None], 3, axis=-1))


def matched_luminance(style: Image.Image, content: Image.Image) -> Image.Image:
    """The style's luminance with the content's mean and standard deviation, as gray RGB.

    L_s' = sigma_c / sigma_s (L_s - mu_s) + mu_c (the paper's equation), so the style's
    brightness and contrast do not overrule the content's.
    """
    ys, yc = luminance(style), luminance(content)
    spread = ys.std()
    scale = yc.std() / spread if spread > 1e-6 else 0.0
    return gray_image((ys - ys.mean()) * scale + yc.mean())


def recombine_luminance(output: Image.Image, content: Image.Image) -> Image.Image:
    """The output's luminance (Y) with the content's chroma (I, Q), back in RGB."""
    from skimage.color import rgb2yiq, yiq2rgb

    content_yiq = rgb2yiq(_float_rgb(resize_to(content, output.size)))
    yiq = np.concatenate([luminance(output)[..., None], content_yiq[..., 1:]], axis=-1)
    return _to_image(yiq2rgb(yiq))


def match_colors(style: Image.Image, content: Image.Image) -> Image.Image:
    """The style image with its color histograms matched to the content's, channel by channel."""
    from skimage.exposure import match_histograms

    matched = match_histograms(_float_rgb(style), _float_rgb(content), channel_axis=-1)
    return _to_image(matched)


def color_inputs(
    mode: str, content: Image.Image | None, styles: list[Image.Image]
) -> tuple[Image.Image | None, list[Image.Image], Callable[[torch.Tensor], Image.Image]]:
    """What the network sees for `--preserve-color MODE`, and how its result becomes the output.

    Returns the content and style images to optimize with, and `finish`, which turns the
    optimized RGB tensor (1, 3, H, W) in [0, 1] into the output image.
    """
    if mode == "none" or content is None:
        return content, styles, tensor_to_image
    if mode == "histogram":
        return content, [match_colors(style, content) for style in styles], tensor_to_image
    if mode != "luminance":
        raise ValueError(f"unknown color mode {mode!r}")

    def finish(rgb: torch.Tensor) -> Image.Image:
        return recombine_luminance(tensor_to_image(rgb), content)

    gray_styles = [matched_luminance(style, content) for style in styles]
    return gray_image(luminance(content)), gray_styles, finish


# --------------------------------------------------------------------------------------------
# masks


def parse_color(text: str) -> Color:
    """'#ff0000', 'ff0000', '#f00', 'red' or a gray level '0'..'255' -> (r, g, b)."""
    word = text.strip()
    if word.isdigit():
        level = int(word)
        if level > 255:
            raise InputError(f"{{mask_map}} gray level must be 0 to 255, not {word}")
        return (level, level, level)
    if re.fullmatch(r"[0-9a-fA-F]{6}", word):
        word = "#" + word
    try:
        rgb = ImageColor.getrgb(word)
    except ValueError:
        raise InputError(
            f"{{mask_map}}: {text!r} is not a color (use #rrggbb, a name like red, or a gray "
            "level 0-255)"
        ) from None
    return (rgb[0], rgb[1], rgb[2])


def parse_mask_map(text: str) -> list[tuple[Color, int | None]]:
    """'#000000=1,white=content' -> [((0, 0, 0), 0), ((255, 255, 255), None)].

    Styles are numbered from 1 in the order given; the result has 0-based indices, None for
    regions that keep the content.
    """
    entries: list[tuple[Color, int | None]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise InputError(
                f"{{mask_map}} entries are COLOR=STYLE, e.g. '#ff0000=1,white=content', "
                f"not {part.strip()!r}"
            )
        color_text, target_text = part.rsplit("=", 1)
        color = parse_color(color_text)
        target = target_text.strip().lower()
        if target == CONTENT:
            index = None
        elif target.isdigit() and int(target) >= 1:
            index = int(target) - 1
        else:
            raise InputError(
                f"{{mask_map}} target must be a style number (1, 2, ...) or 'content', "
                f"not {target_text.strip()!r}"
            )
        if any(color == known for known, _ in entries):
            raise InputError(f"{{mask_map}} lists {hex_color(color)} twice")
        entries.append((color, index))
    if not entries:
        raise InputError("{mask_map} is empty; give COLOR=STYLE entries, e.g. 'black=1,white=2'")
    return entries


def hex_color(color: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in color[:3]))


@dataclass
class MaskLayout:
    """The regions of a mask: a label per mask pixel, and each region's color and target."""

    labels: np.ndarray  # (H, W) region index per pixel, at the mask's own resolution
    colors: list[Color]
    targets: list[int | None]  # 0-based style index, or None: keep the content

    @property
    def shares(self) -> list[float]:
        counts = np.bincount(self.labels.ravel(), minlength=len(self.colors))
        return [float(c) / self.labels.size for c in counts]

    def describe(self, style_names: Sequence[str] | None = None) -> list[dict]:
        """JSON-ready: each region's color, share of the image and what it takes."""
        described = []
        for color, target, share in zip(self.colors, self.targets, self.shares, strict=True):
            if target is None:
                what = CONTENT
            else:
                what = f"style {target + 1}"
                if style_names:
                    what += f" ({style_names[target]})"
            described.append({"color": hex_color(color), "share": round(share, 4), "takes": what})
        return described


def read_mask(
    source: object,
    content_size: tuple[int, int],
    styles: int,
    mask_map: str | None = None,
) -> MaskLayout:
    """Find the mask's regions and what each takes.

    Without a `mask_map`, the mask's colors, sorted by hex code (for a gray mask: dark to
    light), go to the styles in the order given, and there must be as many colors as styles.
    With one, each listed color takes its style number or keeps the content, and every color
    of the mask must be listed. A mask of another size than the content is stretched to it
    (with a `PainterlyWarning` saying so).
    """
    image = open_image(source, role="mask")  # type: ignore[arg-type]
    if image.size != tuple(content_size):
        warnings.warn(
            f"mask is {image.width}x{image.height} px but the content image is "
            f"{content_size[0]}x{content_size[1]} px; the mask is resized to fit the content",
            PainterlyWarning,
            stacklevel=2,
        )
    pixels = np.asarray(image, dtype=np.uint8).reshape(-1, 3)
    packed = pixels[:, 0].astype(np.int32) << 16 | pixels[:, 1].astype(np.int32) << 8 | pixels[:, 2]
    unique, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    palette = np.stack([unique >> 16 & 255, unique >> 8 & 255, unique & 255], axis=1)
    clusters = _clusters(palette, counts)  # the mask's own region colors, most common first

    if mask_map is None:
        colors = sorted(clusters)
        if len(colors) != styles:
            listed = ", ".join(hex_color(c) for c in colors[:8]) + (
                ", ..." if len(colors) > 8 else ""
            )
            raise InputError(
                f"the mask has {len(colors)} color{'s' * (len(colors) != 1)} ({listed}) but "
                f"{styles} style{'s were' if styles != 1 else ' was'} given; give one style "
                "per color (sorted by hex code), or say which color takes which style with "
                "{mask_map}, e.g. '#000000=1,#ffffff=content'"
            )
        targets: list[int | None] = list(range(styles))
    else:
        entries = parse_mask_map(mask_map)
        colors = [color for color, _ in entries]
        targets = [target for _, target in entries]
        _check_map(entries, clusters, palette, counts, styles)

    centers = np.asarray(colors, dtype=np.float64)
    distances = ((palette[:, None, :].astype(np.float64) - centers[None]) ** 2).sum(-1)
    labels = distances.argmin(axis=1)[inverse].reshape(image.height, image.width)
    layout = MaskLayout(labels.astype(np.int64), list(colors), targets)
    unused = sorted(set(range(styles)) - {t for t in targets if t is not None})
    if unused:
        raise InputError(
            f"style {unused[0] + 1} takes no region of the mask; map a mask color to it with "
            "{mask_map}, or leave it out"
        )
    if all(share == 0 for share, t in zip(layout.shares, targets, strict=True) if t is not None):
        raise InputError("no part of the mask takes a style")
    return layout


def _clusters(palette: np.ndarray, counts: np.ndarray) -> list[Color]:
    """Colors covering at least MIN_REGION_SHARE, near-identical ones merged (most common wins)."""
    total = counts.sum()
    centers: list[np.ndarray] = []
    for index in np.argsort(-counts, kind="stable"):
        if counts[index] < MIN_REGION_SHARE * total:
            break
        color = palette[index].astype(np.float64)
        if all(np.linalg.norm(color - c) > COLOR_TOLERANCE for c in centers):
            centers.append(color)
    if not centers:  # no color is common: a photograph, not a mask
        raise InputError(
            "the mask has no color covering a noticeable part of it; a mask is an image of a "
            "few flat colors or gray levels"
        )
    return [(int(c[0]), int(c[1]), int(c[2])) for c in centers]


def _check_map(
    entries: list[tuple[Color, int | None]],
    clusters: list[Color],
    palette: np.ndarray,
    counts: np.ndarray,
    styles: int,
) -> None:
    colors = np.asarray([color for color, _ in entries], dtype=np.float64)
    listed = ", ".join(hex_color(c) for c, _ in entries)
    for color, target in entries:
        if target is not None and target >= styles:
            raise InputError(
                f"{{mask_map}} gives {hex_color(color)} style {target + 1}, but "
                f"{styles} style{'s were' if styles != 1 else ' was'} given"
            )
    for i in range(len(colors)):
        for j in range(i + 1, len(colors)):
            if np.linalg.norm(colors[i] - colors[j]) <= COLOR_TOLERANCE:
                raise InputError(
                    f"{{mask_map}} colors {hex_color(entries[i][0])} and "
                    f"{hex_color(entries[j][0])} are too close to tell apart in a mask"
                )
    total = counts.sum()
    palette = palette.astype(np.float64)
    for cluster in clusters:
        distance = np.linalg.norm(colors - np.asarray(cluster, dtype=np.float64), axis=1)
        if distance.min() > COLOR_TOLERANCE:
            near = np.linalg.norm(palette - np.asarray(cluster), axis=1)
            share = counts[near <= COLOR_TOLERANCE].sum() / total
            raise InputError(
                f"mask color {hex_color(cluster)} (about {share:.0%} of the mask) maps to no "
                f"style: {{mask_map}} lists only {listed}"
            )
    for color, _ in entries:  # a listed color may be rare, but it must be there
        distance = np.linalg.norm(palette - np.asarray(color, dtype=np.float64), axis=1)
        if distance.min() > COLOR_TOLERANCE:
            found = ", ".join(hex_color(c) for c in sorted(clusters))
            raise InputError(
                f"{{mask_map}} color {hex_color(color)} is not in the mask (its colors: {found})"
            )


def region_maps(layout: MaskLayout, size: tuple[int, int]) -> torch.Tensor:
    """(1, R, H, W) share of each region per pixel at `size` (width, height); they sum to 1.

    Resized with an anti-aliased bilinear filter, so edges become soft where the mask is
    shrunk, and the maps stay a partition of the image.
    """
    width, height = size
    labels = torch.from_numpy(layout.labels)
    one_hot = F.one_hot(labels, len(layout.colors)).permute(2, 0, 1).unsqueeze(0).float()
    if tuple(one_hot.shape[-2:]) == (height, width):
        return one_hot
    maps = F.interpolate(
        one_hot, size=(height, width), mode="bilinear", align_corners=False, antialias=True
    )
    maps = maps.clamp_(0.0, 1.0)
    return maps / maps.sum(dim=1, keepdim=True).clamp_min(1e-8)


def layer_guides(maps: torch.Tensor, layers: Sequence[str]) -> list[dict[str, torch.Tensor]]:
    """Each region's guide at each of `layers`: its pixel map, 2x2-averaged at every pooling.

    The network's convolutions keep the size and its poolings halve it (rounding down), so
    averaging the maps the same way gives guides exactly the size of each layer's features.
    """
    wanted = set(layers)
    guides: list[dict[str, torch.Tensor]] = [{} for _ in range(maps.shape[1])]
    current = maps
    last = max(LAYER_NAMES.index(name) for name in wanted)
    for name in LAYER_NAMES[: last + 1]:
        if name.startswith("pool"):
            current = F.avg_pool2d(current, kernel_size=2, stride=2)
        if name in wanted:
            for region, guide in enumerate(guides):
                guide[name] = current[:, region : region + 1].contiguous()
    return guides


# Regions that keep the content fade into the painted ones over about this share of the long
# side (a hard seam between photo and painting looks cut out).
KEEP_FEATHER = 1 / 128


def keep_map(layout: MaskLayout, maps: torch.Tensor) -> torch.Tensor | None:
    """(1, 1, H, W): how much each pixel keeps the content (the regions mapped to 'content').

    The edge is feathered by a box blur of radius KEEP_FEATHER x the long side; farther inside,
    pixels keep the content exactly.
    """
    keep = [region for region, target in enumerate(layout.targets) if target is None]
    if not keep:
        return None
    kept = maps[:, keep].sum(dim=1, keepdim=True).clamp_(0.0, 1.0)
    radius = round(max(kept.shape[-2:]) * KEEP_FEATHER)
    if radius >= 1:
        kept = F.avg_pool2d(kept, 2 * radius + 1, stride=1, padding=radius,
                            count_include_pad=False)  # fmt: skip
    return kept


def combined_style_target(
    targets: Sequence[StyleTarget],
    blend: Sequence[float],
    layout: MaskLayout | None = None,
    maps: torch.Tensor | None = None,
) -> StyleTarget | GuidedStyleTarget:
    """One style target from several styles: blended Grams, or one style per mask region."""
    if layout is not None and maps is not None:
        guides = layer_guides(maps, targets[0].layers)
        regions = [
            (guides[region], targets[target])
            for region, target in enumerate(layout.targets)
            if target is not None
        ]
        return GuidedStyleTarget(regions, dict(targets[0].layer_weights))
    if len(targets) == 1:
        return targets[0]
    return StyleTarget.blend(targets, blend)
