"""The run queue: runs wait their turn and one worker thread computes them, one at a time.

A run paints one photo in one painting, or in several paintings blended into one style (their
Gram targets mixed by `Options.style_blend`, as `run_transfer` does for a list of styles).

One at a time because a run already uses every core (and the GPU, if any); two at once would
each take twice as long and need twice the memory. Runs go through `run_transfer`, the same API
the CLI uses. The worker never dies with a run: whatever a run raises is shown on its card.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from ..api import Result, run_transfer
from ..errors import InputError
from ..optimize import Cancel, Progress, ProgressCallback
from ..options import Options, normalized_blend
from .uploads import StoredImage, encode

log = logging.getLogger("painterly.web")

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
FINISHED = (DONE, CANCELLED, FAILED)

Runner = Callable[..., Result]


class QueueFull(InputError):
    """Too many runs waiting; refusing more keeps memory bounded."""


def plain(error: InputError) -> str:
    """An error as the page words it: an option by its label ('preserve color'), not a flag."""
    return error.worded(lambda field: field.replace("_", " "))


@dataclass(eq=False)
class Job:
    """One run and everything the page shows about it; changed only under the queue's lock."""

    id: str
    content: StoredImage
    styles: tuple[StoredImage, ...]  # more than one: blended into one style
    options: Options
    created: float = field(default_factory=time.time)
    state: str = QUEUED
    started: float | None = None  # time.monotonic() when the worker took it
    finished: float | None = None
    iteration: int = 0
    iterations: int = 0
    losses: dict[str, float] | None = None
    optimizing_seconds: float = 0.0
    preview: bytes | None = None
    preview_version: int = 0
    result_png: bytes | None = None
    result_size: tuple[int, int] | None = None
    record: dict | None = None
    stop_reason: str | None = None
    error: str | None = None
    cancel_requested: bool = False
    cancel: Cancel = field(default_factory=Cancel, repr=False)  # stops the running optimization

    def describe(self, position: int | None) -> dict[str, object]:
        """What the page needs to draw this run's card (JSON-ready)."""
        now = time.monotonic()
        end = self.finished if self.finished is not None else now
        elapsed = end - self.started if self.started is not None else 0.0
        left = None
        if self.state == RUNNING and self.iteration > 0:
            per_iteration = self.optimizing_seconds / self.iteration
            left = per_iteration * max(0, self.iterations - self.iteration)
        base = f"api/runs/{self.id}"
        return {
            "id": self.id,
            "state": self.state,
            "position": position,
            "cancelling": self.cancel_requested and self.state == RUNNING,
            "content": self.content.describe(),
            "style": self.styles[0].describe(),
            "styles": [style.describe() for style in self.styles],
            "options": self._shown_options(),
            "iteration": self.iteration,
            "iterations": self.iterations,
            "losses": self.losses,
            "elapsed": round(elapsed, 2),
            "left": None if left is None else round(left, 1),
            "preview": f"{base}/preview?v={self.preview_version}" if self.preview else None,
            "preview_version": self.preview_version,
            "result": f"{base}/result.png" if self.result_png else None,
            "record": f"{base}/record.json" if self.record else None,
            "result_size": list(self.result_size) if self.result_size else None,
            "stop_reason": self.stop_reason,
            "error": self.error,
        }

    def _shown_options(self) -> dict[str, object]:
        """The options the page's summary line shows; a blend's weights sum to 1."""
        o = self.options
        blend = normalized_blend(o.style_blend, len(self.styles)) if len(self.styles) > 1 else None
        return {
            "size": o.size,
            "strength": o.strength,
            "ratio": o.ratio,
            "iterations": o.iterations,
            "init": o.init,
            "preserve_color": o.preserve_color,
            "style_scale": o.style_scale,
            "tv_weight": o.tv_weight,
            "style_blend": None if blend is None else [round(w, 4) for w in blend],
        }


class RunQueue:
    """Runs in submission order on a single worker thread; finished runs are kept for a while."""

    def __init__(
        self,
        *,
        runner: Runner = run_transfer,
        max_pending: int = 20,
        keep_finished: int = 50,
        preview_interval: float = 0.25,
        preview_side: int = 768,
    ) -> None:
        self.runner = runner
        self.max_pending = max_pending
        self.keep_finished = keep_finished
        self.preview_interval = preview_interval
        self.preview_side = preview_side
        self._jobs: dict[str, Job] = {}
        self._pending: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._closing = False
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="painterly-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what is running, drop what waits, and let the worker end."""
        with self._lock:
            self._closing = True
            for job in self._pending:
                self._end(job, CANCELLED)
            self._pending.clear()
            if self._running is not None:
                self._running.cancel_requested = True
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(
        self, content: StoredImage, styles: list[StoredImage], options: Options, blend: bool = False
    ) -> list[Job]:
        """Queue one run per style image, or with `blend` one run of them all; all or none (a
        full queue refuses the whole batch)."""
        groups = [tuple(styles)] if blend else [(style,) for style in styles]
        with self._lock:
            if self._closing:
                raise InputError("the server is shutting down")
            if len(self._pending) + len(groups) > self.max_pending:
                raise QueueFull(
                    f"{len(self._pending)} runs are already waiting and the limit is "
                    f"{self.max_pending}; wait for some to finish or cancel some"
                )
            jobs = []
            for group in groups:
                job = Job(secrets.token_hex(6), content, group, options)
                job.iterations = options.iterations
                self._jobs[job.id] = job
                self._pending.append(job)
                jobs.append(job)
            self._lock.notify_all()
            return jobs

    def find_image(self, image_id: str) -> StoredImage | None:
        """An input of a known run, for its thumbnail after the image store forgot it."""
        with self._lock:
            for job in self._jobs.values():
                for image in (job.content, *job.styles):
                    if image.id == image_id:
                        return image
        return None

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a waiting run at once, or a running one at its next iteration."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == QUEUED:
                self._pending.remove(job)
                self._end(job, CANCELLED)
            elif job.state == RUNNING:
                job.cancel_requested = True
                job.cancel.cancel()
            return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def describe(self, job_id: str) -> dict[str, object] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.describe(self._position(job))

    def describe_all(self) -> list[dict[str, object]]:
        """Every run the server knows, in the order to show them: the queue as it will run
        (the running one, then the waiting ones in turn), then finished runs, latest first."""
        with self._lock:
            running = self._running
            active = [running] if running is not None and running.state == RUNNING else []
            active += list(self._pending)
            done = [j for j in self._jobs.values() if j.state in FINISHED]
            done.sort(key=lambda j: (j.finished or 0.0, j.created), reverse=True)
            return [job.describe(self._position(job)) for job in active + done]

    def _position(self, job: Job) -> int | None:
        """1 for the next run to start, 2 for the one after, ...; None unless waiting."""
        if job.state != QUEUED:
            return None
        return self._pending.index(job) + 1

    def _end(self, job: Job, state: str, error: str | None = None) -> None:
        job.state = state
        job.error = error
        job.finished = time.monotonic()
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for old in sorted(finished, key=lambda j: j.created)[: -self.keep_finished or None]:
            del self._jobs[old.id]

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                job = self._pending.popleft()
                job.state = RUNNING
                job.started = time.monotonic()
                self._running = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running = None

    def _run(self, job: Job) -> None:
        """Compute one run; every outcome, a crash included, ends up on the job."""
        try:
            images = [style.image for style in job.styles]
            style = images[0] if len(images) == 1 else images
            result = self.runner(job.content.image, style, job.options,
                                 callback=self._callback(job), cancel=job.cancel)  # fmt: skip
            if job.cancel.cancelled:
                with self._lock:
                    self._end(job, CANCELLED)
                return
            png = encode(result.image, "PNG")
            preview = self._preview(result.image)
        except InputError as exc:
            message = plain(exc)
        except MemoryError:
            message = "out of memory; try a smaller size"
        except Exception as exc:
            log.exception("run %s failed", job.id)
            message = f"the run crashed: {type(exc).__name__}: {exc}"
        else:
            with self._lock:
                job.result_png = png
                job.result_size = result.image.size
                job.record = result.record
                job.stop_reason = result.stop_reason
                job.iteration = result.record.get("iterations", job.iteration)
                job.preview = preview
                job.preview_version += 1
                self._end(job, DONE)
            return
        with self._lock:
            self._end(job, FAILED, message)

    def _callback(self, job: Job) -> ProgressCallback:
        last_preview = [float("-inf")]

        def callback(progress: Progress) -> None:
            loss = progress.loss
            losses = {
                "content": float(loss.content),
                "style": float(loss.style),
                "total": float(loss.total),
            }
            preview = None
            now = time.monotonic()
            if now - last_preview[0] >= self.preview_interval:
                last_preview[0] = now
                preview = self._preview(progress.picture())  # colours put back, as saved
            with self._lock:
                job.iteration = progress.iteration
                job.iterations = progress.iterations
                job.losses = losses
                job.optimizing_seconds = progress.elapsed
                if preview is not None:
                    job.preview = preview
                    job.preview_version += 1

        return callback

    def _preview(self, image: Image.Image) -> bytes:
        """A small JPEG of the current image, for the page to show while the run goes on."""
        if max(image.size) > self.preview_side:
            image = image.copy()
            image.thumbnail((self.preview_side, self.preview_side), Image.Resampling.BILINEAR)
        return encode(image, "JPEG", quality=90)
