"""Image files <-> PIL images <-> tensors, robust against whatever a user points us at.

Every problem with a user's file becomes an `InputError` with a one-line message naming the file
and its role ("content image", "style image"), so the CLI can report it without a traceback.
Outputs are written atomically so an interrupted or failed run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re
import stat
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable, Collection
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from painterly.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "OUTPUT_FORMATS",
    "WIDE_OUTPUT_FORMATS",
    "check_min_size",
    "check_output_path",
    "check_writable_folder",
    "find_images",
    "image_to_tensor",
    "open_image",
    "prepare_output_folder",
    "print_info",
    "resize_long_side",
    "resize_to",
    "save_image",
    "save_wide_image",
    "tensor_to_image",
    "write_bytes_atomic",
    "write_text_atomic",
]

#: Files taken as images where a folder is searched (by extension, any case); others are ignored.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm"}
)

#: Largest image (width * height) we accept. Checked on the header size, before any decoding, so
#: a tiny file claiming to be 100000x100000 px cannot exhaust memory.
MAX_PIXELS: int = 50_000_000

#: Output extensions we can write, mapped to the Pillow format name.
OUTPUT_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# Save options per format: high quality for the lossy ones; the result is the whole point.
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95},
    "WEBP": {"quality": 95},
    "PNG": {},
    "TIFF": {"compression": "tiff_deflate"},
}

#: Extensions a 16-bit output can take (--bit-depth 16).
WIDE_OUTPUT_FORMATS: tuple[str, ...] = (".png", ".tif", ".tiff")

#: What a print needs to know that the pixels do not say, carried from the photo to the output.
PRINT_INFO = ("icc_profile", "dpi")

# Modes whose samples span 0..65535 (16-bit files); scaled, not clipped, down to 8 bit.
_WIDE_INT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

# OSErrors from writing that are the user's to fix (where they asked us to write).
_USER_WRITE_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EROFS,
    errno.EISDIR,
}

_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


# --------------------------------------------------------------------------------------------
# messages


def _show(path: str | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """Quote a path for a one-line message; escape it if it holds newlines or odd bytes."""
    text = os.fsdecode(os.fspath(path))
    return f"'{text}'" if text.isprintable() else ascii(text)


def _one_line(exc: BaseException) -> str:
    """An exception's message squeezed onto one line (Pillow's can span several)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _too_big(role: str, where: str, size: str) -> InputError:
    return InputError(
        f"{role}{where} is too large: {size} (the limit is {MAX_PIXELS:,} pixels); "
        "please use a smaller image"
    )


# --------------------------------------------------------------------------------------------
# reading


def open_image(source: str | os.PathLike[str] | Image.Image, *, role: str = "image") -> Image.Image:
    """Open a file (or take a PIL image) and return a fully loaded 8-bit RGB copy.

    Loading happens here, not later, so a truncated file fails now with a clear message rather
    than mid-run. EXIF orientation is applied because photos from phones are stored sideways.
    Transparency is composited on white (the network has no alpha channel). PIL images passed
    in are converted the same way and never modified.
    """
    if isinstance(source, Image.Image):
        try:
            return _prepare(source, role=role, where="")
        except InputError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            raise InputError(f"{role} is damaged or unreadable: {_one_line(exc)}") from None

    where = f" {_show(source)}"
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise InputError(f"{role}{where} does not exist") from None
    except NotADirectoryError:
        raise InputError(f"{role}{where} does not exist (a part of the path is a file)") from None
    except PermissionError:
        raise InputError(f"{role}{where} cannot be read: permission denied") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{role}{where} cannot be read: {_one_line(exc)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{role}{where} is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        # FIFOs and devices could block forever or cannot be seeked by the decoders.
        raise InputError(f"{role}{where} is not a regular file")

    try:
        with open(source, "rb") as fp:
            try:
                image = _open_header(fp, role=role, where=where)
            except UnidentifiedImageError:
                raise InputError(
                    f"{role}{where} is not an image file (or not a format Pillow can read)"
                ) from None
            return _prepare(image, role=role, where=where)
    except PermissionError:
        raise InputError(f"{role}{where} cannot be read: permission denied") from None
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        # Broken headers surface as SyntaxError/ValueError from some Pillow plugins.
        raise InputError(f"{role}{where} is damaged or unreadable: {_one_line(exc)}") from None


def _open_header(fp: IO[bytes], *, role: str, where: str) -> Image.Image:
    """Read only the header; translate Pillow's own decompression-bomb error into ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(fp)
        except Image.DecompressionBombError as exc:
            # Pillow refuses above 2 * Image.MAX_IMAGE_PIXELS before we see the size; its
            # message carries the pixel count.
            match = _BOMB_PIXELS.search(str(exc))
            size = f"{int(match.group(1)):,} pixels" if match else "too many pixels"
            raise _too_big(role, where, size) from None


def _prepare(image: Image.Image, *, role: str, where: str) -> Image.Image:
    """Size check on the header, then load, orient and convert to RGB (always a new image)."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_big(role, where, f"{width}x{height} px = {width * height:,} pixels")
    if width < 1 or height < 1:
        raise InputError(f"{role}{where} is empty ({width}x{height} px)")
    with warnings.catch_warnings():
        # Our limit is below Pillow's, so its warning only repeats what we already checked.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image.load()  # animated images: this is the first frame, where open() left us
        except Image.DecompressionBombError as exc:
            raise InputError(f"{role}{where} is too large: {_one_line(exc)}") from None
        oriented = _exif_transpose(image)
    return _to_rgb(oriented, role=role, where=where)


def _exif_transpose(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block is ignored rather than fatal."""
    try:
        result = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF must not reject an otherwise fine image
        return image.copy()
    return result if result is not None else image.copy()


def _to_rgb(image: Image.Image, *, role: str = "image", where: str = "") -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency on white."""
    mode = image.mode
    if mode in _WIDE_INT_MODES or mode == "F":
        return _wide_to_rgb(image)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    try:
        if has_alpha:
            if mode == "La":  # premultiplied: Pillow converts it to RGBA only via LA
                image = image.convert("LA")
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        if mode == "RGB":
            return image.copy()
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InputError(
            f"{role}{where} uses pixel format {mode!r}, which cannot be converted to RGB "
            f"({_one_line(exc)})"
        ) from None


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """16/32-bit integer and float grayscale -> 8-bit RGB by scaling, not clipping.

    Integer modes are treated as 16-bit data (0..65535, what 16-bit PNG/TIFF files hold).
    Float ("F") data is taken as 0..1 when all values lie there, else as 0..255.
    """
    values = np.asarray(image)
    alpha = None
    transparency = image.info.get("transparency")
    if isinstance(transparency, int) and image.mode != "F":
        alpha = np.where(values == transparency, 0, 255).astype(np.uint8)
    if image.mode == "F":
        data = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if data.size and data.min() >= 0.0 and data.max() <= 1.0:
            data = data * 255.0
        gray = np.clip(np.floor(data + 0.5), 0, 255).astype(np.uint8)
    else:
        wide = np.clip(values.astype(np.int64), 0, 65535)
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)  # round half up
    if alpha is not None:
        return _to_rgb(Image.fromarray(np.stack([gray, alpha], axis=-1)))  # LA
    return Image.fromarray(np.repeat(gray[..., None], 3, axis=-1))


# --------------------------------------------------------------------------------------------
# geometry


def resize_long_side(image: Image.Image, long_side: int) -> Image.Image:
    """Scale so the longer side is `long_side` px, keeping the aspect ratio (LANCZOS)."""
    if long_side < 1:
        raise InputError(f"image size must be at least 1 px, got {long_side}")
    width, height = image.size
    if width >= height:
        new_size = (long_side, max(1, round(height * long_side / width)))
    else:
        new_size = (max(1, round(width * long_side / height)), long_side)
    if new_size == image.size:
        return image.copy()
    return image.resize(new_size, Image.Resampling.LANCZOS)


def resize_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to exactly (width, height) with LANCZOS, e.g. a style image to the content size."""
    width, height = size
    if width < 1 or height < 1:
        raise InputError(f"image size must be at least 1x1 px, got {width}x{height}")
    if image.size == (width, height):
        return image.copy()
    return image.resize((width, height), Image.Resampling.LANCZOS)


def check_min_size(
    image: Image.Image, min_side: int, *, role: str, field: str | None = None
) -> None:
    """Refuse images too small for the network's pooling layers, with a message saying so."""
    width, height = image.size
    if width < min_side or height < min_side:
        raise InputError(
            f"{role} is {width}x{height} px; the network needs at least {min_side} px on each side",
            field=field,
        )


# --------------------------------------------------------------------------------------------
# tensors


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image -> float32 tensor (1, 3, H, W) with RGB values in [0, 1]."""
    if image.mode != "RGB":
        image = _to_rgb(image)
    array = np.asarray(image, dtype=np.uint8)  # (H, W, 3)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(torch.float32).div_(255.0).contiguous()


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor with RGB in [0, 1], any device/dtype -> RGB image.

    Values are clamped and rounded to the nearest 8-bit level (flooring would darken the
    image by half a level on average); NaNs become 0.
    """
    if tensor.dim() == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got {tuple(tensor.shape)}")
    data = tensor.detach().to(device="cpu", dtype=torch.float32)
    data = torch.nan_to_num(data, nan=0.0).clamp(0.0, 1.0).mul(255.0).round()
    array = data.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array)  # uint8 (H, W, 3) -> "RGB"


# --------------------------------------------------------------------------------------------
# writing


def check_output_path(
    path: str | os.PathLike[str], formats: Collection[str] = tuple(OUTPUT_FORMATS)
) -> pathlib.Path:
    """Validate where the result will go, before minutes of computation are spent on it.

    `formats` are the extensions allowed (default: the image formats `save_image` writes).
    """
    target = pathlib.Path(path)
    shown = _show(target)
    suffix = target.suffix.lower()
    if target.is_dir():
        raise InputError(f"output {shown} is an existing folder; give a file name")
    if suffix not in formats:
        supported = ", ".join(formats)
        got = f"'{target.suffix}'" if target.suffix else "no extension"
        raise InputError(f"output {shown} has {got}; supported extensions: {supported}")
    folder = target.parent
    if not folder.exists():
        raise InputError(f"output folder {_show(folder)} does not exist")
    if not folder.is_dir():
        raise InputError(f"output folder {_show(folder)} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"output folder {_show(folder)} is not writable")
    check_writable_folder(folder)
    return target


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Really write a file there: os.access can be wrong (read-only mounts, ACLs, network file
    systems), and finding out after an hour of painting is too late."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".painterly-probe-", suffix=".part"):
            pass
    except OSError as exc:
        raise InputError(
            f"output folder {_show(folder)} is not writable: {_one_line(exc)}"
        ) from None


def prepare_output_folder(path: str | os.PathLike[str]) -> pathlib.Path:
    """Create an output folder if needed and check it is writable, before any run starts."""
    folder = pathlib.Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder {_show(folder)} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {_show(folder)}: {_one_line(exc)}") from None
    check_writable_folder(folder)
    return folder


def find_images(folder: str | os.PathLike, *, exclude: str | None = None) -> list[str]:
    """Image files under `folder`, recursively, sorted; hidden files and `exclude` are skipped."""
    found = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and not (exclude and os.path.abspath(os.path.join(here, d)) == exclude)
        )
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                found.append(os.path.abspath(os.path.join(here, name)))
    return found


def print_info(image: Image.Image | None) -> dict[str, object]:
    """The ICC profile and DPI of an opened image (PRINT_INFO), those it has."""
    info = image.info if image is not None else {}
    return {key: info[key] for key in PRINT_INFO if info.get(key)}


def save_image(image: Image.Image, path: str | os.PathLike[str]) -> None:
    """Write an image atomically; the format comes from the extension. An ICC profile and DPI in
    `image.info` (`print_info`) are written too."""
    target = pathlib.Path(path)
    fmt = OUTPUT_FORMATS.get(target.suffix.lower())
    if fmt is None:
        supported = ", ".join(OUTPUT_FORMATS)
        raise InputError(
            f"output {_show(target)} has an unsupported extension; supported: {supported}"
        )
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = _to_rgb(image)
    options = {**_SAVE_OPTIONS[fmt], **print_info(image)}
    _atomic_write(target, lambda fp: image.save(fp, format=fmt, **options))


def save_wide_image(
    rgb: torch.Tensor, path: str | os.PathLike[str], info: dict[str, object] | None = None
) -> None:
    """Write a (1, 3, H, W) RGB tensor in [0, 1] as a 16-bit PNG or TIFF, atomically, with the
    ICC profile and DPI in `info`. Pillow cannot write 16-bit RGB: PNG is encoded here, TIFF
    by tifffile."""
    target = pathlib.Path(path)
    if target.suffix.lower() not in WIDE_OUTPUT_FORMATS:
        raise InputError(
            f"{{bit_depth}} 16 needs a {', '.join(WIDE_OUTPUT_FORMATS)} output, "
            f"not {_show(target)}",
            field="bit_depth",
        )
    data = rgb.detach().to(device="cpu", dtype=torch.float32).reshape(3, *rgb.shape[-2:])
    data = torch.nan_to_num(data, nan=0.0).clamp(0.0, 1.0).mul(65535.0).round()
    array = data.to(torch.int32).permute(1, 2, 0).numpy().astype(np.uint16)
    info = info or {}
    if target.suffix.lower() == ".png":
        _atomic_write(target, lambda fp: fp.write(_png16(array, info)))
        return
    import tifffile

    dpi = info.get("dpi")
    extra = {"iccprofile": info["icc_profile"]} if info.get("icc_profile") else {}
    if dpi:
        extra.update(resolution=tuple(float(d) for d in dpi), resolutionunit="INCH")  # type: ignore
    _atomic_write(target, lambda fp: tifffile.imwrite(fp, array, photometric="rgb",
                                                      compression="zlib", **extra))  # fmt: skip


def _png16(array: np.ndarray, info: dict[str, object]) -> bytes:
    """A 16-bit RGB PNG (color type 2, bit depth 16) with iCCP and pHYs chunks as `info` has."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = array.shape[:2]
    rows = array.astype(">u2").reshape(height, width * 6 // 2).view(np.uint8)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter 0
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                               16, 2, 0, 0, 0))]  # fmt: skip
    profile = info.get("icc_profile")
    if isinstance(profile, bytes):
        parts.append(chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(profile)))
    dpi = info.get("dpi")
    if dpi:
        per_meter = [round(float(d) / 0.0254) for d in dpi]  # type: ignore[union-attr]
        parts.append(chunk(b"pHYs", struct.pack(">IIB", *per_meter, 1)))
    parts.append(chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def write_text_atomic(text: str, path: str | os.PathLike[str]) -> None:
    """Write UTF-8 text atomically (run records must never be half-written JSON)."""
    write_bytes_atomic(text.encode("utf-8"), path)


def write_bytes_atomic(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write bytes atomically (plots, animations: anything encoded in memory first)."""
    _atomic_write(pathlib.Path(path), lambda fp: fp.write(data))


def _atomic_write(target: pathlib.Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write to a hidden temp file beside `target`, fsync, then rename over it.

    The rename is atomic on POSIX and Windows, so readers see the old file or the new one,
    never a partial one. On any failure (including Ctrl-C) the temp file is removed.
    """
    folder = target.parent
    tmp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            delete=False, dir=folder, prefix="." + target.name, suffix=".part"
        ) as fp:
            tmp_name = fp.name
            write(fp)
            fp.flush()
            os.fsync(fp.fileno())
        # NamedTemporaryFile creates 0600 files; give the result the usual permissions.
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, target)
        tmp_name = None
    except BaseException as exc:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        if isinstance(exc, OSError) and exc.errno in _USER_WRITE_ERRNOS:
            raise InputError(f"cannot write {_show(target)}: {_one_line(exc)}") from exc
        raise
    _fsync_folder(folder)


def _umask() -> int:
    """The process umask (only readable by setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: pathlib.Path) -> None:
    """Persist the rename itself; best effort (not possible on Windows or some file systems)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
