"""The web app end to end, in a real headless chromium driven by Playwright.

The server runs in a thread of this process on a free port, with real weights and real runs
(64 px, a few iterations). Chromium is Debian's (`scripts/ensure-chromium.sh`, run by
`make test`, installs it); these tests skip only when it is missing and cannot be installed.
Set PAINTERLY_SCREENSHOTS=folder to keep a screenshot of the page mid-run.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the web extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from painterly.options import Options  # noqa: E402
from painterly.web.app import create_app  # noqa: E402
from painterly.web.server import bind, make_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("PAINTERLY_CHROMIUM", "/usr/bin/chromium"))
# Headless, as root, on a machine with no way out: no sandbox (needs a user namespace), no GPU,
# and none of chromium's background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
RUN_TIMEOUT_MS = 90_000


def find_chromium() -> Path:
    """Chromium, installed now if it is missing; skip (saying why) only if that fails."""
    if not os.access(CHROMIUM, os.X_OK):
        script = ROOT / "scripts" / "ensure-chromium.sh"
        if script.is_file():
            subprocess.run(["bash", str(script)], check=False, timeout=900)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"no chromium at {CHROMIUM}, and scripts/ensure-chromium.sh could not install it "
            "(it needs apt-get as root); set PAINTERLY_CHROMIUM to another chromium"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = make_server(create_app())
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = find_chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server_url: str) -> Iterator[object]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    page.goto(server_url)
    page.wait_for_selector("body[data-ready='1']")
    yield page
    context.close()
    assert not crashes, f"the page's JavaScript failed: {crashes}"


def write_png(path: Path, width: int, height: int, seed: int) -> Path:
    """A small image with edges and colour, like a tiny photo or painting."""
    image = Image.new("RGB", (width, height))
    for x in range(width):
        for y in range(height):
            image.putpixel((x, y), ((x * 7 + seed) % 256, (y * 11) % 256, ((x ^ y) * 5) % 256))
    image.save(path)
    return path


def drop_file(page, selector: str, path: Path) -> None:
    """Drag-and-drop a file onto the page, the way a file manager does."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            return transfer;
        }""",
        [data, path.name],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_paint_watch_and_download(page, tmp_path: Path) -> None:
    expect = sync_api.expect
    defaults = Options()
    expect(page.locator("#size")).to_have_value(str(defaults.size))
    expect(page.locator("#iterations")).to_have_value(str(defaults.iterations))
    expect(page.locator("#init")).to_have_value(defaults.init)

    page.set_input_files("#content-input", write_png(tmp_path / "photo.png", 96, 64, 0))
    expect(page.locator("#content-picked .chip")).to_contain_text("photo.png")
    drop_file(page, "#style-drop", write_png(tmp_path / "painting.png", 64, 64, 90))
    expect(page.locator("#style-picked .chip")).to_contain_text("painting.png")

    page.fill("#size", "64")
    page.fill("#iterations", "3")
    page.click("#start")
    run = page.locator("#run-list .run").first
    expect(run.locator(".title")).to_have_text("photo.png × painting.png")
    expect(run).to_have_attribute("data-state", "done", timeout=RUN_TIMEOUT_MS)
    expect(run.locator(".iteration")).to_have_text("3 / 3")
    expect(run.locator(".result-size")).to_have_text("64×43 px")
    expect(page.locator("#queue-summary")).to_have_text("Idle")

    with page.expect_download() as download:
        run.locator(".download-image").click()
    saved = tmp_path / "result.png"
    download.value.save_as(saved)
    with Image.open(saved) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (64, 43), "RGB")
    with page.expect_download() as download:
        run.locator(".download-record").click()
    record = json.loads(Path(download.value.path()).read_text())
    assert record["iterations"] == 3 and record["options"]["size"] == 64
    assert record["output_size"] == [64, 43]


def test_live_preview_queue_and_cancel(page, tmp_path: Path) -> None:
    expect = sync_api.expect
    page.click("#content-sample")
    expect(page.locator("#content-picked .chip")).to_have_count(1)
    page.click("#style-sample")
    page.set_input_files("#style-input", write_png(tmp_path / "second.png", 64, 64, 40))
    expect(page.locator("#style-picked .chip")).to_have_count(2)
    expect(page.locator("#start")).to_have_text("Paint 2 runs")
    page.fill("#size", "64")
    page.fill("#iterations", "500")
    page.click("#start")

    # Two runs: one paints, the other waits its turn, and the page says so.
    running = page.locator(".run[data-state='running']")
    expect(running).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    waiting = page.locator(".run[data-state='queued']")
    expect(waiting.locator(".state")).to_have_text("Waiting · #1")
    expect(page.locator("#queue-summary")).to_have_text("1 painting · 1 waiting")
    first_id, second_id = running.get_attribute("data-id"), waiting.get_attribute("data-id")

    # The preview is the live image: it changes as the run goes on.
    page.wait_for_function(
        "() => Number(document.querySelector(\".run[data-state='running'] img.preview\")"
        "?.dataset.version || 0) >= 2",
        timeout=RUN_TIMEOUT_MS,
    )
    preview = running.locator("img.preview")
    assert preview.evaluate("img => img.complete && img.naturalWidth") == 64
    expect(running.locator(".left")).to_contain_text("≈")
    if os.environ.get("PAINTERLY_SCREENSHOTS"):
        folder = Path(os.environ["PAINTERLY_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "web-mid-run.png"), full_page=True)

    second = page.locator(f".run[data-id='{second_id}']")
    second.locator(".cancel").click()
    expect(second).to_have_attribute("data-state", "cancelled")
    first = page.locator(f".run[data-id='{first_id}']")
    first.locator(".cancel").click()
    expect(first).to_have_attribute("data-state", "cancelled", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#queue-summary")).to_have_text("Idle")
    for card in (first, second):
        expect(card.locator(".download-image")).to_be_hidden()
        expect(card.locator(".cancel")).to_be_hidden()


def test_non_images_are_refused_with_a_message(page, tmp_path: Path) -> None:
    expect = sync_api.expect
    notes = tmp_path / "notes.txt"
    notes.write_text("a shopping list, not a picture\n")
    page.set_input_files("#content-input", notes)
    expect(page.locator("#content-error")).to_contain_text(
        "content image 'notes.txt' is not an image"
    )
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not a PNG at all")
    page.set_input_files("#style-input", fake)
    expect(page.locator("#style-error")).to_contain_text(
        "style image 'fake.png' is not an image painterly can read"
    )
    expect(page.locator(".chip")).to_have_count(0)
    runs_before = page.locator("#run-list .run").count()
    page.click("#start")
    expect(page.locator("#start-error")).to_have_text("Choose a photo first (step 1).")
    expect(page.locator("#run-list .run")).to_have_count(runs_before)
    # A good image after a bad one clears the message.
    page.set_input_files("#content-input", write_png(tmp_path / "ok.png", 40, 30, 7))
    expect(page.locator("#content-picked .chip")).to_have_count(1)
    expect(page.locator("#content-error")).to_be_empty()


def test_strength_advanced_ratio_and_a_blend_of_two_paintings(page, tmp_path: Path) -> None:
    expect = sync_api.expect
    defaults = Options()
    expect(page.locator("#strength")).to_have_value(f"{defaults.strength:g}")
    expect(page.locator("#strength-value")).to_have_text(f"{defaults.strength:g}")
    expect(page.locator("#ratio")).to_be_hidden()  # under Advanced, closed

    page.set_input_files("#content-input", write_png(tmp_path / "photo.png", 96, 64, 0))
    page.set_input_files(
        "#style-input",
        [write_png(tmp_path / "a.png", 64, 64, 90), write_png(tmp_path / "b.png", 64, 48, 170)],
    )
    expect(page.locator("#style-picked .chip")).to_have_count(2)
    expect(page.locator("#start")).to_have_text("Paint 2 runs")
    page.check("input[name='several'][value='blend']")
    expect(page.locator("#start")).to_have_text("Paint")
    weights = page.locator("#blend-weights input")
    expect(weights).to_have_count(2)
    expect(weights.first).to_have_value("1")
    weights.first.fill("3")

    # The slider moves in steps of 0.5 and shows its value.
    page.focus("#strength")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#strength-value")).to_have_text(f"{defaults.strength + 2.5:g}")

    # Advanced: an empty ratio means the strength decides; a ratio typed there overrides it.
    page.click("#advanced summary")
    expect(page.locator("#ratio")).to_be_visible()
    expect(page.locator("#ratio")).to_have_value("")
    page.fill("#ratio", "1e-3")
    expect(page.locator("#strength-value")).to_contain_text("overrides")
    page.fill("#ratio", "")
    expect(page.locator("#strength-value")).to_have_text(f"{defaults.strength + 2.5:g}")

    # A value the core refuses is shown as the core's message, and nothing starts.
    runs = page.locator("#run-list .run")
    runs_before = runs.count()  # the server is shared with the tests before this one
    page.select_option("#preserve-color", "luminance")
    page.fill("#size", "64")
    page.fill("#iterations", "2")
    page.fill("#style-scale", "0")
    page.click("#start")
    expect(page.locator("#start-error")).to_have_text(
        "style scale must be a number above 0 and at most 4, not 0"
    )
    expect(runs).to_have_count(runs_before)
    page.fill("#style-scale", "2")
    page.click("#start")
    expect(page.locator("#start-error")).to_be_empty()

    expect(runs).to_have_count(runs_before + 1)  # one run for both paintings
    run = runs.first
    expect(run.locator(".title")).to_have_text("photo.png × a.png + b.png")
    expect(run.locator(".style-thumb")).to_have_count(2)
    expect(run.locator(".settings")).to_have_text(
        f"strength {defaults.strength + 2.5:g} · blend 75% / 25% · 64 px · 2 iterations · "
        "from auto · photo's colors (luminance) · style scale 2"
    )
    expect(run).to_have_attribute("data-state", "done", timeout=RUN_TIMEOUT_MS)
    with page.expect_download() as download:
        run.locator(".download-record").click()
    record = json.loads(Path(download.value.path()).read_text())
    assert record["style_blend"] == [0.75, 0.25]
    options = record["options"]
    assert (options["strength"], options["ratio"]) == (defaults.strength + 2.5, None)
    assert (options["preserve_color"], options["style_scale"]) == ("luminance", 2)
    if os.environ.get("PAINTERLY_SCREENSHOTS"):
        folder = Path(os.environ["PAINTERLY_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "web-blend-done.png"), full_page=True)

    # With a ratio, the summary shows the ratio, not the strength it overrode.
    page.fill("#ratio", "1e-3")
    page.fill("#iterations", "1")
    page.click("#start")
    expect(runs).to_have_count(runs_before + 2)
    second = runs.first
    expect(second.locator(".settings")).to_contain_text("ratio 0.001 (not strength)")
    expect(second).to_have_attribute("data-state", "done", timeout=RUN_TIMEOUT_MS)
