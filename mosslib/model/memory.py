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

Variants, off by default (the memory study, ``docs/memory-study.md``): each makes the read
selective or keeps the items alive, and each lives here, where it acts.

* ``temperature`` T: the read is ``softmax(s_ij / T)`` instead of Eq. 4's ``softmax(s_ij)``.
* ``rescale``: the read mixes *normalised* items and rescales the result to the query's norm,
  so z_hat is on z's scale whatever the items' norms.
* ``read="gumbel"``: what the authors' training code does instead of Eq. 4: in training, a hard
  Gumbel-softmax sample over ``s_ij`` at a temperature annealed per update,
  ``max(min_temperature, temperature * anneal**updates)`` (forward one-hot, gradient of the soft
  sample: straight-through); in eval, the nearest item (the noise-free hard read). Eq. 3 still
  moves the nearest item (Eq. 2), not the sampled one.
* ``reseed`` N: every N updates, items no query chose in those N updates are replaced by
  randomly drawn current queries (dead-code expiry, as VQ codebooks do).
* ``kmeans`` K: at the first training update the items are initialised by K iterations of
  (cosine) k-means on that batch's queries.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["RainMemory", "READS"]

READS = ("soft", "gumbel")  # RainMemory(read=...)


class RainMemory(nn.Module):
    """``m`` rain prototypes of dimension ``c``, updated by Eq. 3 and read by Eq. 4-5."""

    def __init__(self, num_items: int = 512, dim: int = 96, decay: float = 0.999, seed: int = 0, *,
                 read: str = "soft", temperature: float = 1.0, min_temperature: float = 0.03,
                 anneal: float = 0.99998, rescale: bool = False, reseed: int = 0, kmeans: int = 0):
        super().__init__()
        if num_items < 1 or dim < 1:
            raise ValueError(f"RainMemory needs num_items >= 1 and dim >= 1, got {num_items}, {dim}")
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"memory decay must lie in [0, 1], got {decay}")
        if read not in READS:
            raise ValueError(f"memory read must be one of {READS}, got {read!r}")
        if temperature <= 0 or min_temperature <= 0 or not 0.0 < anneal <= 1.0:
            raise ValueError(f"memory temperatures must be > 0 and anneal in (0, 1], got "
                             f"{temperature}, {min_temperature}, {anneal}")
        if reseed < 0 or kmeans < 0:
            raise ValueError(f"memory reseed and kmeans must be >= 0, got {reseed}, {kmeans}")
        self.num_items, self.dim, self.decay = num_items, dim, float(decay)
        self.read_mode, self.temperature, self.min_temperature = read, float(temperature), float(min_temperature)
        self.anneal, self.rescale, self.reseed, self.kmeans = float(anneal), bool(rescale), int(reseed), int(kmeans)
        gen = torch.Generator().manual_seed(seed)
        items = F.normalize(torch.randn(num_items, dim, generator=gen), dim=1)  # (m, c)
        self.register_buffer("items", items)
        # How often each item was chosen in training updates since construction: (m,)
        self.register_buffer("usage", torch.zeros(num_items, dtype=torch.long))
        # Only the variants that need them carry these buffers, so a paper-faithful memory's
        # state dict (the shipped model's) is unchanged.
        if read == "gumbel" or reseed or kmeans:
            self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # training updates so far
        if reseed:
            self.register_buffer("recent", torch.zeros(num_items, dtype=torch.long))  # choices since the last reseed

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

    def current_temperature(self) -> float:
        """The read's temperature now: fixed, or (``read="gumbel"``) annealed per training update."""
        if self.read_mode != "gumbel":
            return self.temperature
        return max(self.min_temperature, self.temperature * self.anneal ** int(self.updates))

    def weights(self, z: torch.Tensor) -> torch.Tensor:
        """The read's weights over items: (B, c, H, W) -> (B, H*W, m), rows summing to 1.

        Eq. 4 (``softmax(s)``) by default; ``softmax(s / T)`` with a temperature; with
        ``read="gumbel"`` a straight-through hard Gumbel-softmax sample in training and the
        one-hot nearest item in eval."""
        s = self.similarity(z)  # (B, n, m)
        if self.read_mode == "soft":
            return s.softmax(dim=-1) if self.temperature == 1.0 else (s / self.temperature).softmax(dim=-1)
        if not self.training:
            return F.one_hot(s.argmax(dim=-1), self.num_items).to(s.dtype)
        u = torch.rand_like(s).clamp_(1e-10, 1.0 - 1e-7)
        soft = ((s - torch.log(-torch.log(u))) / self.current_temperature()).softmax(dim=-1)
        hard = F.one_hot(soft.argmax(dim=-1), self.num_items).to(s.dtype)
        return hard - soft.detach() + soft  # forward: one-hot; backward: the soft sample's gradient

    def attention(self, z: torch.Tensor) -> torch.Tensor:
        """Attention a_ij of Eq. 4 (or the variant's read weights): (B, c, H, W) -> (B, m, H, W)."""
        b, _, h, w = z.shape
        a = self.weights(z)  # (B, n, m)
        return a.transpose(1, 2).reshape(b, self.num_items, h, w)

    def read(self, z: torch.Tensor) -> torch.Tensor:
        """Memory-based representation z_hat of Eq. 5: (B, c, H, W) -> (B, c, H, W).

        With ``rescale`` the weights mix unit-norm items and each query's result is scaled to
        that query's norm."""
        b, c, h, w = z.shape
        a = self.weights(z)  # (B, n, m)
        items = F.normalize(self.items, dim=1) if self.rescale else self.items
        z_hat = a @ items.detach().to(a.dtype)  # (B, n, c)
        if self.rescale:
            norm = self._queries(z).norm(dim=-1, keepdim=True)  # (B, n, 1)
            z_hat = F.normalize(z_hat, dim=-1) * norm
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
        if self.kmeans and int(self.updates) == 0:
            self.kmeans_init_(z)
        sums, counts = self.statistics(z)
        self.all_reduce_(sums, counts)
        chosen = (counts > 0)[:, None]  # (m, 1)
        means = sums / counts.clamp(min=1.0)[:, None]  # (m, c); unchosen rows are 0 / 1 and unused
        items = self.items.float()
        self.items.copy_(torch.where(chosen, self.decay * items + (1.0 - self.decay) * means, items))
        self.usage += counts.long().to(self.usage.device)
        if hasattr(self, "updates"):
            self.updates += 1
        if self.reseed:
            self.recent += counts.long().to(self.recent.device)
            if int(self.updates) % self.reseed == 0:
                self.reseed_(z)
        return counts

    @torch.no_grad()
    def reseed_(self, z: torch.Tensor) -> int:
        """Dead-item expiry: items no query chose since the last reseed become randomly drawn
        queries of ``z`` (under DDP, rank 0's items are broadcast, so ranks stay identical).
        Returns how many items were re-seeded; resets the window's counts."""
        q = self._queries(z).reshape(-1, self.dim).float()  # (N, c)
        dead = (self.recent == 0).nonzero().flatten()  # (d,)
        if len(dead) and len(q):
            gen = torch.Generator(device="cpu").manual_seed(int(self.updates))
            pick = torch.randint(len(q), (len(dead),), generator=gen).to(q.device)
            self.items[dead] = q[pick].to(self.items.dtype)
        self.recent.zero_()
        self._broadcast_items()
        return int(len(dead))

    def _broadcast_items(self) -> None:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast(self.items, 0)

    @torch.no_grad()
    def kmeans_init_(self, z: torch.Tensor) -> None:
        """Items <- ``kmeans`` iterations of cosine k-means on the queries of ``z`` (raw-query
        cluster means, as Eq. 3 keeps them), seeded by randomly drawn queries."""
        q = self._queries(z).reshape(-1, self.dim).float()  # (N, c)
        gen = torch.Generator(device="cpu").manual_seed(0)
        centres = q[torch.randint(len(q), (self.num_items,), generator=gen).to(q.device)].clone()  # (m, c)
        for _ in range(self.kmeans):
            k = (F.normalize(q, dim=1) @ F.normalize(centres, dim=1).t()).argmax(dim=1)  # (N,)
            sums = torch.zeros_like(centres).index_add_(0, k, q)
            counts = torch.zeros(self.num_items, device=q.device).index_add_(0, k, torch.ones_like(k, dtype=q.dtype))
            centres = torch.where((counts > 0)[:, None], sums / counts.clamp(min=1.0)[:, None], centres)
        self.items.copy_(centres.to(self.items.dtype))
        self._broadcast_items()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Training: update (Eq. 3), then read with the updated items (Eq. 5). Eval: read only."""
        if self.training:
            self.update_(z.detach())
        return self.read(z)

    def extra_repr(self) -> str:
        extra = "" if self.read_mode == "soft" else f", read={self.read_mode}"
        extra += f", temperature={self.temperature}" if self.temperature != 1.0 else ""
        extra += ", rescale=True" if self.rescale else ""
        extra += f", reseed={self.reseed}" if self.reseed else ""
        extra += f", kmeans={self.kmeans}" if self.kmeans else ""
        return f"num_items={self.num_items}, dim={self.dim}, decay={self.decay}{extra}"
