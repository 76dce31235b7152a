"""The self-supervised rain memory of MOSS (paper section 3.1.2, Eq. 1-5).

The memory holds ``m`` items of dimension ``c`` in a buffer; they are never trained by
gradients. Each training forward first moves every item that is the nearest item of at
least one query towards the mean of those queries (Eq. 3), then reads the memory with soft
attention over cosine similarities (Eq. 4-5). In eval mode the memory is only read.

Shapes: queries ``z`` are ``(B, c, H, W)``; items are ``(m, c)``; attention is
``(B, m, H, W)``.

Choices the paper leaves open, written down here:

* Items are initialised as random unit vectors from a dedicated generator seeded by
  ``seed`` (so the global RNG stream is not disturbed and two memories built with the same
  seed are identical).
* Eq. 3 averages the *raw* queries ``z_j`` (not their normalised versions), as written.
* An item that no query chose keeps its value exactly. The paper's release multiplies such
  items by ``tau`` (an empty mean taken as zero), which shrinks them towards zero; that is a
  defect we avoid (see ``docs/release.md``).
* Under ``torch.distributed`` the per-item sums and counts are all-reduced before the update
  (:meth:`RainMemory.all_reduce_`), so every rank keeps identical items.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["RainMemory"]


class RainMemory(nn.Module):
    """``m`` rain prototypes of dimension ``c``, updated by Eq. 3 and read by Eq. 4-5."""

    def __init__(self, num_items: int = 512, dim: int = 96, decay: float = 0.999, seed: int = 0):
        super().__init__()
        if num_items < 1 or dim < 1:
            raise ValueError(f"RainMemory needs num_items >= 1 and dim >= 1, got {num_items}, {dim}")
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"memory decay must lie in [0, 1], got {decay}")
        self.num_items, self.dim, self.decay = num_items, dim, float(decay)
        gen = torch.Generator().manual_seed(seed)
        items = F.normalize(torch.randn(num_items, dim, generator=gen), dim=1)  # (m, c)
        self.register_buffer("items", items)
        # How often each item was chosen in training updates since construction: (m,)
        self.register_buffer("usage", torch.zeros(num_items, dtype=torch.long))

    # -- similarities --------------------------------------------------------------------
    @staticmethod
    def _queries(z: torch.Tensor) -> torch.Tensor:
        """(B, c, H, W) -> (B, H*W, c)"""
        if z.dim() != 4:
            raise ValueError(f"memory queries must be (B, c, H, W), got shape {tuple(z.shape)}")
        return z.flatten(2).transpose(1, 2)

    def similarity(self, z: torch.Tensor) -> torch.Tensor:
        """Cosine similarity s_ij of Eq. 1: (B, c, H, W) -> (B, H*W, m)."""
        q = F.normalize(self._queries(z), dim=-1)  # (B, n, c)
        e = F.normalize(self.items, dim=1).to(q.dtype)  # (m, c)
        return q @ e.t()  # (B, n, m)

    @torch.no_grad()
    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest item for every query (Eq. 2): (B, c, H, W) -> (B, H, W) long."""
        b, _, h, w = z.shape
        return self.similarity(z).argmax(dim=-1).view(b, h, w)

    def attention(self, z: torch.Tensor) -> torch.Tensor:
        """Soft attention a_ij of Eq. 4, softmax over items: (B, c, H, W) -> (B, m, H, W)."""
        b, _, h, w = z.shape
        a = self.similarity(z).softmax(dim=-1)  # (B, n, m)
        return a.transpose(1, 2).reshape(b, self.num_items, h, w)

    def read(self, z: torch.Tensor) -> torch.Tensor:
        """Memory-based representation z_hat of Eq. 5: (B, c, H, W) -> (B, c, H, W)."""
        b, c, h, w = z.shape
        a = self.similarity(z).softmax(dim=-1)  # (B, n, m)
        z_hat = a @ self.items.detach().to(a.dtype)  # (B, n, c)
        return z_hat.transpose(1, 2).reshape(b, c, h, w)

    # -- the self-supervised update (Eq. 3) ----------------------------------------------
    @torch.no_grad()
    def statistics(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-item sums of the queries that chose it and their counts: (m, c), (m,)."""
        q = self._queries(z).reshape(-1, self.dim).float()  # (N, c)
        k = self.assign(z).reshape(-1)  # (N,)
        sums = torch.zeros(self.num_items, self.dim, device=q.device).index_add_(0, k, q)
        # a scatter, not bincount: bincount's output size depends on the data, a host sync on CUDA
        counts = torch.zeros(self.num_items, device=q.device).index_add_(0, k, torch.ones_like(k, dtype=q.dtype))
        return sums, counts

    @staticmethod
    def all_reduce_(sums: torch.Tensor, counts: torch.Tensor) -> None:
        """Sum the Eq. 3 statistics over ranks; a no-op when not distributed."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(sums)
            dist.all_reduce(counts)

    @torch.no_grad()
    def update_(self, z: torch.Tensor) -> torch.Tensor:
        """Eq. 3 in place; items no query chose stay exactly as they were. Returns counts (m,).

        Written without boolean indexing (whose result size depends on the data), so a CUDA
        step never waits here for the device; the arithmetic of each chosen item is unchanged."""
        sums, counts = self.statistics(z)
        self.all_reduce_(sums, counts)
        chosen = (counts > 0)[:, None]  # (m, 1)
        means = sums / counts.clamp(min=1.0)[:, None]  # (m, c); unchosen rows are 0 / 1 and unused
        items = self.items.float()
        self.items.copy_(torch.where(chosen, self.decay * items + (1.0 - self.decay) * means, items))
        self.usage += counts.long().to(self.usage.device)
        return counts

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Training: update (Eq. 3), then read with the updated items (Eq. 5). Eval: read only."""
        if self.training:
            self.update_(z.detach())
        return self.read(z)

    def extra_repr(self) -> str:
        return f"num_items={self.num_items}, dim={self.dim}, decay={self.decay}"
