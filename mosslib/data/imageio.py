"""Reading and writing images with clear errors that name the file.

:func:`read_rgb` is what data loaders use: any readable image becomes 8-bit RGB (H, W, 3)
uint8 - grayscale is replicated, alpha dropped, palettes expanded, 16-bit scaled by 1/257,
EXIF orientation applied.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageError", "IMAGE_SUFFIXES", "is_image_file", "read_rgb", "to_rgb8", "write_rgb"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and the problem."""


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def open_image(path: Path, transpose: bool = True) -> Image.Image:
    """Open and decode ``path`` (ImageError on failure); ``transpose``: apply EXIF orientation."""
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (zero bytes)")
    try:
        img = Image.open(path)
        img.load()  # decode now, so truncated files fail here
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image in a format Pillow can read") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: too many pixels to decode safely ({exc})") from exc
    except Exception as exc:  # OSError, SyntaxError, EOFError, struct.error, zlib.error, ...
        raise ImageError(f"{path}: unreadable or truncated image ({type(exc).__name__}: {exc})") from exc
    if not transpose:
        return img
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not make the pixels unusable
        pass
    return img


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> (H, W, 3) uint8 RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        scale = 257.0 if arr.max(initial=0) <= 65535 else arr.max()
        arr = np.clip(np.round(arr / scale), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(np.round(arr * (255.0 if arr.max(initial=0) <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB") if "A" in img.getbands() or img.mode == "P" else img.convert("RGB")
    return np.array(img, dtype=np.uint8)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read ``path`` as (H, W, 3) uint8 RGB; :class:`ImageError` names the file on failure."""
    path = Path(path)
    img = open_image(path)
    arr = to_rgb8(img)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{path}: unexpected image shape {arr.shape}")
    return arr


def write_rgb(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write (H, W, 3) uint8 atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    Image.fromarray(np.ascontiguousarray(image)).save(tmp)
    os.replace(tmp, path)
