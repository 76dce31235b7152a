"""Configuration as frozen dataclasses, saved inside every checkpoint and results file.

``ModelConfig`` defaults are the released DDN-SIRR test configuration (docs/release.md). The
training configuration (``TrainConfig``: data, optimisation, loss weights, profile) lives in
:mod:`mosslib.method.profiles` together with the named profiles and ablations.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ModelConfig", "to_dict", "from_dict", "replace_path"]


@dataclass(frozen=True)
class ModelConfig:
    """MOEDN hyper-parameters (paper Fig. 2; released test configuration as defaults)."""

    ngf: int = 16  # channels of the head features s(x)
    num_blocks: int = 5  # encoder stages (and decoder stages, mirrored)
    num_scales: int = 3  # the first num_scales encoder stages down-sample by 2
    num_layers: int = 4  # residual layers per stage (RB4)
    delta: int = 16  # channels added per encoder stage
    memory_items: int = 512  # m
    memory_decay: float = 0.999  # tau of Eq. 3
    memory_seed: int = 0  # seed of the item initialisation (random unit vectors)
    # memory variants (the memory study; defaults = the paper's Eq. 3-5, see memory.py)
    memory_read: str = "soft"  # "soft" (Eq. 4) | "gumbel" (hard Gumbel-softmax in training, as the authors' training code)
    memory_temperature: float = 1.0  # T of softmax(s / T); for "gumbel" the start of the anneal
    memory_min_temperature: float = 0.03  # "gumbel": the anneal's floor
    memory_anneal: float = 0.99998  # "gumbel": T multiplied by this per training update
    memory_rescale: bool = False  # read unit-norm items, rescaled to the query's norm
    memory_reseed: int = 0  # every N updates, re-seed unchosen items from current queries (0: off)
    memory_kmeans: int = 0  # k-means iterations initialising the items from the first batch (0: off)
    use_memory: bool = True  # False: z_hat = z (Table 4, "w/o Memory")
    use_skip: bool = True  # False: no s(x) - g(x) subtraction (Table 4, "w/o Skip-Connect")
    fuse: bool = True  # encoder-to-decoder fusion (the release has it, the paper's Fig. 2 does not; see network.py)
    init: str = "identity"  # "identity": the network starts close to f(x) = tanh(x) (see network.py); "default": PyTorch's

    @property
    def latent_dim(self) -> int:
        """c, the channel count of z(x) and the memory items' dimension."""
        return self.ngf + self.num_blocks * self.delta

    def memory_options(self) -> dict:
        """The keyword options of :class:`mosslib.memory.RainMemory` for this configuration."""
        return dict(read=self.memory_read, temperature=self.memory_temperature,
                    min_temperature=self.memory_min_temperature, anneal=self.memory_anneal,
                    rescale=self.memory_rescale, reseed=self.memory_reseed, kmeans=self.memory_kmeans)

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this inside forward."""
        return 2**self.num_scales

    def __post_init__(self) -> None:
        for name in ("ngf", "num_blocks", "num_layers", "delta", "memory_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.init not in ("identity", "default"):
            raise ValueError(f"ModelConfig.init must be 'identity' or 'default', got {self.init!r}")
        if self.memory_read not in ("soft", "gumbel"):
            raise ValueError(f"ModelConfig.memory_read must be 'soft' or 'gumbel', got {self.memory_read!r}")
        if not 0 <= self.num_scales <= self.num_blocks:
            raise ValueError(f"ModelConfig.num_scales must lie in [0, num_blocks], got {self.num_scales}")


def to_dict(cfg: Any) -> dict:
    """A nested plain dict of a (nested) frozen dataclass, for JSON and checkpoints."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (nested) dataclass from :func:`to_dict` output; unknown keys are an error."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        ftype = known[name].type
        sub = _dataclass_type(cls, name)
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value)
        elif isinstance(value, list) and "tuple" in str(ftype):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def _dataclass_type(cls: type, name: str):
    hints = typing.get_type_hints(cls)
    t = hints.get(name)
    return t if dataclasses.is_dataclass(t) else None


def _coerce(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple):
        parts = [p for p in value.strip("()[] ").split(",") if p.strip()]
        return tuple(type(current[0])(p) if current else float(p) for p in parts)
    if current is None:
        for conv in (int, float):
            try:
                return conv(value)
            except ValueError:
                pass
        return None if value.lower() in ("none", "null", "") else value
    return value


def replace_path(cfg: Any, dotted: str, value: str) -> Any:
    """``replace_path(cfg, "optim.lr", "3e-4")``: a copy of ``cfg`` with one field set from text."""
    head, _, rest = dotted.partition(".")
    names = {f.name for f in fields(cfg)}
    if head not in names:
        raise ValueError(f"unknown setting {dotted!r}: {type(cfg).__name__} has {sorted(names)}")
    current = getattr(cfg, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"{head!r} is not a group of settings")
        return dataclasses.replace(cfg, **{head: replace_path(current, rest, value)})
    if dataclasses.is_dataclass(current):
        raise ValueError(f"{dotted!r} is a group; set one of its fields, e.g. {dotted}.{fields(current)[0].name}")
    return dataclasses.replace(cfg, **{head: _coerce(value, current)})
