"""Optical flow between frames, warping along it, and where the warp can be trusted.

Flow comes from OpenCV's DIS (Kroeger et al. 2016: fast, offline, well kept), on grayscale
frames; nothing here estimates motion itself. Conventions: a flow is an (H, W, 2) float32 array
of (dx, dy) in pixels; the *backward* flow of frame t points from each pixel of t to where it
was in t-1, so `warp(previous, backward)` brings frame t-1 (or its painted output) into t.

The reliability follows Ruder, Dosovitskiy & Brox ("Artistic style transfer for videos", GCPR
2016), with their thresholds: a pixel is unreliable (0) where the forward and backward flows
disagree (it was hidden in t-1: disoccluded) or on a motion boundary, reliable (1) elsewhere.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import InputError

INSTALL = "video needs OpenCV and PyAV: pip install 'painterly[video]'"


def opencv():
    """OpenCV, or the one line that says how to install it."""
    try:
        import cv2
    except ImportError:
        raise InputError(INSTALL) from None
    return cv2


def gray(image: Image.Image) -> np.ndarray:
    """A frame as the uint8 grayscale DIS works on."""
    return np.asarray(image.convert("L"), dtype=np.uint8)


class FlowEstimator:
    """DIS flow, its parameters set once (MEDIUM preset: ~0.1 s a pair at 384 px on one core)."""

    def __init__(self) -> None:
        cv2 = opencv()
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from `source`'s pixels to where they are in `target` (both grayscale)."""
        return self._dis.calc(source, target, None)


def sample(image: np.ndarray, flow: np.ndarray, *, sharp: bool = False) -> np.ndarray:
    """image(x + flow(x)), bilinear (or Lanczos, `sharp`); outside the image the nearest border
    pixel."""
    cv2 = opencv()
    interpolation = cv2.INTER_LANCZOS4 if sharp else cv2.INTER_LINEAR
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32),
                                 np.arange(height, dtype=np.float32))  # fmt: skip
    map_x = grid_x + flow[..., 0]
    map_y = grid_y + flow[..., 1]
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)


def warp(previous: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Frame t-1 (H, W, C float32, 0-1) carried into frame t along t's backward flow.

    Lanczos: a clip warps each painted stroke frame after frame, and the few iterations of a
    later frame cannot restore what interpolation blurs away. A painted 192 px frame shifted by
    0.5 px had 4.6x its style loss bilinear, 1.37x bicubic, 1.09x Lanczos (docs/video.md)."""
    warped = sample(np.ascontiguousarray(previous, dtype=np.float32), backward, sharp=True)
    return np.clip(warped, 0.0, 1.0)


def reliability(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """c in {0, 1} per pixel of frame t (H, W float32): Ruder et al.'s two tests.

    Consistency: following w (t -> t-1) and then w~ (t-1 -> t) must come back, within
    |w + w~|^2 <= 0.01 (|w|^2 + |w~|^2) + 0.5. Motion boundary: |grad u|^2 + |grad v|^2 <=
    0.01 |w|^2 + 0.002.
    """
    back = sample(forward, backward)  # w~ at x + w(x)
    mismatch = np.sum((backward + back) ** 2, axis=-1)
    tolerance = 0.01 * (np.sum(backward**2, axis=-1) + np.sum(back**2, axis=-1)) + 0.5
    gradient = np.zeros(backward.shape[:2], dtype=np.float32)
    for channel in range(2):
        dy, dx = np.gradient(backward[..., channel])
        gradient += dx**2 + dy**2
    boundary = gradient > 0.01 * np.sum(backward**2, axis=-1) + 0.002
    return ((mismatch <= tolerance) & ~boundary & _inside(backward)).astype(np.float32)


def _inside(flow: np.ndarray) -> np.ndarray:
    """Where x + flow(x) lies in the frame (elsewhere the pixel came in from outside the view)."""
    height, width = flow.shape[:2]
    x = np.arange(width, dtype=np.float32)[None, :] + flow[..., 0]
    y = np.arange(height, dtype=np.float32)[:, None] + flow[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
