"""Derain your own photos: ``python -m mosslib derain INPUT... -o OUTDIR`` and :func:`derain`.

Pixels are mapped to the network's range [-1, 1] from their own bit depth (8 or 16 bits) and
back with rounding (:mod:`mosslib.data.images`). Images above
:data:`~mosslib.apps.tiling.TILE_THRESHOLD` pixels (1024 * 1024) run in 512-pixel tiles with
32-pixel blended overlaps (:mod:`mosslib.apps.tiling`), so memory stays bounded for any size;
smaller images run whole. File formats, modes, bit depths and metadata are kept by
:mod:`mosslib.apps.photo`. The command never writes over an input: it refuses an OUTDIR that is
the folder of an input file, or an output path that is an input.

``mosslib.apps.derain`` is this module, and the module is callable: ``mosslib.derain(image)`` is
``mosslib.apps.derain.derain(image)`` (a function and a sub-module cannot share the name otherwise).
"""
from __future__ import annotations

import argparse
import glob
import inspect
import os
import sys
import time
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .photo import Photo, from_array, from_pil, read_photo, to_array, to_pil, write_photo
from .tiling import DEFAULT_OVERLAP, DEFAULT_TILE, TILE_THRESHOLD, choose_tile, tiled_map
from ..data import images
from ..data.imageio import IMAGE_SUFFIXES, ImageError, is_image_file
from ..method.checkpoint import CheckpointError
from ..method.checkpoint import load_model
from ..model import fast
from ..model.selfensemble import ENSEMBLE_SIZES, self_ensemble

__all__ = [
    "BatchResult",
    "RefusedError",
    "add_arguments",
    "collect_inputs",
    "derain",
    "derain_files",
    "derain_photo",
    "derain_pixels",
    "make_forward",
    "plan_outputs",
    "run",
]

Forward = Callable[[torch.Tensor], torch.Tensor]
_DEFAULT_MODELS: dict[str, nn.Module] = {}


# -- the model -------------------------------------------------------------------------------
def _load(model: nn.Module | str | os.PathLike | None, device: str) -> nn.Module:
    """None: the shipped model (cached per device); a path: a checkpoint; a module: itself."""
    if model is None:
        if device not in _DEFAULT_MODELS:
            _DEFAULT_MODELS[device] = load_model(None, device=device)
        return _DEFAULT_MODELS[device]
    if isinstance(model, (str, os.PathLike)):
        return load_model(model, device=device)
    if isinstance(model, nn.Module):
        return model
    raise TypeError(f"model must be None, a checkpoint path or an nn.Module, got {type(model).__name__}")


def _multiple(model: nn.Module) -> int:
    """The size multiple of the model's down-sampling grid (MOEDN: 2**num_scales), else 1."""
    return int(getattr(getattr(model, "cfg", None), "multiple", 1) or 1)


def _check_device(device: str) -> str:
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for, but this torch has no usable CUDA device")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return device


def make_forward(model: nn.Module, precision: str = "fp32", device: str = "cpu", ensemble: int = 1) -> Forward:
    """A callable (B, 3, H, W) in [-1, 1] -> same, for ``precision`` "fp32" or "bf16", averaged over
    ``ensemble`` mirrors of the input (1, 2 or 4: :mod:`mosslib.model.selfensemble`).

    bf16 uses ``mosslib.model.fast.prepare`` when that module exists, else autocast around the model.
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    return self_ensemble(_precision_forward(model, precision, device), ensemble)


def _precision_forward(model: nn.Module, precision: str, device: str) -> Forward:
    if precision == "fp32":
        return model
    return fast.prepare(model, precision=precision, device=device)


# -- pixels and photos -----------------------------------------------------------------------
def derain_pixels(
    rgb: np.ndarray,
    forward: Forward,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    align: int = 1,
    device: str = "cpu",
) -> np.ndarray:
    """(H, W, 3) uint8 or uint16 -> derained, same shape and dtype.

    ``tile``: None = whole image up to TILE_THRESHOLD pixels, else 512-pixel tiles; 0 = always
    whole; N = tiles of N pixels. ``align``: tile origins are multiples of it.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected (H, W, 3) uint8 or uint16 pixels, got {rgb.shape} {rgb.dtype}")
    side = choose_tile(rgb.shape[0], rgb.shape[1], tile)

    def run_tile(pixels: np.ndarray) -> np.ndarray:
        x = images.to_unit_(pixels.astype(np.float32), rgb.dtype)  # (h, w, 3); element-wise work in numpy
        x = torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)  # (1, 3, h, w)
        y = forward(x)
        if tuple(y.shape) != tuple(x.shape):
            raise RuntimeError(f"the model returned shape {tuple(y.shape)} for input {tuple(x.shape)}")
        return np.ascontiguousarray(y[0].float().cpu().numpy().transpose(1, 2, 0))

    def finalize(band: np.ndarray) -> np.ndarray:  # in place: the band's finished rows are not reused
        return images.from_unit_(band, rgb.dtype)

    with torch.inference_mode():
        return tiled_map(rgb, run_tile, side, overlap, align, finalize)


def derain_photo(photo: Photo, forward: Forward, **kwargs) -> Photo:
    """Derain a photo's RGB (grayscale is replicated to RGB, alpha is kept as is)."""
    return photo.replace(rgb=derain_pixels(photo.rgb, forward, **kwargs))


def derain(
    image,
    model: nn.Module | str | os.PathLike | None = None,
    *,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    device: str | None = None,
    precision: str = "fp32",
    ensemble: int = 1,
):
    """Derain a numpy image ((H, W[, C]) uint8/uint16, C in 1..4) or a PIL image; same kind back.

    ``model``: None (the shipped model), a checkpoint path, or an nn.Module (run in eval mode,
    its mode restored). ``device``: default the module's device, else "cpu". ``ensemble``: 1, 2 or
    4 mirrored passes averaged (:mod:`mosslib.model.selfensemble`; n times slower). A PIL image is
    taken as is (no EXIF rotation); palette/CMYK images come back as RGB(A).
    """
    if isinstance(image, np.ndarray):
        photo, shape = from_array(image), image.shape
    elif hasattr(image, "mode") and hasattr(image, "getbands"):
        photo, shape = from_pil(image), None
    else:
        raise TypeError(f"image must be a numpy array or a PIL image, got {type(image).__name__}")
    explicit = device is not None
    if device is None:
        param = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        device = str(param.device) if param is not None else "cpu"
    device = _check_device(device)
    net = _load(model, device)
    if isinstance(model, nn.Module) and explicit:
        net.to(device)
    was_training = net.training
    net.eval()
    try:
        forward = make_forward(net, precision, device, ensemble)
        out = derain_photo(photo, forward, tile=tile, overlap=overlap, align=_multiple(net), device=device)
    finally:
        net.train(was_training)
    return to_array(out).reshape(shape) if shape is not None else to_pil(out)


# -- files -----------------------------------------------------------------------------------
@dataclass
class BatchResult:
    """What a batch did: outputs written and (input, reason) for every failure."""

    written: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


class RefusedError(ValueError):
    """OUTDIR or an output path would overwrite an input."""


def collect_inputs(items: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (their image files, not recursive) and globs -> (files, failures)."""
    files, failures, seen = [], [], set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    def add_folder(folder: Path) -> None:
        found = sorted(q for q in folder.iterdir() if q.is_file() and is_image_file(q) and not q.name.startswith("."))
        if not found:
            failures.append((str(folder), f"{folder}: folder has no image files ({', '.join(IMAGE_SUFFIXES)})"))
        for q in found:
            add(q)

    for item in items:
        text, path = str(item), Path(item)
        if path.is_dir():
            add_folder(path)
        elif path.exists():
            add(path)
        elif any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                failures.append((text, f"{text}: no file matches this pattern"))
            for m in map(Path, matches):
                if m.is_dir():
                    add_folder(m)
                else:
                    add(m)
        else:
            failures.append((text, f"{text}: no such file or folder"))
    return files, failures


def plan_outputs(files: list[Path], outdir: Path) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """(input, output) pairs in ``outdir`` with the same file names; RefusedError if an input is at risk.

    Inputs whose name another input already claimed are failures (their output would collide).
    """
    out_resolved = Path(outdir).resolve()
    inputs = {f.resolve(): f for f in files}
    pairs, failures, claimed = [], [], {}
    for f in files:
        if f.resolve().parent == out_resolved:
            raise RefusedError(
                f"refusing to write into {outdir}: it is the folder of the input {f} "
                f"(outputs keep their names, so inputs would be overwritten); choose another -o folder"
            )
        dst = Path(outdir) / f.name
        if dst.resolve() in inputs:
            raise RefusedError(f"refusing to write {dst}: that path is the input {inputs[dst.resolve()]}")
        if f.name in claimed:
            failures.append((str(f), f"{f}: skipped, its output {dst} is already the output of {claimed[f.name]}"))
            continue
        claimed[f.name] = f
        pairs.append((f, dst))
    return pairs, failures


def _reason(path: Path, exc: BaseException) -> str:
    if isinstance(exc, ImageError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"{path}: out of memory (try a smaller --tile)"
    return f"{path}: {type(exc).__name__}: {exc}"


def derain_files(
    inputs: Iterable[str | os.PathLike],
    outdir: str | os.PathLike,
    model: nn.Module | str | os.PathLike | None = None,
    *,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    device: str = "cpu",
    precision: str = "fp32",
    ensemble: int = 1,
    progress: bool = True,
) -> BatchResult:
    """Derain every input into ``outdir`` (same names and formats); failures do not stop the batch.

    Raises RefusedError (an input at risk) and CheckpointError (no usable model) before any work.
    """
    from tqdm import tqdm  # lazy: only the command line shows a bar

    start = time.perf_counter()
    outdir = Path(outdir)
    files, failures = collect_inputs(inputs)
    pairs, collisions = plan_outputs(files, outdir)
    result = BatchResult(failures=failures + collisions)
    if not pairs:
        result.seconds = time.perf_counter() - start
        return result
    device = _check_device(device)
    net = _load(model, device).eval()
    align = _multiple(net)
    if tile and (overlap < 0 or tile - overlap < align):
        raise ValueError(f"--tile ({tile}) must exceed --overlap ({overlap}) by at least {align} pixels")
    forward = make_forward(net, precision, device, ensemble)
    if outdir.exists() and not outdir.is_dir():
        raise RefusedError(f"{outdir}: exists and is not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(pairs, desc="derain", unit="file", disable=not progress, file=sys.stderr)
    for src, dst in bar:
        try:
            photo = read_photo(src)
            out = derain_photo(photo, forward, tile=tile, overlap=overlap, align=align, device=device)
            write_photo(dst, out)
            result.written.append(dst)
        except (Exception, MemoryError) as exc:  # the batch goes on; every failure is reported
            result.failures.append((str(src), _reason(src, exc)))
            if progress:
                bar.write(f"failed: {_reason(src, exc)}", file=sys.stderr)
    result.seconds = time.perf_counter() - start
    return result


# -- command line ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (not recursive) or globs")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (not an input's)")
    parser.add_argument(
        "--checkpoint", default=None, metavar="CKPT", help="checkpoint or run folder (default: the shipped model)"
    )
    parser.add_argument(
        "--tile", type=int, default=None, metavar="N",
        help=f"tile side in pixels (default: whole image up to {TILE_THRESHOLD} pixels, else {DEFAULT_TILE}; "
        "0: never tile)",
    )
    parser.add_argument(
        "--overlap", type=int, default=DEFAULT_OVERLAP, metavar="N", help="tile overlap in pixels (default %(default)s)"
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="default %(default)s")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                        help="default %(default)s; bf16 pays only where the device computes in bf16 natively (docs/speed.md)")
    parser.add_argument(
        "--ensemble", type=int, default=1, choices=ENSEMBLE_SIZES, metavar="N",
        help="average N mirrored passes: 1, 2 or 4 (N times slower; what it gains: docs/derain.md; "
        "default %(default)s)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.overlap < 0 or (args.tile is not None and args.tile < 0):
        print("error: --tile and --overlap must be >= 0", file=sys.stderr)
        return 2
    try:
        result = derain_files(
            args.inputs, args.output, args.checkpoint, tile=args.tile, overlap=args.overlap,
            device=args.device, precision=args.precision, ensemble=args.ensemble, progress=not args.quiet,
        )
    except (RefusedError, CheckpointError, RuntimeError, ValueError) as exc:
        hint = " (pass --checkpoint CKPT)" if isinstance(exc, CheckpointError) and args.checkpoint is None else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2
    total = len(result.written) + len(result.failures)
    print(f"derained {len(result.written)} of {total} file(s) into {args.output} in {result.seconds:.1f} s")
    if result.failures:
        print(f"{len(result.failures)} failed:", file=sys.stderr)
        for _, reason in result.failures:
            print(f"  {reason}", file=sys.stderr)
        return 1
    return 0


class _CallableModule(types.ModuleType):
    """``mosslib.apps.derain`` names this module; calling it calls :func:`derain`."""

    def __call__(self, *args, **kwargs):
        return derain(*args, **kwargs)


__signature__ = inspect.signature(derain)  # what inspect/help show for mosslib.derain(...)
sys.modules[__name__].__class__ = _CallableModule
