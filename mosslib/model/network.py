"""MOEDN, the memory-oriented encoder-decoder network of MOSS (paper section 3.1.1, Fig. 2).

``x -> head -> s(x) -> encoder E -> z(x) -> memory M -> z_hat(x) -> decoder G -> g(x)``, then
``tail(s(x) - g(x))`` and ``tanh``. Input and output are images in [-1, 1], shape (B, 3, H, W).

Architecture facts the paper's appendix leaves out are taken from docs/release.md (the released test
configuration): a bias-free 3x3 head conv 3 -> ngf; ``num_blocks`` encoder stages of
``num_layers`` residual layers each, widening by ``delta`` channels per stage, the first layer
of each of the first ``num_scales`` stages ending with 2x average pooling (so the rest of the
stage works at the reduced size, as in the release: its GFLOP per image in docs/release.md
match this order, not pooling at the end of the stage); a residual layer is
conv3x3 -> LeakyReLU(0.02) -> conv3x3 plus the identity (a 1x1 conv where channels change),
with no normalisation; the decoder mirrors the encoder, its last ``num_scales`` stages starting
with bilinear 2x up-sampling.

Encoder-to-decoder fusion (``ModelConfig.fuse``, default on): the input of decoder stage
``k >= 1`` gets ``conv3x3(e_{B-1-k})`` added, ``e_i`` being the output of encoder stage ``i``
(same size and width); the convs start at zero. The paper's Fig. 2 shows no such path, but the
release that produced the paper's numbers has encoder-to-decoder "fuse" blocks (docs/release.md), and
without one the memory is the decoder's only input: Eq. 4 is a softmax over *cosine*
similarities in [-1, 1], so with m = 512 items the nearest item gets at most e/(e + 511/e), about
1.4 % of the weight, z_hat is close to the items' mean for every query, and learning stalls
(the measurement is in ``docs/history.md``). ``fuse=False`` is the paper-strict network.

Initialisation (the paper does not say; ``ModelConfig.init``): with ``"identity"`` (the default)
the second conv of every residual branch starts at zero (each layer starts as its shortcut, as
in Fixup / zero-gamma), the head's first three channels copy the RGB input and the tail reads
them back, so an untrained MOEDN outputs about ``tanh(x - g(x))`` instead of noise, which
matters on the CPU budgets of this project (``docs/history.md``; re-run: ``python -m mosslib
train --profile quick --config no_selftrain --steps 150 --set model.init=default``).

The forward pass is written once, :func:`walk`, which the fused inference path of
:mod:`mosslib.model.fast` runs too. Sizes that are not multiples of ``2**num_scales`` are padded inside ``forward`` (reflect where
the image is large enough, replicate otherwise) and cropped back. On CPU the activations are
kept in channels_last (NHWC) memory format inside ``forward`` (faster there, ``docs/speed.md``);
elsewhere they stay contiguous (NCHW) unless ``MOEDN.channels_last`` is set
(``experiments/train-probes/`` measures both). The output is a contiguous
(B, 3, H, W) tensor either way, and the layout does not change what the network computes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .memory import RainMemory

__all__ = ["ARCH_VERSION", "MOEDN", "ResidualLayer", "pad_to_multiple", "walk"]

# Bumped whenever the function MOEDN computes for a given ModelConfig changes, so cached runs
# (mosslib.method.runs, keyed by profiles.config_hash) are never reused across such a change.
ARCH_VERSION = 3  # 3: encoder-to-decoder fusion (ModelConfig.fuse)


class ResidualLayer(nn.Module):
    """conv3x3 -> LeakyReLU(0.02) -> conv3x3, plus identity (1x1 conv if channels change).

    ``resample``: None, "down" (2x average pooling after the sum) or "up" (bilinear 2x
    up-sampling before the layer).
    """

    def __init__(self, cin: int, cout: int, resample: str | None = None):
        super().__init__()
        self.resample = resample
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.act = nn.LeakyReLU(0.02, inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        y = self.conv2(self.act(self.conv1(x))) + self.shortcut(x)
        if self.resample == "down":
            y = F.avg_pool2d(y, 2)
        return y


def _encoder(cfg: ModelConfig) -> nn.Sequential:
    layers = []
    for stage in range(cfg.num_blocks):  # RB4 / RB4D stacks
        cin, cout = cfg.ngf + stage * cfg.delta, cfg.ngf + (stage + 1) * cfg.delta
        for k in range(cfg.num_layers):
            # RB4D: the stage's first layer widens and down-samples, the other layers work at the
            # reduced size (the release's order; 18 GFLOP per 256x256 image instead of 28)
            down = "down" if k == 0 and stage < cfg.num_scales else None
            layers.append(ResidualLayer(cin if k == 0 else cout, cout, down))
    return nn.Sequential(*layers)


def _decoder(cfg: ModelConfig) -> nn.Sequential:
    layers = []
    for stage in range(cfg.num_blocks):  # RB4 / RB4U stacks, mirror of the encoder
        cin = cfg.ngf + (cfg.num_blocks - stage) * cfg.delta
        cout = cin - cfg.delta
        up = "up" if stage >= cfg.num_blocks - cfg.num_scales else None
        for k in range(cfg.num_layers):
            layers.append(ResidualLayer(cin if k == 0 else cout, cout, up if k == 0 else None))
    return nn.Sequential(*layers)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) on the bottom/right to multiples of ``multiple``; returns (x, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class MOEDN(nn.Module):
    """Memory-oriented encoder-decoder network: (B, 3, H, W) in [-1, 1] -> same shape."""

    #: activations in channels_last inside forward: None = on CPU only (measured faster there)
    channels_last: bool | None = None

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ModelConfig()
        self.head = nn.Conv2d(3, cfg.ngf, 3, padding=1, bias=False)
        self.encoder = _encoder(cfg)
        self.memory = (
            RainMemory(cfg.memory_items, cfg.latent_dim, cfg.memory_decay, seed=cfg.memory_seed, **cfg.memory_options())
            if cfg.use_memory
            else None
        )
        self.decoder = _decoder(cfg)
        widths = [cfg.ngf + (cfg.num_blocks - k) * cfg.delta for k in range(1, cfg.num_blocks)]
        # fuse[k - 1]: encoder stage B-1-k -> decoder stage k input, (B, w_k, h, w) -> same
        self.fuse = nn.ModuleList(nn.Conv2d(w, w, 3, padding=1) for w in widths) if cfg.fuse else None
        self.tail = nn.Conv2d(cfg.ngf, 3, 3, padding=1)
        if self.fuse is not None:  # fusion starts closed in both initialisations
            for conv in self.fuse:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        if cfg.init == "identity":
            self._identity_init()

    @torch.no_grad()
    def _identity_init(self) -> None:
        """Residual branches start at zero; head channels 0-2 copy RGB, the tail reads them back."""
        for layer in self.modules():
            if isinstance(layer, ResidualLayer):
                nn.init.zeros_(layer.conv2.weight)
                nn.init.zeros_(layer.conv2.bias)
        self.head.weight[:3].zero_()
        self.tail.weight.zero_()
        self.tail.bias.zero_()
        for c in range(3):
            self.head.weight[c, c, 1, 1] = 1.0
            self.tail.weight[c, c, 1, 1] = 1.0

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Pad to a multiple of 2**num_scales; on CPU (or where ``channels_last`` says so) switch to
        channels_last (oneDNN's native layout, so no reorder around each convolution). Returns
        (x, (H, W))."""
        x, hw = pad_to_multiple(x, self.cfg.multiple)
        if self.channels_last if self.channels_last is not None else x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return x, hw

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z(x): (B, 3, H, W) -> (B, c, H', W') with H' = ceil(H / 2**num_scales)."""
        x, _ = self._pad(x)
        return self.encoder(self.head(x))

    @torch.no_grad()
    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Memory attention a_ij (Eq. 4) for an input: (B, 3, H, W) -> (B, m, H', W')."""
        if self.memory is None:
            raise RuntimeError("this MOEDN has no memory (use_memory=False)")
        return self.memory.attention(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"MOEDN expects (B, 3, H, W) images in [-1, 1], got shape {tuple(x.shape)}")
        x, (h, w) = self._pad(x)
        y = walk(
            self.cfg, x,
            head=self.head,
            encoder=self.encoder,
            read=self.memory if self.memory is not None else None,  # Eq. 3-5 (the update in training)
            decoder=self.decoder,
            fuse=None if self.fuse is None else (lambda k, e, t: t + self.fuse[k](e)),
            tail=lambda d: torch.tanh(self.tail(d)),
        )
        return y[..., :h, :w].contiguous()


def walk(cfg: ModelConfig, x, head, encoder, read, decoder, fuse, tail):
    """MOEDN's forward walk on a padded input, written once for every way of running it.

    ``s = head(x)``; the encoder layers (their stage outputs kept for the fusion); ``read(z)``,
    the memory (Eq. 3-5; None: no memory); the decoder layers, adding ``fuse(k, e, t)`` (the k-th
    fusion of encoder stage e into decoder input t) at the start of each decoder stage after the
    first; ``tail(s - g)`` (or ``tail(g)`` without the skip), which applies tanh. ``encoder`` and
    ``decoder`` are sequences of callables, one per residual layer. The eager model
    (:meth:`MOEDN.forward`) and the fused inference path (:class:`mosslib.model.fast.FusedMOEDN`)
    both run this function.
    """
    s = head(x)  # s(x): (B, ngf, H, W)
    n, stages, t = cfg.num_layers, [], s
    for i, layer in enumerate(encoder):
        t = layer(t)
        if (i + 1) % n == 0:
            stages.append(t)  # e_0 ... e_{B-1}; e_{B-1} = z(x)
    if read is not None:
        t = read(t)  # z_hat (Eq. 3-5)
    for i, layer in enumerate(decoder):
        k = i // n
        if fuse is not None and i % n == 0 and k >= 1:
            t = fuse(k - 1, stages[len(stages) - 1 - k], t)
        t = layer(t)
    return tail(s - t if cfg.use_skip else t)  # g(x) = t
