"""Is the rain memory used? Diagnostics of a trained MOEDN's memory (paper section 3.1.2).

Three questions, each a plain function:

* :func:`memory_health` - over a set of rainy images: which items are chosen (Eq. 2) and how
  evenly (``alive``, ``top_share``, ``perplexity`` = exp of the entropy of the assignment
  histogram); how selective the read is (the mean largest read weight and the mean entropy of
  the weights, against ``log m`` for a uniform read); the norms of the items and of the queries.
* :func:`ablated_read` - a context in which the memory's output z_hat is replaced: ``"mean"``
  (each image's spatial mean of z_hat: the read keeps no spatial information) or ``"zeros"``.
* :func:`ablation_deltas` - PSNR of the ablated model minus the model as trained, per test
  split, per image, with a paired bootstrap interval over the test images.

``python -m mosslib memory --data ROOT [--checkpoint CKPT] [--json]`` (:mod:`mosslib.apps.memory`)
reports all three (the shipped model by default). A memory whose ablation changes nothing is inert: the decoder goes
around it.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterable, Iterator, Mapping

import numpy as np
import torch

from .evaluate import derain_tensor, evaluate_pairs
from .stats import image_ci
from ..data.images import to_batch

__all__ = ["ABLATIONS", "memory_of", "memory_health", "ablated_read", "ablation_deltas", "real_photo_effect", "diagnose"]

ABLATIONS = ("mean", "zeros")  # how ablated_read replaces z_hat


def memory_of(model):
    """The model's RainMemory; a clear error for a network without one."""
    memory = getattr(model, "memory", None)
    if memory is None:
        raise ValueError(f"{type(model).__name__} has no memory (use_memory=False or a peer network)")
    return memory


@torch.no_grad()
def memory_health(model, images: Iterable[np.ndarray], device: str = "cpu") -> dict:
    """Usage, read sharpness and norms of ``model``'s memory over uint8 (H, W, 3) images.

    Returns ``{"usage": {"alive", "top_share", "perplexity", "trained_alive"}, "attention":
    {"max_weight", "entropy", "uniform_entropy"}, "norms": {...}, "positions": n}``; means are
    over every position of every image's latent grid."""
    memory = memory_of(model)
    was_training = model.training
    model.eval()
    m = memory.num_items
    counts = torch.zeros(m, dtype=torch.float64)
    max_w, ent, qnorm = [], [], []
    try:
        for image in images:
            z = model.encode(to_batch(image).to(device)).float()  # (1, c, h, w)
            counts += torch.bincount(memory.assign(z).flatten().cpu(), minlength=m).double()
            a = memory.weights(z)[0].double().cpu()  # (n, m)
            max_w.append(a.max(dim=1).values)
            ent.append(-(a * a.clamp_min(1e-300).log()).sum(dim=1))
            qnorm.append(z.flatten(2)[0].norm(dim=0).cpu())  # (n,)
    finally:
        model.train(was_training)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("memory_health needs at least one image")
    p = counts / n
    nz = p[p > 0]
    items = memory.items.float().norm(dim=1).cpu()
    q = torch.cat(qnorm)
    return {
        "usage": {
            "alive": int((counts > 0).sum()),
            "top_share": float(p.max()),
            "perplexity": float(torch.exp(-(nz * nz.log()).sum())),
            "trained_alive": int((memory.usage > 0).sum()),  # items chosen at least once in training (Eq. 3 updates)
        },
        "attention": {
            "max_weight": float(torch.cat(max_w).mean()),
            "entropy": float(torch.cat(ent).mean()),
            "uniform_entropy": float(math.log(m)),
            "uniform_weight": 1.0 / m,
        },
        "norms": {
            "item_min": float(items.min()), "item_median": float(np.median(items.numpy())),
            "item_max": float(items.max()), "query_median": float(np.median(q.numpy())),
        },
        "items": m,
        "positions": int(n),
    }


@contextlib.contextmanager
def ablated_read(model, how: str) -> Iterator[None]:
    """Within the context, the memory's read (Eq. 5) returns each image's spatial mean of z_hat
    (``"mean"``) or zeros (``"zeros"``) instead of z_hat; restored on exit."""
    if how not in ABLATIONS:
        raise ValueError(f"unknown memory ablation {how!r}; use one of {ABLATIONS}")
    memory = memory_of(model)
    original = memory.read

    def read(z: torch.Tensor) -> torch.Tensor:
        zh = original(z)  # (B, c, h, w)
        if how == "zeros":
            return torch.zeros_like(zh)
        return zh.mean(dim=(2, 3), keepdim=True).expand_as(zh)

    memory.read = read
    try:
        yield
    finally:
        del memory.read  # back to the class's method


def _per_image(per_group: Mapping[str, list]) -> dict[str, dict[str, float]]:
    return {g: {r["name"]: r["psnr"] for r in rows} for g, rows in per_group.items()}


def ablation_deltas(model, groups: Mapping[str, list], ablations: Iterable[str] = ABLATIONS, device: str = "cpu",
                    n_boot: int = 10000) -> dict:
    """PSNR (RGB convention) of each ablated read minus the model as trained, per test group:
    ``{"trained": {group: mean}, "ablation": {how: {group: delta}}, "ablation_ci": {how: {group: [lo, hi]}},
    "per_image": {"trained"|how: {group: {name: psnr}}}}``. ``groups``: ``{name: [Pair]}``."""
    model.eval()
    per = {"trained": _per_image(evaluate_pairs(groups, model, "rgb", device))}
    for how in ablations:
        with ablated_read(model, how):
            per[how] = _per_image(evaluate_pairs(groups, model, "rgb", device))
    out = {"trained": {g: float(np.mean(list(v.values()))) for g, v in per["trained"].items()},
           "ablation": {}, "ablation_ci": {}, "per_image": per}
    for how in ablations:
        out["ablation"][how], out["ablation_ci"][how] = {}, {}
        for g, base in per["trained"].items():
            d = [per[how][g][k] - base[k] for k in base]
            out["ablation"][how][g] = float(np.mean(d))
            out["ablation_ci"][how][g] = list(image_ci(d, n_boot=n_boot))
    return out


@torch.no_grad()
def real_photo_effect(model, images: Mapping[str, np.ndarray], device: str = "cpu") -> dict:
    """On photos without ground truth: how much the model changes them (mean absolute difference
    from the input, 8-bit levels: the rain it removes and anything else) and how much of that
    output depends on the memory (mean absolute change of the output under each ablation)."""
    model.eval()
    removed, changed = [], {how: [] for how in ABLATIONS}
    for image in images.values():
        out = derain_tensor(model, image, device).astype(np.float64)
        removed.append(float(np.abs(out - image).mean()))
        for how in ABLATIONS:
            with ablated_read(model, how):
                alt = derain_tensor(model, image, device).astype(np.float64)
            changed[how].append(float(np.abs(alt - out).mean()))
    return {"n": len(removed), "removed": float(np.mean(removed)),
            "ablation_change": {how: float(np.mean(v)) for how, v in changed.items()}}


def diagnose(model, groups: Mapping[str, list], device: str = "cpu", n_boot: int = 10000) -> dict:
    """Memory health over the test inputs plus the ablation deltas: the ``memory`` command's JSON."""
    images = (pair.load()[0] for rows in groups.values() for pair in rows)
    health = memory_health(model, images, device)
    abl = ablation_deltas(model, groups, device=device, n_boot=n_boot)
    return {**health, "trained": abl["trained"], "ablation": abl["ablation"], "ablation_ci": abl["ablation_ci"],
            "n_images": {g: len(rows) for g, rows in groups.items()}, "seeds": 1}
