"""The progress bar every command draws on stderr (one look for the CLI, batch and grid).

tqdm is imported only when a bar is drawn, so `--quiet` runs and the API never load it.
"""

from __future__ import annotations

import sys

#: A bar of the run's work (pixels x iterations), in thousandths: no counts, since they are not
#: iterations, and the losses go in the postfix.
WORK_BAR = "{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}"


def progress_bar(
    total: int, desc: str, *, unit: str = "it", bar_format: str | None = None, leave: bool = True
):
    """A tqdm bar on stderr that fits the terminal's width; `leave=False` clears it when closed
    (where a line saying what was done takes its place)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                bar_format=bar_format, leave=leave)  # fmt: skip
