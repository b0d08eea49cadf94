"""The web app: a small JSON API over the run queue, and one static page that drives it.

Starlette rather than a bigger framework: a dozen routes and static files need no data models
or generated docs, and Starlette is the well-kept ASGI toolkit FastAPI itself is built on. The
page polls `GET api/runs` twice a second instead of holding a stream open, so shutting the
server down never waits on open connections and nothing sits between a run and its card.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..api import run_transfer
from ..demo_images import demo_content, demo_style
from ..errors import InputError
from ..options import (
    INITS,
    MAX_SIZE,
    MAX_STYLE_SCALE,
    PRESERVE_COLOR,
    Options,
    normalized_blend,
)
from ..strength import MAX_STRENGTH
from .jobs import QueueFull, Runner, RunQueue, plain
from .uploads import (
    FORMATS_SHOWN,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    ImageStore,
    StoredImage,
    decode_upload,
    display_name,
    too_many_bytes,
)

STATIC = Path(__file__).parent / "static"
#: Host names the app answers to when it listens on loopback; any other Host header is refused,
#: so a web page elsewhere cannot reach this server through DNS rebinding.
LOCAL_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
#: The options the page may set. Others (weights, init from a file) would take a server path.
#: `ratio` is the expert's alpha/beta: given, it overrides `strength`.
WEB_OPTIONS: tuple[str, ...] = (
    "size",
    "strength",
    "ratio",
    "iterations",
    "init",
    "preserve_color",
    "style_scale",
    "tv_weight",
    "style_blend",
)
MAX_STYLES = 8
#: Header every state-changing request must carry: a cross-site form cannot send it, and a
#: cross-site fetch that does needs a CORS preflight this server never grants.
CSRF_HEADER = "x-painterly"


def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class GuardMiddleware:
    """Refuse requests for other host names and state changes without our header."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            host = _host_name(headers.get("host", ""))
            if self.allowed is not None and host not in self.allowed:
                response = error(f"this server does not answer for host {host!r}", 421)
                await response(scope, receive, send)
                return
            if scope["method"] not in ("GET", "HEAD", "OPTIONS") and CSRF_HEADER not in headers:
                response = error("requests that change something need an X-Painterly header", 403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _host_name(header: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def create_app(
    *,
    allowed_hosts: Sequence[str] | None = LOCAL_HOSTS,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_upload_pixels: int = MAX_UPLOAD_PIXELS,
    max_pending: int = 20,
    runner: Runner = run_transfer,
) -> Starlette:
    """The app with its own image store and run queue (the worker starts with the app).

    `allowed_hosts=None` answers any Host header: for a server the user opened to the network.
    """
    store = ImageStore()
    queue = RunQueue(runner=runner, max_pending=max_pending)
    routes = [
        *_page_routes(max_upload_bytes, max_upload_pixels, max_pending),
        *_image_routes(store, queue, max_upload_bytes, max_upload_pixels),
        *_run_routes(store, queue),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: _http_error}, lifespan=_lifespan(queue)
    )
    app.add_middleware(GuardMiddleware, allowed_hosts=allowed_hosts)
    app.state.store = store
    app.state.queue = queue
    return app


def _page_routes(max_upload_bytes: int, max_upload_pixels: int, max_pending: int) -> list[Route]:
    """The page itself and what it needs to know: defaults, choices and limits."""
    defaults = Options()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def config(request: Request) -> Response:
        return JSONResponse(
            {
                "defaults": {name: getattr(defaults, name) for name in WEB_OPTIONS},
                "inits": list(INITS),
                "preserve_color": list(PRESERVE_COLOR),
                "limits": {
                    "max_strength": MAX_STRENGTH,
                    "max_style_scale": MAX_STYLE_SCALE,
                    "max_upload_bytes": max_upload_bytes,
                    "max_upload_pixels": max_upload_pixels,
                    "max_size": MAX_SIZE,
                    "max_styles": MAX_STYLES,
                    "max_pending": max_pending,
                },
                "formats": FORMATS_SHOWN,
            }
        )

    return [Route("/", index), Route("/api/config", config)]


def _image_routes(
    store: ImageStore, queue: RunQueue, max_upload_bytes: int, max_upload_pixels: int
) -> list[Route]:
    """Uploads, thumbnails and the sample pair."""

    async def upload(request: Request) -> Response:
        role = request.query_params.get("role", "image")
        role = role if role in ("content", "style") else "image"
        name = display_name(request.query_params.get("name"))
        label = f"{role} image '{name}'" if role != "image" else f"'{name}'"
        try:
            data = await _read_limited(request, max_upload_bytes, label)
            image = await run_in_threadpool(
                decode_upload,
                data,
                label=label,
                content_type=request.headers.get("content-type", ""),
                max_bytes=max_upload_bytes,
                max_pixels=max_upload_pixels,
            )
        except _TooLarge as exc:
            return error(str(exc), 413)
        except InputError as exc:
            return error(str(exc))
        stored = await run_in_threadpool(store.add, name, image)
        return JSONResponse(stored.describe(), status_code=201)

    async def thumb(request: Request) -> Response:
        image_id = request.path_params["image_id"]
        stored = store.get(image_id) or queue.find_image(image_id)
        if stored is None:
            return error("no such image (the server may have restarted)", 404)
        return Response(stored.thumb, media_type="image/png")

    async def samples(request: Request) -> Response:
        content = await run_in_threadpool(
            store.pinned, "sample-content", "sample photo (a cat)", demo_content
        )
        style = await run_in_threadpool(
            store.pinned, "sample-style", "sample painting (a swirling night sky)", demo_style
        )
        return JSONResponse({"content": content.describe(), "style": style.describe()})

    return [
        Route("/api/images", upload, methods=["POST"]),
        Route("/api/images/{image_id}/thumb", thumb),
        Route("/api/samples", samples),
    ]


def _run_routes(store: ImageStore, queue: RunQueue) -> list[Route]:
    """Runs: start, list, one, cancel, and each one's preview, result and record."""

    async def start_runs(request: Request) -> Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return error("the request body is not JSON")
        try:
            content, styles, options, blend = _run_request(body, store.get)
            jobs = queue.submit(content, styles, options, blend=blend)
        except QueueFull as exc:
            return error(str(exc), 429)
        except InputError as exc:
            return error(plain(exc))
        return JSONResponse({"runs": [queue.describe(job.id) for job in jobs]}, status_code=201)

    async def list_runs(request: Request) -> Response:
        return JSONResponse({"runs": queue.describe_all()}, headers={"Cache-Control": "no-store"})

    async def one_run(request: Request) -> Response:
        found = queue.describe(request.path_params["run_id"])
        return error("no such run", 404) if found is None else JSONResponse(found)

    async def cancel(request: Request) -> Response:
        job = queue.cancel(request.path_params["run_id"])
        return error("no such run", 404) if job is None else JSONResponse(queue.describe(job.id))

    async def preview(request: Request) -> Response:
        job = queue.get(request.path_params["run_id"])
        if job is None or job.preview is None:
            return error("no preview yet", 404)
        return Response(job.preview, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def result(request: Request) -> Response:
        job = queue.get(request.path_params["run_id"])
        if job is None or job.result_png is None:
            return error("this run has no result (yet)", 404)
        return Response(
            job.result_png, media_type="image/png", headers=_attachment(f"painterly-{job.id}.png")
        )

    async def record(request: Request) -> Response:
        job = queue.get(request.path_params["run_id"])
        if job is None or job.record is None:
            return error("this run has no record (yet)", 404)
        return Response(
            json.dumps(job.record, indent=2) + "\n",
            media_type="application/json",
            headers=_attachment(f"painterly-{job.id}.png.json"),
        )

    return [
        Route("/api/runs", list_runs),
        Route("/api/runs", start_runs, methods=["POST"]),
        Route("/api/runs/{run_id}", one_run),
        Route("/api/runs/{run_id}/cancel", cancel, methods=["POST"]),
        Route("/api/runs/{run_id}/preview", preview),
        Route("/api/runs/{run_id}/result.png", result),
        Route("/api/runs/{run_id}/record.json", record),
    ]


def _lifespan(queue: RunQueue) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager]:
    """The queue's worker runs as long as the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        queue.start()
        try:
            yield
        finally:
            await run_in_threadpool(queue.close)

    return lifespan


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error(exc.detail, exc.status_code)


class _TooLarge(InputError):
    pass


async def _read_limited(request: Request, limit: int, label: str) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (never all read first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(str(too_many_bytes(label, limit)))
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _TooLarge(str(too_many_bytes(label, limit)))
        chunks.append(chunk)
    return b"".join(chunks)


def _run_request(
    body: Any, lookup: Callable[[str], StoredImage | None]
) -> tuple[StoredImage, list[StoredImage], Options, bool]:
    """Check a start request: known image ids, allowed options only, valid values.

    `blend: true` paints one run of all the paintings blended (weights: `style_blend`, equal
    when not given); otherwise each painting gets its own run.
    """
    if not isinstance(body, dict):
        raise InputError("the request must be a JSON object")
    content_id, style_ids = body.get("content"), body.get("styles")
    if not isinstance(content_id, str) or not content_id:
        raise InputError("choose a content image (a photo) first")
    if not isinstance(style_ids, list) or not style_ids:
        raise InputError("choose at least one style image (a painting) first")
    if len(style_ids) > MAX_STYLES:
        raise InputError(f"choose at most {MAX_STYLES} style images at once")
    gone = "the {} image is no longer on the server (it may have restarted); please add it again"
    content = lookup(content_id)
    if content is None:
        raise InputError(gone.format("content"))
    styles = []
    for style_id in style_ids:
        style = lookup(style_id) if isinstance(style_id, str) else None
        if style is None:
            raise InputError(gone.format("style"))
        styles.append(style)
    blend = body.get("blend", False)
    if not isinstance(blend, bool):
        raise InputError("blend must be true (one run of the paintings blended) or false")
    options = _options(body.get("options", {}))
    if options.style_blend is not None:
        if not blend:
            raise InputError("style blend weights need blend: true (one run of all paintings)")
        normalized_blend(options.style_blend, len(styles))  # one weight per painting
    return content, styles, options, blend


def _options(values: object) -> Options:
    """The page's options over the defaults, checked as the CLI checks them."""
    if not isinstance(values, dict):
        raise InputError("options must be a JSON object")
    unknown = sorted(set(values) - set(WEB_OPTIONS))
    if unknown:
        raise InputError(f"unknown option(s): {', '.join(map(str, unknown))}")
    if "init" in values and values["init"] not in INITS:
        # Options also takes an image file path for init; from the page only the named starts.
        raise InputError(f"init must be one of {', '.join(INITS)}")
    blend = values.get("style_blend")
    if blend is not None and not (isinstance(blend, list) and all(_is_number(w) for w in blend)):
        raise InputError("style blend must be a list of numbers, one weight per painting")
    return Options().with_values(**values).validated()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _attachment(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
