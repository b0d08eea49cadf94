"""Rendering a figure: run each image (or reuse it from the cache), save it with its record,
then draw the sheet and write the figure's summary."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from ..api import Result, run_reconstruction, run_texture, run_transfer
from ..images import prepare_output_folder, save_image, write_text_atomic
from ..optimize import Cancel, Progress
from ..progress import progress_bar
from .cache import Rendered, reusable, run_key, save_copy
from .figures import FIGURES, Figure, Run
from .inputs import Found, check_figures
from .plots import loss_plot
from .settings import (
    PAPER_TO_OURS,
    REFERENCE_SIZE,
    Settings,
    ours_ratio,
    paper_options,
    run_options,
)
from .sheet import Rendering, image_count, tile_sheet

Log = Callable[[str], None]


@dataclass
class FigureResult:
    figure: str
    sheet: Path | None  # None: interrupted before its sheet (its finished images are kept)
    images: list[Path]
    seconds: float
    notes: list[str]

    @property
    def interrupted(self) -> bool:
        return self.sheet is None


def render_figures(
    names: Sequence[str],
    images: str | os.PathLike,
    outdir: str | os.PathLike,
    settings: Settings,
    *,
    log: Log | None = None,
    progress: bool = False,
    cancel: Cancel | None = None,
) -> list[FigureResult]:
    """Render figures in order; every input and the output folder are checked first.

    `cancel` stops them: the image in progress is saved as it is (stop_reason "interrupted",
    redone by the next run), finished ones are kept, and the last result is `interrupted`.
    """
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
    folder = prepare_output_folder(outdir)
    results: list[FigureResult] = []
    for name in names:
        results.append(render_figure(FIGURES[name], found[name], folder, settings, log=log,
                                     progress=progress, cancel=cancel))  # fmt: skip
        if results[-1].interrupted:
            break
    return results


@dataclass
class _Job:
    """What every image of one figure's render needs."""

    figure: Figure
    found: Found
    sources: Mapping[str, Image.Image]
    outdir: Path
    settings: Settings
    say: Log
    progress: bool
    cancel: Cancel | None


@dataclass
class _Images:
    """A figure's images so far: by run name, their summary entries and paths."""

    results: dict[str, Rendered] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    interrupted: bool = False

    def add(self, name: str, path: Path, rendered: Rendered, outdir: Path) -> None:
        self.results[name] = rendered
        self.paths.append(path)
        self.records.append(
            {
                "image": str(path.relative_to(outdir)),
                **rendered.record["paper"],
                "seconds": rendered.seconds,
                "kept": rendered.kept,
                "stop_reason": rendered.stop_reason,
                "final_loss": rendered.record["final_loss"],
            }
        )


def render_figure(
    figure: Figure,
    found: Found,
    outdir: Path,
    settings: Settings,
    *,
    log: Log | None = None,
    progress: bool = False,
    cancel: Cancel | None = None,
) -> FigureResult:
    """Run every image of `figure`, save each with its record, then the sheet and its record."""
    say = log or (lambda _: None)
    started = time.perf_counter()
    for note in found.notes:
        say(f"{figure.name}: {note}")
    sources = found.images if found.images else found.load().images
    (outdir / figure.name).mkdir(exist_ok=True)
    job = _Job(figure, found, sources, outdir, settings, say, progress, cancel)
    made = _render_images(job)
    if made.interrupted:
        seconds = time.perf_counter() - started
        return FigureResult(figure.name, None, made.paths, seconds, found.notes)
    sheet = outdir / f"{figure.name}.png"
    # What the images cost, kept ones included: this call's wall time says less after a resume.
    run_seconds = sum(rendered.seconds for rendered in made.results.values())
    _save_sheet(Rendering(figure, found, sources, made.results, settings, run_seconds), sheet)
    seconds = time.perf_counter() - started
    summary = _summary(figure, found, settings, sheet, seconds, made.records)
    write_text_atomic(json.dumps(summary, indent=2) + "\n", outdir / f"{figure.name}.json")
    say(f"{figure.name}: {image_count(len(made.paths))} in {seconds:.1f} s -> {sheet}")
    return FigureResult(figure.name, sheet, made.paths, seconds, found.notes)


def _render_images(job: _Job) -> _Images:
    """Each run of the figure in turn, until the last or until `job.cancel` stops them."""
    name = job.figure.name
    todo = [run for run in job.figure.runs if run.name not in job.found.skipped]
    made = _Images()
    for index, run in enumerate(todo, 1):
        if job.cancel is not None and job.cancel.cancelled:
            job.say(f"{name}: interrupted before {run.label.strip()}")
            made.interrupted = True
            break
        path = job.outdir / name / f"{run.name}.png"
        rendered = _render_run(job, run, path, f"{name} {index}/{len(todo)}")
        made.add(run.name, path, rendered, job.outdir)
        if rendered.stop_reason == "interrupted":
            job.say(f"{name}: interrupted; {path} holds the image so far")
            made.interrupted = True
            break
    return made


def _render_run(job: _Job, run: Run, path: Path, tag: str) -> Rendered:
    """One image: kept from an earlier run, copied from another figure's, or rendered now."""
    settings, outdir = job.settings, job.outdir
    key = run_key(run, settings, job.found)
    info = {**_run_info(job.figure, run, settings, job.found), "key": key}
    rendered, source = (None, None) if settings.fresh else reusable(path, key, outdir)
    label = f"{tag} {run.label.strip()}"
    if rendered is None:
        result = _run_one(run, job.sources, settings, tag if job.progress else None, job.cancel)
        result.save(path, paper=info, history=result.history)
        rendered = Rendered(result.image, {**result.record, "paper": info}, result.history)
        job.say(f"{label}: {rendered.seconds:.1f} s")
    elif source == path:
        job.say(f"{label}: kept {path.name} from an earlier run of these settings (--fresh "
                "renders it again)")  # fmt: skip
    else:
        assert source is not None
        shared = source.relative_to(outdir).as_posix()
        rendered.record = {**rendered.record, "paper": {**info, "copied_from": shared}}
        save_copy(rendered, path)
        job.say(f"{label}: kept, the same run as {shared} (same inputs and settings; --fresh "
                "renders it again)")  # fmt: skip
    return rendered


def _save_sheet(rendering: Rendering, sheet: Path) -> None:
    if not rendering.figure.plot_losses:
        save_image(tile_sheet(rendering), sheet)
        return
    plot = loss_plot(rendering)
    buffer = io.BytesIO()
    plot.savefig(buffer, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        save_image(image.convert("RGB"), sheet)  # atomic, like every other output


def _summary(
    figure: Figure, found: Found, settings: Settings, sheet: Path, seconds: float, runs: list
) -> dict:
    return {
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
        "runs": runs,
    }


def _run_one(
    run: Run,
    sources: Mapping[str, Image.Image],
    settings: Settings,
    tag: str | None,
    cancel: Cancel | None,
) -> Result:
    options = run_options(run, settings)
    bar = None if tag is None else progress_bar(options.iterations, tag, leave=False)
    callback = None
    if bar is not None:

        def callback(progress: Progress) -> None:
            bar.update(progress.iteration - bar.n)

    try:
        if run.kind == "transfer":
            return run_transfer(sources[run.content], sources[run.style], options,
                                callback=callback, cancel=cancel)  # fmt: skip
        if run.kind == "texture":
            return run_texture(sources[run.style], options, callback=callback, cancel=cancel)
        return run_reconstruction(sources[run.content], options, callback=callback, cancel=cancel)
    finally:
        if bar is not None:
            bar.close()


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
