"""Finished runs kept in the repository without their training state, so a book resumes on a new machine.

A run folder (:mod:`mosslib.method.runs`) is GBs of checkpoints over a book and lives in ``runs/``,
which a fresh checkout lacks. :func:`archive_run` copies what a finished run's tables need - its
configuration, ``done.json``, ``log.jsonl`` and the cached evaluations and memory diagnostics - to
``results/<profile>/runs/<name>/`` (kilobytes), optionally with its selected and pre-trained models
in fp16 (MBs, for the runs a notebook shows images of, and the memory explorer). :func:`restore_run`
puts them back into a run folder, which :func:`~mosslib.method.runs.trained` then treats as finished.

Archived text is machine-independent: the data root reads ``$DATA_ROOT``, the run folder ``$RUN``
(other run folders beside it ``$RUNS/...``), and the configuration hash (which covers the data
root's path) is the *portable* hash of the configuration with ``data.root`` emptied; restoring
substitutes this machine's values back.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import torch

from .checkpoint import ARCHIVED, atomic_write_text, load_checkpoint, load_model, save_model
from .profiles import TrainConfig, config_hash
from .lineage import pretrain_of
from .runs import config_of_run

__all__ = ["ARCHIVED", "PRETRAINED", "archive_name", "archive_run", "restore_run", "portable_hash"]

TEXT_SUFFIXES = (".json", ".jsonl")
WEIGHTS = "best.pt"  # the selected model, fp16
PRETRAINED = "pretrained-model.pt"  # the model at the end of pre-training, fp16 (not named pretrain.pt:
# a fork takes pretrain.pt for a training checkpoint, which this is not)


def portable_hash(cfg: TrainConfig) -> str:
    """:func:`config_hash` of ``cfg`` with ``data.root`` emptied: the same wherever the data lies."""
    return config_hash(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root="")))


def archive_name(run: str | os.PathLike, cfg: TrainConfig) -> str:
    """The run folder's name with its hash replaced by the portable one."""
    name = Path(run).name
    local = config_hash(cfg)
    if not name.endswith(local):
        raise ValueError(f"{run}: the folder name does not end with its configuration's hash {local}")
    return name[: -len(local)] + portable_hash(cfg)


def _forms(path: str | os.PathLike) -> list[str]:
    """The ways a folder may be written (as given, absolute, resolved), longest first."""
    text = str(path)
    forms = {text, os.path.abspath(text), str(Path(text).expanduser().resolve())}
    return sorted((f.rstrip("/") for f in forms if f.rstrip("/") not in ("", ".")), key=len, reverse=True)


def _roots(cfg: TrainConfig) -> list[str]:
    return _forms(cfg.data.root) if cfg.data.root else []


def _to_portable(text: str, run: Path, cfg: TrainConfig) -> str:
    # any path that runs into the run folder's name (absolute or relative) becomes $RUN
    text = re.sub(r'[^"\s]*' + re.escape(run.name), "$RUN", text)
    for form in _forms(run.parent):  # other runs beside it (e.g. the run a fork started from)
        text = text.replace(json.dumps(form + "/")[1:-1], "$RUNS/")
    for form in _roots(cfg):
        text = text.replace(json.dumps(form)[1:-1], "$DATA_ROOT")
    return text.replace(config_hash(cfg), portable_hash(cfg))


def _to_local(text: str, run: Path, cfg: TrainConfig) -> str:
    text = text.replace(portable_hash(cfg), config_hash(cfg))
    text = text.replace("$RUNS/", json.dumps(str(run.parent) + "/")[1:-1])
    text = text.replace("$RUN", json.dumps(str(run))[1:-1])
    return text.replace("$DATA_ROOT", json.dumps(cfg.data.root)[1:-1])


def _entry(archive: Path, cfg: TrainConfig, run: Path) -> Path:
    return Path(archive) / archive_name(run, cfg)


def archive_run(run: str | os.PathLike, archive: str | os.PathLike, weights: bool = False) -> Path:
    """Copy a finished run's text files (and, with ``weights``, its ``best.pt`` model in fp16, and for
    a self-training run its pre-trained model) to ``archive/<portable name>/``; returns that folder.
    Files already there are refreshed; weights archived before stay."""
    run = Path(run)
    if not (run / "done.json").is_file():
        raise FileNotFoundError(f"{run}: not a finished run (no done.json), so there is nothing to archive")
    cfg = config_of_run(run)
    dest = _entry(Path(archive), cfg, run)
    dest.mkdir(parents=True, exist_ok=True)
    if weights:
        if cfg.arch != "moedn":
            raise ValueError(f"{run}: only MOEDN runs are archived with weights (this is {cfg.arch})")
        # a self-training run's pre-trained model: its own pretrain.pt, the one of the run it forked, or
        # (restored) the archived copy; a supervised run's pre-training is its whole training: none
        pretrained = (pretrain_of(run) or run / PRETRAINED) if cfg.loss.self_train else None
        for src, name in ((run / WEIGHTS, WEIGHTS), (pretrained, PRETRAINED)):
            if src is None or not src.is_file() or (dest / name).is_file():  # archived once: kept as it is
                continue
            ckpt = load_checkpoint(src)
            if ckpt.get("kind") == "model":  # a restored run: already an archived fp16 model
                shutil.copyfile(src, dest / name)
            else:
                save_model(load_model(src), dest / name, dtype=torch.float16, step=int(ckpt.get("step", -1)))
    names = []
    # the weights first and done.json last (as in restore_run): an entry caught half-written is not
    # taken for a finished run
    for src in sorted(run.iterdir(), key=lambda p: (p.name == "done.json", p.name)):
        if src.is_file() and src.suffix in TEXT_SUFFIXES and src.name != ARCHIVED:
            name = src.name.replace(config_hash(cfg), portable_hash(cfg))
            atomic_write_text(_to_portable(src.read_text(), run, cfg), dest / name)
            names.append(name)
    names += [w for w in (WEIGHTS, PRETRAINED) if (dest / w).is_file()]
    note = {"run": archive_name(run, cfg), "files": names, "weights": WEIGHTS in names,
            "restore": "mosslib.method.archive.restore_run (the book does it for a run it needs)"}
    atomic_write_text(json.dumps(note, indent=2) + "\n", dest / ARCHIVED)
    return dest


def restore_run(cfg: TrainConfig, run: str | os.PathLike, archive: str | os.PathLike) -> bool:
    """Fill the run folder ``run`` of ``cfg`` from the archive when it holds that run and the folder
    has no finished run of its own; True when it did."""
    run = Path(run)
    src = _entry(Path(archive), cfg, run)
    if (run / "done.json").exists() or not (src / "done.json").is_file():
        return False
    run.mkdir(parents=True, exist_ok=True)
    # done.json last: a restore cut short leaves an unfinished folder, which trains, not a finished one
    for path in sorted(src.iterdir(), key=lambda p: (p.name == "done.json", p.name)):
        if path.suffix in TEXT_SUFFIXES and path.name != ARCHIVED:
            name = path.name.replace(portable_hash(cfg), config_hash(cfg))
            atomic_write_text(_to_local(path.read_text(), run, cfg), run / name)
        elif path.name in (WEIGHTS, PRETRAINED):
            shutil.copyfile(path, run / path.name)
    note = json.loads((src / ARCHIVED).read_text()) if (src / ARCHIVED).is_file() else {}
    note["from"] = str(src)
    atomic_write_text(json.dumps(note, indent=2) + "\n", run / ARCHIVED)
    return True
