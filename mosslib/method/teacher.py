"""The target network f_xi of MOSS (paper section 3.2, Eq. 7), in the spirit of MoCo.

A frozen deep copy of the online network, updated after every optimiser step by
``xi <- v * xi + (1 - v) * theta``. Decision (the paper is silent): the memory items are
buffers and are **averaged** with the same rule, so the teacher's memory follows the
student's slowly, like its weights; integer buffers (the usage counters) are copied. The
teacher always runs in eval mode: it reads its memory and never updates it by Eq. 3.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["Teacher"]


class Teacher(nn.Module):
    """EMA copy of ``student``; call :meth:`update` after each optimiser step."""

    def __init__(self, student: nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"teacher decay must lie in [0, 1], got {decay}")
        self.decay = float(decay)
        self.net = copy.deepcopy(_unwrap(student))
        self.net.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # the teacher never leaves eval mode
        return super().train(False)

    @torch.no_grad()
    def reset(self, student: nn.Module) -> None:
        """xi <- theta (start of self-training)."""
        self.net.load_state_dict(_unwrap(student).state_dict())

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """Eq. 7 on parameters and floating-point buffers; other buffers are copied."""
        src = _unwrap(student).state_dict()
        ema, new = [], []  # floating-point tensors: one multi-tensor update (a few kernels, not ~2 per tensor)
        for name, t in self.net.state_dict().items():
            s = src[name]
            if t.is_floating_point():
                ema.append(t)
                new.append(s.detach().to(t.dtype))
            else:
                t.copy_(s)
        if ema:
            torch._foreach_mul_(ema, self.decay)
            torch._foreach_add_(ema, new, alpha=1.0 - self.decay)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pseudo-labels f_xi(x): (B, 3, H, W) -> (B, 3, H, W), no gradient."""
        return self.net(x)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model
