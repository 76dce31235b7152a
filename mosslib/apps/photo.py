"""Format-preserving reading and writing of user photos (the ``derain`` command's I/O).

:func:`read_photo` gives a :class:`Photo`: upright (EXIF orientation applied) RGB pixels at
the file's own bit depth (uint8, or uint16 for 16-bit PNG/TIFF), the alpha channel if any,
whether the source was grayscale, and the metadata worth carrying over (ICC profile, dpi,
EXIF without its orientation tag, JPEG sub-sampling, WebP losslessness, TIFF compression).
:func:`write_photo` writes a photo back in the same format, mode and bit depth:

* grayscale in, grayscale out: three channels are folded back to one with the ITU-R 601
  luma weights (0.299, 0.587, 0.114), the same as Pillow's ``convert("L")``;
* alpha is carried through untouched; palette images come back as full colour RGB or RGBA
  (a palette cannot hold derained colours); CMYK and YCbCr come back as RGB;
* 16-bit in, 16-bit out (PNG through a small built-in encoder, colour TIFF through
  ``tifffile``), since Pillow keeps only 8 bits of 16-bit colour;
* JPEG is written at quality 95 with the source's chroma sub-sampling; the orientation tag
  is dropped because the pixels are already upright.

Supported formats: PNG, JPEG (and MPO, its multi-picture variant from phones: the first
picture), BMP, TIFF and WebP, single-frame. Errors are :class:`~mosslib.data.imageio.ImageError`
naming the file.
"""
from __future__ import annotations

import dataclasses
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from PIL import JpegImagePlugin

from ..data.imageio import ImageError, open_image

__all__ = [
    "Photo",
    "SUPPORTED_FORMATS",
    "from_array",
    "from_pil",
    "orient",
    "read_photo",
    "to_array",
    "to_pil",
    "write_photo",
]

# Pillow's format name of the source -> the format written back.
SUPPORTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "BMP": "BMP", "TIFF": "TIFF", "WEBP": "WEBP"}
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as Pillow's RGB -> L
_ORIENTATION = 0x0112


@dataclass
class Photo:
    """Upright pixels of a photo and what is needed to write it back the same way.

    ``rgb``: (H, W, 3) uint8 or uint16; ``alpha``: (H, W) of the same dtype or None;
    ``gray``: the source had one colour channel (written back as one).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    gray: bool = False
    format: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def bits(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8

    def replace(self, **changes) -> "Photo":
        return dataclasses.replace(self, **changes)


# -- orientation -----------------------------------------------------------------------------
def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to (H, W, ...) pixels, as ``ImageOps.exif_transpose``."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return arr[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


# -- Pillow images <-> photos ----------------------------------------------------------------
def _split(arr: np.ndarray, gray: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, C) with C in 1..4 -> (rgb (H, W, 3), alpha (H, W) or None)."""
    if gray:
        rgb = np.repeat(arr[..., :1], 3, axis=2)
        return rgb, (arr[..., 1] if arr.shape[2] == 2 else None)
    return arr[..., :3], (arr[..., 3] if arr.shape[2] == 4 else None)


def from_pil(img: Image.Image) -> Photo:
    """A decoded Pillow image -> Photo (8-bit, or 16-bit for ``I;16*`` grayscale)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N") or (mode == "I" and img.format == "PNG"):
        arr = np.asarray(img)
        if arr.dtype != np.uint16:
            if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
                raise ValueError("32-bit integer pixels outside the 16-bit range are not supported")
            arr = arr.astype(np.uint16)
        return Photo(*_split(arr[..., None], True), gray=True)
    if mode == "1":
        img, mode = img.convert("L"), "L"
    elif mode == "La":
        img, mode = img.convert("LA"), "LA"
    elif mode == "P":
        has_alpha = "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    elif mode in ("PA", "RGBa"):
        img, mode = img.convert("RGBA"), "RGBA"
    elif mode in ("CMYK", "YCbCr", "RGBX"):
        img, mode = img.convert("RGB"), "RGB"
    if mode not in ("L", "LA", "RGB", "RGBA"):
        raise ValueError(f"pixel mode {mode!r} is not supported")
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    return Photo(*_split(arr, mode in ("L", "LA")), gray=mode in ("L", "LA"))


def _gray_of(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) luma, same dtype (ITU-R 601 weights)."""
    top = 65535 if rgb.dtype == np.uint16 else 255
    return np.clip(np.rint(rgb.astype(np.float32) @ LUMA.astype(np.float32)), 0, top).astype(rgb.dtype)


def to_array(photo: Photo) -> np.ndarray:
    """Photo -> (H, W, C): C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)."""
    planes = [_gray_of(photo.rgb)[..., None]] if photo.gray else [photo.rgb]
    if photo.alpha is not None:
        planes.append(photo.alpha[..., None])
    return np.concatenate(planes, axis=2) if len(planes) > 1 else planes[0]


def from_array(arr: np.ndarray) -> Photo:
    """(H, W), (H, W, 1|2|3|4) uint8 or uint16 -> Photo (one or two channels: grayscale)."""
    arr = np.asarray(arr)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"expected an (H, W) or (H, W, 1|2|3|4) image, got shape {arr.shape}")
    gray = arr.shape[2] <= 2
    return Photo(*_split(arr, gray), gray=gray)


def to_pil(photo: Photo) -> Image.Image:
    """Photo -> Pillow image (L, LA, RGB, RGBA, or I;16 for 16-bit grayscale without alpha)."""
    arr = to_array(photo)
    if photo.bits == 16:
        if arr.shape[2] != 1:
            raise ValueError("Pillow cannot hold 16-bit colour or 16-bit gray + alpha images")
        return Image.fromarray(np.ascontiguousarray(arr[..., 0]))  # I;16
    return Image.fromarray(np.ascontiguousarray(arr[..., 0] if arr.shape[2] == 1 else arr))  # L/LA/RGB/RGBA


# -- reading ---------------------------------------------------------------------------------
def _png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR chunk."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    return head[24], head[25]


def _png16_colour(path: Path, high: Image.Image) -> np.ndarray:
    """All 16 bits of a 16-bit colour or gray+alpha PNG: (H, W, C) uint16, C = 2, 3 or 4.

    Pillow decodes these to 8 bits (the high bytes). Decoding the same stream again with a
    raw mode of the same pixel size that keeps the other bytes recovers the low bytes.
    """
    low = Image.open(path)
    tile = low.tile[0]
    rawmode = tile.args if isinstance(tile.args, str) else tile.args[0]
    if rawmode == "LA;16B":  # gray+alpha: 4 bytes per pixel, all kept by a plain RGBA decode
        low.tile = [tile._replace(args="RGBA")]
        low.load()
        b = np.asarray(low).astype(np.uint16)
        return np.stack([b[..., 0] << 8 | b[..., 1], b[..., 2] << 8 | b[..., 3]], axis=2)
    low.tile = [tile._replace(args=rawmode.replace("16B", "16L"))]
    low.load()
    return np.asarray(high).astype(np.uint16) << 8 | np.asarray(low)


def _webp_lossless(path: Path) -> bool:
    with open(path, "rb") as fh:
        return b"VP8L" in fh.read(4096)


def _carried_info(img: Image.Image, fmt: str) -> dict:
    """Metadata to write back: ICC profile, dpi, EXIF (orientation removed) and codec hints."""
    info = {}
    if img.info.get("icc_profile") and img.mode not in ("CMYK", "YCbCr", "LAB"):
        info["icc_profile"] = img.info["icc_profile"]
    if "dpi" in img.info:
        info["dpi"] = img.info["dpi"]
    if fmt in ("JPEG", "MPO", "PNG", "WEBP") and img.info.get("exif"):
        try:
            exif = img.getexif()
            exif.pop(_ORIENTATION, None)
            info["exif"] = exif.tobytes()
        except Exception:  # unparsable EXIF: drop it rather than fail the photo
            pass
    if fmt in ("JPEG", "MPO"):
        sampling = JpegImagePlugin.get_sampling(img)
        if sampling in (0, 1, 2):
            info["subsampling"] = sampling
    if fmt == "TIFF" and img.info.get("compression") in ("raw", "tiff_lzw", "tiff_adobe_deflate", "packbits"):
        info["compression"] = img.info["compression"]
    return info


def read_photo(path: str | os.PathLike) -> Photo:
    """Read ``path`` as an upright :class:`Photo`; ImageError names the file on any failure."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # large photos are the point; tiles bound the memory
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = open_image(path, transpose=False)
        return _decode(path, img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: too many pixels for Pillow's safety limit ({exc})") from exc
    except Exception as exc:  # Pillow raises many types for broken files
        raise ImageError(f"{path}: unreadable or corrupt image ({type(exc).__name__}: {exc})") from exc


def _decode(path: Path, img: Image.Image) -> Photo:
    fmt = img.format
    if fmt not in SUPPORTED_FORMATS:
        names = "PNG, JPEG, BMP, TIFF, WebP"
        raise ImageError(f"{path}: unsupported format {fmt or 'unknown'} (supported: {names})")
    frames = getattr(img, "n_frames", 1)
    if frames > 1 and fmt != "MPO":
        raise ImageError(f"{path}: has {frames} frames (animated or multi-page); only single images are supported")
    try:
        orientation = int(img.getexif().get(_ORIENTATION, 1))
    except Exception:  # a broken EXIF block should not make the pixels unusable
        orientation = 1
    info = _carried_info(img, fmt)
    if fmt == "WEBP":
        info["lossless"] = _webp_lossless(path)
    if fmt == "PNG" and _png_header(path)[0] == 16 and img.mode in ("RGB", "RGBA"):
        arr = _png16_colour(path, img)
        photo = from_array(arr)
    elif fmt == "TIFF" and img.mode in ("RGB", "RGBA") and ";16" in _rawmode(path):
        photo = from_array(_tiff16_colour(path))
    else:
        photo = from_pil(img)
    rgb = np.ascontiguousarray(orient(photo.rgb, orientation))
    alpha = None if photo.alpha is None else np.ascontiguousarray(orient(photo.alpha, orientation))
    return photo.replace(rgb=rgb, alpha=alpha, format=fmt, info=info)


def _rawmode(path: Path) -> str:
    with Image.open(path) as probe:
        args = probe.tile[0].args if probe.tile else ""
    return args if isinstance(args, str) else str(args[0] if args else "")


def _tiff16_colour(path: Path) -> np.ndarray:
    """16-bit colour TIFF through tifffile (Pillow keeps only 8 bits): (H, W, 3|4) uint16."""
    try:
        import tifffile  # lazy: an optional dependency, needed only for TIFF files
    except ImportError as exc:
        raise ImageError(f"{path}: 16-bit colour TIFF needs the tifffile package") from exc
    arr = tifffile.imread(path)
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"{path}: unsupported TIFF layout {arr.shape} {arr.dtype}")
    return arr


# -- writing ---------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png16_bytes(arr: np.ndarray, info: dict) -> bytes:
    """Encode (H, W, C) uint16, C in 1..4, as a 16-bit PNG (Sub filter, zlib level 6)."""
    h, w, c = arr.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = np.ascontiguousarray(arr, dtype=">u2").view(np.uint8).reshape(h, w * c * 2)
    bpp = 2 * c
    rows = np.empty((h, 1 + raw.shape[1]), dtype=np.uint8)
    rows[:, 0] = 1  # filter type Sub: difference with the same byte of the previous pixel
    rows[:, 1 : 1 + bpp] = raw[:, :bpp]
    np.subtract(raw[:, bpp:], raw[:, :-bpp], out=rows[:, 1 + bpp :])
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))]
    if info.get("icc_profile"):
        out.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(info["icc_profile"])))
    if info.get("dpi"):
        ppm = [max(1, round(float(d) / 0.0254)) for d in info["dpi"][:2]]
        out.append(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if info.get("exif"):
        exif = info["exif"]
        out.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    data = zlib.compress(rows.tobytes(), 6)
    step = 1 << 22
    out += [_chunk(b"IDAT", data[i : i + step]) for i in range(0, max(len(data), 1), step)]
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def _save_options(fmt: str, photo: Photo) -> dict:
    info = photo.info
    opts = {k: info[k] for k in ("icc_profile", "dpi") if info.get(k)}
    if fmt in ("JPEG", "PNG", "WEBP") and info.get("exif"):
        opts["exif"] = info["exif"]
    if fmt == "JPEG":
        opts.update(quality=95, subsampling=info.get("subsampling", 0))
    elif fmt == "WEBP":
        opts.update({"lossless": True} if info.get("lossless") else {"quality": 95})
    elif fmt == "TIFF" and info.get("compression"):
        opts["compression"] = info["compression"]
    return opts


def write_photo(path: str | os.PathLike, photo: Photo, format: str | None = None) -> None:
    """Write ``photo`` to ``path`` atomically in ``format`` (default: the photo's source format)."""
    path = Path(path)
    fmt = SUPPORTED_FORMATS.get((format or photo.format or "PNG").upper(), (format or "PNG").upper())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        arr = to_array(photo)
        if photo.bits == 16 and fmt == "PNG":
            tmp.write_bytes(_png16_bytes(arr, photo.info))
        elif photo.bits == 16 and fmt == "TIFF" and arr.shape[2] != 1:
            import tifffile  # lazy: an optional dependency, needed only for TIFF files

            colour, extra = arr.shape[2] >= 3, ["unassalpha"] if arr.shape[2] in (2, 4) else None
            tifffile.imwrite(tmp, arr, photometric="rgb" if colour else "minisblack", extrasamples=extra)
        elif photo.bits == 16 and fmt not in ("PNG", "TIFF"):
            raise ImageError(f"{path}: {fmt} cannot hold 16-bit pixels")
        else:
            to_pil(photo).save(tmp, format=fmt, **_save_options(fmt, photo))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
