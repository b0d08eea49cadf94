"""Stylize a folder or a manifest of images, resumably, on this machine or a Dask cluster.

Why it is built this way:

- Planning is pure and deterministic (a sorted walk, styles picked by a hash of each content's
  path), so a rerun plans exactly the same pairs and can skip the finished ones.
- An output is finished when its image and then its JSON record exist: both are written
  atomically and the record last, so the record is the commit mark. A crash, Ctrl-C or a killed
  worker loses at most the images in flight, and never leaves a half-written file behind.
- A job is idempotent: each pair has its own fixed seed and writes only its own two files, so
  running it twice (a Dask retry after a lost worker, a rerun) is safe and gives the same image.
- A style's Gram targets are computed once per style (`prepare_style`) and shipped to the workers
  that need them, never recomputed per image; they are dropped when the style's last job is done.
- A bad input fails its own pairs (status "failed" with the message in the run manifest) and the
  rest go on.
- The run manifest is JSON lines, appended as pairs finish, so it is useful even after a crash.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import pickle
import signal
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import PreparedStyle, prepare_style, run_transfer
from .errors import InputError
from .images import OUTPUT_FORMATS, find_images
from .optimize import Cancel
from .options import Options
from .progress import progress_bar

PAIRINGS = ("all", "random")
EXECUTORS = ("local", "dask")
MANIFEST_NAME = "manifest.jsonl"
#: How often a local job may be lost with its worker process before it is marked failed (Dask's
#: own default for the same thing, distributed.scheduler.allowed-failures, is 3 too).
LOCAL_ALLOWED_FAILURES = 3

OutcomeCallback = Callable[[dict], None]


@dataclass(frozen=True)
class Job:
    """One (content, style) pair and where its output goes; paths are absolute."""

    content: str
    style: str
    output: str
    name: str  # the output's path relative to the output folder: its id in the manifest
    seed: int

    @property
    def record_path(self) -> str:
        return self.output + ".json"


@dataclass
class BatchSummary:
    """Counts of a run's pairs by status, and the failed ones' manifest entries."""

    total: int
    manifest: Path
    counts: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.counts["done"]

    @property
    def skipped(self) -> int:
        return self.counts["skipped"]

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def pending(self) -> int:
        return self.counts["pending"]


@dataclass(frozen=True)
class _StyleFailure:
    """A style that could not be prepared; every pair with it fails with this message."""

    message: str
    kind: str = "input"


# --------------------------------------------------------------------------------------------
# planning


def plan_batch(
    inputs: str | os.PathLike,
    styles: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    pairing: str = "all",
    pairing_seed: int = 0,
    seed: int | None = None,
    output_format: str | None = None,
) -> list[Job]:
    """Every (content, style) pair to make, in a fixed order (grouped by style).

    `inputs` is a folder (walked recursively) or a manifest: a .csv with a `content` column and
    an optional `style` column (or, without a header, those two columns), or a text file with one
    content path per line (optionally a tab and a style). Relative paths in a manifest are
    relative to the manifest. Rows without a style get `styles`: each of them
    (`pairing="all"`) or one picked by a hash of the content's path and `pairing_seed`
    (`"random"`, as Stylized-ImageNet pairs them; stable across reruns, unlike a shuffle).
    `styles` may name folders, which are walked like `inputs`.

    Outputs mirror the input tree under `output_dir`; when a content gets more than one style,
    each style gets its own tree, `output_dir/STYLE_NAME/...`. Each pair's seed comes from
    `seed` (the run's `Options.seed`; None counts as 0) and its output path, so a redone pair
    gives the same image.
    """
    if pairing not in PAIRINGS:
        raise InputError(f"{{pairing}} must be one of {', '.join(PAIRINGS)}, not {pairing!r}")
    if output_format is not None and "." + output_format.lower().lstrip(".") not in OUTPUT_FORMATS:
        raise InputError(
            f"{{output_format}} must be one of {', '.join(s[1:] for s in OUTPUT_FORMATS)}, "
            f"not {output_format!r}"
        )
    out = os.path.abspath(output_dir)
    if os.path.isdir(inputs) and os.path.abspath(inputs) == out:
        raise InputError("the output folder must not be the input folder; choose another -o")
    rows, root = _read_inputs(os.fspath(inputs), exclude=out)
    style_list = _expand_styles(styles, exclude=out)

    pairs: list[tuple[str, str, str]] = []  # content, style, content's path relative to root
    seen: set[tuple[str, str]] = set()
    for content, row_style in rows:
        relative = os.path.relpath(content, root)
        if row_style is not None:
            chosen = [row_style]
        elif not style_list:
            raise InputError(f"no style for {content}: give {{styles}} or a style column")
        elif pairing == "all":
            chosen = style_list
        else:
            chosen = [style_list[_hash(pairing_seed, relative) % len(style_list)]]
        for style in chosen:
            if (content, style) not in seen:
                seen.add((content, style))
                pairs.append((content, style, relative))

    per_content = Counter(content for content, _, _ in pairs)
    per_style_trees = any(n > 1 for n in per_content.values())
    style_names = _style_names(sorted({style for _, style, _ in pairs}))
    jobs: list[Job] = []
    by_output: dict[str, Job] = {}
    for content, style, relative in pairs:
        name = _output_name(relative, output_format)
        if per_style_trees:
            name = os.path.join(style_names[style], name)
        output = os.path.join(out, name)
        if os.path.abspath(output) in (os.path.abspath(content), os.path.abspath(style)):
            raise InputError(f"output {output} would overwrite an input; choose another -o")
        job = Job(content, style, output, name, _hash(seed or 0, name) % 2**31)
        if output in by_output:
            raise InputError(
                f"{by_output[output].content} and {content} would both be written to {output}; "
                "rename one, or give {output_format}"
            )
        by_output[output] = job
        jobs.append(job)
    jobs.sort(key=lambda job: (job.style, job.name))
    return jobs


def _read_inputs(source: str, *, exclude: str) -> tuple[list[tuple[str, str | None]], str]:
    """(content, style or None) rows from a folder or manifest, and the root the tree mirrors."""
    if os.path.isdir(source):
        contents = find_images(source, exclude=exclude)
        if not contents:
            raise InputError(f"no image files found in folder {source}")
        return [(c, None) for c in contents], os.path.abspath(source)
    if not os.path.isfile(source):
        raise InputError(f"input {source} is neither a folder nor a manifest file")
    base = os.path.dirname(os.path.abspath(source))
    try:
        with open(source, encoding="utf-8-sig", newline="") as fp:
            if source.lower().endswith(".csv"):
                raw = [row for row in csv.reader(fp) if row and any(cell.strip() for cell in row)]
            else:
                lines = (line.rstrip("\r\n") for line in fp)
                raw = [line.split("\t") for line in lines if line.strip() and line[0] != "#"]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read manifest {source}: {exc}") from None
    content_col, style_col = 0, 1
    if raw and "content" in [cell.strip().lower() for cell in raw[0]]:
        header = [cell.strip().lower() for cell in raw.pop(0)]
        content_col = header.index("content")
        style_col = header.index("style") if "style" in header else -1
    rows = []
    for row in raw:
        content = row[content_col].strip() if content_col < len(row) else ""
        if not content:
            raise InputError(f"manifest {source} has a row without a content path: {row}")
        style = row[style_col].strip() if 0 <= style_col < len(row) else ""
        rows.append(
            (
                os.path.abspath(os.path.join(base, content)),
                os.path.abspath(os.path.join(base, style)) if style else None,
            )
        )
    if not rows:
        raise InputError(f"manifest {source} lists no images")
    contents = [content for content, _ in rows]
    if all(os.path.commonpath([base, c]) == base for c in contents):
        return rows, base
    return rows, os.path.commonpath([os.path.dirname(c) for c in contents])


def _expand_styles(styles: Sequence[str | os.PathLike], *, exclude: str) -> list[str]:
    expanded: list[str] = []
    for style in styles:
        path = os.fspath(style)
        if os.path.isdir(path):
            found = find_images(path, exclude=exclude)
            if not found:
                raise InputError(f"no image files found in style folder {path}")
            expanded += found
        else:
            expanded.append(os.path.abspath(path))
    return list(dict.fromkeys(expanded))


def _style_names(styles: Iterable[str]) -> dict[str, str]:
    """A folder name per style: its file name's stem, numbered where two share one."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for style in styles:
        stem = Path(style).stem or "style"
        name, number = stem, 1
        while name in taken:
            number += 1
            name = f"{stem}-{number}"
        taken.add(name)
        names[style] = name
    return names


def _output_name(relative: str, output_format: str | None) -> str:
    stem, suffix = os.path.splitext(relative)
    if output_format is not None:
        return f"{stem}.{output_format.lower().lstrip('.')}"
    return stem + (suffix if suffix.lower() in OUTPUT_FORMATS else ".png")


def _hash(seed: int, text: str) -> int:
    """A stable hash (Python's hash() changes per process) for picking and seeding."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{text}".encode()).digest()[:8], "big")


# --------------------------------------------------------------------------------------------
# one job (runs on a worker)


def finished_record(job: Job) -> dict | None:
    """The job's record if its output is complete (image and record both there), else None."""
    if not os.path.isfile(job.output):
        return None
    try:
        with open(job.record_path, encoding="utf-8") as fp:
            record = json.load(fp)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def run_job(
    job: Job,
    target: PreparedStyle | _StyleFailure,
    options: Options,
    cancel: Cancel | None = None,
) -> dict:
    """Make one output: image first, then its record (`Result.save`), and return its outcome.

    Bad input is an outcome ("failed"), not an exception, so it is not retried; any other
    exception propagates (and is recorded by the caller). A run stopped through `cancel` writes
    nothing: its pair stays "pending", to be done when the batch is run again.
    """
    started = time.perf_counter()
    if isinstance(target, _StyleFailure):
        return _failed(job, target.message, target.kind)
    try:
        result = run_transfer(job.content, _on_device(target, options), options, seed=job.seed,
                              cancel=cancel)  # fmt: skip
        if result.stop_reason == "interrupted":
            return _outcome(job, "pending")
        os.makedirs(os.path.dirname(job.output), exist_ok=True)
        result.save(job.output, batch={"content": job.content, "style": job.style})
    except InputError as exc:
        return _failed(job, str(exc), "input")
    record = {**result.record, "batch": {"content": job.content, "style": job.style}}
    return _outcome(job, "done", record, round(time.perf_counter() - started, 3))


def prepare_target(style: str, options: Options) -> PreparedStyle | _StyleFailure:
    """A style's targets with tensors on the CPU (so any worker can take them), or its failure."""
    try:
        target = prepare_style(style, options)
    except InputError as exc:
        return _StyleFailure(str(exc))
    return target.to("cpu")


def _on_device(target: PreparedStyle, options: Options) -> PreparedStyle:
    from .network import resolve_device

    device = resolve_device(options.device)
    if device.type == "cpu":
        return target
    return target.to(device)


def _outcome(
    job: Job, status: str, record: dict | None = None, seconds: float | None = None
) -> dict:
    """A manifest entry; seconds and losses come from the record when there is one."""
    record = record or {}
    loss = record.get("final_loss") or {}
    if seconds is None and "timings" in record:
        timings = record["timings"]
        seconds = round(timings.get("setup_seconds", 0) + timings.get("optimization_seconds", 0), 3)
    return {
        "output": job.name,
        "content": job.content,
        "style": job.style,
        "status": status,
        "seconds": seconds,
        "iterations": record.get("iterations"),
        "stop_reason": record.get("stop_reason"),
        "loss_total": loss.get("total"),
        "loss_content": loss.get("content"),
        "loss_style": loss.get("style"),
        "error": None,
    }


def _failed(job: Job, message: str, kind: str) -> dict:
    return {**_outcome(job, "failed"), "error": message, "error_kind": kind}


def _exception_outcome(job: Job, exc: BaseException) -> dict:
    return _failed(job, f"{type(exc).__name__}: {' '.join(str(exc).split())}", "error")


# --------------------------------------------------------------------------------------------
# running


def run_batch(
    jobs: Sequence[Job],
    options: Options | None = None,
    *,
    manifest: str | os.PathLike,
    executor: str = "local",
    client: Any = None,
    workers: int | None = None,
    threads: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    on_outcome: OutcomeCallback | None = None,
) -> BatchSummary:
    """Run the jobs whose outputs are not finished yet and write the run manifest.

    `executor="local"` uses a pool of `workers` processes with `threads` torch threads each
    (default: a quarter of the cores each); `"dask"` submits to `client`, a
    `distributed.Client`. Ctrl-C stops the run: finished outputs stay, the pairs not finished
    are listed as "pending", and KeyboardInterrupt propagates after the manifest is written.
    """
    if executor not in EXECUTORS:
        raise InputError(f"{{executor}} must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    if executor == "dask" and client is None:
        raise InputError("{executor} dask needs a cluster: give --scheduler ADDRESS")
    options = (options or Options()).validated()
    manifest = Path(manifest)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary(total=len(jobs), manifest=manifest)
    bar = None  # made after the skipped pairs are counted: time left is for this run's pairs
    reported: set[str] = set()
    with open(manifest, "w", encoding="utf-8") as log:

        def report(outcome: dict) -> None:
            reported.add(outcome["output"])
            summary.counts[outcome["status"]] += 1
            if outcome["status"] == "failed":
                summary.failures.append(outcome)
            log.write(json.dumps(outcome) + "\n")
            log.flush()
            if bar is not None:
                left = summary.total - summary.done - summary.skipped - summary.failed
                bar.set_postfix_str(
                    f"done {summary.done} failed {summary.failed} left {left}"
                    + (f" (skipped {summary.skipped})" if summary.skipped else ""),
                    refresh=False,
                )
                bar.update(1)
            if on_outcome is not None:
                on_outcome(outcome)

        todo = []
        for job in jobs:
            record = None if overwrite else finished_record(job)
            if record is None:
                todo.append(job)
            else:
                report(_outcome(job, "skipped", record))
        bar = _progress_bar(len(todo), enabled=progress)
        try:
            if todo and executor == "local":
                outcomes = _local_outcomes(todo, options, workers, threads)
            elif todo:
                outcomes = _dask_outcomes(todo, options, client, threads)
            else:
                outcomes = _no_outcomes()
            with closing(outcomes):
                for outcome in outcomes:
                    report(outcome)
        finally:
            for job in todo:
                if job.name not in reported:
                    # A worker may have finished it while we were stopping.
                    record = None if overwrite else finished_record(job)
                    status = "pending" if record is None else "done"
                    summary.counts[status] += 1
                    log.write(json.dumps(_outcome(job, status, record)) + "\n")
            if bar is not None:
                bar.close()
    return summary


def _no_outcomes() -> Iterator[dict]:
    yield from ()


def _progress_bar(total: int, *, enabled: bool):
    return progress_bar(total, "batch", unit="image") if enabled else None


class _Targets:
    """Style targets computed on first use and dropped after their style's last job."""

    def __init__(self, jobs: Sequence[Job], make: Callable[[str], Any]) -> None:
        self._left = Counter(job.style for job in jobs)
        self._make = make
        self._cache: dict[str, Any] = {}

    def get(self, style: str) -> Any:
        if style not in self._cache:
            self._cache[style] = self._make(style)
        return self._cache[style]

    def held(self) -> list:
        return list(self._cache.values())

    def finished(self, style: str) -> Any:
        """Count one job of `style` as done; return its cached value if that was the last."""
        self._left[style] -= 1
        return self._cache.pop(style, None) if self._left[style] <= 0 else None


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def local_layout(
    workers: int | None, threads: int | None, options: Options, jobs: int
) -> tuple[int, int]:
    """(processes, torch threads each): together about the machine's cores, never more.

    A few processes with a few threads each beat one process with all threads (small images do
    not parallelize well inside one convolution) and beat one process per core (memory). A GPU
    is shared by one process.
    """
    from .network import resolve_device

    cores = available_cores()
    if workers is None:
        on_gpu = resolve_device(options.device).type != "cpu"
        workers = 1 if on_gpu else max(1, cores // 4)
    if workers < 1 or (threads is not None and threads < 1):
        raise InputError("{workers} and {threads} must be at least 1")
    workers = min(workers, max(1, jobs))
    return workers, threads or max(1, cores // workers)


def _local_outcomes(
    jobs: Sequence[Job], options: Options, workers: int | None, threads: int | None
) -> Iterator[dict]:
    """Outcomes from a process pool; a pool whose worker died is replaced and its jobs rerun."""
    workers, threads = local_layout(workers, threads, options, len(jobs))
    # Targets travel as pickled bytes: multiprocessing would otherwise move the tensors through
    # shared memory handles, which depend on /dev/shm size and open-file limits.
    targets = _Targets(jobs, lambda style: pickle.dumps(prepare_target(style, options)))
    pending = deque(jobs)
    lost: Counter[str] = Counter()
    context = multiprocessing.get_context("spawn")  # fork after torch has threads is unsafe
    stop = context.Event()  # set: every worker cancels its run and takes no more jobs
    while pending:
        pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_local_worker, initargs=(threads, stop)
        )
        in_flight: dict[Future, Job] = {}
        broken = False
        try:
            while (pending and not broken) or in_flight:
                while pending and not broken and len(in_flight) < 2 * workers:
                    job = pending.popleft()
                    target = targets.get(job.style)
                    try:
                        in_flight[pool.submit(_local_task, job, target, options)] = job
                    except BrokenProcessPool:
                        pending.appendleft(job)
                        broken = True
                if not in_flight:
                    continue
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = in_flight.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True
                        lost[job.name] += 1
                        if lost[job.name] < LOCAL_ALLOWED_FAILURES:
                            pending.appendleft(job)
                            continue
                        outcome = _failed(
                            job,
                            f"its worker process died {lost[job.name]} times "
                            "(out of memory? try a smaller --size or fewer --workers)",
                            "error",
                        )
                    except Exception as exc:
                        outcome = _exception_outcome(job, exc)
                    targets.finished(job.style)
                    yield outcome
        finally:
            for future in in_flight:
                future.cancel()
            if in_flight:
                # Stop the images in flight now rather than finish them: their runs are
                # cancelled and write nothing.
                stop.set()
            pool.shutdown(wait=True, cancel_futures=True)


_cancel = Cancel()  # in a local worker: set by Ctrl-C or by the batch stopping


def _init_local_worker(threads: int, stop: Any) -> None:
    """Ctrl-C reaches every process of the terminal's group, and the batch may stop without it
    (`stop`): either cancels the worker's run, and the jobs already queued to it end at once."""
    import torch

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, lambda signum, frame: _cancel.cancel())
    threading.Thread(target=lambda: (stop.wait(), _cancel.cancel()), daemon=True).start()


def _local_task(job: Job, target: bytes, options: Options) -> dict:
    if _cancel.cancelled:
        return _outcome(job, "pending")
    return run_job(job, pickle.loads(target), options, _cancel)


def _dask_outcomes(
    jobs: Sequence[Job], options: Options, client: Any, threads: int | None
) -> Iterator[dict]:
    """Outcomes from a Dask cluster, with a bounded number of jobs submitted at a time.

    Style targets are Dask tasks too (not scattered data), so if the worker holding one dies the
    scheduler recomputes it, and the jobs that were running there are rerun elsewhere.
    """
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    window = max(4, 2 * sum(client.nthreads().values()))
    targets = _Targets(
        jobs,
        lambda style: client.submit(
            prepare_target, style, options, key=f"painterly-style-{run}-{_hash(0, style):x}"
        ),
    )
    queue = iter(enumerate(jobs))
    in_flight: dict[Any, Job] = {}
    completed = as_completed()

    def submit_next() -> None:
        item = next(queue, None)
        if item is not None:
            number, job = item
            future = client.submit(
                _dask_task,
                job,
                targets.get(job.style),
                options,
                threads,
                key=f"painterly-pair-{run}-{number}",
            )
            in_flight[future] = job
            completed.add(future)

    for _ in range(window):
        submit_next()
    try:
        for future in completed:
            job = in_flight.pop(future)
            if future.status == "finished":
                outcome = future.result()
            else:
                try:
                    outcome = _exception_outcome(job, future.exception())
                except Exception as exc:  # e.g. cancelled
                    outcome = _exception_outcome(job, exc)
            future.release()
            done_style = targets.finished(job.style)
            if done_style is not None:
                done_style.release()
            yield outcome
            submit_next()
    finally:
        leftover = list(in_flight) + targets.held()
        if leftover:
            with suppress(Exception):
                client.cancel(leftover)


def _dask_task(
    job: Job, target: PreparedStyle | _StyleFailure, options: Options, threads: int | None
) -> dict:
    if threads:
        import torch

        torch.set_num_threads(threads)
    return run_job(job, target, options)
