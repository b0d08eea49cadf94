"""Loss curves of a run (matplotlib, the optional 'plot' extra).

`plot_losses(result, "losses.png")` draws the total loss and its weighted parts (alpha x
content, beta x style, tv_weight x total variation) over the iterations of every scale, on a
log scale, with a line where each finer scale begins.
"""

from __future__ import annotations

import io
import itertools
import os
import pathlib

from .errors import InputError
from .images import check_output_path, write_bytes_atomic

PLOT_FORMATS = (".png", ".svg", ".pdf")


def check_plot_path(path: str | os.PathLike[str]) -> pathlib.Path:
    """A writable .png, .svg or .pdf path, and matplotlib to draw it."""
    target = check_output_path(path, PLOT_FORMATS)
    _matplotlib_figure()
    return target


def _matplotlib_figure():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'painterly[plot]'") from None
    return Figure


def plot_losses(result: object, path: str | os.PathLike[str], *, title: str | None = None) -> None:
    """Draw `result`'s loss curves (a `Result` from `run_transfer` and friends) into `path`."""
    target = check_plot_path(path)
    history: list[dict] = result.history  # type: ignore[attr-defined]
    stages: list[dict] = result.record["scales"]  # type: ignore[attr-defined]
    if not history:
        raise InputError("the run has no loss history to plot (it stopped before an iteration)")

    curves: dict[str, list[tuple[int, float]]] = {}
    for entry in history:
        stage = stages[entry["scale"]]
        parts = {
            "total": entry["total"],
            "α·content": stage.get("alpha", 1.0) * entry["content"],
            "β·style": stage.get("beta", 1.0) * entry["style"],
            "tv weight·TV": stage.get("tv_weight", 0.0) * entry.get("tv", 0.0),
        }
        for name, value in parts.items():
            if value > 0:  # a log axis: absent terms (no content, no TV) are left out
                curves.setdefault(name, []).append((entry["iteration"], value))

    figure = _matplotlib_figure()(figsize=(7, 4.2), dpi=110)
    axes = figure.add_subplot()
    for name, points in curves.items():
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, label=name, linewidth=2.0 if name == "total" else 1.3)
    starts = [
        entry["iteration"]
        for before, entry in itertools.pairwise(history)
        if entry["scale"] != before["scale"]
    ]
    for stage, start in zip(stages[1:], starts, strict=False):
        axes.axvline(start - 0.5, color="0.6", linestyle=":", linewidth=1)
        axes.annotate(
            f"{stage['size'][0]}x{stage['size'][1]}",
            (start, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="0.4",
        )
    axes.set_yscale("log")
    axes.set_xlabel("iteration" + (" (all scales)" if len(stages) > 1 else ""))
    axes.set_ylabel("loss")
    axes.set_title(title or f"painterly {result.record.get('command', '')}: loss")  # type: ignore[attr-defined]
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=target.suffix[1:].lower())
    write_bytes_atomic(buffer.getvalue(), target)
