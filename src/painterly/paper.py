"""Regenerate the figures of Gatys, Ecker & Bethge (CVPR 2016) as labelled contact sheets.

Each figure is data: the inputs it reads from a folder (by file name), a list of runs (kind,
inputs, ratio, option overrides, place on the sheet) and row/column labels. `render_figure`
runs them with the paper's settings, saves each image with its JSON record, draws the sheet
and times the whole. The paper's settings are spelled out here, field by field, so tuning the
defaults of `painterly transfer` for speed never changes what these figures show.

The paper's alpha/beta does not carry over to our losses as it stands (its network scaling and
image sizes differ); `ours_ratio` maps it, with the one constant `PAPER_TO_OURS`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from .api import Result, run_reconstruction, run_texture, run_transfer
from .errors import InputError
from .images import open_image, resize_long_side, save_image, write_text_atomic
from .options import PAPER_CONTENT_LAYER, PAPER_STYLE_LAYERS, Options
from .record import package_versions

if TYPE_CHECKING:
    from matplotlib.figure import Figure as PlotFigure

# ---------------------------------------------------------------------------------------------
# the paper's settings

#: Our alpha/beta = the paper's alpha/beta x PAPER_TO_OURS at REFERENCE_SIZE px (long side),
#: found by eye against the paper's Figure 3 (B, C, D at its 1e-3) in renders at 512 px, 500
#: steps from noise: at 1e-4 The Shipwreck and The Scream stayed mostly photo (The Starry
#: Night less so), at 3e-5 The Shipwreck still did; at 1e-5 The Scream's sky takes its orange
#: bands over readable houses and The Shipwreck its dark water and light. (At 256 px 3e-5
#: already looked right: with the same balance of the losses, a smaller image shows the
#: network's fixed-size strokes larger.) The content term sums over positions and the style
#: term does not, so at other sizes the equivalent ratio scales as 1/pixels (see
#: `ours_ratio`). Refine it here, and only here.
PAPER_TO_OURS = 1e-5
REFERENCE_SIZE = 512
PAPER_SIZE = 512  # default --size of `painterly paper`
PAPER_ITERATIONS = 500  # default --iterations: L-BFGS steps, a fixed count (tolerance 0)
CONTENT_LAYERS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")  # Figure 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")


def ours_ratio(paper_ratio: float, size: int) -> float:
    """Our alpha/beta that balances content and style as the paper's `paper_ratio` did."""
    return paper_ratio * PAPER_TO_OURS * (REFERENCE_SIZE / size) ** 2


def ratio_label(paper_ratio: float, size: int) -> str:
    """'paper 1e-3 = ours 1.6e-6': both numbers, so a sheet can be checked against the paper."""
    return f"α/β paper {_sci(paper_ratio)} = ours {_sci(ours_ratio(paper_ratio, size))}"


def _sci(value: float) -> str:
    """1e-05 -> '1e-5', 1.5625e-06 -> '1.6e-6': short enough for a tile caption."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def paper_options(
    size: int,
    iterations: int,
    seed: int,
    *,
    device: str = "auto",
    weights: str | None = None,
) -> Options:
    """The paper's procedure, every field explicit (not `Options` defaults, which may change).

    Normalized VGG-19 with average pooling, one scale, L-BFGS for a fixed number of iterations
    from white noise, content at conv4_2, style at conv1_1..conv5_1 with w_l = 1/5.
    """
    return Options(
        size=size,
        iterations=iterations,
        scales=1,
        tolerance=0.0,
        ratio=ours_ratio(1e-3, size),
        content_layer=PAPER_CONTENT_LAYER,
        style_layers=PAPER_STYLE_LAYERS,
        init="noise",
        optimizer="lbfgs",
        pooling="avg",
        normalize=True,
        weights=weights,
        seed=seed,
        device=device,
        precision="full",  # float32 on CUDA too: TF32 changes the picture (docs/gpu.md)
        deterministic=False,
        # The paper has none of the later controls: one style, its own scale, no color
        # preservation, no total-variation term, no spatial mask.
        style_blend=None,
        style_scale=1.0,
        preserve_color="none",
        tv_weight=0.0,
        mask=None,
        mask_map=None,
    ).validated()


# ---------------------------------------------------------------------------------------------
# figures as data


@dataclass(frozen=True)
class Input:
    """An image a figure reads from the images folder, found by its file name (any suffix).

    `names` are accepted file stems (case, '-' and '_' do not matter), the paper's work first;
    `stand_ins` are used, and said so on the sheet, when none of `names` is there.
    """

    key: str
    what: str  # for messages and the README: which work or photo, and whose
    names: tuple[str, ...]
    stand_ins: tuple[str, ...] = ()
    short: str = ""  # a short name for tile captions

    @property
    def label(self) -> str:
        return self.short or self.what


@dataclass(frozen=True)
class Run:
    """One image of a figure: what to run, on which inputs, and where its tile goes."""

    name: str  # file stem of the image
    label: str  # caption under its tile
    kind: str  # "transfer", "texture" or "reconstruct"
    at: tuple[int, int]  # (row, column) of its tile on the sheet
    content: str | None = None  # Input keys
    style: str | None = None
    paper_ratio: float | None = None  # alpha/beta in the paper's units (transfers)
    options: Mapping[str, object] = field(default_factory=dict)  # e.g. content_layer, init
    seed_offset: int = 0

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(k for k in (self.content, self.style) if k is not None)


@dataclass(frozen=True)
class Figure:
    """A figure of the paper: inputs, runs, and the labels of the sheet's rows and columns."""

    name: str
    title: str
    look_for: str  # what the paper says the figure shows: what to check on the sheet
    inputs: tuple[Input, ...]
    runs: tuple[Run, ...]
    rows: tuple[str, ...] = ()
    columns: tuple[float, ...] = ()  # paper ratios heading the columns (Figure 4)
    optional: frozenset[str] = frozenset()  # inputs whose runs are skipped when missing
    plot_losses: bool = False  # Figure 2: loss curves instead of the algorithm's diagram

    def input(self, key: str) -> Input:
        return next(i for i in self.inputs if i.key == key)


def _layers_label(layers: Sequence[str]) -> str:
    if len(layers) <= 2:
        return " + ".join(layers)
    return f"{layers[0]} … {layers[-1]}"


# The figures are tables of runs: kept compact by hand, one run per call.
# fmt: off
PHOTO = Input("photo", "a photo of the Neckarfront in Tübingen (Andreas Praefcke)",
              ("tubingen",), short="Tübingen")
STARRY = Input("starry_night", "Vincent van Gogh, The Starry Night (1889)", ("starry_night",),
               short="Van Gogh, The Starry Night")
SHIPWRECK = Input("shipwreck", "J. M. W. Turner, The Shipwreck of the Minotaur (c. 1810)",
                  ("shipwreck",), short="Turner, The Shipwreck")
SCREAM = Input("the_scream", "Edvard Munch, The Scream (1893)", ("the_scream",),
               short="Munch, The Scream")
NUDE = Input("seated_nude", "Pablo Picasso, Femme nue assise (1910)",
             ("seated_nude", "femme_nue_assise"), short="Picasso, Femme nue assise")
KANDINSKY = Input("composition_vii", "Wassily Kandinsky, Composition VII (1913)",
                  ("composition_vii",), short="Kandinsky, Composition VII")
# Figures 4 and 5 used Composition VII and Feininger's Jesuiten III (not public domain):
# The Starry Night stands in for them when they are missing, and the sheet says so.
FIG4_STYLE = Input("style", KANDINSKY.what, KANDINSKY.names, ("starry_night",), KANDINSKY.short)
FIG5_STYLE = Input("style", "Lyonel Feininger, Jesuiten III (1915)", ("jesuiten_iii",),
                   ("starry_night",), "Feininger, Jesuiten III")
DAY = Input("day", "a photo of a city by day (the paper: London)", ("city_day", "golden_gate"),
            short="city by day")
NIGHT = Input("night", "a photo of a city at night (the paper: New York)",
              ("city_night", "hoovertowernight"), short="city at night")
FIG3_STYLES = ((SHIPWRECK, 1e-3), (STARRY, 1e-3), (SCREAM, 1e-3), (NUDE, 1e-4), (KANDINSKY, 1e-4))
FIG4_RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)


def _upto(count: int) -> tuple[str, ...]:
    """The paper's first `count` style layers: conv1_1, then conv1_1 + conv2_1, ..."""
    return PAPER_STYLE_LAYERS[:count]


def _fig1() -> Figure:
    content = tuple(
        Run(f"content_{layer}", f"content from {layer}", "reconstruct", (0, i), content="photo",
            options={"content_layer": layer})
        for i, layer in enumerate(CONTENT_LAYERS)
    )
    style = tuple(
        Run(f"style_{n}_layers", f"style from {_layers_label(_upto(n))}", "texture", (1, n - 1),
            style="starry_night", options={"style_layers": _upto(n)})
        for n in range(1, len(PAPER_STYLE_LAYERS) + 1)
    )
    return Figure(
        "fig1",
        "Figure 1: content and style reconstructions",
        "Content: the photo is reconstructed almost perfectly from the lower layers; from higher "
        "layers the arrangement stays while detailed pixel information is lost. Style: the "
        "textures match the painting at a growing scale as more layers are included.",
        (PHOTO, STARRY),
        content + style,
        rows=("content (photo)", "style (painting)"),
    )


def _fig2() -> Figure:
    run = Run("transfer", "Tübingen as The Starry Night", "transfer", (0, 0), content="photo",
              style="starry_night", paper_ratio=1e-3)
    return Figure(
        "fig2",
        "Figure 2 (in place of the algorithm's diagram): the losses of one transfer",
        "Total, alpha·content and beta·style loss per L-BFGS iteration, from white noise.",
        (PHOTO, STARRY),
        (run,),
        plot_losses=True,
    )


def _fig3() -> Figure:
    runs = tuple(
        Run(style.key, f"{'BCDEF'[i]}  {style.label}", "transfer", (0, i + 1), content="photo",
            style=style.key, paper_ratio=ratio)
        for i, (style, ratio) in enumerate(FIG3_STYLES)
    )
    return Figure(
        "fig3",
        "Figure 3: the photo of Tübingen in the style of five paintings",
        "The content of the photo in the style of each painting (the paper's alpha/beta: 1e-3 "
        "for B, C, D and 1e-4 for E, F). Each result is under its painting.",
        (PHOTO, *(style for style, _ in FIG3_STYLES)),
        runs,
        optional=frozenset(style.key for style, _ in FIG3_STYLES),
    )


def _fig4() -> Figure:
    runs = tuple(
        Run(f"upto_{_upto(n)[-1]}_paper_{_sci(ratio)}",
            _layers_label(_upto(n)), "transfer", (n - 1, c),
            content="photo", style="style", paper_ratio=ratio,
            options={"style_layers": _upto(n)})
        for n in range(1, len(PAPER_STYLE_LAYERS) + 1)
        for c, ratio in enumerate(FIG4_RATIOS)
    )
    return Figure(
        "fig4",
        "Figure 4: style from more layers (rows) and more content (columns)",
        "Down the rows, the local structures taken from the painting grow in size and "
        "complexity; across the columns, from mostly painting to mostly photo.",
        (PHOTO, FIG4_STYLE),
        runs,
        rows=tuple(f"style from {_layers_label(_upto(n))}" for n in range(1, 6)),
        columns=FIG4_RATIOS,
    )


def _fig5() -> Figure:
    runs = tuple(
        Run(f"content_{layer}", f"content matched at {layer}", "transfer", (0, i),
            content="photo", style="style", paper_ratio=1e-3, options={"content_layer": layer})
        for i, layer in enumerate(("conv2_2", "conv4_2"))
    )
    return Figure(
        "fig5",
        "Figure 5: content matched at conv2_2 vs conv4_2",
        "At conv2_2 the photo's fine structure stays and the painting's texture looks blended "
        "over it; at conv4_2 texture and content merge: the photo is shown in the painting's "
        "style. Same alpha/beta for both.",
        (PHOTO, FIG5_STYLE),
        runs,
    )


def _fig6() -> Figure:
    from_images = (("content", "A  start: the photo", (0, 0)),
                   ("style", "B  start: the painting", (0, 1)))
    runs = tuple(
        Run(init, label, "transfer", at, content="photo", style="starry_night",
            paper_ratio=1e-3, options={"init": init})
        for init, label, at in from_images
    ) + tuple(
        Run(f"noise_{k + 1}", f"C  start: white noise #{k + 1} (seed + {k})", "transfer",
            (1, k), content="photo", style="starry_night", paper_ratio=1e-3,
            options={"init": "noise"}, seed_offset=k)
        for k in range(4)
    )
    return Figure(
        "fig6",
        "Figure 6: the start of the gradient descent",
        "The start has little effect: from the photo (A), the painting (B) or white noise (C), "
        "the result shows the same content in the same style; the noise starts differ in "
        "detail, and only they give a new image each time.",
        (PHOTO, STARRY),
        runs,
        rows=("from an image", "from white noise"),
    )


def _fig7() -> Figure:
    run = Run("day_as_night", "the day photo in the night photo's style, started from the day "
              "photo", "transfer", (0, 0),
              content="day", style="night", paper_ratio=1e-2, options={"init": "content"})
    return Figure(
        "fig7",
        "Figure 7: photorealistic style transfer",
        "The night photo's style on the day photo: it takes the night's colours and light while "
        "staying a photograph. Started from the day photo, as in the paper.",
        (DAY, NIGHT),
        (run,),
    )


# fmt: on
FIGURES: dict[str, Figure] = {
    f.name: f for f in (_fig1(), _fig2(), _fig3(), _fig4(), _fig5(), _fig6(), _fig7())
}


# ---------------------------------------------------------------------------------------------
# finding the inputs


def _normal(stem: str) -> str:
    return stem.lower().replace("-", "_").replace(" ", "_")


def _show(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    return f"'{text}'" if text.isprintable() else ascii(text)


def list_images(directory: str | os.PathLike) -> dict[str, Path]:
    """The image files of `directory` by normalized stem; a clear error if it is no folder."""
    folder = Path(directory)
    if not folder.exists():
        raise InputError(f"images folder {_show(folder)} does not exist")
    if not folder.is_dir():
        raise InputError(f"images folder {_show(folder)} is not a folder")
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(f"images folder {_show(folder)} cannot be read: {exc.strerror}") from None
    found: dict[str, Path] = {}
    for path in entries:
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.setdefault(_normal(path.stem), path)
    return found


@dataclass
class Found:
    """Where each of a figure's inputs is, which stand in, and which runs cannot be made."""

    paths: dict[str, Path]
    notes: list[str]  # stand-ins and skipped runs, said on the sheet and on stderr
    skipped: dict[str, str]  # run name -> the missing files
    stood_in: set[str] = field(default_factory=set)  # inputs found under a stand-in's name
    images: dict[str, Image.Image] = field(default_factory=dict, repr=False)  # once loaded

    def load(self, cache: dict[Path, Image.Image] | None = None) -> Found:
        """Decode every input now, so a broken file fails before any run, not hours in."""
        cache = {} if cache is None else cache
        for key, path in self.paths.items():
            if path not in cache:
                cache[path] = open_image(path, role=f"{key} image")
            self.images[key] = cache[path]
        return self


def _needs(figure: Figure) -> str:
    parts = []
    for item in figure.inputs:
        names = " or ".join(f"{n}.*" for n in item.names)
        more = "".join(f"; else {n}.* stands in" for n in item.stand_ins)
        more += "; optional" if item.key in figure.optional else ""
        parts.append(f"{names} ({item.what}{more})")
    return f"{figure.name} needs: " + "; ".join(parts)


def find_inputs(
    figure: Figure, available: Mapping[str, Path], directory: str | os.PathLike
) -> Found:
    """Match the figure's inputs to files; raise InputError listing what it needs if it cannot run.

    A missing optional input skips the runs that need it; a missing required one, or no run
    left at all, is an error that names the missing files and everything the figure reads.
    """
    paths: dict[str, Path] = {}
    notes: list[str] = []
    missing: list[str] = []
    stood_in: set[str] = set()
    for item in figure.inputs:
        name = next((n for n in item.names if _normal(n) in available), None)
        if name is None:
            stand_in = next((n for n in item.stand_ins if _normal(n) in available), None)
            if stand_in is not None:
                name = stand_in
                stood_in.add(item.key)
                notes.append(
                    f"{item.label} ({'/'.join(item.names)}.*) not found: "
                    f"{available[_normal(name)].name} stands in"
                )
        if name is not None:
            paths[item.key] = available[_normal(name)]
        elif item.key not in figure.optional:
            missing.append(" or ".join(f"{n}.*" for n in item.names + item.stand_ins))
    skipped = {
        run.name: ", ".join(f"{figure.input(k).names[0]}.*" for k in run.inputs if k not in paths)
        for run in figure.runs
        if any(k not in paths for k in run.inputs)
    }
    if missing or len(skipped) == len(figure.runs):
        what = f"{', '.join(missing)} not found" if missing else "none of the optional inputs found"
        raise InputError(
            f"{figure.name}: {what} in {_show(directory)}; {_needs(figure)} "
            f"(any of {', '.join(IMAGE_SUFFIXES)})"
        )
    for run in figure.runs:
        if run.name in skipped:
            notes.append(f"skipped {run.label.strip()}: {skipped[run.name]} not found")
    return Found(paths, notes, skipped, stood_in)


def prepare_outdir(path: str | os.PathLike) -> Path:
    """Create OUTDIR if needed and check it is writable, before any run starts."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder {_show(folder)} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".painterly-probe-", suffix=".part"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"output folder {_show(folder)} is not writable: {reason}") from None
    return folder


# ---------------------------------------------------------------------------------------------
# running a figure


@dataclass(frozen=True)
class Settings:
    """What the user chose for a render; the rest is the paper's (see `paper_options`)."""

    size: int = PAPER_SIZE
    iterations: int = PAPER_ITERATIONS
    seed: int = 0
    device: str = "auto"
    weights: str | None = None
    fresh: bool = False  # re-render images an earlier run of the same settings left


@dataclass
class Rendered:
    """One image of a figure with its record and loss history, made now or kept from before."""

    image: Image.Image
    record: dict
    history: list[dict]
    kept: bool = False  # found on disk from an earlier run with the same settings and inputs

    @property
    def stop_reason(self) -> str:
        return self.record["stop_reason"]

    @property
    def seconds(self) -> float:
        return self.record["timings"]["optimization_seconds"]


@dataclass
class FigureResult:
    figure: str
    sheet: Path
    images: list[Path]
    seconds: float
    notes: list[str]


Log = Callable[[str], None]


def check_figures(names: Sequence[str], images: str | os.PathLike) -> dict[str, Found]:
    """Find every named figure's inputs up front, so `all` fails before hours of work, not after."""
    available = list_images(images)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise InputError(f"unknown figure {unknown[0]!r}; figures are {', '.join(FIGURES)} and all")
    return {name: find_inputs(FIGURES[name], available, images) for name in names}


def render_figures(
    names: Sequence[str],
    images: str | os.PathLike,
    outdir: str | os.PathLike,
    settings: Settings,
    *,
    log: Log | None = None,
    progress: bool = False,
) -> list[FigureResult]:
    """Render figures in order; every input and the output folder are checked first."""
    # Bad values fail now, not mid-way.
    paper_options(
        settings.size,
        settings.iterations,
        settings.seed,
        device=settings.device,
        weights=settings.weights,
    )
    found = check_figures(names, images)
    cache: dict[Path, Image.Image] = {}
    for item in found.values():
        item.load(cache)
    folder = prepare_outdir(outdir)
    return [
        render_figure(FIGURES[name], found[name], folder, settings, log=log, progress=progress)
        for name in names
    ]


def render_figure(
    figure: Figure,
    found: Found,
    outdir: Path,
    settings: Settings,
    *,
    log: Log | None = None,
    progress: bool = False,
) -> FigureResult:
    """Run every image of `figure`, save each with its record, then the sheet and its record."""
    say = log or (lambda _: None)
    started = time.perf_counter()
    for note in found.notes:
        say(f"{figure.name}: {note}")
    sources = found.images if found.images else found.load().images
    folder = outdir / figure.name
    folder.mkdir(exist_ok=True)
    todo = [run for run in figure.runs if run.name not in found.skipped]
    results: dict[str, Rendered] = {}
    records: list[dict] = []
    written: list[Path] = []
    for index, run in enumerate(todo, 1):
        tag = f"{figure.name} {index}/{len(todo)}"
        path = folder / f"{run.name}.png"
        key = _run_key(run, settings, found)
        info = {**_run_info(figure, run, settings, found), "key": key}
        rendered, source = (None, None) if settings.fresh else _reusable(path, key, outdir)
        if rendered is None:
            result = _run_one(run, sources, settings, tag if progress else None)
            rendered = Rendered(result.image, {**result.record, "paper": info}, result.history)
            _save_rendered(rendered, path)
            say(f"{tag} {run.label.strip()}: {rendered.seconds:.1f} s")
        elif source == path:
            say(f"{tag} {run.label.strip()}: kept {path.name} from an earlier run of these "
                "settings (--fresh renders it again)")  # fmt: skip
        else:
            shared = source.relative_to(outdir).as_posix()
            rendered.record = {**rendered.record, "paper": {**info, "copied_from": shared}}
            _save_rendered(rendered, path)
            say(f"{tag} {run.label.strip()}: kept, the same run as {shared} (same inputs and "
                "settings; --fresh renders it again)")  # fmt: skip
        results[run.name] = rendered
        written.append(path)
        records.append(
            {
                "image": str(path.relative_to(outdir)),
                **rendered.record["paper"],
                "seconds": rendered.seconds,
                "kept": rendered.kept,
                "stop_reason": rendered.stop_reason,
                "final_loss": rendered.record["final_loss"],
            }
        )
        if rendered.stop_reason == "interrupted":
            say(f"{figure.name}: interrupted; {path} holds the image so far")
            raise KeyboardInterrupt
    # What the images cost, kept ones included: this call's wall time says less after a resume.
    run_seconds = sum(rendered.seconds for rendered in results.values())
    sheet = outdir / f"{figure.name}.png"
    if figure.plot_losses:
        plot = _loss_plot(figure, found, sources, results, settings, run_seconds)
        buffer = io.BytesIO()
        plot.savefig(buffer, format="png")
        buffer.seek(0)
        with Image.open(buffer) as image:
            save_image(image.convert("RGB"), sheet)  # atomic, like every other output
    else:
        save_image(_tile_sheet(figure, found, sources, results, settings, run_seconds), sheet)
    seconds = time.perf_counter() - started
    summary = {
        "figure": figure.name,
        "title": figure.title,
        "look_for": figure.look_for,
        "sheet": sheet.name,
        "seconds": round(seconds, 1),
        "settings": asdict(settings),
        "paper_to_ours": PAPER_TO_OURS,
        "reference_size": REFERENCE_SIZE,
        "inputs": {key: str(path) for key, path in found.paths.items()},
        "notes": found.notes,
        "runs": records,
    }
    write_text_atomic(json.dumps(summary, indent=2) + "\n", outdir / f"{figure.name}.json")
    say(f"{figure.name}: {image_count(len(written))} in {seconds:.1f} s -> {sheet}")
    return FigureResult(figure.name, sheet, written, seconds, found.notes)


def _run_options(run: Run, settings: Settings) -> Options:
    options = paper_options(
        settings.size,
        settings.iterations,
        settings.seed + run.seed_offset,
        device=settings.device,
        weights=settings.weights,
    ).with_values(**run.options)
    if run.paper_ratio is not None:
        options = options.with_values(ratio=ours_ratio(run.paper_ratio, settings.size))
    return options.validated()


def _run_one(
    run: Run, sources: Mapping[str, Image.Image], settings: Settings, tag: str | None
) -> Result:
    options = _run_options(run, settings)
    bar = None
    callback = None
    if tag is not None:
        from tqdm import tqdm

        bar = tqdm(
            total=options.iterations, desc=tag, file=sys.stderr, leave=False, dynamic_ncols=True
        )

        def callback(progress) -> None:
            bar.update(progress.iteration - bar.n)

    try:
        if run.kind == "transfer":
            return run_transfer(
                sources[run.content], sources[run.style], options, callback=callback
            )
        if run.kind == "texture":
            return run_texture(sources[run.style], options, callback=callback)
        return run_reconstruction(sources[run.content], options, callback=callback)
    finally:
        if bar is not None:
            bar.close()


def _run_key(run: Run, settings: Settings, found: Found) -> dict:
    """What an image depends on: an image on disk with the same key is reused, not redone.

    Inputs are named by their role (content, style) and file digest, not by the figure's names
    for them, so the same run in two figures has one key.
    """
    options = _run_options(run, settings)
    roles = {"content": run.content, "style": run.style}
    inputs = {
        role: hashlib.sha256(found.paths[key].read_bytes()).hexdigest()
        for role, key in roles.items()
        if key is not None
    }
    key = {
        "painterly": package_versions()["painterly"],
        "code": _code_digest(),
        "kind": run.kind,
        "options": asdict(options),
        "inputs": inputs,
    }
    return json.loads(json.dumps(key))  # as it will read back from the record


FINISHED = ("iterations", "converged")  # stop reasons of an image that is done


def _key_text(key: dict) -> str:
    return json.dumps(key, sort_keys=True)


def _finished_images(outdir: Path) -> dict[str, list[Path]]:
    """The finished images under `outdir`'s figure folders by the text of their key, to reuse
    (an interrupted one is never picked over a finished one); those made by a run come before
    copies of them, so a copy names the image it was made as."""
    found: dict[str, list[tuple[bool, Path]]] = {}
    for record_path in sorted(outdir.glob("fig*/*.png.json")):
        try:
            record = json.loads(record_path.read_text())
            info = record["paper"]
            key = _key_text(info["key"])
            if record["stop_reason"] not in FINISHED:
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.setdefault(key, []).append(("copied_from" in info, record_path.with_suffix("")))
    return {key: [path for _, path in sorted(paths)] for key, paths in found.items()}


def _reusable(path: Path, key: dict, outdir: Path) -> tuple[Rendered | None, Path | None]:
    """Its own finished image, else the same image finished for another figure (Figures 2, 3,
    4, 5 and 6 share runs: the same photo, painting and settings), with where it was found.

    Looked up before each run, so an image that another process rendering into this OUTDIR
    finished meanwhile counts; the OUTDIR's records are read only when its own image is not kept.
    """
    own = _kept(path, key)
    if own is not None:
        return own, path
    candidates = _finished_images(outdir).get(_key_text(key), [])
    source = next((found for found in candidates if found != path), None)
    return (None, None) if source is None else (_kept(source, key), source)


def _save_rendered(rendered: Rendered, path: Path) -> None:
    save_image(rendered.image, path)
    write_text_atomic(
        json.dumps({**rendered.record, "history": rendered.history}, indent=2) + "\n",
        path.with_name(path.name + ".json"),
    )


@functools.cache
def _code_digest() -> str:
    """A digest of the source that computes the images (`api` and the painterly modules it
    imports, transitively): a change there within a version redoes the images; a change to the
    sheets, the CLI or the web app keeps them (renders at 512 px take hours)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in sorted(_modules_used_by("api", package)):
        digest.update(name.encode())
        digest.update((package / f"{name}.py").read_bytes())
    return digest.hexdigest()


def _modules_used_by(module: str, package: Path) -> set[str]:
    """`module` and the package's modules it imports (`from .x import ...`), transitively."""
    found: set[str] = set()
    waiting = [module]
    while waiting:
        name = waiting.pop()
        if name in found:
            continue
        found.add(name)
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        waiting += [
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        ]
    return found


def _kept(path: Path, key: dict) -> Rendered | None:
    """The image at `path` if an earlier run with this key finished it, else None."""
    record_path = path.with_name(path.name + ".json")
    try:
        record = json.loads(record_path.read_text())
        if record["paper"]["key"] != key or record["stop_reason"] not in FINISHED:
            return None
        with Image.open(path) as image:
            image.load()
            return Rendered(image.convert("RGB"), record, record.get("history", []), kept=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _run_info(figure: Figure, run: Run, settings: Settings, found: Found) -> dict:
    info: dict[str, object] = {
        "figure": figure.name,
        "run": run.name,
        "label": run.label,
        "kind": run.kind,
    }
    info["inputs"] = {k: found.paths[k].name for k in run.inputs}
    if run.paper_ratio is not None:
        info["paper_ratio"] = run.paper_ratio
        info["ours_ratio"] = ours_ratio(run.paper_ratio, settings.size)
    return info


# ---------------------------------------------------------------------------------------------
# sheets


def image_count(images: int) -> str:
    return f"{images} image" + ("" if images == 1 else "s")


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans from matplotlib (it has α, β and ü); Pillow's own font if that fails."""
    try:
        import matplotlib

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        return ImageFont.truetype(str(Path(matplotlib.get_data_path(), "fonts", "ttf", name)), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}".strip()
            if line and font.getlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


@dataclass
class _Tile:
    image: Image.Image | None  # None: a skipped run (a grey box)
    caption: str


def _input_tile(item: Input, found: Found, sources: Mapping[str, Image.Image]) -> _Tile:
    if item.key not in sources:
        return _Tile(None, f"{item.label}\n(not found)")
    name = found.paths[item.key].name
    if item.key in found.stood_in:
        return _Tile(sources[item.key], f"{name}\n(stands in for {item.label})")
    return _Tile(sources[item.key], f"{item.label}\n({name})")


def _settings_line(figure: Figure, settings: Settings, seconds: float) -> str:
    kinds = {run.kind for run in figure.runs}
    layers = []
    if kinds & {"transfer", "reconstruct"}:
        layers.append(f"content {PAPER_CONTENT_LAYER}")
    if kinds & {"transfer", "texture"}:
        layers.append(f"style {_layers_label(PAPER_STYLE_LAYERS)} (w_l = 1/5)")
    return (
        f"{settings.size} px, {settings.iterations} L-BFGS iterations, seed {settings.seed}; "
        f"normalized VGG-19, average pooling, white-noise start, {', '.join(layers)}, "
        f"unless a tile says otherwise. Runs took {seconds:.0f} s."
    )


def _tile_sheet(
    figure: Figure,
    found: Found,
    sources: Mapping[str, Image.Image],
    results: Mapping[str, Rendered],
    settings: Settings,
    seconds: float,
) -> Image.Image:
    """Inputs on the first row, then the runs at their (row, col), every tile captioned."""
    box = max(settings.size, 224)
    caption_font, label_font = _font(13), _font(14, bold=True)
    title_font, text_font = _font(20, bold=True), _font(13)
    margin, gap, line = 16, 12, 17

    input_tiles = [_input_tile(item, found, sources) for item in figure.inputs]
    n_rows = max(run.at[0] for run in figure.runs) + 1
    grid: list[list[_Tile | None]] = [
        [None] * (max(r.at[1] for r in figure.runs) + 1) for _ in range(n_rows)
    ]
    for run in figure.runs:
        caption = run.label.strip()
        if run.paper_ratio is not None:
            caption += f"\n{ratio_label(run.paper_ratio, settings.size)}"
        if run.name in results:
            image = results[run.name].image
            if results[run.name].stop_reason == "diverged":
                caption += "\n(diverged: last finite image)"
            grid[run.at[0]][run.at[1]] = _Tile(image, caption)
        else:
            grid[run.at[0]][run.at[1]] = _Tile(
                None, f"{caption}\nskipped: {found.skipped[run.name]} not found"
            )
    rows: list[tuple[str, list[_Tile | None]]] = [("inputs", list(input_tiles))]
    rows += [(figure.rows[r] if r < len(figure.rows) else "", grid[r]) for r in range(n_rows)]

    n_cols = max(len(tiles) for _, tiles in rows)
    label_width = 150
    width = margin * 2 + label_width + n_cols * box + (n_cols - 1) * gap

    def fitted(image: Image.Image) -> Image.Image:
        scale = min(box / image.width, box / image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        return image.resize(size, Image.Resampling.LANCZOS)

    fitted_rows = [[fitted(t.image) if t and t.image else None for t in tiles] for _, tiles in rows]
    heights = [max([im.height for im in ims if im] or [round(box * 0.75)]) for ims in fitted_rows]
    captions = [
        [_wrap(t.caption, caption_font, box) if t else [] for t in tiles] for _, tiles in rows
    ]
    caption_heights = [max(len(c) for c in row) * line + 6 for row in captions]

    text_width = width - 2 * margin
    title_lines = _wrap(figure.title, title_font, text_width)
    body = [figure.look_for, _settings_line(figure, settings, seconds), *found.notes]
    body_lines = [wrapped for text in body for wrapped in _wrap(text, text_font, text_width)]
    header_height = len(title_lines) * 26 + len(body_lines) * line + gap
    column_height = line * 2 + 4 if figure.columns else 0

    height = margin + header_height + sum(heights) + sum(caption_heights) + column_height
    height += gap * len(rows) + margin
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    y = margin
    for text in title_lines:
        draw.text((margin, y), text, fill="black", font=title_font)
        y += 26
    for text in body_lines:
        draw.text((margin, y), text, fill=(60, 60, 60), font=text_font)
        y += line
    y += gap
    left = margin + label_width
    for index, ((label, tiles), ims) in enumerate(zip(rows, fitted_rows, strict=True)):
        if index == 1 and figure.columns:
            for col, ratio in enumerate(figure.columns):
                x = left + col * (box + gap)
                draw.text((x, y), f"α/β = {_sci(ratio)} (paper)", fill="black", font=label_font)
                draw.text(
                    (x, y + line),
                    f"= {_sci(ours_ratio(ratio, settings.size))} (ours)",
                    fill=(60, 60, 60),
                    font=caption_font,
                )
            y += column_height
        label_lines = _wrap(label, label_font, label_width - gap)
        label_y = y + (heights[index] - len(label_lines) * line) // 2
        for k, text in enumerate(label_lines):
            draw.text((margin, label_y + k * line), text, fill="black", font=label_font)
        for col, tile in enumerate(tiles):
            if tile is None:
                continue
            x = left + col * (box + gap)
            image = ims[col]
            if image is None:
                draw.rectangle((x, y, x + box - 1, y + heights[index] - 1), fill=(225, 225, 225))
            else:
                sheet.paste(image, (x + (box - image.width) // 2, y))
            for k, text in enumerate(captions[index][col]):
                draw.text(
                    (x, y + heights[index] + 3 + k * line), text, fill="black", font=caption_font
                )
        y += heights[index] + caption_heights[index] + gap
    return sheet


def _loss_plot(
    figure: Figure,
    found: Found,
    sources: Mapping[str, Image.Image],
    results: Mapping[str, Rendered],
    settings: Settings,
    seconds: float,
) -> PlotFigure:
    """Figure 2: the inputs, the result and its loss curves (log scale) on one matplotlib page."""
    from matplotlib.figure import Figure as PlotFigure  # no pyplot: no GUI backend, no state

    run = figure.runs[0]
    result = results[run.name]
    alpha, beta = result.record["alpha"], result.record["beta"]
    history = result.history
    steps = [h["iteration"] for h in history]
    plot = PlotFigure(figsize=(15, 6.2), dpi=100, layout="constrained")
    axes = plot.subplot_mosaic(
        [["content", "result", "loss"], ["style", "result", "loss"]], width_ratios=[1, 2, 3]
    )
    assert run.content is not None and run.style is not None and run.paper_ratio is not None
    shown = (
        ("content", sources[run.content], f"content: {found.paths[run.content].name}"),
        ("style", sources[run.style], f"style: {found.paths[run.style].name}"),
        ("result", result.image, f"{run.label}\n{ratio_label(run.paper_ratio, settings.size)}"),
    )
    for key, image, title in shown:
        axes[key].imshow(resize_long_side(image, max(settings.size, 256)))
        axes[key].set_title(title, fontsize=10)
        axes[key].axis("off")
    ax = axes["loss"]
    ax.plot(steps, [h["total"] for h in history], label="total = α·content + β·style", lw=2)
    ax.plot(steps, [alpha * h["content"] for h in history], label="α·content (conv4_2)")
    ax.plot(steps, [beta * h["style"] for h in history], label="β·style (conv1_1 … conv5_1)")
    ax.set_yscale("log")
    ax.set_xlabel("L-BFGS iteration")
    ax.set_ylabel("loss (our units)")
    ax.set_title("losses per iteration, from white noise")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    settings_line = textwrap.fill(_settings_line(figure, settings, seconds), 150)
    plot.suptitle(f"{figure.title}\n{settings_line}", fontsize=11)
    return plot
