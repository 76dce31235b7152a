"""Training configuration: frozen dataclasses, the named profiles and Table 4's ablations.

Profiles (``make_config(profile, ablation)``):

* ``smoke``  - seconds; the tiny embedded data and a reduced MOEDN; for tests and CI.
* ``quick``  - the default; the embedded data on 2 CPU cores, about a minute per run.
* ``cpu``    - real data (``DATA_ROOT``: Rain100L train as D_L plus heavy procedural rain on its
  clean images, the 147 DDN-SIRR real photos as D_U, DDN-SIRR test); 12,000 steps, the last
  3,000 with a cosine learning-rate decay; hours on 2 cores.
* ``paper``  - the paper's hyper-parameters (batch 16, 256x256 crops, 100k iterations, pre-training
  for 10 epochs of DDN-SIRR's 9,100 labeled pairs); for a GPU.

Ablations (Table 4): ``full`` (MOSS), ``basic`` (no memory, no self-training), ``no_memory``,
``no_selftrain`` (the supervised model, Table 1's D_C column), ``no_tv``, ``no_skip``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field

from .config import ModelConfig, from_dict, replace_path, to_dict

__all__ = [
    "DataConfig",
    "OptimConfig",
    "LossConfig",
    "TrainConfig",
    "PROFILES",
    "ABLATIONS",
    "make_config",
    "config_hash",
    "config_from_dict",
]


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from (paths relative to ``root``) and how it is sampled."""

    root: str = ""  # "" -> the embedded data set (mosslib.embedded); else a folder such as ../shared/data
    embedded_size: str = "default"  # "default" | "tiny" (when root is "")
    labeled: str = "synthetic"  # paired training set D_L (a data set folder under root)
    labeled_split: str = "train"
    unlabeled: str = "sirr_like/real_input"  # D_U: unlabeled rainy images ("" -> none)
    test: str = "sirr_like"  # test set (never used for model selection)
    val_fraction: float = 0.1  # validation pairs carved from D_L for model selection
    label_fraction: float = 1.0  # limited labels (paper 4.4): the rest of D_L joins D_U, labels dropped
    extra_rain: str = ""  # procedural rain styles ("dense,heavy") rendered on D_L's clean images as extra pairs
    extra_rain_copies: int = 0
    crop: int = 64
    batch_size: int = 4  # labeled images per step (and unlabeled images per step)
    val_max_side: int = 0  # validation images are centre-cropped to this side (0: whole images)
    val_extra_rain: str = ""  # procedural rain styles ("dense,heavy") rendered on the validation clean images as extra validation pairs


@dataclass(frozen=True)
class OptimConfig:
    """Adam with a fixed learning rate (paper 4.2), optionally cosine-decayed at the end (ours);
    pre-training then self-training."""

    steps: int = 300
    pretrain_steps: int = 100  # supervised pre-training (Eq. 6 only); the paper: 10 epochs
    lr: float = 1e-4
    lr_decay_from: int = 0  # 0: fixed lr (paper); else cosine from lr to lr * lr_final over [lr_decay_from, steps]
    lr_final: float = 0.1
    teacher_decay: float = 0.999  # v of Eq. 7
    precision: str = "fp32"  # "fp32" | "bf16" (autocast)
    grad_clip: float = 0.0  # 0: off
    select_teacher: bool = False  # also validate the EMA teacher (Eq. 7); the better of the two is the candidate (ours)
    select_min_labeled: float = 0.0  # a candidate whose PSNR on the labeled validation pairs is below this is passed over (0: off; ours)
    init_from: str = ""  # warm start: a model checkpoint whose weights (and memory) replace the initialisation
    init_sha256: str = ""  # the content hash of init_from (checked at the start; part of the run's identity)
    val_every: int = 100
    ckpt_every: int = 50
    log_every: int = 10


@dataclass(frozen=True)
class LossConfig:
    """Eq. 12 weights and the noisy-sample construction of Eq. 9."""

    lambda_su: float = 10.0  # lambda_1
    lambda_un: float = 1.0  # lambda_2
    lambda_tv: float = 0.001  # lambda_3
    alpha_min: float = 0.5  # alpha ~ U(a, b) of Eq. 9
    alpha_max: float = 1.1
    self_train: bool = True  # False: supervised only (Table 4 "w/o Self-Training")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved in every checkpoint and results file."""

    profile: str = "quick"
    ablation: str = "full"
    arch: str = "moedn"  # or a baseline of mosslib.baselines (supervised peers), e.g. "prenet"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)


_REAL = dict(labeled="Rain100L", labeled_split="train", unlabeled="DDN-SIRR/real_input", test="DDN-SIRR")

PROFILES: dict[str, dict] = {
    "smoke": dict(  # a reduced MOEDN (same structure, fewer channels and layers) so tests take seconds
        model=dict(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=2, memory_items=64),
        data=dict(embedded_size="tiny", crop=32, batch_size=2),
        optim=dict(steps=6, pretrain_steps=3, val_every=3, ckpt_every=3, log_every=1),
    ),
    "quick": dict(
        data=dict(crop=64, batch_size=4),
        optim=dict(steps=300, pretrain_steps=100, val_every=100, ckpt_every=50, log_every=10),
    ),
    "cpu": dict(
        data=dict(_REAL, crop=128, batch_size=4, extra_rain="dense,heavy", extra_rain_copies=1, val_max_side=256),
        optim=dict(steps=12000, pretrain_steps=3000, lr=1e-4, lr_decay_from=9000, grad_clip=1.0, val_every=500, ckpt_every=200, log_every=50),
    ),
    "paper": dict(
        data=dict(_REAL, crop=256, batch_size=16),
        optim=dict(steps=100000, pretrain_steps=5700, val_every=2000, ckpt_every=1000, log_every=100),
    ),
}

ABLATIONS: dict[str, dict] = {
    "full": {},
    "basic": dict(model=dict(use_memory=False), loss=dict(self_train=False)),
    "no_memory": dict(model=dict(use_memory=False)),
    "no_selftrain": dict(loss=dict(self_train=False)),
    "no_tv": dict(loss=dict(lambda_tv=0.0)),
    "no_skip": dict(model=dict(use_skip=False)),
}
ABLATIONS["supervised"] = ABLATIONS["no_selftrain"]  # Table 1's D_C column


def _apply(cfg, groups: dict):
    for group, values in groups.items():
        sub = getattr(cfg, group)
        cfg = dataclasses.replace(cfg, **{group: dataclasses.replace(sub, **values)})
    return cfg


def make_config(
    profile: str = "quick",
    ablation: str = "full",
    data_root: str | None = None,
    overrides: dict[str, str] | list[str] | None = None,
    seed: int = 0,
    arch: str = "moedn",
) -> TrainConfig:
    """The configuration of a named profile and ablation, with ``key=value`` overrides.

    ``data_root``: None -> ``$DATA_ROOT`` for the real-data profiles (cpu, paper), the embedded
    data otherwise; "" -> the embedded data. Overrides use dotted names: ``optim.steps=500``.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {sorted(PROFILES)}")
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; use one of {sorted(ABLATIONS)}")
    if ablation == "supervised":  # an alias: the same run (and cache entry) as no_selftrain
        ablation = "no_selftrain"
    cfg = _apply(TrainConfig(profile=profile, ablation=ablation, seed=seed, arch=arch), PROFILES[profile])
    cfg = _apply(cfg, ABLATIONS[ablation])
    if data_root is None and profile in ("cpu", "paper"):
        data_root = os.environ.get("DATA_ROOT", "")
        if not data_root:
            raise ValueError(f"profile {profile!r} trains on real data: pass --data ROOT or set DATA_ROOT")
    if data_root:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=os.path.abspath(data_root)))
        if profile in ("smoke", "quick"):  # real data with a small budget: use the real layout names
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **_REAL))
    if isinstance(overrides, dict):
        overrides = [f"{k}={v}" for k, v in overrides.items()]
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not of the form key=value (e.g. optim.steps=500)")
        cfg = replace_path(cfg, key.strip(), value.strip())
    if cfg.optim.pretrain_steps > cfg.optim.steps:
        cfg = replace_path(cfg, "optim.pretrain_steps", str(cfg.optim.steps))
    return cfg


def config_from_dict(data: dict) -> TrainConfig:
    return from_dict(TrainConfig, data)


# Fields added after runs were cached, left out of the hash while at these defaults (which
# reproduce the behaviour from before they existed), so those runs keep their folders.
_HASH_OMITTED_AT_DEFAULT = {
    "optim": {"lr_decay_from": 0, "lr_final": 0.1, "init_from": "", "init_sha256": "", "select_teacher": False,
              "select_min_labeled": 0.0},
    "data": {"val_extra_rain": ""},
    "model": {"memory_read": "soft", "memory_temperature": 1.0, "memory_min_temperature": 0.03,
              "memory_anneal": 0.99998, "memory_rescale": False, "memory_reseed": 0, "memory_kmeans": 0},
}


def config_hash(cfg: TrainConfig) -> str:
    """A short stable hash of everything that changes a run's result (for caching runs)."""
    from .network import ARCH_VERSION

    data = to_dict(cfg)
    for group, defaults in _HASH_OMITTED_AT_DEFAULT.items():
        for key, value in defaults.items():
            if data[group].get(key) == value:
                del data[group][key]
    text = json.dumps({"config": data, "arch_version": ARCH_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]
