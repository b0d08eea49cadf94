"""Uploaded images: checked before anything else sees them, then kept in memory by server id.

The browser sends a file's bytes and nothing else the server acts on: the file name is only
shown back to the user, never used as a path. Limits are checked on the byte count while the
body arrives and on the pixel count from the header, before any pixels are decoded, so a
small file claiming to be huge cannot exhaust memory.
"""

from __future__ import annotations

import io
import secrets
import threading
import unicodedata
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..images import open_image

#: Largest upload accepted, in bytes. A phone photo is 3-12 MB.
MAX_UPLOAD_BYTES: int = 25 * 1024 * 1024
#: Largest image accepted, in pixels (a 40 MP camera photo fits). Lower than the CLI's limit:
#: decoded images stay in this process's memory while they are selected or queued.
MAX_UPLOAD_PIXELS: int = 40_000_000
#: Pillow formats accepted: the common raster formats, and none whose decoder runs an outside
#: program (EPS runs Ghostscript) or is rarely used (a smaller attack surface).
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
FORMATS_SHOWN = "PNG, JPEG, WebP, GIF, BMP or TIFF"
THUMB_SIDE = 256


def display_name(name: str | None, fallback: str = "image") -> str:
    """A client's file name made safe to show: no control characters, no folders, short."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip()
    if len(text) > 80:
        text = text[:60] + "…" + text[-19:]
    return text or fallback


def byte_count(count: int) -> str:
    """25 MB, 300 KB: what a user compares with the size their file manager shows."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MB"
    return f"{max(1, round(count / 1024))} KB"


def too_many_bytes(label: str, limit: int) -> InputError:
    return InputError(f"{label} is larger than {byte_count(limit)}; please use a smaller file")


def decode_upload(
    data: bytes,
    *,
    label: str,
    content_type: str = "",
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_UPLOAD_PIXELS,
) -> Image.Image:
    """Check and decode an uploaded file to 8-bit RGB, or raise InputError saying what is wrong.

    `label` names the file in messages ("style image 'starry.jpg'"). The declared content type
    is only used to refuse obvious non-images early; what decides is the file's own header.
    """
    if len(data) > max_bytes:
        raise too_many_bytes(label, max_bytes)
    if not data:
        raise InputError(f"{label} is empty")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not kind.startswith("image/") and kind != "application/octet-stream":
        raise InputError(f"{label} is not an image ({kind}); use a {FORMATS_SHOWN} file")
    with warnings.catch_warnings():
        # Our pixel limit is far below Pillow's warning threshold; we check it ourselves below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            header = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError:
            raise InputError(
                f"{label} is not an image painterly can read; use a {FORMATS_SHOWN} file"
            ) from None
        except Image.DecompressionBombError:
            raise InputError(
                f"{label} has too many pixels (the limit is {max_pixels:,}); "
                "please use a smaller image"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            raise InputError(f"{label} is damaged or unreadable: {exc}") from None
        width, height = header.size
        if width * height > max_pixels:
            raise InputError(
                f"{label} is {width}x{height} px = {width * height:,} pixels; the limit is "
                f"{max_pixels:,} pixels, please use a smaller image"
            )
        # The project's one decoder: loads now, applies EXIF orientation, makes RGB.
        return open_image(header, role=label)


def thumbnail_png(image: Image.Image, side: int = THUMB_SIDE) -> bytes:
    """A small PNG for the page: what the run will really use (oriented, RGB)."""
    width, height = image.size
    scale = min(1.0, side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return encode(image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), "PNG")


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@dataclass(frozen=True)
class StoredImage:
    """An accepted image: its server-made id, the name to show, the pixels and a thumbnail."""

    id: str
    name: str
    image: Image.Image
    thumb: bytes

    def describe(self) -> dict[str, object]:
        width, height = self.image.size
        return {
            "id": self.id,
            "name": self.name,
            "width": width,
            "height": height,
            "thumb": f"api/images/{self.id}/thumb",
        }


class ImageStore:
    """The images the page has picked, by id; the oldest are forgotten beyond `capacity`.

    Queued runs hold their own references to the pixels, so forgetting an image here never
    breaks a run; the page is told to add it again if it tries to start a new one with it.
    """

    def __init__(self, capacity: int = 24) -> None:
        self.capacity = capacity
        self._images: OrderedDict[str, StoredImage] = OrderedDict()
        self._pinned: dict[str, StoredImage] = {}
        self._lock = threading.Lock()

    def add(self, name: str, image: Image.Image) -> StoredImage:
        stored = StoredImage(secrets.token_hex(8), name, image, thumbnail_png(image))
        with self._lock:
            self._images[stored.id] = stored
            while len(self._images) > self.capacity:
                self._images.popitem(last=False)
        return stored

    def pinned(self, key: str, name: str, make: Callable[[], Image.Image]) -> StoredImage:
        """An image that is never forgotten (the built-in samples), made on first use."""
        with self._lock:
            if key in self._pinned:
                return self._pinned[key]
        image = make()
        stored = StoredImage(key, name, image, thumbnail_png(image))
        with self._lock:
            return self._pinned.setdefault(key, stored)

    def get(self, image_id: str) -> StoredImage | None:
        with self._lock:
            stored = self._pinned.get(image_id) or self._images.get(image_id)
            if image_id in self._images:
                self._images.move_to_end(image_id)
            return stored
