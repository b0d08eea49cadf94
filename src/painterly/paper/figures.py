"""The paper's figures as data: which inputs each reads, its runs, and its sheet's labels.

Each figure is a table: the inputs it reads from a folder (by file name), a list of runs (kind,
inputs, ratio, option overrides, place on the sheet) and row/column labels. Nothing here runs
anything; `render` does, with the settings of `settings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..options import PAPER_STYLE_LAYERS
from .settings import CONTENT_LAYERS, sci


@dataclass(frozen=True)
class Input:
    """An image a figure reads from the images folder, found by its file name (any suffix).

    `names` are accepted file stems (case, '-' and '_' do not matter), the paper's work first;
    `stand_ins` are used, and said so on the sheet, when none of `names` is there.
    """

    key: str
    what: str  # for messages and docs/paper.md: which work or photo, and whose
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


def layers_label(layers: Sequence[str]) -> str:
    """'conv1_1 + conv2_1', or 'conv1_1 … conv5_1' for more than two layers."""
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
        Run(f"style_{n}_layers", f"style from {layers_label(_upto(n))}", "texture", (1, n - 1),
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
        Run(f"upto_{_upto(n)[-1]}_paper_{sci(ratio)}",
            layers_label(_upto(n)), "transfer", (n - 1, c),
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
        rows=tuple(f"style from {layers_label(_upto(n))}" for n in range(1, 6)),
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
