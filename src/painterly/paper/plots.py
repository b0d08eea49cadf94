"""Figure 2's page: in place of the paper's diagram of the algorithm, the losses of one transfer."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from ..images import resize_long_side
from .settings import ratio_label
from .sheet import Rendering, settings_line

if TYPE_CHECKING:
    from matplotlib.figure import Figure as PlotFigure


def loss_plot(rendering: Rendering) -> PlotFigure:
    """Figure 2: the inputs, the result and its loss curves (log scale) on one matplotlib page."""
    from matplotlib.figure import Figure as PlotFigure  # no pyplot: no GUI backend, no state

    figure, found, settings = rendering.figure, rendering.found, rendering.settings
    sources = rendering.sources
    run = figure.runs[0]
    result = rendering.results[run.name]
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
    line = textwrap.fill(settings_line(figure, settings, rendering.seconds), 150)
    plot.suptitle(f"{figure.title}\n{line}", fontsize=11)
    return plot
