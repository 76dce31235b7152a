"""One MOSS training step (paper section 3.2), apart from the loop that runs it.

1. labeled crops (x_l, y_l) and unlabeled crops x_u; pseudo-labels y_p = f_xi(x_u) (teacher);
2. noisy pairs (x_n, y_hat) from Eq. 8-9 (:func:`mosslib.method.losses.noisy_samples`);
3. one student forward on ``cat(x_l, x_n)`` - so the memory takes one Eq. 3 update per step,
   from all rainy inputs of the step - then the total loss of Eq. 12
   (:func:`mosslib.method.losses.moss_loss`);
4. Adam step (:func:`optimise`), then the teacher's EMA update (Eq. 7, :func:`update_teacher`).

During the first ``pretrain_steps`` steps the loss is ``l1 * L_SU`` alone (Eq. 6) and the
teacher is not used; at the switch it is re-initialised from the student. Every random draw of a
step comes from generators seeded by ``(seed, step, rank)``, so a resumed run repeats an
uninterrupted one exactly (CPU, deterministic mode).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import losses
from .lineage import lr_at
from .profiles import TrainConfig
from .teacher import Teacher

__all__ = ["TrainingDiverged", "step_seed", "self_trains", "moss_losses", "optimise", "update_teacher"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; the last good checkpoint is kept."""


def step_seed(seed: int, step: int, rank: int, stream: int) -> int:
    """The seed of one random stream of one step on one rank."""
    return int(np.random.SeedSequence([seed, step, rank, stream]).generate_state(1)[0])


def self_trains(cfg: TrainConfig, step: int, has_unlabeled: bool) -> bool:
    """Whether ``step`` self-trains (after pre-training, with unlabeled data and L_UN on)."""
    return cfg.loss.self_train and step >= cfg.optim.pretrain_steps and has_unlabeled


def moss_losses(student: nn.Module, teacher: Teacher, cfg: TrainConfig, step: int, rank: int,
                x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Steps 1-3: the loss terms of Eq. 12 for one batch (``x_u`` None: pre-training, Eq. 6)."""
    w = cfg.loss
    lambdas = (w.lambda_su, w.lambda_un, w.lambda_tv)
    if x_u is None:
        return losses.moss_loss(student(x_l).float(), y_l, lambdas=lambdas)
    y_p = teacher(x_u).float()
    gen = torch.Generator().manual_seed(step_seed(cfg.seed, step, rank, 2))
    x_n, y_hat, _ = losses.noisy_samples(x_l, y_l, x_u, y_p, len(x_l), gen, (w.alpha_min, w.alpha_max))
    out = student(torch.cat([x_l, x_n])).float()
    return losses.moss_loss(out[: len(x_l)], y_l, out[len(x_l):], y_hat, lambdas=lambdas)


def optimise(model: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, cfg: TrainConfig, step: int) -> None:
    """Step 4: the step's learning rate, backward, gradient clipping, Adam."""
    for group in optimizer.param_groups:
        group["lr"] = lr_at(cfg.optim, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.optim.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    optimizer.step()


def update_teacher(teacher: Teacher, model: nn.Module, steps_done: int, cfg: TrainConfig) -> None:
    """After ``steps_done`` steps: xi <- theta at the end of pre-training, then Eq. 7."""
    if steps_done == cfg.optim.pretrain_steps:
        teacher.reset(model)
    elif steps_done > cfg.optim.pretrain_steps:
        teacher.update(model)


def check_finite(terms: dict[str, float], step: int, where) -> None:
    if not all(math.isfinite(v) for v in terms.values()):
        raise TrainingDiverged(f"non-finite loss at step {step}: {terms}; stopped, the last good checkpoint ({where}) is kept")
