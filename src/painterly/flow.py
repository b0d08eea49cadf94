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


# Below this smallest eigenvalue of the local structure tensor (OpenCV's cornerMinEigenVal, 7 px
# blocks, uint8 frames) a pixel has nothing DIS can track. Measured on the benchmark's H.264 walk
# clip at 384 px: its sky 1e-6 (median) to 2e-5 (90th percentile), its houses 1.6e-3.
FLAT = 3e-5
# Pixels sampled for the camera's motion: every FLAT_GRID px of the textured ones.
FLAT_GRID = 4


class FlowEstimator:
    """DIS flow, its parameters set once (MEDIUM preset: ~0.1 s a pair at 384 px on one core),
    with the camera's motion where the frame is flat."""

    def __init__(self) -> None:
        cv2 = opencv()
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from `source`'s pixels to where they are in `target` (both grayscale)."""
        return camera_motion_where_flat(self._dis.calc(source, target, None), source)


def camera_motion_where_flat(flow: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The flow, with the camera's motion where `source` has no texture.

    Over a flat area (a clear sky, a wall) DIS has nothing to match and its flow is a guess: on
    the H.264 walk clip it was 2.4 px off in the sky (true motion 2.7 px) and passed the
    reliability tests there, so the painting was warped along noise frame after frame. There,
    take the motion of the whole frame instead: a homography fitted (OpenCV's RANSAC) to the flow
    where the frame has texture. Sky error 2.4 -> 0.1 px; all pixels 1.15 -> 0.21 px on that
    clip, 0.49 -> 0.42 on the uncompressed ones (docs/video.md)."""
    cv2 = opencv()
    flat = cv2.cornerMinEigenVal(source, 7) < FLAT
    if not flat.any():
        return flow
    height, width = source.shape
    ys, xs = np.mgrid[0:height:FLAT_GRID, 0:width:FLAT_GRID]
    textured = ~flat[ys, xs]
    if textured.sum() < 20:
        return flow
    points = np.stack([xs[textured], ys[textured]], -1).astype(np.float32)
    moved = points + flow[ys[textured], xs[textured]]
    homography, inliers = cv2.findHomography(points, moved, cv2.RANSAC, 1.0)
    if homography is None or inliers.mean() < 0.3:  # no one motion of the frame: leave DIS's
        return flow
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float32)
    camera = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(height, width, 2)
    return np.where(flat[..., None], camera - grid, flow).astype(np.float32)


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
