"""The web app's HTTP API: limits, errors, queue and runs, with real images and real runs.

Runs are tiny (64 px, a few iterations) so the whole file takes seconds on a CPU.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the web extra is not installed")
pytest.importorskip("httpx2", reason="httpx2 (for Starlette's TestClient) is not installed")

from starlette.testclient import TestClient

from painterly.options import MAX_STYLE_SCALE, PRESERVE_COLOR, Options
from painterly.strength import MAX_STRENGTH
from painterly.web import create_app
from painterly.web.app import STATIC

SRC = Path(__file__).resolve().parents[1] / "src"
BASE = "http://127.0.0.1"
FAST = {"size": 64, "iterations": 2}


def png_bytes(width: int, height: int, color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A real PNG with some structure (a gradient), so the network sees edges."""
    image = Image.new("RGB", (width, height), color)
    for x in range(width):
        for y in range(0, height, 4):
            image.putpixel((x, y), (x * 255 // max(1, width - 1), 30, 220))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def client_for(**kwargs: object) -> TestClient:
    return TestClient(create_app(**kwargs), base_url=BASE, headers={"X-Painterly": "1"})


@pytest.fixture
def client() -> Iterator[TestClient]:
    with client_for() as c:
        yield c


def upload(
    client: TestClient, data: bytes, *, name: str = "x.png", kind: str = "image/png", role="content"
):
    return client.post(
        "/api/images",
        params={"role": role, "name": name},
        content=data,
        headers={"Content-Type": kind},
    )


def upload_id(client: TestClient, width: int, height: int, name: str = "x.png") -> str:
    response = upload(client, png_bytes(width, height), name=name)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def start(client: TestClient, content: str, styles: list[str], **options: object):
    return client.post("/api/runs", json={"content": content, "styles": styles, "options": options})


def wait_for(client: TestClient, run_id: str, states: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/api/runs/{run_id}").json()
        if run["state"] in states:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {states}; last: {run}")


# ---------------------------------------------------------------------------------------------
# the page and its settings


def test_page_and_static_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "painterly" in page.text
    for name in ("app.js", "style.css"):
        assert (STATIC / name).is_file()
        assert client.get(f"/static/{name}").status_code == 200


def test_defaults_come_from_options(client: TestClient) -> None:
    config = client.get("/api/config").json()
    defaults = Options()
    assert config["defaults"] == {
        "size": defaults.size,
        "strength": defaults.strength,
        "ratio": None,  # empty box: the strength decides
        "iterations": defaults.iterations,
        "init": defaults.init,
        "preserve_color": defaults.preserve_color,
        "style_scale": defaults.style_scale,
        "tv_weight": defaults.tv_weight,
        "style_blend": None,
    }
    assert config["preserve_color"] == list(PRESERVE_COLOR)
    assert config["limits"]["max_strength"] == MAX_STRENGTH
    assert config["limits"]["max_style_scale"] == MAX_STYLE_SCALE
    assert config["limits"]["max_upload_bytes"] > 0


def test_samples_are_usable_images(client: TestClient) -> None:
    samples = client.get("/api/samples").json()
    for role in ("content", "style"):
        thumb = client.get("/api/" + samples[role]["thumb"].removeprefix("api/"))
        assert thumb.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(thumb.content)).size[0] <= 256


# ---------------------------------------------------------------------------------------------
# uploads: only images, within limits, with messages that say what is wrong


def test_upload_accepts_an_image_and_makes_a_thumbnail(client: TestClient) -> None:
    response = upload(client, png_bytes(300, 200), name="../../etc/photo.png")
    assert response.status_code == 201
    stored = response.json()
    assert (stored["width"], stored["height"]) == (300, 200)
    assert stored["name"] == "photo.png"  # shown only, and never with folders
    thumb = client.get(f"/api/images/{stored['id']}/thumb")
    assert Image.open(io.BytesIO(thumb.content)).size == (256, 171)


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (b"hello, world\n", "text/plain", "is not an image (text/plain)"),
        (b"hello, world\n", "image/png", "is not an image painterly can read"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "", "not an image painterly"),
        (b"", "image/png", "is empty"),
        (png_bytes(40, 40)[:60], "image/png", "damaged or unreadable"),
    ],
)
def test_upload_refuses_what_is_not_an_image(
    client: TestClient, data: bytes, kind: str, message: str
) -> None:
    response = upload(client, data, name="notes.txt", kind=kind)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert "content image 'notes.txt'" in response.json()["error"]


def noise_png(width: int, height: int) -> bytes:
    """A PNG that does not compress: its byte count is about 3 * width * height."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(3 * width * height)).save(out, "PNG")
    return out.getvalue()


def test_upload_byte_limit() -> None:
    with client_for(max_upload_bytes=3000) as client:
        response = upload(client, noise_png(100, 100), name="big.png")
        assert response.status_code == 413
        assert response.json()["error"] == (
            "content image 'big.png' is larger than 3 KB; please use a smaller file"
        )
        assert upload(client, png_bytes(20, 20)).status_code == 201


def test_upload_pixel_limit_is_checked_on_the_header() -> None:
    with client_for(max_upload_pixels=100 * 100) as client:
        response = upload(client, png_bytes(101, 100), name="wide.png")
        assert response.status_code == 400
        assert "101x100 px = 10,100 pixels; the limit is 10,000 pixels" in response.json()["error"]
        # A tiny file that claims 100000 x 100000 px is refused before any decoding.
        response = upload(client, png_header_only(100_000, 100_000), name="bomb.png")
        assert response.status_code == 400
        assert "pixels" in response.json()["error"]


# ---------------------------------------------------------------------------------------------
# requests the server refuses


def test_state_changes_need_the_header_and_a_local_host_name() -> None:
    with TestClient(create_app(), base_url=BASE) as client:
        response = client.post("/api/images", content=png_bytes(20, 20))
        assert response.status_code == 403
        assert "X-Painterly" in response.json()["error"]
    with TestClient(create_app(), base_url="http://evil.example") as client:
        assert client.get("/api/config").status_code == 421
    with TestClient(create_app(), base_url="http://[::1]:8000") as client:
        assert client.get("/api/config").status_code == 200


def test_bad_run_requests_say_what_is_wrong(client: TestClient) -> None:
    image = upload_id(client, 64, 64)

    def error(body: object) -> str:
        response = client.post("/api/runs", json=body)
        assert response.status_code == 400
        return response.json()["error"]

    assert "choose a content image" in error({"styles": [image]})
    assert "choose at least one style" in error({"content": image, "styles": []})
    assert "no longer on the server" in error({"content": "nope", "styles": [image]})
    assert "no longer on the server" in error({"content": image, "styles": [image, "gone"]})
    assert "unknown option(s): weights" in error(
        {"content": image, "styles": [image], "options": {"weights": "/etc/passwd"}}
    )
    # init may name an image file in the API; from the page, no server path is ever taken.
    assert "init must be one of" in error(
        {"content": image, "styles": [image], "options": {"init": str(SRC / "x.png")}}
    )
    message = error({"content": image, "styles": [image], "options": {"size": -5}})
    assert message.startswith("size must be a whole number")  # the field's name, not '--size'
    assert "iterations" in error(
        {"content": image, "styles": [image], "options": {"iterations": 0}}
    )
    assert "not JSON" in client.post("/api/runs", content=b"{").json()["error"]
    assert client.get("/api/runs/nope").status_code == 404
    assert client.post("/api/runs/nope/cancel").status_code == 404
    assert client.get("/api/runs/nope/result.png").status_code == 404


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strength": 11}, "strength must be a number from 0 to 10, not 11"),
        ({"strength": -0.5}, "strength must be a number from 0 to 10"),
        ({"strength": "strong"}, "strength must be a number from 0 to 10, not 'strong'"),
        ({"ratio": 0}, "ratio must be a positive number, not 0"),
        ({"tv_weight": -1}, "tv weight must be a number of 0 or more, not -1"),
        ({"style_scale": 0}, "style scale must be a number above 0 and at most 4, not 0"),
        ({"style_scale": 5}, "style scale must be a number above 0 and at most 4, not 5"),
        ({"preserve_color": "sepia"}, "preserve color must be one of none, luminance, histogram"),
    ],
)
def test_bad_creative_options_say_which_and_why(
    client: TestClient, options: dict, message: str
) -> None:
    image = upload_id(client, 64, 64)
    response = start(client, image, [image], **FAST, **options)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert client.get("/api/runs").json()["runs"] == []  # nothing was queued


def test_bad_blend_requests_say_what_is_wrong(client: TestClient) -> None:
    image = upload_id(client, 64, 64)

    def error(blend: object, **options: object) -> str:
        body = {"content": image, "styles": [image, image], "blend": blend, "options": options}
        response = client.post("/api/runs", json=body)
        assert response.status_code == 400
        return response.json()["error"]

    assert error(True, style_blend=[1, 2, 3]) == "style blend has 3 weights but 2 styles were given"
    assert error(True, style_blend=[0, 0]) == "style blend weights must not all be 0"
    assert error(True, style_blend=[1, -1]).startswith("style blend weights must not be negative")
    assert error(True, style_blend=["a", 1]).startswith("style blend must be a list of numbers")
    assert error(False, style_blend=[1, 1]).startswith("style blend weights need blend: true")
    assert error("yes").startswith("blend must be true")


def finished_record(client: TestClient, response) -> dict:
    assert response.status_code == 201, response.text
    (run,) = response.json()["runs"]
    run = wait_for(client, run["id"], ("done", "failed"))
    assert run["state"] == "done", run["error"]
    return json.loads(client.get(f"/api/runs/{run['id']}/record.json").content)


def test_strength_reaches_the_run_and_a_ratio_overrides_it(client: TestClient) -> None:
    photo = upload_id(client, 64, 64, "photo.png")
    painting = client.post(
        "/api/images",
        params={"role": "style", "name": "p.png"},
        content=png_bytes(64, 64, (9, 200, 90)),
    ).json()["id"]
    tiny = {"size": 64, "iterations": 2}
    records = {
        strength: finished_record(
            client, start(client, photo, [painting], strength=strength, **tiny)
        )
        for strength in (2.5, 7.5)
    }
    for strength, record in records.items():
        assert record["options"]["strength"] == strength and record["options"]["ratio"] is None
    # More strength: less weight on the photo (the same pair, so alpha is comparable).
    assert (
        records[7.5]["alpha"] / records[7.5]["beta"] < records[2.5]["alpha"] / records[2.5]["beta"]
    )

    response = start(client, photo, [painting], strength=7.5, ratio=3e-4, **tiny)
    shown = response.json()["runs"][0]["options"]
    assert (shown["strength"], shown["ratio"]) == (7.5, 3e-4)
    record = finished_record(client, response)
    assert record["alpha"] / record["beta"] == pytest.approx(3e-4)


def test_two_paintings_blended_make_one_run(client: TestClient) -> None:
    photo = upload_id(client, 64, 64, "photo.png")
    first, second = upload_id(client, 64, 64, "a.png"), upload_id(client, 48, 64, "b.png")
    body = {
        "content": photo,
        "styles": [first, second],
        "blend": True,
        "options": {
            **FAST,
            "style_blend": [3, 1],
            "preserve_color": "luminance",
            "tv_weight": 1e-4,
        },
    }
    response = client.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    (run,) = response.json()["runs"]
    assert [s["name"] for s in run["styles"]] == ["a.png", "b.png"]
    assert run["options"]["style_blend"] == [0.75, 0.25]
    record = finished_record(client, response)
    assert record["style_blend"] == [0.75, 0.25]
    assert record["options"]["preserve_color"] == "luminance"
    assert record["options"]["tv_weight"] == 1e-4
    assert len(client.get("/api/runs").json()["runs"]) == 1

    # Without weights, a blend is equal; without blend, each painting gets its own run.
    body["options"] = dict(FAST)
    equal = finished_record(client, client.post("/api/runs", json=body))
    assert equal["style_blend"] == [0.5, 0.5]
    body["blend"] = False
    runs = client.post("/api/runs", json=body).json()["runs"]
    assert [len(run["styles"]) for run in runs] == [1, 1]
    for run in runs:
        assert run["options"]["style_blend"] is None
        assert wait_for(client, run["id"], ("done", "failed"))["state"] == "done"


# ---------------------------------------------------------------------------------------------
# runs: the queue, results, cancelling, failures


def test_runs_queue_one_at_a_time_and_finish_with_results(client: TestClient) -> None:
    content = upload_id(client, 96, 64, "photo.png")
    styles = [upload_id(client, 64, 64, "a.png"), upload_id(client, 48, 80, "b.png")]
    response = start(client, content, styles, **FAST)
    assert response.status_code == 201
    first, second = (run["id"] for run in response.json()["runs"])

    # Only one computes: while the first runs, the second waits first in line.
    running = wait_for(client, first, ("running", "done"))
    if running["state"] == "running":
        waiting = client.get(f"/api/runs/{second}").json()
        assert (waiting["state"], waiting["position"]) == ("queued", 1)

    for run_id in (first, second):
        run = wait_for(client, run_id, ("done", "failed"))
        assert run["state"] == "done", run["error"]
        assert run["iteration"] == 2 and run["result_size"] == [64, 43]
        assert run["preview"] and run["losses"]["total"] > 0
        result = client.get(f"/api/runs/{run_id}/result.png")
        assert "attachment" in result.headers["content-disposition"]
        image = Image.open(io.BytesIO(result.content))
        assert (image.format, image.size) == ("PNG", (64, 43))
        record = json.loads(client.get(f"/api/runs/{run_id}/record.json").content)
        assert record["iterations"] == 2 and record["options"]["size"] == 64
    listed = [run["id"] for run in client.get("/api/runs").json()["runs"]]
    assert listed == [second, first]  # newest first


def test_live_preview_shows_the_output_not_the_gray_working_image(client: TestClient) -> None:
    """Under luminance the network works on gray images; the preview must show the photo's
    colours put back, as the saved result will, not the gray working image."""
    photo = upload(client, png_bytes(64, 64, (220, 60, 30)), name="red.png").json()["id"]
    run_id = start(client, photo, [photo], size=64, iterations=400, preserve_color="luminance")
    run_id = run_id.json()["runs"][0]["id"]
    deadline = time.monotonic() + 60
    while (run := client.get(f"/api/runs/{run_id}").json())["iteration"] < 3:
        assert run["state"] in ("queued", "running") and time.monotonic() < deadline, run
        time.sleep(0.05)
    preview = client.get(f"/api/runs/{run_id}/preview")
    client.post(f"/api/runs/{run_id}/cancel")
    pixels = Image.open(io.BytesIO(preview.content)).convert("RGB")
    red, green, blue = (sum(band.getdata()) / (64 * 64) for band in pixels.split())
    assert red - blue > 40, (red, green, blue)  # gray would have red == blue
    wait_for(client, run_id, ("cancelled", "done", "failed"))


def test_cancel_waiting_and_running_runs(client: TestClient) -> None:
    content = upload_id(client, 64, 64)
    response = start(client, content, [content, content], size=64, iterations=500)
    first, second = (run["id"] for run in response.json()["runs"])
    wait_for(client, first, ("running",))
    cancelled = client.post(f"/api/runs/{second}/cancel").json()
    assert cancelled["state"] == "cancelled"  # a waiting run goes at once
    deadline = time.monotonic() + 30
    while client.get(f"/api/runs/{first}").json()["iteration"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client.post(f"/api/runs/{first}/cancel")
    run = wait_for(client, first, ("cancelled", "done", "failed"), timeout=30)
    assert run["state"] == "cancelled" and run["iteration"] < 500
    assert run["result"] is None
    assert client.get(f"/api/runs/{first}/result.png").status_code == 404


def test_a_failed_run_shows_its_error_and_the_server_goes_on(client: TestClient) -> None:
    # 64 px wide at size 64 makes an output 1 px high: too small for VGG's pooling layers.
    thin = upload_id(client, 600, 8, "thin.png")
    square = upload_id(client, 64, 64)
    run = start(client, thin, [square], **FAST).json()["runs"][0]
    run = wait_for(client, run["id"], ("done", "failed"))
    assert run["state"] == "failed"
    assert "the network needs at least" in run["error"] and "--" not in run["error"]
    run = start(client, square, [square], size=64, iterations=1).json()["runs"][0]
    assert wait_for(client, run["id"], ("done", "failed"))["state"] == "done"


def test_a_crashing_run_is_reported_and_the_worker_survives() -> None:
    from painterly.api import run_transfer

    calls = []

    def runner(*args: object, **kwargs: object):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("something broke")
        return run_transfer(*args, **kwargs)

    with client_for(runner=runner) as client:
        image = upload_id(client, 64, 64)
        first, second = start(client, image, [image, image], size=64, iterations=1).json()["runs"]
        crashed = wait_for(client, first["id"], ("done", "failed"))
        assert crashed["error"] == "the run crashed: RuntimeError: something broke"
        assert wait_for(client, second["id"], ("done", "failed"))["state"] == "done"


def test_a_full_queue_refuses_more() -> None:
    with client_for(max_pending=2) as client:
        image = upload_id(client, 64, 64)
        response = start(client, image, [image, image, image], size=64, iterations=1)
        assert response.status_code == 429
        assert "the limit is 2" in response.json()["error"]


# ---------------------------------------------------------------------------------------------
# the command


def test_serve_command_starts_answers_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = "import sys; from painterly.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + process.stderr.read()
        with urllib.request.urlopen(match.group(0), timeout=20) as response:
            assert response.status == 200 and b"painterly" in response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_command_reports_a_port_it_cannot_use(capsys: pytest.CaptureFixture[str]) -> None:
    from painterly.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in error and "try another --port" in error
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be from 0 to 65535" in capsys.readouterr().err
