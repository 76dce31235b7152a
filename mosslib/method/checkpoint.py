"""Checkpoints: atomic writes, safe loading (``weights_only=True``) and clear errors.

A checkpoint is a plain dict (only tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(..., weights_only=True)`` and never runs a pickle):

``{"format": "mosslib", "version": 1, "kind": "train" | "model", "config": {...},
"model": state_dict, "meta": {...}, ...}``; training checkpoints add ``teacher``,
``optimizer``, ``step`` and the RNG states. ``config["model"]`` always holds the
:class:`~mosslib.model.config.ModelConfig` as a dict.
"""
from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from pathlib import Path

import torch

from ..model.config import ModelConfig, from_dict
from .. import __version__
from ..model.config import to_dict
from ..model.network import MOEDN
from ..model.baselines import build_model

__all__ = [
    "FORMAT",
    "CheckpointError",
    "atomic_save",
    "atomic_write_text",
    "load_checkpoint",
    "load_model",
    "model_config_of",
    "run_metadata",
    "save_model",
    "shipped_model_path",
]

FORMAT = "mosslib"
VERSION = 1
SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "moss_cpu.pt"


class CheckpointError(ValueError):
    """A file that is not a usable mosslib checkpoint (the message names the file)."""


def _atomic_replace(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    _atomic_replace(Path(path), lambda fh: torch.save(obj, fh))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write text atomically (temporary file + rename)."""
    _atomic_replace(Path(path), lambda fh: fh.write(text.encode("utf-8")))


def _git_commit() -> str:
    """The checkout's commit (``-dirty`` with uncommitted changes). ``$MOSSLIB_GIT_COMMIT``, when
    set, names it instead: a tree copied to another machine may carry no ``.git``, or a stale one."""
    return os.environ.get("MOSSLIB_GIT_COMMIT") or _git_rev()


def _git_rev() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=5,
        )
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return commit + ("-dirty" if dirty and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_metadata(seed: int | None = None, device: str | torch.device = "cpu") -> dict:
    """Seed, git commit, versions and device: stored in every checkpoint and results file."""
    return {
        "seed": seed,
        "git_commit": _git_commit(),
        "mosslib_version": __version__,
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def save_model(model, path: str | os.PathLike, config: dict | None = None, dtype: torch.dtype | None = None,
               **extra) -> Path:
    """Write a ``kind: "model"`` checkpoint (weights + configuration + metadata) atomically.

    ``config``: the ModelConfig dict to store (default: ``model.cfg``'s); ``dtype``: store floating
    tensors in it (e.g. ``torch.float16``, half the size; :func:`load_model` computes in fp32);
    ``extra`` entries (e.g. ``card``) are stored beside it. Loads back with :func:`load_model`.
    """
    cfg = config if config is not None else to_dict(model.cfg)
    state = {k: v.detach().to(dtype) if dtype is not None and v.is_floating_point() else v.detach()
             for k, v in model.state_dict().items()}
    obj = {"format": FORMAT, "version": VERSION, "kind": "model", "config": {"model": cfg},
           "model": state, "meta": run_metadata(), **extra}
    atomic_save(obj, path)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a mosslib checkpoint; a clear :class:`CheckpointError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (zero bytes), not a checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        if "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path}: not a readable checkpoint: it holds Python objects other than tensors and "
                "plain data (refused: weights_only=True, so no pickle is ever executed)"
            ) from exc
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated, corrupt, or not a torch file)") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a mosslib checkpoint (no 'format': 'mosslib' entry)")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is newer than this mosslib")
    for key in ("config", "model"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks its {key!r} entry")
    return ckpt


def model_config_of(ckpt: dict, path: str | os.PathLike = "<checkpoint>") -> ModelConfig:
    """The :class:`ModelConfig` stored in a checkpoint dict."""
    try:
        stored = dict(ckpt["config"]["model"])
        stored.setdefault("fuse", False)  # written before fusion existed (mosslib ARCH_VERSION < 3)
        return from_dict(ModelConfig, stored)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint has no valid model configuration: {exc}") from exc


def shipped_model_path() -> Path:
    """The model that ships inside the package (trained with the ``cpu`` profile)."""
    return SHIPPED


# written into a run folder restored from the archive (mosslib.method.archive)
ARCHIVED = "archived.json"


def load_model(path: str | os.PathLike | None = None, which: str = "best", device: str = "cpu"):
    """Build MOEDN from a checkpoint (default: the shipped model) in eval mode, fp32.

    ``which``: for a run folder, ``"best"`` (chosen on the validation split) or ``"last"``.
    A checkpoint whose weights do not fit its own configuration raises CheckpointError.
    """
    if path is None:
        path = SHIPPED
        if not path.is_file():
            raise CheckpointError(f"{path}: the shipped model is missing from this installation")
    path = Path(path)
    if path.is_dir():
        if (path / ARCHIVED).is_file() and not (path / "best.pt").is_file():
            raise CheckpointError(f"{path}: restored from the archive with its metrics but without its weights; delete "
                                  "this folder and its archive entry (results/<profile>/runs/) to train it again")
        path = path / ("best.pt" if which == "best" else "checkpoint.pt")
    ckpt = load_checkpoint(path)
    cfg = model_config_of(ckpt, path)
    arch = ckpt["config"].get("arch", "moedn") if isinstance(ckpt["config"], dict) else "moedn"
    if arch == "moedn":
        model = MOEDN(cfg)
    else:  # a supervised peer trained with `train --model NAME`

        model = build_model(arch)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not match the model configuration stored with them: {first}") from exc
    model.checkpoint_path = str(path)
    model.checkpoint_meta = ckpt.get("meta", {})
    return model.to(device).eval()
