"""The memory study's training grid (issue 30): resumable, one training job at a time.

    python experiments/memory_study/run.py [--runs DIR] [--results results/study] [--until HH:MM] [--dry-run]

Every finished job leaves a small JSON record in ``--results`` (committed); a job whose record
exists is skipped, so the grid continues in a later session from the records alone (the run
folders under ``--runs`` are a cache: a lost one is trained again). Jobs, in order:

1. screen: every arm, seed 0, supervised for ``PRETRAIN`` steps (the pre-training every later
   run shares); record = memory health, ablation deltas on the validation pairs and on the
   DDN-SIRR test set, test PSNR, the effect on real photos, and a small figure; then the
   real-photo grids (every screened arm on three photos; ``--grids`` redraws them alone).
2. seeds: the paper-faithful arm, the two arms chosen by the rule in docs/memory-study.md and the
   arm whose memory costs most to ablate (the amendment there), seeds 0-2:
   ``full`` (MOSS, ``STEPS`` steps, self-training after ``PRETRAIN``) and ``no_selftrain``, both
   forked from that seed's pre-training; record = the same measures for both runs. Once seed 0
   of every seeded arm is in: the same photos through each, MOSS beside its supervised twin.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mosslib.method.checkpoint import load_model  # noqa: E402
from mosslib.data.layouts import open_dataset  # noqa: E402
from mosslib.method.runs import config_of_run  # noqa: E402
from mosslib.data.imageio import read_rgb  # noqa: E402
from mosslib.measure.memdiag import ablation_deltas, memory_health, real_photo_effect  # noqa: E402
from mosslib.measure.memstudy import STUDY_SEEDS, planned_arms  # noqa: E402
from mosslib.measure.places import portable_path  # noqa: E402

PRETRAIN, STEPS = 1500, 3000
SEEDS = tuple(range(STUDY_SEEDS))
GUMBEL_FAST_ANNEAL = 0.03 ** (1.0 / STEPS)  # the authors' 1.0 -> 0.03 anneal compressed into this budget
COMMON = [f"optim.pretrain_steps={PRETRAIN}", "optim.lr_decay_from=0", "optim.val_every=500", "optim.ckpt_every=250"]

# arm -> ModelConfig overrides (the paper-faithful memory first; screening order = priority)
ARMS: dict[str, list[str]] = {
    "paper": [],
    "gumbel_fast": ["model.memory_read=gumbel", f"model.memory_anneal={GUMBEL_FAST_ANNEAL!r}"],
    "t0.1": ["model.memory_temperature=0.1"],
    # every remedy at once: a selective read, the query's scale, live items from the data
    "combo_soft": ["model.memory_temperature=0.1", "model.memory_rescale=true", "model.memory_reseed=100",
                   "model.memory_kmeans=10"],
    "combo_gumbel": ["model.memory_read=gumbel", f"model.memory_anneal={GUMBEL_FAST_ANNEAL!r}", "model.memory_rescale=true",
                     "model.memory_reseed=100", "model.memory_kmeans=10"],
    "t0.03": ["model.memory_temperature=0.03"],
    # without the encoder-to-decoder fusion the memory is the decoder's only path
    "paper_nofuse": ["model.fuse=false"],
    "combo_soft_nofuse": ["model.fuse=false", "model.memory_temperature=0.1", "model.memory_rescale=true",
                          "model.memory_reseed=100", "model.memory_kmeans=10"],
    "rescale": ["model.memory_rescale=true"],
    "reseed": ["model.memory_reseed=100"],
    "kmeans": ["model.memory_kmeans=10"],
    "gumbel": ["model.memory_read=gumbel"],
    "gumbel_fast_nofuse": ["model.fuse=false", "model.memory_read=gumbel", f"model.memory_anneal={GUMBEL_FAST_ANNEAL!r}"],
}
REAL_PHOTOS = 12  # asked of the 147 DDN-SIRR real photos (11 measured: one evenly spread pick is a figure photo)
FIGURE_PHOTOS = ("2.jpg", "37.jpg", "101.jpg")


def say(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S} study] {msg}", flush=True)


def arm_settings(arm: str, steps: int) -> list[str]:
    """An arm's model settings for a run of ``steps`` steps: a compressed Gumbel anneal reaches the
    authors' 0.03 at the last step of that run (the same settings as ``ARMS`` at ``STEPS``)."""
    anneal = f"model.memory_anneal={0.03 ** (1.0 / steps)!r}"
    return [anneal if s.startswith("model.memory_anneal=") else s for s in ARMS[arm]]


def overrides(arm: str, steps: int) -> list[str]:
    return COMMON + [f"optim.steps={steps}"] + arm_settings(arm, STEPS)


class ValPair:
    """A validation pair in the shape evaluate_pairs expects (name, load())."""

    def __init__(self, name: str, rainy: np.ndarray, clean: np.ndarray):
        self.name, self._pair = name, (rainy, clean)

    def load(self):
        return self._pair


def validation_groups(cfg) -> dict:
    from mosslib.method.trainset import build_training_data

    data = build_training_data(cfg)
    pairs = [ValPair(f"val{i}", r, c) for i, ((r, c), g) in enumerate(zip(data.val, data.val_groups)) if g == "labeled"]
    return {"val": pairs}


def real_photos(data_root: Path) -> dict:
    files = sorted((data_root / "DDN-SIRR" / "real_input").glob("*.jpg"), key=lambda p: int(p.stem))
    idx = np.linspace(0, len(files) - 1, REAL_PHOTOS - len(FIGURE_PHOTOS)).round().astype(int)
    chosen = [f for f in files if f.name in FIGURE_PHOTOS] + [files[i] for i in idx if files[i].name not in FIGURE_PHOTOS]
    return {f.name: read_rgb(f) for f in chosen}


def _portable_config(config: dict, data_root: Path) -> dict:
    """A run's configuration as a committed record keeps it: the data root as $DATA_ROOT."""
    data = config.get("data") or {}
    for key in ("root", "unlabeled"):
        if data.get(key) and Path(data[key]).is_absolute():
            data[key] = portable_path(data[key], data_root)
    return config


def measure(run: Path, data_root: Path, cache: dict, figure: Path | None = None) -> dict:
    """Everything the study records of one trained run (its validation-selected best.pt)."""
    config = json.loads((run / "config.json").read_text())
    best = json.loads((run / "done.json").read_text())["best"]
    return measure_model(load_model(run, which="best"), config_of_run(run), config, best, data_root, cache, figure)


def measure_model(model, cfg, config: dict, best: dict, data_root: Path, cache: dict, figure: Path | None = None) -> dict:
    """The study's record of one model: ``cfg`` its training configuration (whose data root is
    ``data_root``; the validation pairs depend on it and on the seed), ``config`` the same as saved,
    ``best`` the validation score that chose it."""
    if "test" not in cache:
        cache["test"] = open_dataset(data_root / "DDN-SIRR").test_groups()
        cache["real"] = real_photos(data_root)
    if ("val", cfg.seed) not in cache:  # the validation split depends on the seed
        cache[("val", cfg.seed)] = validation_groups(cfg)
    test = ablation_deltas(model, cache["test"], n_boot=2000)
    val = ablation_deltas(model, cache[("val", cfg.seed)], n_boot=2000)
    images = [p.load()[0] for rows in cache["test"].values() for p in rows]
    rec = {
        "run_config": _portable_config(config, data_root),
        "best": best,
        "health": memory_health(model, images),
        "test": {k: test[k] for k in ("trained", "ablation", "ablation_ci")},
        "test_per_image": test["per_image"],  # {"trained"|"mean"|"zeros": {split: {image: psnr}}}
        "val": {k: val[k] for k in ("trained", "ablation", "ablation_ci")},
        "real": real_photo_effect(model, cache["real"]),
    }
    if figure is not None:
        save_real_figure(model, cache["real"], figure)
    return rec


def save_real_figure(model, photos: dict, path: Path) -> None:
    from PIL import Image

    from mosslib.measure.evaluate import derain_tensor

    rows = []
    for name in FIGURE_PHOTOS:
        img = photos.get(name)
        if img is None:
            continue
        out = derain_tensor(model, img)
        pair = np.concatenate([img, out], axis=1)
        h = 200
        w = int(pair.shape[1] * h / pair.shape[0])
        rows.append(np.asarray(Image.fromarray(pair).resize((w, h), Image.LANCZOS)))
    if not rows:
        return
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, quality=85)


def _draw_grids(models: dict[str, Path], data_root: Path, prefix: str, results: Path, cols: int) -> list[Path]:
    """One figure per photo of FIGURE_PHOTOS (``results/figures/<prefix><photo>.jpg``): a central crop
    (native pixels, so streaks stay visible; at most half the photo and 280 pixels a side) of the input
    and of each labelled run's output, from its validation-selected checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mosslib.measure.evaluate import derain_tensor

    photos = {n: read_rgb(data_root / "DDN-SIRR" / "real_input" / n) for n in FIGURE_PHOTOS}
    outputs = {n: {"input": img} for n, img in photos.items()}
    for label, run in models.items():
        model = load_model(run, which="best")
        for n, img in photos.items():
            outputs[n][label] = derain_tensor(model, img)
    written = []
    for n, tiles in outputs.items():
        rows = -(-len(tiles) // cols)
        h, w = tiles["input"].shape[:2]
        ch, cw = min(h // 2, 280), min(w // 2, 280)
        top, left = (h - ch) // 2, (w - cw) // 2
        fig, axes = plt.subplots(rows, cols, figsize=(cols * cw / 100, rows * (ch / 100 + 0.3)), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, (label, img) in zip(axes.flat, tiles.items()):
            ax.imshow(img[top:top + ch, left:left + cw], interpolation="nearest")
            ax.set_title(label, fontsize=9)
        fig.tight_layout(pad=0.3)
        path = results / "figures" / f"{prefix}{Path(n).stem}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, pil_kwargs={"quality": 80})
        plt.close(fig)
        written.append(path)
    return written


def _complete(models: dict[str, Path], what: str) -> bool:
    """Every run folder is there; otherwise say so (a lost cache must not drop a run from a committed figure)."""
    lost = [label for label, run in models.items() if not (run / "done.json").exists()]
    if lost:
        say(f"{what} not redrawn: no finished run folder for {', '.join(lost)}")
    return not lost


def save_real_grids(runs: Path, results: Path, data_root: Path) -> list[Path]:
    """Every screened arm on the FIGURE_PHOTOS (``real_<photo>.jpg``), from the screens' runs."""
    models = {a: runs / a / f"s0-full-{PRETRAIN}" for a in ARMS if (results / "screen" / f"{a}.json").exists()}
    return _draw_grids(models, data_root, "real_", results, cols=5) if _complete(models, "real-photo grids") else []


def save_seed_grids(runs: Path, results: Path, data_root: Path, arms: list[str]) -> list[Path]:
    """Seed 0 of every seeded arm, MOSS beside its supervised twin, on the FIGURE_PHOTOS
    (``seeds_real_<photo>.jpg``): what self-training and each memory do to real rain. Nothing until
    all those records exist."""
    if not all((results / "seeds" / f"{a}-s0-{c}.json").exists() for a in arms for c in ("full", "no_selftrain")):
        return []
    models = {f"{a} {label}": runs / a / f"s0-{c}-{STEPS}" for a in arms
              for c, label in (("full", "MOSS"), ("no_selftrain", "supervised"))}
    return _draw_grids(models, data_root, "seeds_real_", results, cols=3) if _complete(models, "seed grids") else []


def train(arm: str, seed: int, config: str, steps: int, runs: Path, data_root: Path, fork: Path | None,
          deadline: float | None) -> Path | None:
    """Train one run to completion (resumed when its folder holds a checkpoint); None when the
    deadline stopped it first."""
    out = runs / arm / f"s{seed}-{config}-{steps}"
    if (out / "done.json").exists():
        return out
    cmd = [sys.executable, "-m", "mosslib", "train", "--profile", "cpu", "--config", config, "--data", str(data_root),
           "--seed", str(seed), "--out", str(out), "--quiet"]
    for o in overrides(arm, steps):
        cmd += ["--set", o]
    if (out / "checkpoint.pt").exists():
        cmd.append("--resume")
    elif fork is not None and (fork / "pretrain.pt").exists():
        cmd += ["--fork-from", str(fork)]
    if deadline is not None:
        left = deadline - time.time()
        if left < 120:
            return None
        cmd += ["--time-limit", str(int(left))]
    out.parent.mkdir(parents=True, exist_ok=True)
    say(f"train {arm} seed {seed} {config} {steps} steps -> {out}")
    with open(out.parent / f"s{seed}-{config}-{steps}.log", "a") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    return out if (out / "done.json").exists() else None


def chosen_arms(results: Path) -> list[str] | None:
    """The arms for three seeds, by the rule fixed before screening and its amendment
    (docs/memory-study.md; :func:`mosslib.measure.memstudy.planned_arms`); None until every arm is screened."""
    recs = []
    for arm in ARMS:
        f = results / "screen" / f"{arm}.json"
        if not f.exists():
            return None
        recs.append({"arm": arm, **json.loads(f.read_text())})
    return planned_arms(recs, order=list(ARMS))


def deadline_at(hhmm: str, now: dt.datetime) -> float:
    """The next HH:MM after ``now`` (UTC) as a timestamp: 01:00 asked at 22:00 is tomorrow's."""
    hh, mm = map(int, hhmm.split(":"))
    at = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return (at if at > now else at + dt.timedelta(days=1)).timestamp()


def write(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1) + "\n")
    tmp.replace(path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=os.environ.get("MOSSLIB_STUDY_RUNS", str(REPO / "runs" / "study")))
    p.add_argument("--results", default=str(REPO / "results" / "study"))
    p.add_argument("--data", default=os.environ.get("DATA_ROOT", str(REPO.parent / "shared" / "data")))
    p.add_argument("--until", default=None,
                   help="HH:MM (UTC; the next such time, so 01:00 at 22:00 means tomorrow): start nothing that cannot end by then")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--grids", action="store_true",
                   help="only (re)draw the real-photo grids: the screened arms, and seed 0 of the seeded arms")
    args = p.parse_args()
    runs, results, data_root = Path(args.runs), Path(args.results), Path(args.data).resolve()
    deadline = deadline_at(args.until, dt.datetime.now(dt.timezone.utc)) if args.until else None
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    if args.grids:
        arms = chosen_arms(results) or []
        for path in save_real_grids(runs, results, data_root) + save_seed_grids(runs, results, data_root, arms):
            say(f"wrote {path}")
        return 0
    cache: dict = {}
    pending = 0  # jobs a dry run would start
    for arm in ARMS:  # 1. screening
        rec_path = results / "screen" / f"{arm}.json"
        if rec_path.exists():
            continue
        if args.dry_run:
            say(f"would screen {arm}: {overrides(arm, PRETRAIN)}")
            pending += 1
            continue
        run = train(arm, 0, "full", PRETRAIN, runs, data_root, None, deadline)
        if run is None:
            say("deadline: stopping")
            return 0
        rec = {"arm": arm, "seed": 0, "kind": "screen", **measure(run, data_root, cache, results / "figures" / f"{arm}.jpg")}
        write(rec_path, rec)
        say(f"screened {arm}: test {rec['test']['trained']}, mean-ablation {rec['test']['ablation']['mean']}")
        save_real_grids(runs, results, data_root)  # the real-photo grids gain the new arm
    arms = chosen_arms(results)
    if arms is None:
        say("screening incomplete; seeds wait")
        return 0
    say(f"arms for 3 seeds: {arms}")
    for seed in SEEDS:  # 2. seeds, seed-major so every arm gets seed 0 and 1 before any gets seed 2
        for arm in arms:
            for config in ("full", "no_selftrain"):
                rec_path = results / "seeds" / f"{arm}-s{seed}-{config}.json"
                if rec_path.exists():
                    continue
                if args.dry_run:
                    say(f"would train {arm} seed {seed} {config}")
                    pending += 1
                    continue
                pre = train(arm, seed, "full", PRETRAIN, runs, data_root, None, deadline)
                run = pre and train(arm, seed, config, STEPS, runs, data_root, pre, deadline)
                if run is None:
                    say("deadline: stopping")
                    return 0
                rec = {"arm": arm, "seed": seed, "kind": config, **measure(run, data_root, cache)}
                write(rec_path, rec)
                say(f"{arm} seed {seed} {config}: test {rec['test']['trained']}")
                if seed == 0:
                    save_seed_grids(runs, results, data_root, arms)  # drawn once seed 0 of every arm is in
    say(f"{pending} jobs to go" if pending else "grid complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
