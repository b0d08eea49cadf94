"""The render cache: an image a figure needs is reused when an earlier run finished it with the
same key, from its own place or from another figure's (Figures 2-6 share runs).

Renders at 512 px take hours, so a second `painterly paper` goes on where the first stopped. The
key is what the image depends on: `RENDER_VERSION`, the kind of run, every option, and the
digests of its input files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from ..images import save_image, write_text_atomic
from ..record import record_path_for
from .figures import Run
from .inputs import Found
from .settings import Settings, run_options

#: The version of the code that computes a figure's images. Bump it in the same commit as any
#: change that can change their pixels or their records' losses for the same options and
#: inputs: `painterly.api` and the modules it imports (options, strength, controls, images,
#: losses, optimize, network, vgg, weights, normalization, memory, record, errors), the
#: shipped weights or channel means. A change to a figure's own ratios or options changes
#: the key by itself, and one to the sheets, plots, the CLI or the web app needs no bump: it
#: keeps the images. When unsure, bump: it costs a render, a wrong reuse costs a wrong figure.
RENDER_VERSION = 1

FINISHED = ("iterations", "converged")  # stop reasons of an image that is done


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


def run_key(run: Run, settings: Settings, found: Found) -> dict:
    """What an image depends on: an image on disk with the same key is reused, not redone.

    Inputs are named by their role (content, style) and file digest, not by the figure's names
    for them, so the same run in two figures has one key.
    """
    options = run_options(run, settings)
    roles = {"content": run.content, "style": run.style}
    inputs = {
        role: hashlib.sha256(found.paths[key].read_bytes()).hexdigest()
        for role, key in roles.items()
        if key is not None
    }
    key = {
        "render_version": RENDER_VERSION,
        "kind": run.kind,
        "options": asdict(options),
        "inputs": inputs,
    }
    return json.loads(json.dumps(key))  # as it will read back from the record


def key_text(key: dict) -> str:
    return json.dumps(key, sort_keys=True)


def finished_images(outdir: Path) -> dict[str, list[Path]]:
    """The finished images under `outdir`'s figure folders by the text of their key, to reuse
    (an interrupted one is never picked over a finished one); those made by a run come before
    copies of them, so a copy names the image it was made as."""
    found: dict[str, list[tuple[bool, Path]]] = {}
    for record_path in sorted(outdir.glob("fig*/*.png.json")):
        try:
            record = json.loads(record_path.read_text())
            info = record["paper"]
            key = key_text(info["key"])
            if record["stop_reason"] not in FINISHED:
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.setdefault(key, []).append(("copied_from" in info, record_path.with_suffix("")))
    return {key: [path for _, path in sorted(paths)] for key, paths in found.items()}


def reusable(path: Path, key: dict, outdir: Path) -> tuple[Rendered | None, Path | None]:
    """Its own finished image, else the same image finished for another figure (Figures 2, 3,
    4, 5 and 6 share runs: the same photo, painting and settings), with where it was found.

    Looked up before each run, so an image that another process rendering into this OUTDIR
    finished meanwhile counts; the OUTDIR's records are read only when its own image is not kept.
    """
    own = kept_image(path, key)
    if own is not None:
        return own, path
    candidates = finished_images(outdir).get(key_text(key), [])
    source = next((found for found in candidates if found != path), None)
    return (None, None) if source is None else (kept_image(source, key), source)


def save_copy(rendered: Rendered, path: Path) -> None:
    """Another figure's finished image, written as this figure's: the image, then its record
    with its history, as `Result.save` writes a run's. A copy is no run, so it has no `Result`."""
    save_image(rendered.image, path)
    record = {**rendered.record, "history": rendered.history}
    write_text_atomic(json.dumps(record, indent=2) + "\n", record_path_for(path))


def kept_image(path: Path, key: dict) -> Rendered | None:
    """The image at `path` if an earlier run with this key finished it, else None."""
    record_path = record_path_for(path)
    try:
        record = json.loads(record_path.read_text())
        if record["paper"]["key"] != key or record["stop_reason"] not in FINISHED:
            return None
        with Image.open(path) as image:
            image.load()
            return Rendered(image.convert("RGB"), record, record.get("history", []), kept=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None
