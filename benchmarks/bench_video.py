"""Video benchmark: temporal consistency on synthetic clips whose true motion is known, and time
per frame.

    python benchmarks/bench_video.py                      # 384 px, 8 frames a clip (long)
    python benchmarks/bench_video.py --size 128 --frames 5   # a quick look while developing

Each clip is a photo (Tubingen) panned, zoomed or rotated, with a disk cut from another photo
(the Golden Gate) moving across it, hiding and uncovering the background. The fourth, `walk`, is
made to look like a filmed clip: a slow pan and zoom at once, a soft-edged disk (scikit-image's
cat) bobbing as it moves, and every frame through H.264 and back (`--kinds walk`). The true backward
flow of every frame and the pixels visible in both frames are known exactly. The warping error
of a clip: the mean over frames t > 1 of the mean squared difference (0-1 RGB, per channel)
between output t and output t-1 warped into t by the true flow, over pixels visible in both.
Rows: `painterly video` (ours), independent per-frame stylization (the full default transfer
of every frame, same options and seed: at least ours' iterations), and the input clip itself.
Prints a Markdown table with the date and machine (docs/video.md keeps a copy). Images come from
../shared/images and are never copied into the repo.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import IMAGES, machine

from painterly.options import Options, VideoOptions
from painterly.synthesis import synthesize
from painterly.video import paint_clip, prepare_styles

KINDS = ("pan", "zoom", "rotate")  # and "walk", on request


@dataclass
class SyntheticClip:
    frames: list[np.ndarray]  # (H, W, 3) uint8
    flows: list[np.ndarray]  # per frame t >= 1: true backward flow t -> t-1, (H, W, 2)
    visible: list[np.ndarray]  # per frame t >= 1: visible in t and t-1, (H, W) bool


def background_transform(kind: str, t: int, width: int, height: int) -> np.ndarray:
    """3x3 matrix from frame t's pixels to the photo's (a small, smooth camera motion)."""
    cx, cy = width / 2, height / 2
    if kind == "pan":
        scale, angle, shift = 1.0, 0.0, (0.012 * width * t, 0.004 * height * t)
    elif kind == "zoom":
        scale, angle, shift = 1.0 / (1.0 + 0.02 * t), 0.0, (0.0, 0.0)
    elif kind == "walk":
        scale, angle, shift = 1.0 / (1.0 + 0.008 * t), 0.0, (0.006 * width * t, 0.002 * height * t)
    else:
        scale, angle, shift = 1.0, np.deg2rad(0.8 * t), (0.0, 0.0)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    to_center = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    turn = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    back = np.array([[1, 0, cx + shift[0]], [0, 1, cy + shift[1]], [0, 0, 1]])
    # the photo is larger than the frame: the frame looks at its middle
    return np.array([[1, 0, 0.15 * width], [0, 1, 0.15 * height], [0, 0, 1]]) @ (
        back @ turn @ to_center
    )


def make_clip(kind: str, frames: int, side: int) -> SyntheticClip:
    photo = Image.open(IMAGES / "tubingen.jpg").convert("RGB")
    width = side
    height = round(side * photo.height / photo.width)
    photo = np.asarray(photo.resize((round(width * 1.5), round(height * 1.5)), Image.LANCZOS))
    thing = Image.open(IMAGES / "golden_gate.jpg") if kind != "walk" else _cat()
    thing = np.asarray(thing.convert("RGB").resize((side, side)))
    radius = 0.18 * height
    start = np.array([0.15 * width, 0.6 * height])
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float64)
    out = SyntheticClip([], [], [])
    for t in range(frames):
        source = _apply(background_transform(kind, t, width, height), grid)
        frame = _sample(photo, source)
        center = start + _travel(kind, t, width, height)
        distance = np.sqrt(np.sum((grid - center) ** 2, -1))
        disk = distance <= radius
        # walk: the disk's edge blends over 2 px, as a filmed object's does
        cover = np.clip(radius + 1 - distance, 0, 1) if kind == "walk" else disk.astype(float)
        zoom = side / (2.2 * radius) if kind == "walk" else 1.0  # the whole cat's face
        pasted = _sample(thing, (grid - center) * zoom + side / 2).astype(np.float64)
        frame = (cover[..., None] * pasted + (1 - cover[..., None]) * frame).round()
        out.frames.append(frame.astype(np.uint8))
        if t == 0:
            continue
        velocity = center - (start + _travel(kind, t - 1, width, height))
        before = np.linalg.inv(background_transform(kind, t - 1, width, height))
        behind = _apply(before, source)  # where each background pixel was in t-1
        soft = 1.5 if kind == "walk" else 0.0  # blended pixels move with neither part
        hidden = np.sum((behind - (center - velocity)) ** 2, -1) <= (radius + soft) ** 2
        position = np.where(disk[..., None], grid - velocity, behind)
        inside = np.all((position >= 0) & (position <= [width - 1, height - 1]), -1)
        out.flows.append((position - grid).astype(np.float32))
        edge = np.abs(distance - radius) < soft
        out.visible.append(inside & (disk | ~hidden) & ~edge)
    if kind == "walk":
        out.frames = _through_h264(out.frames)
    return out


def _travel(kind: str, t: int, width: int, height: int) -> np.ndarray:
    """How far the disk has moved by frame t: a walker's pace (DIS can follow it); `walk` bobs."""
    if kind == "walk":
        return np.array([0.035 * width * t, 0.02 * height * np.sin(0.9 * t)])
    return np.array([0.05 * width * t, -0.01 * height * t])


def _cat() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea()).crop((80, 0, 380, 300))  # the face


def _through_h264(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The frames as a player shows them after H.264 at its usual quality (crf 23)."""
    import av

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=24)
            stream.height, stream.width = (s - s % 2 for s in frames[0].shape[:2])
            stream.pix_fmt, stream.options = "yuv420p", {"crf": "23"}
            for frame in frames:
                cropped = frame[: stream.height, : stream.width]
                container.mux(stream.encode(av.VideoFrame.from_ndarray(cropped, format="rgb24")))
            container.mux(stream.encode())
        with av.open(str(path)) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    height, width = frames[0].shape[:2]
    return [np.pad(d, ((0, height - d.shape[0]), (0, width - d.shape[1]), (0, 0)), mode="edge")
            for d in decoded]  # fmt: skip


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    maps = points.astype(np.float32)
    return cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)  # fmt: skip


def warping_error(outputs: list[np.ndarray], clip: SyntheticClip) -> float:
    """Mean over t > 1 of the mean squared difference to output t-1 warped by the true flow."""
    errors = []
    grid = np.stack(np.meshgrid(np.arange(outputs[0].shape[1]),
                                np.arange(outputs[0].shape[0])), -1)  # fmt: skip
    for t in range(1, len(outputs)):
        previous = outputs[t - 1].astype(np.float32) / 255
        warped = _sample(previous, grid + clip.flows[t - 1])
        difference = (outputs[t].astype(np.float32) / 255 - warped) ** 2
        errors.append(float(difference[clip.visible[t - 1]].mean()))
    return float(np.mean(errors))


def run_ours(clip_dir: Path, style: Path, options: Options, video: VideoOptions, work: Path):
    times: list[float] = []
    output = work / "ours"
    paint_clip(clip_dir, [style], output, options, video,
                  on_frame=lambda done: times.append(done.seconds))  # fmt: skip
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(output.glob("frame_*.png"))]
    manifest = json.loads((output / "painterly-video.json").read_text())
    styles = [frame["loss"]["style"] for frame in manifest["frames"][1:]]
    return frames, times, float(np.mean(styles))


def run_independent(clip: SyntheticClip, style: Path, options: Options, first: np.ndarray):
    """Every frame on its own; frame 1 is ours' frame 1 (the same run), so it is not redone."""
    prepared, _ = prepare_styles(options, [Image.open(style).convert("RGB")])
    outputs, styles = [first], []
    for frame in clip.frames[1:]:
        result = synthesize(options, Image.fromarray(frame), prepared)
        outputs.append(np.asarray(result.image))
        styles.append(result.record["final_loss"]["style"])
    return outputs, float(np.mean(styles))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--style", default="starry_night.jpg")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--temporal-weight", type=float, default=VideoOptions.temporal_weight)
    parser.add_argument("--later-iterations", type=int, default=VideoOptions.later_iterations)
    parser.add_argument("--no-independent", action="store_true")
    parser.add_argument("--save", type=Path, help="folder to keep the outputs in (for a look)")
    args = parser.parse_args()
    options = Options(size=args.size, seed=0)
    video = VideoOptions(temporal_weight=args.temporal_weight,
                         later_iterations=args.later_iterations)  # fmt: skip
    style = IMAGES / args.style
    rows = []
    for kind in args.kinds.split(","):
        clip = make_clip(kind, args.frames, args.size)
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            (work / "clip").mkdir()
            for t, frame in enumerate(clip.frames):
                Image.fromarray(frame).save(work / "clip" / f"{t:03d}.png")
            ours, times, style_loss = run_ours(work / "clip", style, options, video, work)
        row = {"clip": kind, "input": warping_error(clip.frames, clip),
               "ours": warping_error(ours, clip), "first": times[0],
               "later": float(np.mean(times[1:])), "style": style_loss}  # fmt: skip
        if not args.no_independent:
            independent, row["independent_style"] = run_independent(clip, style, options, ours[0])
            row["independent"] = warping_error(independent, clip)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for name, frames in (("input", clip.frames), ("ours", ours)):
                strip = np.concatenate(frames, axis=1)
                Image.fromarray(strip).save(args.save / f"{kind}-{name}.png")
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    print_table(rows, args)


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"{datetime.date.today()}, {machine()}; {args.size} px, {args.frames} frames a clip, "
          f"style {args.style}, temporal weight {args.temporal_weight:g}, later frames at most "
          f"{args.later_iterations} iterations\n")  # fmt: skip
    print(
        "| clip | warping error: input | independent | ours | ours / independent | "
        "style loss, later frames: independent | ours | first frame s | later frames s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for row in rows:
        independent = row.get("independent")
        ratio = f"{row['ours'] / independent:.3f}" if independent else "-"
        shown = f"{independent:.5f}" if independent else "-"
        style = f"{row['independent_style']:.4f}" if independent else "-"
        cells = [row["clip"], f"{row['input']:.5f}", shown, f"{row['ours']:.5f}", ratio, style,
                 f"{row['style']:.4f}", f"{row['first']:.1f}", f"{row['later']:.1f}"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
    main()
