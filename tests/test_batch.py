"""Batch planning, the local executor and the `painterly batch` command, on real files."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_helpers import OPTIONS, content_tree, corrupt, picture, read_manifest
from PIL import Image

from painterly.batch import plan_batch, prepare_target, run_batch, run_job
from painterly.cli import main
from painterly.errors import InputError

NESTED = ["a.png", "sub/b.jpg", "sub/deep/c.png"]
SRC = Path(__file__).resolve().parents[1] / "src"


def touch(root: Path, names: list[str]) -> Path:
    """Empty files: planning looks at names only, it opens no image."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


# --------------------------------------------------------------------------------------------
# planning


def test_plan_mirrors_the_tree_and_skips_hidden_files_other_files_and_the_output(tmp_path):
    photos = touch(tmp_path / "photos", [*NESTED, ".hidden.png", ".cache/d.png", "notes.txt"])
    touch(photos, ["out/old.png"])  # the output folder inside the input: not an input
    jobs = plan_batch(photos, [tmp_path / "style.jpg"], photos / "out")
    assert [job.name for job in jobs] == NESTED
    assert jobs[1].output == str(photos / "out" / "sub" / "b.jpg")
    assert jobs[1].content == str(photos / "sub" / "b.jpg")
    assert all(job.style == str(tmp_path / "style.jpg") for job in jobs)


def test_plan_all_pairing_gives_each_style_its_own_tree(tmp_path):
    photos = touch(tmp_path / "photos", ["a.png", "sub/b.bmp"])
    styles = touch(tmp_path / "styles", ["starry.jpg", "more/wave.png", "other/wave.png"])
    jobs = plan_batch(photos, [styles], tmp_path / "out", output_format=None)
    names = sorted(job.name for job in jobs)
    assert names == sorted(
        f"{style}/{name}"
        for style in ("starry", "wave", "wave-2")
        for name in ("a.png", "sub/b.png")  # .bmp cannot be written: png
    )
    # A rerun plans the very same pairs with the same seeds (resuming depends on it).
    again = plan_batch(photos, [styles], tmp_path / "out")
    assert again == jobs
    assert len({job.seed for job in jobs}) == len(jobs)


def test_plan_random_pairing_is_seeded_stable_and_flat(tmp_path):
    names = [f"n{i // 10}/img{i}.jpg" for i in range(40)]
    photos = touch(tmp_path / "photos", names)
    styles = [tmp_path / f"s{i}.png" for i in range(4)]
    jobs = plan_batch(photos, styles, tmp_path / "out", pairing="random", pairing_seed=7)
    assert sorted(job.name for job in jobs) == sorted(names)  # one style each, no style folders
    assert len({job.style for job in jobs}) == 4
    chosen = {job.name: job.style for job in jobs}
    # The choice depends on the content's path, not on what else is in the batch.
    for name in names[::3]:
        (photos / name).unlink()
    fewer = plan_batch(photos, styles, tmp_path / "out", pairing="random", pairing_seed=7)
    assert len(fewer) == 26
    assert all(chosen[job.name] == job.style for job in fewer)
    other = plan_batch(photos, styles, tmp_path / "out", pairing="random", pairing_seed=8)
    assert {job.name: job.style for job in other} != chosen


def test_plan_reads_csv_and_text_manifests(tmp_path):
    touch(tmp_path / "data", ["x/1.png", "x/2.png", "y/3.jpg"])
    csv_manifest = tmp_path / "data" / "list.csv"
    csv_manifest.write_text("id,content,style\n1,x/1.png,s1.png\n2,x/2.png,\n3,y/3.jpg,s1.png\n")
    jobs = plan_batch(csv_manifest, [tmp_path / "s2.png"], tmp_path / "out")
    pairs = {(Path(job.content).name, Path(job.style).name, job.name) for job in jobs}
    assert pairs == {
        ("1.png", "s1.png", "x/1.png"),
        ("2.png", "s2.png", "x/2.png"),
        ("3.jpg", "s1.png", "y/3.jpg"),
    }
    text_manifest = tmp_path / "list.txt"
    text_manifest.write_text("# contents\ndata/x/1.png\n\ndata/y/3.jpg\tdata/s3.png\n")
    with pytest.raises(InputError, match="no style for"):
        plan_batch(text_manifest, [], tmp_path / "out")
    jobs = plan_batch(text_manifest, [tmp_path / "s2.png"], tmp_path / "out", output_format="webp")
    assert {(job.name, Path(job.style).name) for job in jobs} == {
        ("data/x/1.webp", "s2.png"),
        ("data/y/3.webp", "s3.png"),
    }


def test_plan_refuses_what_would_clobber(tmp_path):
    photos = touch(tmp_path / "photos", ["a.png", "a.jpg"])
    with pytest.raises(InputError, match="both be written"):
        plan_batch(photos, [tmp_path / "s.png"], tmp_path / "out", output_format="png")
    with pytest.raises(InputError, match="must not be the input folder"):
        plan_batch(photos, [tmp_path / "s.png"], photos)
    with pytest.raises(InputError, match="no image files"):
        plan_batch(touch(tmp_path / "empty", ["readme.txt"]), [tmp_path / "s.png"], tmp_path / "o")
    with pytest.raises(InputError, match="neither a folder nor a manifest"):
        plan_batch(tmp_path / "missing", [tmp_path / "s.png"], tmp_path / "out")


# --------------------------------------------------------------------------------------------
# local executor


def test_local_batch_records_failures_and_a_rerun_skips_what_is_done(tmp_path):
    photos = content_tree(tmp_path / "photos", NESTED)
    corrupt(photos / "sub" / "broken.jpg")
    style = picture(tmp_path / "style.png", seed=99)
    out = tmp_path / "out"
    jobs = plan_batch(photos, [style], out, seed=OPTIONS.seed)
    summary = run_batch(jobs, OPTIONS, manifest=out / "manifest.jsonl", workers=2, threads=1)

    assert (summary.done, summary.failed, summary.skipped, summary.pending) == (3, 1, 0, 0)
    entries = read_manifest(out / "manifest.jsonl")
    assert set(entries) == {*NESTED, "sub/broken.jpg"}
    broken = entries["sub/broken.jpg"]
    assert broken["status"] == "failed"
    assert broken["error"].startswith("content image") and "broken.jpg" in broken["error"]
    for name in NESTED:
        entry = entries[name]
        assert entry["status"] == "done"
        assert entry["iterations"] == 3 and entry["seconds"] > 0
        assert entry["loss_total"] > 0 and entry["loss_style"] > 0
        with Image.open(out / name) as image:
            assert image.size == (64, 48)
        record = json.loads((out / (name + ".json")).read_text())
        assert record["batch"] == {"content": str(photos / name), "style": str(style)}
        assert record["command"] == "transfer"
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left
    made = {name: (out / name).stat().st_mtime_ns for name in NESTED}
    # An output without its record was cut short (say, killed between the two writes): redo it.
    (out / "sub/deep/c.png.json").unlink()

    again = run_batch(jobs, OPTIONS, manifest=out / "manifest.jsonl", workers=2, threads=1)
    assert (again.done, again.skipped, again.failed) == (1, 2, 1)
    entries = read_manifest(out / "manifest.jsonl")
    assert {name: entries[name]["status"] for name in NESTED} == {
        "a.png": "skipped",
        "sub/b.jpg": "skipped",
        "sub/deep/c.png": "done",
    }
    assert entries["a.png"]["loss_total"] > 0  # losses come from the record of the earlier run
    assert made["a.png"] == (out / "a.png").stat().st_mtime_ns
    assert made["sub/b.jpg"] == (out / "sub/b.jpg").stat().st_mtime_ns
    assert (out / "sub/deep/c.png.json").is_file()


def test_local_batch_survives_a_killed_worker_process(tmp_path):
    photos = content_tree(tmp_path / "photos", [f"p{i}.png" for i in range(3)])
    out = tmp_path / "out"
    jobs = plan_batch(photos, [picture(tmp_path / "style.png", seed=5)], out, seed=0)
    killed = []

    def kill_a_worker(outcome: dict) -> None:
        if not killed:
            pool = [p for p in multiprocessing.active_children() if "Dask" not in p.name]
            os.kill(pool[0].pid, signal.SIGKILL)
            killed.append(pool[0].pid)

    summary = run_batch(
        jobs, OPTIONS, manifest=out / "m.jsonl", workers=2, threads=1, on_outcome=kill_a_worker
    )
    assert killed
    assert (summary.done, summary.failed) == (3, 0)
    assert all((out / f"p{i}.png.json").is_file() for i in range(3))


def test_a_bad_style_fails_its_pairs_and_nothing_is_written(tmp_path):
    photos = content_tree(tmp_path / "photos", ["a.png"])
    bad = corrupt(tmp_path / "style.jpg")
    (job,) = plan_batch(photos, [bad], tmp_path / "out")
    outcome = run_job(job, prepare_target(str(bad), OPTIONS), OPTIONS)
    assert outcome["status"] == "failed" and outcome["error"].startswith("style image")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# CLI


def test_ctrl_c_stops_at_once_keeps_finished_work_and_lists_the_rest(tmp_path):
    """Ctrl-C in a terminal signals the whole process group: main process and workers."""
    photos = content_tree(tmp_path / "photos", ["a.png", "b.png", "c.png"])
    style = picture(tmp_path / "style.png", seed=3)
    out = tmp_path / "out"
    code = "import sys; from painterly.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["batch", str(photos), "--styles", str(style), "-o", str(out), "--quiet"]
    args += ["--size", "64", "--iterations", "100000", "--workers", "2", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        start_new_session=True,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "manifest.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(8)  # the workers start and take their images
        os.killpg(process.pid, signal.SIGINT)
        stopped = time.monotonic()
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert time.monotonic() - stopped < 20  # not after the images in flight are finished
    assert "rerun to go on" in err
    entries = read_manifest(out / "manifest.jsonl")
    assert {e["status"] for e in entries.values()} == {"pending"}
    assert set(entries) == {"a.png", "b.png", "c.png"}
    assert not [p for p in out.rglob("*") if p.name != "manifest.jsonl"]  # nothing half-written


def test_cli_batch_exit_codes_and_manifest(tmp_path, capsys):
    photos = content_tree(tmp_path / "photos", ["a.png", "sub/b.png"])
    bad = corrupt(photos / "sub" / "bad.jpg")
    style = picture(tmp_path / "style.png", seed=3)
    out = tmp_path / "out"
    args = ["batch", str(photos), "--styles", str(style), "-o", str(out), "--size", "64"]
    args += ["--iterations", "2", "--workers", "1", "--threads", "2", "--quiet"]

    assert main(args) == 2  # only bad input failed
    err = capsys.readouterr().err
    assert "2 done, 0 already done, 1 failed of 3" in err and "bad.jpg" in err
    entries = read_manifest(out / "manifest.jsonl")
    assert {k: v["status"] for k, v in entries.items()} == {
        "a.png": "done",
        "sub/b.png": "done",
        "sub/bad.jpg": "failed",
    }

    bad.unlink()
    assert main(args) == 0
    assert "0 done, 2 already done, 0 failed of 2" in capsys.readouterr().err
    assert {v["status"] for v in read_manifest(out / "manifest.jsonl").values()} == {"skipped"}


def test_cli_batch_usage_errors_exit_2(tmp_path, capsys):
    photos = content_tree(tmp_path / "photos", ["a.png"])
    out = str(tmp_path / "out")
    assert main(["batch", str(photos), "-o", out]) == 2
    assert "no style for" in capsys.readouterr().err
    style = str(picture(tmp_path / "s.png", seed=1))
    assert main(["batch", str(photos), "--styles", style, "-o", out, "--executor", "dask"]) == 2
    assert "--scheduler" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "nope"), "--styles", style, "-o", out]) == 2
    assert main(["batch", str(photos), "--styles", style, "-o", out, "--size", "3"]) == 2
    assert "--size" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing was started
