"""The batch on a real Dask cluster: two worker processes, one of them killed mid-run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from batch_helpers import OPTIONS, content_tree, corrupt, picture, read_manifest
from PIL import Image

from painterly.batch import plan_batch, run_batch
from painterly.cli import main

distributed = pytest.importorskip("distributed")

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def client():
    # Workers must import this checkout's painterly, whatever is installed.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, old) if p)
    try:
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=50,  # the killed worker's warnings are expected
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def test_dask_batch_survives_a_killed_worker_and_a_rerun_skips_everything(tmp_path, client):
    names = ["a.png", "sub/b.png", "sub/c.png", "sub/deep/d.png", "e.png"]
    photos = content_tree(tmp_path / "photos", names)
    corrupt(photos / "sub" / "broken.jpg")
    style = picture(tmp_path / "style.png", seed=42)
    out = tmp_path / "out"
    jobs = plan_batch(photos, [style], out, seed=OPTIONS.seed)
    pids = client.run(os.getpid)  # worker address -> process id
    killed: list[tuple[str, tuple, int]] = []
    seen: list[str] = []

    def kill_a_busy_worker(outcome: dict) -> None:
        """At the first outcome, SIGKILL a worker that has jobs in flight (not a clean exit)."""
        seen.append(outcome["output"])
        if killed:
            return
        for address, tasks in client.processing().items():
            pairs = tuple(t for t in tasks if "painterly-pair" in str(t))
            if pairs and address in pids:
                os.kill(pids[address], signal.SIGKILL)
                killed.append((address, pairs, len(seen)))
                return

    summary = run_batch(
        jobs,
        OPTIONS,
        manifest=out / "manifest.jsonl",
        executor="dask",
        client=client,
        on_outcome=kill_a_busy_worker,
    )
    assert killed, "no worker had a job in flight to kill"
    assert killed[0][2] < len(seen) == 6  # the kill was mid-run: outcomes came after it
    assert (summary.done, summary.failed, summary.pending) == (5, 1, 0)
    entries = read_manifest(out / "manifest.jsonl")
    assert entries["sub/broken.jpg"]["status"] == "failed"
    assert "broken.jpg" in entries["sub/broken.jpg"]["error"]
    for name in names:
        assert entries[name]["status"] == "done", entries[name]
        assert entries[name]["loss_total"] > 0
        with Image.open(out / name) as image:
            assert image.size == (64, 48)
        assert (out / (name + ".json")).is_file()
    # The nanny replaced the killed worker.
    assert killed[0][0] not in client.run(os.getpid)

    rerun = run_batch(
        jobs, OPTIONS, manifest=out / "manifest.jsonl", executor="dask", client=client
    )
    assert (rerun.done, rerun.skipped, rerun.failed) == (0, 5, 1)
    entries = read_manifest(out / "manifest.jsonl")
    assert {entries[name]["status"] for name in names} == {"skipped"}


def test_cli_batch_on_a_dask_scheduler(tmp_path, client, capsys):
    photos = content_tree(tmp_path / "photos", ["x/1.png", "x/2.png", "y/3.png"])
    styles = [picture(tmp_path / f"style{i}.png", seed=i) for i in (1, 2)]
    out = tmp_path / "out"
    address = client.scheduler.address
    args = ["batch", str(photos), "--styles", *map(str, styles), "-o", str(out), "--quiet"]
    args += ["--pairing", "random", "--executor", "dask", "--scheduler", address]
    args += ["--size", "64", "--iterations", "2", "--seed", "0"]
    code = main(args)
    assert code == 0, capsys.readouterr().err
    entries = read_manifest(out / "manifest.jsonl")
    assert set(entries) == {"x/1.png", "x/2.png", "y/3.png"}  # one style each: a flat mirror
    assert {e["status"] for e in entries.values()} == {"done"}
    assert {e["style"] for e in entries.values()} <= set(map(str, styles))
