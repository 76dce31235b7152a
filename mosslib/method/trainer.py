"""The trainer: a run folder, a model, its teacher and optimiser, and the loop that trains them.

The MOSS step is in :mod:`mosslib.method.step`, the choice of ``best.pt`` in
:mod:`mosslib.method.selection`, the folder's lock, log and time limit in
:mod:`mosslib.method.rundir`; resuming, extending, forking and warm starts in
:mod:`mosslib.method.lineage`. During the first ``pretrain_steps`` steps the loss is Eq. 6 alone;
at the switch ``pretrain.pt`` is written. A run can warm-start from a model checkpoint
(``optim.init_from``): its weights and memory replace the initialisation and the teacher starts
equal to the student. Resuming from ``checkpoint.pt`` reproduces an uninterrupted run exactly
(CPU, deterministic mode). Model selection uses a validation split carved from the labeled
training data, never the test set.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
import tqdm.auto  # looked up at each run: the book runner redirects its bars (apps.book)

from ..data.images import to_batch, to_uint8_image
from ..data.sampling import Prefetcher
from ..measure.metrics import psnr, ssim
from ..model.baselines import build_model as build_baseline
from ..model.config import to_dict
from ..model import fast
from ..model.network import MOEDN
from . import step as moss
from .checkpoint import FORMAT, VERSION, atomic_save, atomic_write_text, load_checkpoint, run_metadata
from .lineage import check_resume, warm_start
from .profiles import TrainConfig, config_from_dict, config_hash
from .rundir import Deadline, RunLock, append_log, trim_log
from .selection import BELOW_FLOOR, SelectionPolicy
from .teacher import Teacher
from .trainset import build_training_data

__all__ = ["Trainer", "TrainingDiverged", "build_model", "rank", "world"]

TrainingDiverged = moss.TrainingDiverged


def build_model(cfg: TrainConfig) -> nn.Module:
    """MOEDN from ``cfg.model``, or a baseline peer (``cfg.arch``) for supervised runs."""
    return MOEDN(cfg.model) if cfg.arch == "moedn" else build_baseline(cfg.arch)


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class Trainer:
    """A run folder, a model, its teacher and optimiser; :meth:`fit` trains to ``optim.steps``."""

    def __init__(self, cfg: TrainConfig, out: str | os.PathLike, device: str = "cpu", quiet: bool = False,
                 prefetch: bool | None = None, data=None):
        """``prefetch``: make batches on a thread while the accelerator runs (default: on CUDA; on
        a CPU the thread would compete with the compute threads); the same results either way.
        ``data``: the training data already built for ``cfg`` (``build_training_data``), to share it."""
        self.cfg, self.out, self.device, self.quiet = cfg, Path(out), torch.device(device), quiet
        self.prefetch = self.device.type == "cuda" if prefetch is None else bool(prefetch)
        self._prefetcher = None
        self._val_seconds = 0.0  # the last validation's duration: the final one must fit before the deadline
        if self.device.type == "cuda":  # fixed crop sizes: let cuDNN pick its fastest kernels once
            torch.backends.cudnn.benchmark = True
        self.rank, self.world = rank(), world()
        self.selection = SelectionPolicy.of(cfg)
        torch.manual_seed(cfg.seed)
        self.data = data if data is not None else build_training_data(cfg, rank=self.rank, world=self.world)
        self.model = build_model(cfg).to(self.device)
        # memory items are kept identical by the all-reduce in RainMemory.update_, not broadcast
        self.student = DDP(self.model, broadcast_buffers=False) if self.world > 1 else self.model
        self.teacher = Teacher(self.model, cfg.optim.teacher_decay).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr)
        self.step = 0
        self.best = {"step": -1, "psnr": -math.inf}
        # who trained it: recorded when this process starts (the code it loaded), not at each save;
        # one segment per start, so a resumed run lists every commit that trained it
        self.meta = run_metadata(cfg.seed, self.device)
        self.segments = [{"from_step": 0, **self.meta}]
        if cfg.optim.precision == "bf16" and not fast.bf16_supported(self.device):
            warnings.warn(f"--precision bf16 on a {self.device.type} without bf16 kernels: autocast still works, "
                          "but expect it to be slower than fp32", RuntimeWarning, stacklevel=2)

    # -- persistence ---------------------------------------------------------------------
    def state(self, net: str = "student") -> dict:
        """The training state; ``net="teacher"`` stores the EMA teacher's weights as ``model`` (a
        ``best.pt`` whose candidate was the teacher, :attr:`SelectionPolicy.teacher`)."""
        return {
            "format": FORMAT, "version": VERSION, "kind": "train", "config": to_dict(self.cfg),
            "model": (self.teacher.net if net == "teacher" else self.model).state_dict(),
            "teacher": self.teacher.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step, "best": dict(self.best), "rng": {"torch": torch.get_rng_state()},
            "meta": self.meta, "segments": self.segments,
            "val_seconds": self._val_seconds,  # the last validation's duration (--time-limit after a resume)
        }

    def save(self, name: str = "checkpoint.pt", net: str = "student") -> Path:
        path = self.out / name
        if self.rank == 0:
            atomic_save(self.state(net), path)
        return path

    def load(self, path: str | os.PathLike) -> None:
        ckpt = load_checkpoint(path)
        check_resume(config_from_dict(ckpt["config"]), int(ckpt["step"]), self.cfg, path)
        self.model.load_state_dict(ckpt["model"])
        self.teacher.net.load_state_dict(ckpt["teacher"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.step = int(ckpt["step"])
        self.best = dict(ckpt["best"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        self._val_seconds = float(ckpt.get("val_seconds", 0.0))
        # older checkpoints hold no segments: their meta was recorded at their last save
        earlier = ckpt.get("segments") or ([{"from_step": 0, **ckpt["meta"]}] if ckpt.get("meta") else [])
        self.segments = [*earlier, {"from_step": self.step, **self.meta}]

    # -- one step -----------------------------------------------------------------------
    def _make_batch(self, step: int) -> tuple:
        """(x_l, y_l, x_u or None) of ``step`` on the CPU; each rank reads its own batches:
        sampler step = step * world + rank (epoch-ordered)."""
        k = step * self.world + self.rank
        x_l, y_l = self.data.labeled.batch(k)
        x_u = self.data.unlabeled.batch(k) if moss.self_trains(self.cfg, step, self.data.unlabeled is not None) else None
        if self.prefetch and self.device.type == "cuda":  # page-locked: the copy overlaps compute
            x_l, y_l, x_u = (t.pin_memory() if t is not None else None for t in (x_l, y_l, x_u))
        return x_l, y_l, x_u

    def train_step(self, batch: tuple | None = None) -> dict:
        """One optimiser step at ``self.step`` (:mod:`mosslib.method.step`); returns the loss terms
        as floats. ``batch``: the step's (x_l, y_l, x_u or None), made beforehand (default: made or
        prefetched here)."""
        cfg, step = self.cfg, self.step
        if batch is None:
            batch = self._prefetcher.get(step) if self._prefetcher is not None else self._make_batch(step)
        x_l, y_l, x_u = (t.to(self.device, non_blocking=True) if t is not None else None for t in batch)
        self_train = moss.self_trains(cfg, step, self.data.unlabeled is not None)
        self.student.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.optim.precision == "bf16"):
            terms_t = moss.moss_losses(self.student, self.teacher, cfg, step, self.rank, x_l, y_l, x_u if self_train else None)
        terms = {k: v.item() for k, v in terms_t.items()}
        moss.check_finite(terms, step, self.out / "checkpoint.pt")
        moss.optimise(self.model, self.optimizer, terms_t["loss"], cfg, step)
        self.step += 1
        moss.update_teacher(self.teacher, self.model, self.step, cfg)
        terms["stage"] = "self-train" if self_train else "pretrain"
        return terms

    # -- validation ---------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, net: str = "student") -> dict:
        """PSNR/SSIM (RGB convention) of the student (or its EMA teacher) on the validation split
        (mean over all pairs, and per group when the selection policy adds procedurally rained
        pairs). Always in fp32, as ``evaluate`` does: a bf16 run is selected by the same numbers
        as an fp32 one."""
        model = self.teacher.net if net == "teacher" else self.model
        self.model.eval()
        ps, ss = [], []
        for rainy, clean in self.data.val:
            y = model(to_batch(rainy).to(self.device)).float()
            pred = to_uint8_image(y[0].cpu())
            ps.append(psnr(pred, clean))
            ss.append(ssim(pred, clean) if min(clean.shape[:2]) >= 7 else float("nan"))
        self.model.train()
        finite = [p for p in ps if math.isfinite(p)] or [100.0]
        out = {"val_psnr": float(np.mean(finite)), "val_ssim": float(np.nanmean(ss)) if ss else float("nan"), "val_n": len(ps)}
        groups = self.data.val_groups
        if len(set(groups)) > 1:  # extra rained groups: the mean over all pairs selects; each group is logged too
            for g in dict.fromkeys(groups):
                gp = [p for p, gg in zip(ps, groups) if gg == g and math.isfinite(p)]
                out[f"val_psnr_{g}"] = float(np.mean(gp)) if gp else float("nan")
        return out

    def select(self, record: dict) -> None:
        """Validate (the teacher too when the policy says so), log it into ``record``, and keep
        ``best.pt`` when the policy's candidate beats the best so far."""
        record.update(self.validate())
        teacher = None
        if self.selection.teacher:
            teacher = self.validate("teacher")
            record.update({f"teacher_{k}": v for k, v in teacher.items()})
        candidate = self.selection.candidate(self.step, record, teacher)
        if candidate is None:
            record[BELOW_FLOOR] = True
        elif candidate["psnr"] > self.best["psnr"]:
            self.best = candidate
            self.save("best.pt", net=candidate.get("net", "student"))

    # -- the loop -----------------------------------------------------------------------
    def fit(self, resume: bool = True, stop_at: int | None = None, time_limit: float | None = None) -> dict:
        """Train to ``optim.steps`` (or stop early at ``stop_at``, e.g. to test resuming, or within
        ``time_limit`` seconds of this call: when less than the last validation's duration is
        left, the step in hand is validated and checkpointed, and a resume continues the same
        schedule); returns the summary, also written to ``done.json`` when the run is complete
        (``summary["stopped"]`` says why it stopped early)."""
        self.out.mkdir(parents=True, exist_ok=True)
        with RunLock(self.out, active=self.rank == 0):
            return self._fit(resume, stop_at, Deadline(time_limit, self.device, self.world))

    def _start(self, resume: bool) -> None:
        cfg = self.cfg
        if resume and (self.out / "checkpoint.pt").exists():
            self.load(self.out / "checkpoint.pt")
            if self.rank == 0:
                trim_log(self.out, self.step)
            return
        if cfg.optim.init_from:  # warm start: weights and memory from a checkpoint, teacher = student
            warm_start(self.model, cfg)
            self.teacher.reset(self.model)
        if self.rank == 0:
            atomic_write_text(json.dumps(to_dict(cfg), indent=2) + "\n", self.out / "config.json")
            (self.out / "log.jsonl").unlink(missing_ok=True)

    def _fit(self, resume: bool, stop_at: int | None, deadline: Deadline) -> dict:
        cfg = self.cfg
        self._start(resume)
        if self.rank == 0 and not self.quiet:
            print(f"[mosslib train] {self.out}: {self.data.describe()}", file=sys.stderr)
        bar = tqdm.auto.tqdm(total=cfg.optim.steps, initial=self.step, disable=self.quiet or self.rank != 0,
                   desc=f"{cfg.profile}/{cfg.ablation}", dynamic_ncols=True)
        end = cfg.optim.steps if stop_at is None else min(stop_at, cfg.optim.steps)
        if self.prefetch and self.step < end:
            self._prefetcher = Prefetcher(self._make_batch, self.step)
        try:
            stopped = self._loop(end, bar, deadline)
        finally:
            if self._prefetcher is not None:
                self._prefetcher.close()
                self._prefetcher = None
        bar.close()
        summary = {"config": to_dict(cfg), "config_hash": config_hash(cfg), "steps": self.step, "best": self.best,
                   "data": self.data.counts, "meta": self.meta, "segments": self.segments}
        if stopped:
            summary["stopped"] = stopped
        if self.best["step"] < 0 and self.selection.min_labeled:
            warnings.warn(self.selection.nothing_chosen(self.out), RuntimeWarning, stacklevel=2)
        if self.rank == 0 and self.step >= cfg.optim.steps:
            atomic_write_text(json.dumps(summary, indent=2) + "\n", self.out / "done.json")
        return summary

    def _loop(self, end: int, bar, deadline: Deadline) -> str | None:
        """Steps up to ``end``: log, validate (and keep ``best.pt``), checkpoint; returns
        ``"time_limit"`` when it stopped there first (that step validated and checkpointed)."""
        o = self.cfg.optim
        t0, n0 = time.perf_counter(), self.step
        while self.step < end:
            terms = self.train_step()
            bar.update(1)
            rate = (self.step - n0) * self.data.labeled.batch_size / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{terms['loss']:.4f}", stage=terms["stage"], img_s=f"{rate:.1f}")
            record = {"step": self.step, **terms, "images_per_s": rate}
            if self.step == o.pretrain_steps and self.rank == 0:
                self.save("pretrain.pt")
            late = self.step < end and deadline.near(self._val_seconds)
            if self.step % o.val_every == 0 or self.step == o.steps or late:
                v0 = time.monotonic()
                self.select(record)
                self._val_seconds = time.monotonic() - v0
                if self.rank == 0:
                    append_log(self.out, record)
            elif self.step % o.log_every == 0 and self.rank == 0:
                append_log(self.out, record)
            if self.step % o.ckpt_every == 0 or self.step in (o.steps, end) or late:
                self.save("checkpoint.pt")
            if late:
                return "time_limit"
        return None
