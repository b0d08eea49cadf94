"""The Python API: PIL images (or paths) in, PIL images out.

`transfer`, `texture` and `reconstruct` are the paper's three uses of one machinery: match content
and style, style only (Figure 1, top), or content only (Figure 1, bottom). The `run_*` variants
return a `Result` with the record of the run as well. Nothing here touches output files.

A run goes coarse to fine (Gatys et al. 2017, "Controlling Perceptual Factors"): it optimizes at a
fraction of the size first, upsamples the result as the start of the next scale and finishes at
full size; `scales=1` is the paper's single-scale procedure.

The creative controls (several styles, style scale, color preservation, masks, total variation)
are options too; their pieces live in `controls.py` and `losses.py`. The run itself, step by
step, is in `synthesis.py`; a `Cancel` handle stops it from outside, keeping the image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import fields

from PIL import Image

from .errors import InputError
from .images import check_min_size, open_image
from .network import configure_device, resolve_device
from .optimize import Cancel, ProgressCallback
from .options import Options, VideoOptions
from .record import Result
from .synthesis import (
    MIN_SCALE_SIDE,
    STALL_EVIDENCE,
    STALLED_AT,
    ImageSource,
    PreparedStyle,
    StyleSource,
    iteration_caps,
    run_network,
    scale_sides,
    synthesize,
)
from .vgg import min_input_side
from .video import FrameCallback, FrameDone, VideoResult, paint_clip

__all__ = [
    "MIN_SCALE_SIDE",
    "STALLED_AT",
    "STALL_EVIDENCE",
    "Cancel",
    "FrameDone",
    "ImageSource",
    "PreparedStyle",
    "Result",
    "StyleSource",
    "Styles",
    "VideoOptions",
    "VideoResult",
    "iteration_caps",
    "prepare_style",
    "reconstruct",
    "run_reconstruction",
    "run_texture",
    "run_transfer",
    "scale_sides",
    "stylize_video",
    "texture",
    "transfer",
]

Styles = StyleSource | Sequence[StyleSource]


def run_transfer(
    content: ImageSource,
    style: Styles,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    cancel: Cancel | None = None,
    **values: object,
) -> Result:
    """Paint `content` in the style of `style` (keyword options as in `Options`).

    `style` may be a `PreparedStyle` from `prepare_style`, to reuse one style's targets, or a
    list of styles: their Gram targets are blended (`style_blend`, equal by default), or with a
    `mask`, each region of the mask takes one of them. `cancel.cancel()` (from another thread or
    a signal handler) stops the run after the current iteration, keeping the image.
    """
    options = _options(options, values)
    return synthesize(options, content, _style_list(style), callback, cancel)


def run_texture(
    style: Styles,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    cancel: Cancel | None = None,
    **values: object,
) -> Result:
    """Style reconstruction: an image with `style`'s Gram statistics and no content."""
    return synthesize(_options(options, values), None, _style_list(style), callback, cancel)


def run_reconstruction(
    content: ImageSource,
    options: Options | None = None,
    *,
    callback: ProgressCallback | None = None,
    cancel: Cancel | None = None,
    **values: object,
) -> Result:
    """Content reconstruction from one layer (`content_layer`) and no style."""
    return synthesize(_options(options, values), content, [], callback, cancel)


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
    from . import synthesis

    options = _options(options, values)
    if options.preserve_color != "none":
        raise InputError(
            f"{{preserve_color}} {options.preserve_color} matches the style to each content "
            "image, so its targets cannot be prepared ahead; give the style image itself",
            field="preserve_color",
        )
    device = resolve_device(options.device)
    configure_device(device, options.precision, options.deterministic)
    image = open_image(style, role="style image")
    check_min_size(image, min_input_side(options.style_layers), role="style image")
    network, convention, _ = run_network(options, list(options.style_layers), device)
    return synthesis.prepared_style(options, image, network, convention, device)


def stylize_video(
    clip: str | os.PathLike[str],
    style: Styles,
    output: str | os.PathLike[str],
    options: Options | None = None,
    video: VideoOptions | None = None,
    *,
    on_frame: FrameCallback | None = None,
    cancel: Cancel | None = None,
    **values: object,
) -> VideoResult:
    """Paint every frame of `clip` (a video file or a folder of frames) without flicker, into
    `output`: a video (.mp4 .webm .gif) or a folder of numbered PNGs. Keyword options are those of
    `Options` and `VideoOptions` (temporal_weight, later_iterations, coarse_iterations,
    long_term, fps). Frames are
    written as they finish; calling again with the same arguments resumes an interrupted run."""
    video_names = {f.name for f in fields(VideoOptions)}
    video_values = {k: v for k, v in values.items() if k in video_names}
    if isinstance(video_values.get("long_term"), (list, tuple)):
        video_values["long_term"] = tuple(video_values["long_term"])
    video = VideoOptions(**{**(vars(video) if video else {}), **video_values})
    rest = {k: v for k, v in values.items() if k not in video_names}
    return paint_clip(clip, _style_list(style), output, _options(options, rest), video,
                      on_frame=on_frame, cancel=cancel)  # fmt: skip


def _options(options: Options | None, values: dict) -> Options:
    return (options or Options()).with_values(**values).validated()


def _style_list(style: Styles) -> list[StyleSource]:
    if isinstance(style, (list, tuple)):
        if not style:
            raise InputError("give at least one style image")
        return list(style)
    return [style]
