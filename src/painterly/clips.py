"""Clips in and out: a video file or a folder of frames -> PIL frames -> a video file or PNGs.

Video goes through PyAV (FFmpeg's libraries, bundled in its wheel): reading any container it
knows, writing .mp4 (H.264), .webm (VP9) and .gif. The frame rate is kept, and the audio track
is copied into the output when its container takes that codec. A video is encoded into a hidden
temp file beside the output and renamed over it, so a failure never leaves half a video.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from PIL import Image

from .errors import InputError
from .images import IMAGE_SUFFIXES, open_image

VIDEO_OUTPUTS = {".mp4": "libx264", ".webm": "libvpx-vp9", ".gif": "gif"}
AUDIO_FITS = {  # audio codecs each output container takes as they are
    ".mp4": {"aac", "mp3", "ac3", "alac", "opus"},
    ".webm": {"opus", "vorbis"},
    ".gif": set(),
}
DEFAULT_FPS = 24.0


def _av():
    try:
        import av
    except ImportError:
        raise InputError("video needs OpenCV and PyAV: pip install 'painterly[video]'") from None
    return av


@dataclass
class Clip:
    """An input clip, checked: where it is, how many frames, their rate and size."""

    path: pathlib.Path
    count: int  # exact for a folder; from the container's header for a video (0: unknown)
    fps: float
    size: tuple[int, int]
    files: list[pathlib.Path] = field(default_factory=list)  # a folder's frames, by name

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()

    def frames(self) -> Iterator[Image.Image]:
        """The frames in order, as RGB images; an unreadable one is an InputError."""
        if self.is_folder:
            for number, path in enumerate(self.files, 1):
                frame = open_image(path, role=f"frame {number} ({path.name})")
                if frame.size != self.size:
                    raise _sizes_differ(self, path, frame.size)
                yield frame
            return
        yield from _decode(self.path)


def open_clip(path: str | os.PathLike[str], fps: float | None = None) -> Clip:
    """Check a clip before any work: it exists, has frames, and (a folder) they are one size."""
    clip = pathlib.Path(path)
    if not clip.exists():
        raise InputError(f"clip {clip} does not exist")
    if clip.is_dir():
        files = sorted(
            p
            for p in clip.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise InputError(f"clip folder {clip} holds no frames (image files)")
        first = open_image(files[0], role=f"frame 1 ({files[0].name})")
        return Clip(clip, len(files), fps or DEFAULT_FPS, first.size, files)
    av = _av()
    try:
        with av.open(str(clip)) as container:
            if not container.streams.video:
                raise InputError(f"clip {clip} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            size = (stream.codec_context.width, stream.codec_context.height)
            count = stream.frames or _counted(container, stream)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"clip {clip} is not a video or a folder of frames ({exc})") from None
    if not size[0] or not size[1]:
        raise InputError(f"clip {clip} has no readable frames")
    return Clip(clip, count, float(fps or rate or DEFAULT_FPS), size)


def _counted(container, stream) -> int:
    """Frames of a stream whose header does not say (WebM): its packets, read without decoding."""
    return sum(1 for packet in container.demux(stream) if packet.size)


def _decode(path: pathlib.Path) -> Iterator[Image.Image]:
    av = _av()
    number = 0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                number += 1
                yield frame.to_image().convert("RGB")
    except av.FFmpegError as exc:
        raise InputError(f"frame {number + 1} of clip {path} cannot be read ({exc})") from None
    if number == 0:
        raise InputError(f"clip {path} has no frames")


def _sizes_differ(clip: Clip, path: pathlib.Path, size: tuple[int, int]) -> InputError:
    first = f"{clip.size[0]}x{clip.size[1]}"
    return InputError(
        f"frames of clip folder {clip.path} differ in size: {clip.files[0].name} is {first}, "
        f"{path.name} is {size[0]}x{size[1]}"
    )


def check_sizes(clip: Clip) -> None:
    """A folder's frames all have the first one's size (read from their headers: cheap)."""
    for path in clip.files[1:]:
        try:
            with Image.open(path) as image:
                size = image.size
        except (OSError, Image.DecompressionBombError):
            continue  # reported as unreadable when its turn comes, with open_image's words
        if size != clip.size:
            raise _sizes_differ(clip, path, size)


def write_video(
    frames: Sequence[pathlib.Path], output: pathlib.Path, fps: float, audio_from: Clip | None
) -> bool:
    """Encode PNG frames into `output` (its extension picks the codec), with `audio_from`'s
    audio track when the container takes it; returns whether audio was copied."""
    av = _av()
    suffix = output.suffix.lower()
    handle, temp = tempfile.mkstemp(dir=output.parent, prefix="." + output.name, suffix=suffix)
    os.close(handle)
    try:
        copied = _encode(av, frames, temp, suffix, fps, audio_from)
        os.replace(temp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return copied


def _encode(av, frames, temp: str, suffix: str, fps: float, audio_from: Clip | None) -> bool:
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(temp, mode="w", format={".gif": "gif"}.get(suffix)) as container:
        stream = container.add_stream(VIDEO_OUTPUTS[suffix], rate=rate)
        width, height = Image.open(frames[0]).size
        if suffix != ".gif":  # 4:2:0 chroma needs even sides: the last odd row/column is dropped
            width, height = width - width % 2, height - height % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18"} if suffix == ".mp4" else {"crf": "24", "b": "0"}
        else:
            stream.pix_fmt = "rgb8"
        stream.width, stream.height = width, height
        audio = _audio_stream(av, container, audio_from, suffix)
        for path in frames:
            with Image.open(path) as image:
                picture = image.convert("RGB").crop((0, 0, width, height))
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            _copy_audio(av, audio_from, audio, container)
    return audio is not None


def _audio_stream(av, container, clip: Clip | None, suffix: str):
    if clip is None or clip.is_folder:
        return None
    with av.open(str(clip.path)) as source:
        if not source.streams.audio:
            return None
        audio = source.streams.audio[0]
        if audio.codec_context.name not in AUDIO_FITS[suffix]:
            return None
        return container.add_stream_from_template(audio)


def _copy_audio(av, clip: Clip, stream, container) -> None:
    with av.open(str(clip.path)) as source:
        for packet in source.demux(source.streams.audio[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            container.mux(packet)
