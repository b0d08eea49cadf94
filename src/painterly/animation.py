"""The optimization as an animation: a GIF (imageio, Pillow) or an MP4 (imageio-ffmpeg, extra).

`AnimationRecorder` is a progress callback: pass it to `run_transfer(..., callback=recorder)`,
then `recorder.save(result)`. It keeps a frame every `every` iterations (counted over all
scales), as the output would look at that point (colors put back with `preserve_color`), and
the final image; frames from coarser scales are enlarged to the output size.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import tempfile
from collections.abc import Callable

import numpy as np
from PIL import Image

from .errors import InputError
from .images import check_output_path, resize_to, write_bytes_atomic
from .optimize import Progress

ANIMATION_FORMATS = (".gif", ".mp4")


def check_animation_path(path: str | os.PathLike[str]) -> pathlib.Path:
    """A writable .gif or .mp4 path; an .mp4 also needs the optional imageio-ffmpeg."""
    target = check_output_path(path, ANIMATION_FORMATS)
    if target.suffix.lower() == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise InputError(
            "an .mp4 animation needs imageio-ffmpeg: pip install 'painterly[mp4]' (or write a .gif)"
        )
    return target


class AnimationRecorder:
    """Collects frames during a run (a `ProgressCallback`) and writes them with `save`."""

    def __init__(self, path: str | os.PathLike[str], *, every: int = 10, fps: float = 10.0):
        if not isinstance(every, int) or every < 1:
            raise InputError(f"{{frame_every}} must be a whole number of at least 1, not {every!r}")
        if not fps > 0:
            raise InputError(f"the frame rate must be above 0, not {fps!r}")
        self.path = check_animation_path(path)
        self.every = every
        self.fps = fps
        self.frames: list[Image.Image] = []

    def __call__(self, progress: Progress) -> None:
        if progress.iteration % self.every == 0:
            self.frames.append(progress.picture())

    def save(self, result: object) -> int:
        """Write the animation, ending on `result` (a `Result` or the final image); frames."""
        final = result if isinstance(result, Image.Image) else result.image  # type: ignore[attr-defined]
        # The result may be the best image seen rather than the last: end on it unless the last
        # frame already is it.
        if not self.frames or not _same_pixels(self.frames[-1], final):
            self.frames.append(final)
        arrays = [np.asarray(resize_to(frame.convert("RGB"), final.size)) for frame in self.frames]
        write_animation(arrays, self.path, fps=self.fps)
        return len(arrays)


def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(
        np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))
    )


def write_animation(frames: list[np.ndarray], path: pathlib.Path, *, fps: float = 10.0) -> None:
    """Write (H, W, 3) uint8 frames as a looping GIF or an H.264 MP4, atomically."""
    import imageio.v3 as iio

    if path.suffix.lower() == ".gif":
        data = iio.imwrite("<bytes>", frames, extension=".gif", duration=1000 / fps, loop=0)
        write_bytes_atomic(data, path)
        return
    # H.264 in yuv420p needs even sides: repeat the last row/column where they are odd.
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    even = [np.pad(frame, pad, mode="edge") for frame in frames]
    _write_via_temp(path, lambda tmp: iio.imwrite(tmp, even, extension=".mp4", plugin="FFMPEG",
                                                  fps=fps, macro_block_size=1))  # fmt: skip


def _write_via_temp(target: pathlib.Path, write: Callable[[str], object]) -> None:
    """For writers that need a path: a hidden temp file beside `target`, renamed over it."""
    # The temp name keeps the extension: ffmpeg picks the container by it.
    handle, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".part{target.suffix}"
    )
    os.close(handle)
    try:
        write(tmp)
        if os.path.getsize(tmp) == 0:
            raise OSError(f"the video writer wrote nothing to {target}")
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
