"""A painted clip that does not flicker (Ruder, Dosovitskiy & Brox 2016), resumably.

    frame 1:        the normal transfer (coarse to fine, `Options`)
    frame t > 1:    start from output t-1 warped into t by optical flow, where the flow is
                    reliable (flow.py); elsewhere from a short half-size pass (video_start.py);
                    one scale at full size, few iterations, plus the temporal term (temporal.py)
                    that holds the frame to that warp where the flow is reliable

The style targets and frame 1's alpha are computed once per clip; flow once per pair of frames.
Each frame is written (a PNG, atomically) as it finishes, with a manifest of the run; a rerun
with the same inputs and options resumes after the last finished frame and, since every frame
is deterministic for a seed and read back from its 8-bit PNG either way, gives the same clip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .clips import VIDEO_OUTPUTS, Clip, check_sizes, open_clip, write_video
from .errors import InputError
from .flow import FlowEstimator, gray, reliability, warp
from .images import (
    check_writable_folder,
    open_image,
    resize_long_side,
    save_image,
    write_text_atomic,
)
from .network import configure_device, resolve_device
from .optimize import Cancel
from .options import Options, VideoOptions
from .record import Result, package_versions
from .synthesis import (
    MIN_SCALE_SIDE,
    ImageSource,
    PreparedStyle,
    check_memory,
    prepared_style,
    run_network,
    style_key,
    synthesize,
)
from .temporal import TemporalTerm
from .video_start import compose_start, needs_coarse_pass, palette_fill
from .weights import InputConvention

MANIFEST = "painterly-video.json"
FRAME_NAME = "frame_{:05d}.png"
FrameCallback = Callable[["FrameDone"], None]


@dataclass
class FrameDone:
    """What a frame callback sees after each finished frame."""

    index: int  # 0-based
    total: int  # frames in the clip (0: not known ahead)
    seconds: float
    iterations: int
    path: pathlib.Path


@dataclass
class VideoResult:
    """Where the clip went and how the run went (its `record` is the manifest)."""

    output: pathlib.Path
    folder: pathlib.Path  # where the frames are (a video's work folder is gone once it is made)
    frames: int  # finished frames
    resumed: int  # frames found finished at the start
    interrupted: bool
    audio: bool
    record: dict = field(repr=False)


@dataclass
class Layout:
    """Where a run keeps its frames: the output folder itself, or a work folder beside a video."""

    output: pathlib.Path
    folder: pathlib.Path
    video: bool

    @classmethod
    def for_output(cls, output: str | os.PathLike[str]) -> Layout:
        path = pathlib.Path(output)
        suffix = path.suffix.lower()
        if suffix and not path.is_dir():
            if suffix not in VIDEO_OUTPUTS:
                kinds = ", ".join(VIDEO_OUTPUTS)
                raise InputError(
                    f"output {path} has '{path.suffix}'; give a video ({kinds}) or a folder"
                )
            return cls(path, path.with_name(path.name + ".frames"), True)
        return cls(path, path, False)

    def frame(self, index: int) -> pathlib.Path:
        return self.folder / FRAME_NAME.format(index + 1)

    def prepare(self, clip: Clip, size: tuple[int, int]) -> bool:
        """Check the output can be written and the frames fit on the disk, then make the frames'
        folder; return whether it was made now (so a failed start can take it away again)."""
        parent = self.output.parent if self.video else self.folder.parent
        if not parent.is_dir():
            raise InputError(f"output folder {parent} does not exist")
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"output {self.folder} is a file, not a folder")
        check_writable_folder(parent)
        needed = clip.count * size[0] * size[1] * 3 * (2 if self.video else 1)
        free = shutil.disk_usage(parent).free
        if needed > free:
            raise InputError(f"{clip.count} frames of {size[0]}x{size[1]} px need about "
                             f"{needed / 1024**3:.1f} GiB on disk but {parent} has "
                             f"{free / 1024**3:.1f} GiB free; try a smaller {{size}}")  # fmt: skip
        created = not self.folder.exists()
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create output folder {self.folder}: {exc.strerror}") from None
        check_writable_folder(self.folder)
        return created


def paint_clip(
    clip: str | os.PathLike[str],
    styles: Sequence[ImageSource],
    output: str | os.PathLike[str],
    options: Options | None = None,
    video: VideoOptions | None = None,
    *,
    on_frame: FrameCallback | None = None,
    cancel: Cancel | None = None,
) -> VideoResult:
    """Paint every frame of `clip` (a video file or a folder of frames) in `styles`, into
    `output` (.mp4/.webm/.gif, or a folder of PNG frames); resumes an interrupted run."""
    options = (options or Options()).validated()
    video = (video or VideoOptions()).validated()
    if options.mask is not None:
        raise InputError("{mask} is not supported for video", field="mask")
    source = open_clip(clip, video.fps)
    if source.is_folder:
        check_sizes(source)
    layout = Layout.for_output(output)
    size = resize_long_side(Image.new("RGB", source.size), options.size).size
    layers = [options.content_layer, *options.style_layers]
    check_memory(size, layers, options, resolve_device(options.device))  # before any work
    style_images = [open_image(s, role="style image") for s in styles]
    if not style_images:
        raise InputError("give at least one style image")
    created = layout.prepare(source, size)
    try:
        manifest, options = resume_manifest(layout, source, style_images, options, video)
        run = ClipRun(layout, source, options, video, style_images, manifest)
        return run.run(on_frame, cancel)
    except BaseException:
        if created and not any(layout.folder.glob("frame_*.png")):
            shutil.rmtree(layout.folder, ignore_errors=True)  # nothing made: leave nothing
        raise


def resume_manifest(
    layout: Layout, clip: Clip, styles: list[Image.Image], options: Options, video: VideoOptions
) -> tuple[dict, Options]:
    """The run's manifest: the one found (if it is this run's) or a new one; the seed drawn once
    and kept there, so a resumed run goes on with it."""
    key = run_key(clip, styles, options, video)
    path = layout.folder / MANIFEST
    if path.is_file():
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            found = {}
        same = found.get("key") == key and options.seed in (None, found.get("seed"))
        if not same:
            raise InputError(f"{layout.folder} holds frames of another run (other inputs or "
                             "options); delete it or choose another output")  # fmt: skip
        return found, dataclasses.replace(options, seed=found["seed"])
    if any(layout.folder.glob("frame_*.png")):
        raise InputError(f"{layout.folder} already holds frame_*.png files not made by this run; "
                         "choose another output")  # fmt: skip
    seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
    manifest = {"command": "video", "key": key, "seed": seed, "frames": [],
                "versions": package_versions()}  # fmt: skip
    return manifest, dataclasses.replace(options, seed=seed)


def run_key(clip: Clip, styles: list[Image.Image], options: Options, video: VideoOptions) -> dict:
    """What a run's frames depend on: the inputs (by content, not name) and every option."""
    stat = [(p.name, p.stat().st_size) for p in clip.files] or clip.path.stat().st_size
    key = {
        "clip": str(clip.path.resolve()),
        "clip_files": hashlib.sha1(json.dumps(stat).encode()).hexdigest(),
        "styles": [hashlib.sha1(s.tobytes()).hexdigest() for s in styles],
        "options": {**asdict(dataclasses.replace(options, seed=None))},
        "video": asdict(video),
    }
    return json.loads(json.dumps(key))  # as the manifest will read it back: lists, not tuples


class ClipRun:
    """One clip's frames, in order: flow, reliability, start image and temporal term per frame."""

    def __init__(
        self,
        layout: Layout,
        clip: Clip,
        options: Options,
        video: VideoOptions,
        styles: list[Image.Image],
        manifest: dict,
    ) -> None:
        self.layout, self.clip, self.options, self.video = layout, clip, options, video
        self.manifest, self.styles = manifest, styles
        self.flow = FlowEstimator()
        self.grays: dict[int, np.ndarray] = {}
        self.outputs: dict[int, np.ndarray] = {}
        half = round(options.size / 2)
        self.coarse_side = half if video.coarse_iterations and half >= MIN_SCALE_SIDE else None
        extra = [self.coarse_side] if self.coarse_side else []
        self.first, self.convention = prepare_styles(options, styles, extra)
        self.later: Options | None = None
        self.later_styles: list[ImageSource | PreparedStyle] = []
        self.coarse_styles: list[ImageSource | PreparedStyle] = []

    @property
    def reach(self) -> int:
        """How many earlier frames a frame looks back at."""
        return max((1, *self.video.long_term))

    def run(self, on_frame: FrameCallback | None, cancel: Cancel | None) -> VideoResult:
        done = len(self.manifest["frames"])
        if done:
            self.set_later(self.manifest["alpha"])
        interrupted = False
        index = -1
        for index, frame in enumerate(self.clip.frames()):
            if cancel is not None and cancel.cancelled:
                interrupted = True
                break
            picture = resize_long_side(frame, self.options.size)
            self.grays[index] = gray(picture)
            if index < done:
                self.forget(index)
                continue
            started = time.perf_counter()
            result = self.paint(index, picture, cancel)
            if result.stop_reason == "interrupted":
                interrupted = True
                break
            self.finish_frame(index, result, time.perf_counter() - started, on_frame)
            self.forget(index)
        frames = len(self.manifest["frames"])
        if index < 0:
            raise InputError(f"clip {self.clip.path} has no frames")
        audio = False
        if not interrupted and self.layout.video:
            audio = self.write_output(frames)
        return VideoResult(
            self.layout.output, self.layout.folder, frames, done, interrupted, audio, self.manifest
        )

    def paint(self, index: int, picture: Image.Image, cancel: Cancel | None) -> Result:
        if index == 0:
            return synthesize(self.options, picture, self.first, cancel=cancel)
        assert self.later is not None
        targets, weights = [], []
        covered = np.zeros(picture.size[::-1], dtype=np.float32)
        for back in (1, *self.video.long_term):
            if index - back < 0:
                continue
            warped, reliable = self.warped(index, back)
            if back == 1:
                previous, previous_reliable = warped, reliable
            reliable = np.maximum(reliable - covered, 0)  # Ruder et al.'s long-term weights
            covered = np.minimum(covered + reliable, 1)
            targets.append(_tensor(warped))
            weights.append(torch.from_numpy(reliable)[None, None])
        start, coarse_iterations = previous, 0  # Ruder et al.: the warp, also where unreliable
        term = TemporalTerm(targets, weights, self.video.temporal_weight, self.convention)
        if self.coarse_side and needs_coarse_pass(previous_reliable):
            coarse = self.coarse_pass(picture, previous, previous_reliable, cancel)
            if coarse.stop_reason == "interrupted":
                return coarse
            coarse_iterations = coarse.record["iterations"]
            upsampled = coarse.image.resize(picture.size, Image.Resampling.BICUBIC)
            start = compose_start(previous, previous_reliable, _array(upsampled),
                                  self.options.seed + index)  # fmt: skip
        result = synthesize(self.later, picture, self.later_styles, cancel=cancel, terms=[term],
                            start=_tensor(start))  # fmt: skip
        result.record["coarse_iterations"] = coarse_iterations
        return result

    def coarse_pass(
        self,
        picture: Image.Image,
        warped: np.ndarray,
        reliable: np.ndarray,
        cancel: Cancel | None,
    ) -> Result:
        """The frame at half size, a few iterations: from the warp where it is reliable (and held
        to it there), from the photo in the painting's palette elsewhere (video_start.py)."""
        assert self.coarse_side is not None and self.later is not None
        width, height = picture.size
        small = resize_long_side(picture, self.coarse_side).size
        begin = palette_fill(warped, reliable, _array(picture))
        weight = _shrunk(torch.from_numpy(reliable)[None, None], small)
        term = TemporalTerm([_shrunk(_tensor(warped), small)], [(weight >= 0.999).float()],
                            self.video.temporal_weight, self.convention)  # fmt: skip
        options = dataclasses.replace(
            self.later,
            size=self.coarse_side,
            iterations=self.video.coarse_iterations,
            ratio=self.later.ratio * (width * height) / (small[0] * small[1]),  # as Plan.stages
        )
        return synthesize(options, picture, self.coarse_styles, cancel=cancel, terms=[term],
                          start=_shrunk(_tensor(begin), small))  # fmt: skip

    def warped(self, index: int, back: int) -> tuple[np.ndarray, np.ndarray]:
        """Output index-back carried into frame index, and where that can be trusted."""
        now, then = self.grays[index], self.grays[index - back]
        backward, forward = self.flow(now, then), self.flow(then, now)
        return warp(self.output(index - back), backward), reliability(backward, forward)

    def output(self, index: int) -> np.ndarray:
        """A finished frame as it was saved (8 bit), so a resumed run sees what a whole one did."""
        if index not in self.outputs:
            with Image.open(self.layout.frame(index)) as image:
                self.outputs[index] = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
        return self.outputs[index]

    def finish_frame(
        self, index: int, result: Result, seconds: float, on_frame: FrameCallback | None
    ) -> None:
        path = self.layout.frame(index)
        save_image(result.image, path)
        self.outputs[index] = np.asarray(result.image, dtype=np.float32) / 255
        if index == 0:
            self.manifest["alpha"] = result.record["alpha"]
            self.manifest["first_frame"] = {k: result.record[k] for k in
                                            ("options", "alpha", "scales", "timings")}  # fmt: skip
            self.set_later(result.record["alpha"])
        iterations = result.record["iterations"]
        loss = result.record["final_loss"]
        self.manifest["frames"].append({
            "iterations": iterations, "seconds": round(seconds, 3),
            "coarse_iterations": result.record.get("coarse_iterations", 0),
            "optimization_seconds": result.record["timings"]["optimization_seconds"],
            "stop_reason": result.stop_reason,
            "loss": {k: loss[k] for k in ("total", "content", "style")} | loss.get("extra", {}),
        })  # fmt: skip
        write_text_atomic(json.dumps(self.manifest, indent=2) + "\n", self.layout.folder / MANIFEST)
        if on_frame is not None:
            on_frame(FrameDone(index, self.clip.count, seconds, iterations, path))

    def set_later(self, alpha: float) -> None:
        """Later frames: one scale at full size, few iterations, frame 1's alpha (the same
        balance all through the clip, and no per-frame estimate of it)."""
        self.later = dataclasses.replace(self.options, scales=1, init="content", ratio=alpha,
                                         iterations=self.video.later_iterations)  # fmt: skip
        self.later_styles = self._styles_at(self.later, self.options.size)
        if self.coarse_side:
            coarse = dataclasses.replace(self.later, size=self.coarse_side)
            self.coarse_styles = self._styles_at(coarse, self.coarse_side)

    def _styles_at(self, options: Options, side: int) -> list[ImageSource | PreparedStyle]:
        """The clip's prepared styles, as a one-scale run of `options` at `side` takes them."""
        key = style_key(options)
        return [
            dataclasses.replace(s, key=key, targets={side: s.targets[side]})
            if isinstance(s, PreparedStyle)
            else s
            for s in self.first
        ]

    def forget(self, index: int) -> None:
        """Drop frames no later frame looks back at."""
        for store in (self.grays, self.outputs):
            for old in [k for k in store if k <= index - self.reach]:
                del store[old]

    def write_output(self, frames: int) -> bool:
        files = [self.layout.frame(i) for i in range(frames)]
        audio = write_video(files, self.layout.output, self.clip.fps, self.clip)
        self.manifest["audio_copied"] = audio
        record = self.layout.output.with_name(self.layout.output.name + ".json")
        write_text_atomic(json.dumps(self.manifest, indent=2) + "\n", record)
        shutil.rmtree(self.layout.folder, ignore_errors=True)
        return audio


def prepare_styles(
    options: Options, styles: list[Image.Image], extra_sides: Sequence[int] = ()
) -> tuple[list[ImageSource | PreparedStyle], InputConvention]:
    """The styles' Gram targets at every scale (and at `extra_sides`: the later frames' coarse
    pass), once per clip (not with color preservation, which matches each style to each frame),
    and the network's input convention."""
    device = resolve_device(options.device)
    configure_device(device, options.precision, options.deterministic)
    network, convention, _ = run_network(options, list(options.style_layers), device)
    if options.preserve_color != "none":
        return list(styles), convention
    prepared = [prepared_style(options, image, network, convention, device, extra_sides)
                for image in styles]  # fmt: skip
    return prepared, convention


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def _shrunk(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, C, H, W) averaged down to `size` (width, height)."""
    return F.interpolate(image, size=(size[1], size[0]), mode="area")
