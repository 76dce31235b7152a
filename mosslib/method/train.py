"""Supervised pre-training and MOSS self-training (paper section 3.2 and 4.2).

One optimiser step (after pre-training):

1. labeled crops (x_l, y_l) and unlabeled crops x_u; pseudo-labels y_p = f_xi(x_u) (teacher);
2. noisy pairs (x_n, y_hat) from Eq. 8-9 (:func:`mosslib.method.losses.noisy_samples`);
3. one student forward on ``cat(x_l, x_n)`` - so the memory takes one Eq. 3 update per step,
   from all rainy inputs of the step - then
   ``L = l1 * L1(f(x_l), y_l) + l2 * L1(f(x_n), y_hat) + l3 * TV(f(x_n))`` (Eq. 12);
4. Adam step, then the teacher's EMA update (Eq. 7).

During the first ``pretrain_steps`` steps the loss is ``l1 * L_SU`` alone (Eq. 6) and the
teacher is not used; at the switch it is re-initialised from the student and ``pretrain.pt``
is written. Choices the paper leaves open are written down in :mod:`mosslib.method.teacher`,
:mod:`mosslib.method.losses` and the README.

A run can warm-start from a model checkpoint (``optim.init_from``, ``train --init-from``): its
weights and memory replace the initialisation, the teacher starts equal to the student, and the
file's SHA-256 is part of the run's configuration (:func:`mosslib.method.lineage.warm_start`; resuming,
extending and forking runs are in :mod:`mosslib.method.lineage` too).

Every random draw of a step comes from generators seeded by ``(seed, step, rank)``, so resuming
from a checkpoint reproduces an uninterrupted run exactly (CPU, deterministic mode).
Model selection uses a validation split carved from the labeled training data, never the test
set: ``best.pt`` is the step with the highest validation PSNR (RGB convention).
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

from . import losses
from .checkpoint import FORMAT, VERSION, CheckpointError, atomic_save, atomic_write_text, load_checkpoint, run_metadata
from ..model.config import to_dict
from .lineage import check_resume, extend_run, file_sha256, fork_pretrained, lr_at, warm_start
from ..measure.metrics import psnr, ssim
from ..model.network import MOEDN
from .profiles import ABLATIONS, PROFILES, TrainConfig, config_from_dict, config_hash, make_config
from .teacher import Teacher

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")  # Trainer(memory_format=...), train --memory-format

__all__ = ["Trainer", "TrainingDiverged", "build_model", "add_arguments", "run"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; the last good checkpoint is kept."""


def build_model(cfg: TrainConfig) -> nn.Module:
    """MOEDN from ``cfg.model``, or a baseline peer (``cfg.arch``) for supervised runs."""
    if cfg.arch == "moedn":
        return MOEDN(cfg.model)
    from ..model.baselines import build_model as build_baseline

    return build_baseline(cfg.arch)


def _step_seed(seed: int, step: int, rank: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank, stream]).generate_state(1)[0])


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class Trainer:
    """A run folder, a model, its teacher and optimiser; :meth:`fit` trains to ``optim.steps``."""

    def __init__(self, cfg: TrainConfig, out: str | os.PathLike, device: str = "cpu", quiet: bool = False,
                 prefetch: bool | None = None, memory_format: str = "auto", data=None):
        """``memory_format``: the activations' layout, ``"auto"`` (channels_last on CPU, contiguous
        elsewhere), ``"channels_last"`` (on CUDA the weights too) or ``"contiguous"``; the layout
        changes speed, not what is computed (``train --time-layouts`` measures it). ``data``: the
        training data already built for ``cfg`` (``build_training_data``), to share it."""
        from .trainset import build_training_data

        self.cfg, self.out, self.device, self.quiet = cfg, Path(out), torch.device(device), quiet
        # batches made on a thread while the accelerator runs (default: on CUDA; on a CPU the
        # thread would compete with the compute threads); results are the same either way
        self.prefetch = self.device.type == "cuda" if prefetch is None else bool(prefetch)
        self._prefetcher = None
        self._deadline: float | None = None  # time.monotonic() by which fit() ends (--time-limit)
        self._val_seconds = 0.0  # the last validation's duration: the final one must fit before the deadline
        if self.device.type == "cuda":  # fixed crop sizes: let cuDNN pick its fastest kernels once
            torch.backends.cudnn.benchmark = True
        self.rank, self.world = _rank(), _world()
        torch.manual_seed(cfg.seed)
        self.data = data if data is not None else build_training_data(cfg, rank=self.rank, world=self.world)
        self.model = build_model(cfg).to(self.device)
        self._set_memory_format(memory_format)
        self.student = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # Memory items are kept identical by the all-reduce in RainMemory.update_, not broadcast.
            self.student = DDP(self.model, broadcast_buffers=False)
        self.teacher = Teacher(self.model, cfg.optim.teacher_decay).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr)
        self.step = 0
        self.best = {"step": -1, "psnr": -math.inf}
        self.history: list[dict] = []
        # who trained it: recorded when this process starts (the code it loaded), not at each save;
        # one segment per start, so a resumed run lists every commit that trained it
        self.meta = {**run_metadata(cfg.seed, self.device), "memory_format": memory_format}
        self.segments = [{"from_step": 0, **self.meta}]
        if cfg.optim.precision == "bf16":
            from ..model.fast import bf16_supported

            if not bf16_supported(self.device):
                warnings.warn(
                    f"--precision bf16 on a {self.device.type} without bf16 kernels: autocast still works, "
                    "but expect it to be slower than fp32 (bf16 pays on AVX-512 BF16 / AMX CPUs and recent GPUs)",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _set_memory_format(self, memory_format: str) -> None:
        if memory_format not in MEMORY_FORMATS:
            raise ValueError(f"memory format must be one of {', '.join(MEMORY_FORMATS)}, got {memory_format!r}")
        self.memory_format = memory_format
        if memory_format == "auto":
            return
        if not hasattr(self.model, "channels_last"):
            raise ValueError(f"--memory-format {memory_format}: only MOEDN has a layout switch, not {type(self.model).__name__}")
        self.model.channels_last = memory_format == "channels_last"
        if self.model.channels_last and self.device.type == "cuda":  # cuDNN's NHWC kernels want NHWC weights
            self.model.to(memory_format=torch.channels_last)

    # -- persistence ---------------------------------------------------------------------
    def state(self, net: str = "student") -> dict:
        """The training state; ``net="teacher"`` stores the EMA teacher's weights as ``model`` (a
        ``best.pt`` whose candidate was the teacher, ``optim.select_teacher``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "kind": "train",
            "config": to_dict(self.cfg),
            "model": (self.teacher.net if net == "teacher" else self.model).state_dict(),
            "teacher": self.teacher.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best": dict(self.best),
            "rng": {"torch": torch.get_rng_state()},
            "meta": self.meta,
            "segments": self.segments,
            "val_seconds": self._val_seconds,  # the last validation's duration (--time-limit after a resume)
        }

    def save(self, name: str = "checkpoint.pt", net: str = "student") -> Path:
        path = self.out / name
        if self.rank == 0:
            atomic_save(self.state(net), path)
        return path

    def load(self, path: str | os.PathLike) -> None:
        ckpt = load_checkpoint(path)
        saved = config_from_dict(ckpt["config"])
        check_resume(saved, int(ckpt["step"]), self.cfg, path)
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
    def _autocast(self):
        enabled = self.cfg.optim.precision == "bf16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _self_trains(self, step: int) -> bool:
        cfg = self.cfg
        return cfg.loss.self_train and step >= cfg.optim.pretrain_steps and self.data.unlabeled is not None

    def _make_batch(self, step: int) -> tuple:
        """(x_l, y_l, x_u or None) of ``step`` on the CPU; each rank reads its own batches:
        sampler step = step * world + rank (epoch-ordered)."""
        k = step * self.world + self.rank
        x_l, y_l = self.data.labeled.batch(k)
        x_u = self.data.unlabeled.batch(k) if self._self_trains(step) else None
        if self.prefetch and self.device.type == "cuda":  # page-locked: the copy overlaps compute
            x_l, y_l, x_u = (t.pin_memory() if t is not None else None for t in (x_l, y_l, x_u))
        return x_l, y_l, x_u

    def train_step(self, batch: tuple | None = None) -> dict:
        """One optimiser step at ``self.step``; returns the loss terms as floats. ``batch``: the
        step's (x_l, y_l, x_u or None), made beforehand (default: made or prefetched here)."""
        cfg, step = self.cfg, self.step
        if batch is None:
            batch = self._prefetcher.get(step) if self._prefetcher is not None else self._make_batch(step)
        x_l, y_l, x_u = (t.to(self.device, non_blocking=True) if t is not None else None for t in batch)
        self_train = self._self_trains(step)
        self.student.train()
        with self._autocast():
            if self_train:
                y_p = self.teacher(x_u).float()
                gen = torch.Generator().manual_seed(_step_seed(cfg.seed, step, self.rank, 2))
                x_n, y_hat, _ = losses.noisy_samples(
                    x_l, y_l, x_u, y_p, len(x_l), gen, (cfg.loss.alpha_min, cfg.loss.alpha_max)
                )
                out = self.student(torch.cat([x_l, x_n])).float()
                out_l, out_n = out[: len(x_l)], out[len(x_l) :]
                l_su, l_un, l_tv = losses.l1(out_l, y_l), losses.l1(out_n, y_hat), losses.tv(out_n)
            else:
                out_l = self.student(x_l).float()
                l_su = losses.l1(out_l, y_l)
                l_un = l_tv = torch.zeros((), device=self.device)
        w = cfg.loss
        loss = w.lambda_su * l_su + w.lambda_un * l_un + w.lambda_tv * l_tv
        terms = {"loss": loss.item(), "l_su": l_su.item(), "l_un": l_un.item(), "l_tv": l_tv.item()}
        if not all(math.isfinite(v) for v in terms.values()):
            raise TrainingDiverged(
                f"non-finite loss at step {step}: {terms}; stopped, the last good checkpoint "
                f"({self.out / 'checkpoint.pt'}) is kept"
            )
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(cfg.optim, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.optimizer.step()
        self.step += 1
        if self.step == cfg.optim.pretrain_steps:
            self.teacher.reset(self.model)  # xi <- theta at the end of pre-training
        elif self.step > cfg.optim.pretrain_steps:
            self.teacher.update(self.model)  # Eq. 7
        terms["stage"] = "self-train" if self_train else "pretrain"
        return terms

    # -- validation ---------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, net: str = "student") -> dict:
        """PSNR/SSIM (RGB convention) of the student (or its EMA teacher) on the validation split
        (mean over all pairs, and per group when ``data.val_extra_rain`` adds procedurally rained
        pairs). Always in fp32, as ``evaluate`` does: a bf16 run is selected by the same numbers
        as an fp32 one."""
        from ..data.sampling import to_tensor, to_uint8_image

        model = self.teacher.net if net == "teacher" else self.model
        self.model.eval()
        ps, ss = [], []
        for rainy, clean in self.data.val:
            x = to_tensor(rainy).unsqueeze(0).to(self.device)
            y = model(x).float()
            pred = to_uint8_image(y[0].cpu())
            ps.append(psnr(pred, clean))
            ss.append(ssim(pred, clean) if min(clean.shape[:2]) >= 7 else float("nan"))
        self.model.train()
        finite = [p for p in ps if math.isfinite(p)] or [100.0]
        out = {"val_psnr": float(np.mean(finite)), "val_ssim": float(np.nanmean(ss)) if ss else float("nan"), "val_n": len(ps)}
        groups = self.data.val_groups
        if len(set(groups)) > 1:  # val_extra_rain: the mean over all pairs selects; each group is logged too
            for g in dict.fromkeys(groups):
                gp = [p for p, gg in zip(ps, groups) if gg == g and math.isfinite(p)]
                out[f"val_psnr_{g}"] = float(np.mean(gp)) if gp else float("nan")
        return out

    # -- the loop -----------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if self.rank != 0:
            return
        with open(self.out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def _trim_log(self) -> None:
        """After a resume, drop log lines written after the checkpoint's step."""
        path = self.out / "log.jsonl"
        if self.rank != 0 or not path.exists():
            return
        keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= self.step]
        atomic_write_text("".join(k + "\n" for k in keep), path)

    def _lock(self) -> None:
        """One trainer per run folder: a second process gets a clear error, not a corrupted run."""
        self._lock_fh = None
        if self.rank != 0:
            return
        import fcntl

        fh = open(self.out / ".lock", "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise RuntimeError(f"{self.out}: another process is training into this folder") from None
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh

    def fit(self, resume: bool = True, stop_at: int | None = None, time_limit: float | None = None) -> dict:
        """Train to ``optim.steps`` (or stop early at ``stop_at``, e.g. to test resuming, or within
        ``time_limit`` seconds of this call: when less than the last validation's duration is
        left, the step in hand is validated and checkpointed, and a resume continues the same
        schedule); returns the summary, also written to ``done.json``
        when the run is complete (``summary["stopped"]`` says why it stopped early)."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock()
        self._deadline = None if time_limit is None else time.monotonic() + float(time_limit)
        try:
            return self._fit(resume, stop_at)
        finally:
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None

    def _fit(self, resume: bool, stop_at: int | None) -> dict:
        cfg = self.cfg
        ckpt_path = self.out / "checkpoint.pt"
        if resume and ckpt_path.exists():
            self.load(ckpt_path)
            self._trim_log()
        else:
            if cfg.optim.init_from:  # warm start: weights and memory from a checkpoint, teacher = student
                warm_start(self.model, cfg)
                self.teacher.reset(self.model)
            if self.rank == 0:
                atomic_write_text(json.dumps(to_dict(cfg), indent=2) + "\n", self.out / "config.json")
                (self.out / "log.jsonl").unlink(missing_ok=True)
        if self.rank == 0 and not self.quiet:
            print(f"[mosslib train] {self.out}: {self.data.describe()}", file=sys.stderr)
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.optim.steps,
            initial=self.step,
            disable=self.quiet or self.rank != 0,
            desc=f"{cfg.profile}/{cfg.ablation}",
            dynamic_ncols=True,
        )
        t0, n0 = time.perf_counter(), self.step
        end = cfg.optim.steps if stop_at is None else min(stop_at, cfg.optim.steps)
        if self.prefetch and self.step < end:
            from ..data.sampling import Prefetcher

            self._prefetcher = Prefetcher(self._make_batch, self.step)
        stopped = None
        try:
            stopped = self._loop(end, bar, t0, n0)
        finally:
            if self._prefetcher is not None:
                self._prefetcher.close()
                self._prefetcher = None
        bar.close()
        summary = {
            "config": to_dict(cfg),
            "config_hash": config_hash(cfg),
            "steps": self.step,
            "best": self.best,
            "data": self.data.counts,
            "meta": self.meta,
            "segments": self.segments,
        }
        if stopped:
            summary["stopped"] = stopped
        if self.best["step"] < 0 and cfg.optim.select_min_labeled:
            warnings.warn(f"{self.out}: no validation reached optim.select_min_labeled={cfg.optim.select_min_labeled} dB "
                          "on the labeled pairs; no best.pt was written", RuntimeWarning, stacklevel=2)
        if self.rank == 0 and self.step >= cfg.optim.steps:
            atomic_write_text(json.dumps(summary, indent=2) + "\n", self.out / "done.json")
        return summary

    def _out_of_time(self) -> bool:
        """Whether the time limit is less than one validation away (the last one's duration, with
        its saves; rank 0 decides, so all ranks stop at the same step)."""
        if self._deadline is None:
            return False
        late = time.monotonic() + self._val_seconds >= self._deadline
        if self.world > 1:
            flag = torch.tensor([float(late)], device=self.device)
            dist.broadcast(flag, 0)
            late = bool(flag.item())
        return late

    def _loop(self, end: int, bar, t0: float, n0: int) -> str | None:
        """Steps up to ``end``: log, validate (and keep ``best.pt``), checkpoint; returns
        ``"time_limit"`` when it stopped there first (that step validated and checkpointed)."""
        cfg = self.cfg
        while self.step < end:
            terms = self.train_step()
            bar.update(1)
            rate = (self.step - n0) * self.data.labeled.batch_size / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{terms['loss']:.4f}", stage=terms["stage"], img_s=f"{rate:.1f}")
            record = {"step": self.step, **terms, "images_per_s": rate}
            if self.step == cfg.optim.pretrain_steps and self.rank == 0:
                self.save("pretrain.pt")
            late = self.step < end and self._out_of_time()
            if self.step % cfg.optim.val_every == 0 or self.step == cfg.optim.steps or late:
                v0 = time.monotonic()
                record.update(self.validate())
                teacher = None
                if cfg.optim.select_teacher:  # the EMA teacher is a candidate too (as in mean-teacher practice)
                    teacher = self.validate("teacher")
                    record.update({f"teacher_{k}": v for k, v in teacher.items()})
                candidate = pick_candidate(self.step, record, teacher, cfg.optim.select_min_labeled)
                if candidate is None:
                    record["below_select_min_labeled"] = True
                elif candidate["psnr"] > self.best["psnr"]:
                    self.best = candidate
                    self.save("best.pt", net=candidate.get("net", "student"))
                self._log(record)
                self._val_seconds = time.monotonic() - v0
            elif self.step % cfg.optim.log_every == 0:
                self._log(record)
            if self.step % cfg.optim.ckpt_every == 0 or self.step in (cfg.optim.steps, end) or late:
                self.save("checkpoint.pt")
            if late:
                return "time_limit"
        return None


def pick_candidate(step: int, student: dict, teacher: dict | None = None, min_labeled: float = 0.0) -> dict | None:
    """One validation's selection candidate: the higher validation mean of the student and (when
    validated) the EMA teacher, the student on ties, among those whose labeled group
    (``val_psnr_labeled``, else all pairs) reaches ``min_labeled``; None when neither does."""
    options = [("student", student)] + ([("teacher", teacher)] if teacher is not None else [])
    eligible = [(n, r) for n, r in options if r.get("val_psnr_labeled", r["val_psnr"]) >= min_labeled]
    if not eligible:
        return None
    name, r = max(eligible, key=lambda o: o[1]["val_psnr"])  # max keeps the first of equals: the student
    candidate = {"step": step, "psnr": r["val_psnr"], "ssim": r["val_ssim"]}
    return {**candidate, "net": name} if teacher is not None else candidate


# -- command line -----------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    p.add_argument("--config", default="full", choices=sorted(ABLATIONS), help="ablation of Table 4 (default: full MOSS)")
    p.add_argument("--model", default="moedn", help="architecture: moedn (default) or a baseline such as prenet")
    p.add_argument("--data", default=None, help="data root (default: $DATA_ROOT for cpu/paper, embedded data otherwise)")
    p.add_argument("--unlabeled", default=None, help="folder of unlabeled rainy images (D_U), overrides the profile's")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (default: runs/<profile>/<config>-<hash>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument(
        "--fork-from", default=None, metavar="RUN",
        help="start from RUN/pretrain.pt (a run that differs only in self-training settings) instead of pre-training again",
    )
    p.add_argument(
        "--extend-from", default=None, metavar="RUN",
        help="start from RUN/checkpoint.pt (the same configuration with fewer steps) to train it longer; RUN is kept",
    )
    p.add_argument(
        "--init-from", default=None, metavar="CKPT",
        help="warm start: begin from CKPT's weights and memory (a model checkpoint such as the shipped one, or a run's best.pt) "
             "with a fresh optimiser; combine with --set optim.pretrain_steps=0 to self-train from the first step",
    )
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. optim.lr=2e-4")
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms(True)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--memory-format", choices=MEMORY_FORMATS, default="auto",
                   help="activation layout: auto (channels_last on CPU, contiguous on CUDA), channels_last or contiguous; "
                        "speed only, the same training (default %(default)s)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop within SECONDS of training (counted from the first step, start-up excluded): when less "
                        "than one validation's time is left, the step in hand is validated and checkpointed, the exit "
                        "status is 0, and --resume continues the same schedule")
    p.add_argument("--time-layouts", type=int, default=None, metavar="N",
                   help="do not train: time N steps of this configuration in each layout, side by side, print seconds "
                        "per step as JSON and exit (no run folder is written)")
    p.add_argument("--time-batches", default=None, metavar="B1,B2,...",
                   help="do not train: time --time-steps steps of this configuration at each batch size, side by side, "
                        "print seconds per step and images per second as JSON and exit (no run folder is written)")
    p.add_argument("--time-steps", type=int, default=10, metavar="N", help="steps timed per batch size (default %(default)s)")


def run(args) -> int:
    overrides = list(args.set)
    if args.steps is not None:
        overrides.append(f"optim.steps={args.steps}")
    if args.precision:
        overrides.append(f"optim.precision={args.precision}")
    if args.init_from:
        if not Path(args.init_from).is_file():
            print(f"error: {args.init_from}: no such warm-start checkpoint file", file=sys.stderr)
            return 2
        overrides += [f"optim.init_from={os.path.abspath(args.init_from)}", f"optim.init_sha256={file_sha256(args.init_from)}"]
    if args.unlabeled is not None:
        overrides.append(f"data.unlabeled={os.path.abspath(args.unlabeled) if args.unlabeled else ''}")
    try:
        cfg = make_config(args.profile, args.config, data_root=args.data, overrides=overrides, seed=args.seed, arch=args.model)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    if args.time_layouts is not None:
        from .trainprobe import time_train_layouts

        if args.time_layouts < 1:
            print("error: --time-layouts needs N >= 1 steps", file=sys.stderr)
            return 2
        print(json.dumps(time_train_layouts(cfg, args.device, args.time_layouts)))
        return 0
    if args.time_batches is not None:
        from .trainprobe import time_train_batches

        try:
            sizes = [int(b) for b in args.time_batches.split(",") if b.strip()]
            if args.time_steps < 1:
                raise ValueError(f"--time-steps needs N >= 1, got {args.time_steps}")
            res = time_train_batches(cfg, sizes, args.device, args.time_steps, memory_format=args.memory_format)
        except ValueError as exc:
            print(f"error: --time-batches {args.time_batches!r}: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(res))
        return 0
    if args.time_limit is not None and args.time_limit < 0:
        print(f"error: --time-limit must be >= 0 seconds, got {args.time_limit}", file=sys.stderr)
        return 2
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        backend = "nccl" if args.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        if args.device.startswith("cuda"):
            args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    out = Path(args.out) if args.out else Path("runs") / cfg.profile / f"{cfg.ablation}-{config_hash(cfg)}"
    if (out / "checkpoint.pt").exists() and not args.resume:
        print(f"error: {out} already holds a run; pass --resume to continue it or choose another --out", file=sys.stderr)
        return 2
    if args.extend_from and args.fork_from:
        print("error: pass --extend-from or --fork-from, not both", file=sys.stderr)
        return 2
    if (args.fork_from or args.extend_from) and not (out / "checkpoint.pt").exists():
        try:
            if args.extend_from:
                extend_run(args.extend_from, cfg, out)
            else:
                fork_pretrained(args.fork_from, cfg, out)
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        args.resume = True
    try:
        trainer = Trainer(cfg, out, device=args.device, quiet=args.quiet, memory_format=args.memory_format)
        summary = trainer.fit(resume=args.resume, time_limit=args.time_limit)
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if "another process" not in str(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    if _rank() == 0:
        if summary.get("stopped") == "time_limit":
            print(f"[mosslib train] {out}: --time-limit reached at step {summary['steps']} of "
                  f"{cfg.optim.steps}; checkpointed, --resume continues", file=sys.stderr)
        print(json.dumps({"out": str(out), "steps": summary["steps"], "best": summary["best"],
                          **({"stopped": summary["stopped"]} if "stopped" in summary else {})}))
    return 0
