"""How a run begins and continues: its learning-rate schedule, and the checks and copies that
let a run resume, be extended to more steps, fork at the end of pre-training, or warm-start from
a model file.

Each relation is exact, not an approximation: two runs are related only when nothing before the
shared step could have differed (same configuration up to what the relation allows, the same
learning rate at every earlier step), so a continued run equals an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from pathlib import Path

from torch import nn

from .checkpoint import CheckpointError, atomic_save, atomic_write_text, load_checkpoint
from .checkpoint import load_model
from .profiles import TrainConfig, config_from_dict, config_hash
from ..model.config import to_dict

__all__ = [
    "lr_at", "schedules_agree", "check_resume", "pretraining_matches", "extends", "extend_run", "fork_pretrained",
    "pretrain_of", "file_sha256", "warm_start",
]


def lr_at(optim, step: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based): ``optim.lr``, cosine-decayed to
    ``lr * lr_final`` over ``[lr_decay_from, steps]`` when ``lr_decay_from`` > 0."""
    start, end = optim.lr_decay_from, optim.steps
    if start <= 0 or step < start or end <= start:
        return optim.lr
    t = min(1.0, (step - start) / (end - start))
    return optim.lr * (optim.lr_final + (1.0 - optim.lr_final) * 0.5 * (1.0 + math.cos(math.pi * t)))


def schedules_agree(a: TrainConfig, b: TrainConfig, steps: int) -> bool:
    """True when ``a`` and ``b`` use the same learning rate for steps ``0 .. steps-1``."""
    return all(lr_at(a.optim, s) == lr_at(b.optim, s) for s in range(steps))


def _resumable(cfg: TrainConfig) -> TrainConfig:
    """What must match to resume: everything but the total number of steps, log cadence and the
    learning-rate schedule (the schedules must agree up to the checkpoint: ``schedules_agree``)."""
    optim = dataclasses.replace(
        cfg.optim, steps=0, val_every=0, ckpt_every=0, log_every=0, lr_decay_from=0, lr_final=0.0
    )
    return dataclasses.replace(cfg, optim=optim)


def check_resume(saved: TrainConfig, step: int, cfg: TrainConfig, path) -> None:
    """Raise ValueError (naming ``path``) unless a checkpoint of ``saved`` at ``step`` may resume as ``cfg``."""
    if _resumable(saved) != _resumable(cfg):
        raise ValueError(
            f"{path}: checkpoint was trained with another configuration; use a new --out folder "
            f"(saved hash {config_hash(saved)}, now {config_hash(cfg)})"
        )
    if not schedules_agree(saved, cfg, step):
        raise ValueError(
            f"{path}: the learning-rate schedule differs before the checkpoint's step {step}; "
            f"a run can only be extended (more steps, a decay that starts later) - use a new --out folder"
        )


def _pretraining(cfg: TrainConfig) -> TrainConfig:
    """What decides the first ``pretrain_steps`` steps: everything but the self-training settings
    (Eq. 7-12 weights, teacher decay, ``self_train``), the ablation name and the total steps."""
    cfg = _resumable(cfg)
    loss = dataclasses.replace(cfg.loss, self_train=True, lambda_un=0.0, lambda_tv=0.0, alpha_min=0.0, alpha_max=0.0)
    optim = dataclasses.replace(cfg.optim, teacher_decay=0.0)
    return dataclasses.replace(cfg, ablation="", loss=loss, optim=optim)


def pretraining_matches(a: TrainConfig, b: TrainConfig) -> bool:
    """True when runs of ``a`` and ``b`` are identical up to the end of pre-training."""
    return (
        a.optim.pretrain_steps > 0
        and _pretraining(a) == _pretraining(b)
        and schedules_agree(a, b, a.optim.pretrain_steps)
    )


def extends(src_cfg: TrainConfig, src_step: int, cfg: TrainConfig) -> bool:
    """True when ``cfg`` continues a run of ``src_cfg`` now at ``src_step``: the same run, only
    longer (more steps, or a learning-rate decay that starts after ``src_step``)."""
    return (
        _resumable(src_cfg) == _resumable(cfg)
        and cfg.optim.steps >= src_step
        and schedules_agree(src_cfg, cfg, src_step)
    )


def extend_run(src: str | os.PathLike, cfg: TrainConfig, out: str | os.PathLike) -> Path:
    """Start the run ``out`` of ``cfg`` from run ``src``'s last checkpoint, to train it longer.

    Exact: resuming is bit-exact and ``extends`` checks that nothing before the checkpoint would
    have differed. ``src`` is left as it is (its results stay valid); the checkpoints, the log and
    ``best.pt`` are copied, model selection goes on from ``src``'s best (``extended.json`` says so).
    """
    src, out = Path(src), Path(out)
    ckpt = load_checkpoint(src / "checkpoint.pt")
    saved, step = config_from_dict(ckpt["config"]), int(ckpt["step"])
    if not extends(saved, step, cfg):
        raise ValueError(
            f"{src / 'checkpoint.pt'}: cannot be extended to this configuration (hash {config_hash(saved)} at "
            f"step {step}); only more steps or a learning-rate decay starting after step {step} may differ"
        )
    if (out / "checkpoint.pt").exists():
        raise ValueError(f"{out} already holds a run; extend only into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("best.pt", "pretrain.pt", "log.jsonl"):
        if (src / name).exists():
            tmp = out / f".{name}.tmp"
            shutil.copyfile(src / name, tmp)
            os.replace(tmp, out / name)
    atomic_write_text(json.dumps(to_dict(cfg), indent=2) + "\n", out / "config.json")
    note = {"from": str(src), "step": step, "best": ckpt["best"]}
    atomic_write_text(json.dumps(note, indent=2) + "\n", out / "extended.json")
    ckpt["config"] = to_dict(cfg)
    atomic_save(ckpt, out / "checkpoint.pt")  # last: its presence marks a complete copy
    return out


def fork_pretrained(src: str | os.PathLike, cfg: TrainConfig, out: str | os.PathLike) -> Path:
    """Start the run ``out`` of ``cfg`` from run ``src``'s end-of-pre-training state.

    Exact, not an approximation: before ``pretrain_steps`` the loss is Eq. 6 alone, so e.g. the
    supervised (``no_selftrain``) and ``no_tv`` runs would compute the same weights, memory, Adam
    state and RNG state as ``full`` does; sharing them saves the pre-training. ``best.pt`` is
    carried over when ``src`` still holds the best pre-training step, otherwise model selection
    restarts at the fork (written to ``forked.json``).
    """
    src, out = Path(src), Path(out)
    ckpt = load_checkpoint(src / "pretrain.pt")
    saved = config_from_dict(ckpt["config"])
    if not pretraining_matches(saved, cfg):
        raise ValueError(
            f"{src / 'pretrain.pt'}: pre-trained with another configuration (hash {config_hash(saved)}); "
            f"only runs that differ in self-training settings can share pre-training"
        )
    if (out / "checkpoint.pt").exists():
        raise ValueError(f"{out} already holds a run; fork only into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    step, best = int(ckpt["step"]), dict(ckpt["best"])
    ckpt["config"] = to_dict(cfg)
    best_src = load_checkpoint(src / "best.pt") if (src / "best.pt").exists() else None
    kept_best = best_src is not None and best_src["step"] == best["step"] and best["step"] <= step
    if kept_best:
        best_src["config"] = to_dict(cfg)
        atomic_save(best_src, out / "best.pt")
    else:
        ckpt["best"] = {"step": -1, "psnr": -math.inf}
    log = src / "log.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    kept = [ln for ln in lines if ln.strip() and json.loads(ln).get("step", 0) <= step]
    atomic_write_text("".join(k + "\n" for k in kept), out / "log.jsonl")
    atomic_write_text(json.dumps(to_dict(cfg), indent=2) + "\n", out / "config.json")
    note = {"from": str(src), "step": step, "best_carried_over": kept_best}
    atomic_write_text(json.dumps(note, indent=2) + "\n", out / "forked.json")
    atomic_save(ckpt, out / "checkpoint.pt")  # last: its presence marks a complete fork
    return out


def pretrain_of(run: str | os.PathLike) -> Path | None:
    """The end-of-pre-training checkpoint of a run folder: its own ``pretrain.pt`` or, for a run made
    by :func:`fork_pretrained`, the one of the run it forked (a sibling folder); None when neither is there."""
    run = Path(run)
    if (run / "pretrain.pt").is_file():
        return run / "pretrain.pt"
    note = run / "forked.json"
    if not note.is_file():
        return None
    src = Path(json.loads(note.read_text())["from"])
    for folder in (src, run.parent / src.name):  # as written, or beside this run (runs moved together)
        if (folder / "pretrain.pt").is_file():
            return folder / "pretrain.pt"
    return None


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (identifies a warm-start checkpoint)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def warm_start(model: nn.Module, cfg: TrainConfig) -> None:
    """Load ``cfg.optim.init_from``'s weights and memory into ``model`` (in place, fp32).

    The file must still be the one the run was configured with (``init_sha256``), and must hold
    the same architecture; anything else is a clear error naming the file.
    """
    path = Path(cfg.optim.init_from)
    if cfg.optim.init_sha256 and path.is_file() and file_sha256(path) != cfg.optim.init_sha256:
        raise CheckpointError(f"{path}: the warm-start checkpoint changed since the run was configured (SHA-256 differs)")
    src = load_model(path)  # validated, built from its own configuration, fp32
    if cfg.arch == "moedn" and getattr(src, "cfg", None) != cfg.model:
        raise CheckpointError(f"{path}: warm-start checkpoint holds another MOEDN configuration than this run's")
    try:
        model.load_state_dict(src.state_dict())
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: warm-start weights do not fit this run's network: {str(exc).splitlines()[0]}") from exc
