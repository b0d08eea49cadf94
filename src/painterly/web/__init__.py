"""`painterly serve`: a local web app to pick images, start runs and watch them paint.

Layout: `uploads` checks and keeps uploaded images, `jobs` is the run queue with its single
worker thread, `app` is the HTTP API and serves `static/` (the page), `server` binds and runs.
Needs the `web` extra (Starlette and uvicorn): `pip install 'painterly[web]'`.
"""

from __future__ import annotations

from .app import create_app
from .jobs import RunQueue
from .server import serve

__all__ = ["RunQueue", "create_app", "serve"]
