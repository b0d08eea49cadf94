"""Rendering a figure: run each image (or reuse it from the cache), save it with its record,
then draw the sheet and write the figure's summary."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from ..api import Result, run_reconstruction, run_texture, run_transfer
from ..images import save_image, write_text_atomic
from .cache import Rendered, reusable, run_key, save_rendered
from .figures import FIGURES, Figure, Run
from .inputs import Found, check_figures, prepare_outdir
from .plots import loss_plot
from .settings import (
    PAPER_TO_OURS,
    REFERENCE_SIZE,
    Settings,
    ours_ratio,
    paper_options,
    run_options,
)
from .sheet import image_count, tile_sheet

Log = Callable[[str], None]


@dataclass
class FigureResult:
    figure: str
    sheet: Path
    images: list[Path]
    seconds: float
    notes: list[str]


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
        rendered = _render_run(figure, run, found, sources, path, outdir, settings, tag, say,
                               progress)  # fmt: skip
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
    _save_sheet(figure, found, sources, results, settings, run_seconds, sheet)
    seconds = time.perf_counter() - started
    summary = _summary(figure, found, settings, sheet, seconds, records)
    write_text_atomic(json.dumps(summary, indent=2) + "\n", outdir / f"{figure.name}.json")
    say(f"{figure.name}: {image_count(len(written))} in {seconds:.1f} s -> {sheet}")
    return FigureResult(figure.name, sheet, written, seconds, found.notes)


def _render_run(
    figure: Figure,
    run: Run,
    found: Found,
    sources: Mapping[str, Image.Image],
    path: Path,
    outdir: Path,
    settings: Settings,
    tag: str,
    say: Log,
    progress: bool,
) -> Rendered:
    """One image: kept from an earlier run, copied from another figure's, or rendered now."""
    key = run_key(run, settings, found)
    info = {**_run_info(figure, run, settings, found), "key": key}
    rendered, source = (None, None) if settings.fresh else reusable(path, key, outdir)
    if rendered is None:
        result = _run_one(run, sources, settings, tag if progress else None)
        rendered = Rendered(result.image, {**result.record, "paper": info}, result.history)
        save_rendered(rendered, path)
        say(f"{tag} {run.label.strip()}: {rendered.seconds:.1f} s")
    elif source == path:
        say(f"{tag} {run.label.strip()}: kept {path.name} from an earlier run of these "
            "settings (--fresh renders it again)")  # fmt: skip
    else:
        assert source is not None
        shared = source.relative_to(outdir).as_posix()
        rendered.record = {**rendered.record, "paper": {**info, "copied_from": shared}}
        save_rendered(rendered, path)
        say(f"{tag} {run.label.strip()}: kept, the same run as {shared} (same inputs and "
            "settings; --fresh renders it again)")  # fmt: skip
    return rendered


def _save_sheet(
    figure: Figure,
    found: Found,
    sources: Mapping[str, Image.Image],
    results: Mapping[str, Rendered],
    settings: Settings,
    run_seconds: float,
    sheet: Path,
) -> None:
    if not figure.plot_losses:
        drawn = tile_sheet(figure, found, sources, results, settings, run_seconds)
        save_image(drawn, sheet)
        return
    plot = loss_plot(figure, found, sources, results, settings, run_seconds)
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
    run: Run, sources: Mapping[str, Image.Image], settings: Settings, tag: str | None
) -> Result:
    options = run_options(run, settings)
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
