"""Regenerate the figures of Gatys, Ecker & Bethge (CVPR 2016) as labelled contact sheets.

Each figure is data (`figures`): the inputs it reads from a folder, found by file name
(`inputs`), a list of runs and the labels of its sheet. `render` runs them with the paper's
settings (`settings`: spelled out field by field, so tuning the defaults of `painterly transfer`
for speed never changes what these figures show), keeps each finished image for the next run
(`cache`, keyed by `RENDER_VERSION`), and draws the sheet (`sheet`; Figure 2's loss curves:
`plots`). The CLI's `painterly paper` is a thin layer over `render_figures`.
"""

from .cache import RENDER_VERSION, Rendered
from .figures import FIGURES, Figure, Input, Run
from .inputs import IMAGE_SUFFIXES, Found, check_figures, find_inputs, list_images
from .plots import loss_plot
from .render import FigureResult, render_figure, render_figures
from .settings import (
    PAPER_ITERATIONS,
    PAPER_SIZE,
    PAPER_TO_OURS,
    REFERENCE_SIZE,
    Settings,
    ours_ratio,
    paper_options,
    ratio_label,
)
from .sheet import Rendering, image_count

__all__ = [
    "FIGURES",
    "IMAGE_SUFFIXES",
    "PAPER_ITERATIONS",
    "PAPER_SIZE",
    "PAPER_TO_OURS",
    "REFERENCE_SIZE",
    "RENDER_VERSION",
    "Figure",
    "FigureResult",
    "Found",
    "Input",
    "Rendered",
    "Rendering",
    "Run",
    "Settings",
    "check_figures",
    "find_inputs",
    "image_count",
    "list_images",
    "loss_plot",
    "ours_ratio",
    "paper_options",
    "ratio_label",
    "render_figure",
    "render_figures",
]
