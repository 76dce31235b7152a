"""A training run's folder, apart from the training: one trainer per folder (a lock), the
``log.jsonl`` lines, and a time limit that leaves room for the last validation.

The folder holds ``config.json``, ``log.jsonl``, ``checkpoint.pt`` (resume), ``pretrain.pt`` (the
end of pre-training), ``best.pt`` (the selected model) and, when finished, ``done.json``.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .checkpoint import atomic_write_text

__all__ = ["RunLock", "append_log", "trim_log", "Deadline"]


class RunLock:
    """One trainer per run folder: a second process gets a clear error, not a corrupted run.
    A context manager; only rank 0 locks (``active=False`` elsewhere)."""

    def __init__(self, folder: str | os.PathLike, active: bool = True):
        self.path, self.active, self._fh = Path(folder) / ".lock", active, None

    def __enter__(self) -> "RunLock":
        if not self.active:
            return self
        fh = open(self.path, "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise RuntimeError(f"{self.path.parent}: another process is training into this folder") from None
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def append_log(folder: Path, record: dict) -> None:
    with open(folder / "log.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def trim_log(folder: Path, step: int) -> None:
    """After a resume, drop the log lines written after the checkpoint's step."""
    path = folder / "log.jsonl"
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    atomic_write_text("".join(k + "\n" for k in keep), path)


class Deadline:
    """A time limit (seconds from now, or None) for a loop whose last step must be validated in time."""

    def __init__(self, seconds: float | None, device: torch.device, world: int = 1):
        self.at = None if seconds is None else time.monotonic() + float(seconds)
        self.device, self.world = device, world

    def near(self, room: float) -> bool:
        """Whether less than ``room`` seconds are left (rank 0 decides, so all ranks stop at the same step)."""
        if self.at is None:
            return False
        late = time.monotonic() + room >= self.at
        if self.world > 1:
            flag = torch.tensor([float(late)], device=self.device)
            dist.broadcast(flag, 0)
            late = bool(flag.item())
        return late
