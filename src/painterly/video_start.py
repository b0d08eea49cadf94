"""What a later frame of a clip starts from where the frame before cannot be carried over.

The frame before, warped, is the right start wherever the flow is reliable. Where it is not
(areas a moving thing uncovers, and the band around it where DIS's flow bleeds from the thing
into the background: about four times the truly uncovered area on the benchmark's clips), the
warp drags the painted strokes along the wrong flow into streaks and leaves a ghost of the thing,
and a later frame's few full-size iterations cannot repaint them: strokes are laid out at coarse
scales (docs/video.md, "Disoccluded areas").

So those areas get what frame 1 gets: a coarse pass. The frame is painted at half size for a few
iterations, from the warp where it is reliable (held there by the temporal term) and from the
photo in the painting's palette elsewhere; the result, upsampled with fresh detail noise, fills
the start where the warp is not trusted.
"""

from __future__ import annotations

import numpy as np
from skimage.exposure import match_histograms

from .flow import opencv
from .synthesis import UPSAMPLED_DETAIL  # frame 1's detail noise: for the full size to shape

# Unreliable areas smaller than this share of the frame (a few stray pixels) need no coarse pass.
COARSE_PASS_FROM = 0.001
# The warp is trusted from TRUST_MARGIN px away from any unreliable pixel, fully ~4 px further.
TRUST_MARGIN = 2


def needs_coarse_pass(reliable: np.ndarray) -> bool:
    return float(np.mean(reliable < 0.5)) >= COARSE_PASS_FROM


def palette_fill(warped: np.ndarray, reliable: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """The coarse pass's start: the warp where trusted, else the photo (which has the right
    shapes there) in the painted frame's palette: its histograms matched, channel by channel, to
    the trusted pixels' (scikit-image). All (H, W, 3) float32 in [0, 1]."""
    keep = trust(reliable)
    trusted = keep >= 1.0
    if trusted.sum() < 16:  # nothing to learn the palette from
        return photo.astype(np.float32)
    mapped = match_histograms(photo, warped[trusted][:, None, :], channel_axis=-1)
    keep = keep[..., None]
    return (keep * warped + (1.0 - keep) * np.clip(mapped, 0.0, 1.0)).astype(np.float32)


def trust(reliable: np.ndarray) -> np.ndarray:
    """How much of the warp to keep in the start, (H, W) in [0, 1]: 0 in and near unreliable
    areas (where the flow bleeds), 1 elsewhere, with a soft edge so no seam is painted in."""
    cv2 = opencv()
    size = 2 * TRUST_MARGIN + 1
    kept = cv2.erode(np.ascontiguousarray(reliable, np.float32), np.ones((size, size), np.uint8))
    soft = cv2.GaussianBlur(kept, (0, 0), TRUST_MARGIN * 0.75)
    return np.clip(np.minimum(soft, kept), 0.0, 1.0)  # the edge ramps up on the trusted side


def compose_start(
    warped: np.ndarray, reliable: np.ndarray, coarse: np.ndarray, seed: int
) -> np.ndarray:
    """The full-size start: the warp where trusted, else the coarse pass's frame (upsampled to
    the frame's size by the caller) with seeded detail noise."""
    keep = trust(reliable)[..., None]
    noise = np.random.default_rng(seed).normal(0.0, UPSAMPLED_DETAIL, coarse.shape)
    fresh = np.clip(coarse + noise.astype(np.float32), 0.0, 1.0)
    return (keep * warped + (1.0 - keep) * fresh).astype(np.float32)
