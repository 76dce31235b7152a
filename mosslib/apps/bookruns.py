"""What the book's notebooks share: their training runs (trained once, with progress on the
terminal under the book runner), the data of Tables 2-3, the ablations of Table 4 and Fig. 8's
timing."""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import tqdm.auto
import tqdm.std

from .cli import build_parser
from ..data.layouts import DataError, open_dataset
from ..measure.paper import LIMITED_FRACTIONS, TABLE4_LABELS, TABLE4_ORDER
from ..method.profiles import make_config
from ..method.archive import archive_name, archive_run, restore_run
from ..method.checkpoint import CheckpointError, load_checkpoint
from ..method.runs import evaluated, memory_diagnosed, run_dir, trained
from ..method.trainset import data_root as resolve_root


NOTEBOOK_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.py$")


class BookError(RuntimeError):
    """A notebook that cannot be run as part of the book (the message names it)."""


def say(message: str) -> None:
    print(f"[book] {message}", flush=True)


def find_notebooks(folder: str | os.PathLike) -> list[Path]:
    """``NN_name.py`` notebooks of a folder, in order of NN."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BookError(f"{folder}: no notebooks folder")
    return sorted(p for p in folder.iterdir() if NOTEBOOK_NAME.match(p.name))


# -- training runs shared by the notebooks ------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One training run of the book: an ablation, overrides (dotted keys), a seed, an architecture."""

    config: str = "full"
    overrides: tuple[tuple[str, str], ...] = ()
    seed: int = 0
    arch: str = "moedn"
    label: str = ""
    weights: bool = False  # archive its model too (a run whose outputs a notebook shows)
    diagnose: bool = False  # archive its memory diagnostics too (mosslib.method.runs.memory_diagnosed)

    @staticmethod
    def make(config: str = "full", overrides: Mapping[str, object] | None = None, seed: int = 0,
             arch: str = "moedn", label: str = "", weights: bool = False, diagnose: bool = False) -> "RunSpec":
        items = tuple(sorted((str(k), str(v)) for k, v in (overrides or {}).items()))
        return RunSpec(config, items, seed, arch, label or config, weights, diagnose)


BOOK_ENV = "MOSSLIB_BOOK"  # set by run_book to a file: progress bars of the kernel go there, not into the notebook


@contextlib.contextmanager
def _console_progress():
    """Under the book runner, send the trainer's ``tqdm.auto`` bars to the file named by
    :data:`BOOK_ENV` (the runner copies it to its terminal) instead of the notebook's outputs, where
    they would be saved with the executed notebook. Elsewhere (JupyterLab) bars stay as they are."""
    target = os.environ.get(BOOK_ENV)
    if not target:
        yield
        return
    saved = tqdm.auto.tqdm
    with open(target, "a", buffering=1) as fh:
        tqdm.auto.tqdm = functools.partial(tqdm.std.tqdm, file=fh, mininterval=5.0, ascii=True, ncols=100)
        try:
            yield
        finally:
            tqdm.auto.tqdm = saved


@contextlib.contextmanager
def follow_log(path: Path, stream, interval: float = 0.5):
    """Copy what is appended to ``path`` to ``stream`` while the block runs (and the rest after it)."""
    stop = threading.Event()

    def pump(fh):
        while True:
            chunk = fh.read()
            if chunk:
                stream.write(chunk)
                stream.flush()
            elif stop.is_set():
                return
            else:
                stop.wait(interval)

    path.write_text("")
    with open(path) as fh:
        thread = threading.Thread(target=pump, args=(fh,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def train_runs(specs: Sequence[RunSpec], profile: str, data_root: str | None, runs_dir: str | os.PathLike,
               quiet: bool = False, archive: str | os.PathLike | None = None) -> list[Path]:
    """Train (or resume, or reuse) each run, printing ``[book] run i/n ...`` lines; their folders.

    ``archive`` (the book's ``results/<profile>/runs``): a run found there is restored instead of
    trained, and each run is archived (:mod:`mosslib.method.archive`, with its evaluation on its own
    test set) as soon as it finishes, so a book stopped part-way keeps its finished runs."""

    out = []
    for i, spec in enumerate(specs, 1):
        overrides = dict(spec.overrides)
        cfg = make_config(profile, spec.config, data_root=data_root, overrides=overrides, seed=spec.seed, arch=spec.arch)
        folder = run_dir(cfg, runs_dir)
        restored = archive is not None and restore_run(cfg, folder, archive)
        state = "restored from the archive" if restored else "cached" if (folder / "done.json").exists() else (
            "resuming" if (folder / "checkpoint.pt").exists() else "training")
        # the folder's name, not its path: these lines are kept in the executed notebook and its HTML page
        say(f"run {i}/{len(specs)} {spec.label or spec.config} (seed {spec.seed}, {cfg.optim.steps} steps): {state}, {folder.name}")
        t0 = time.perf_counter()
        with _console_progress():
            path = trained(profile, spec.config, data_root=data_root, runs_dir=runs_dir, overrides=overrides,
                           seed=spec.seed, arch=spec.arch, quiet=quiet)
        if not state.startswith(("cached", "restored")):
            say(f"run {i}/{len(specs)} done in {time.perf_counter() - t0:.0f} s")
        if archive is not None:
            keep_run(path, archive, weights=spec.weights, diagnose=spec.diagnose)
        out.append(path)
    return out


def keep_run(run: Path, archive: str | os.PathLike, weights: bool = False, diagnose: bool = False) -> Path:
    """Evaluate a finished run on its own test set (and diagnose its memory), then archive it."""
    evaluated(run)
    if diagnose:
        memory_diagnosed(run)
    return archive_run(run, archive, weights=weights)


def evaluate_runs(runs: Sequence[Path], convention: str = "rgb", test: str | os.PathLike | None = None,
                  archive: str | os.PathLike | None = None) -> list[dict]:
    """:func:`mosslib.method.runs.evaluated` of each run (cached in the run folders, and archived
    with the run when ``archive`` is given)."""
    out = [evaluated(r, convention=convention, test=None if test is None else str(test)) for r in runs]
    if archive is not None:
        for r in runs:
            archive_run(r, archive)
    return out


# -- Tables 2-3: which data ------------------------------------------------------------------
@dataclass(frozen=True)
class LimitedSetup:
    """One limited-label experiment: D_L's data set, the test folder and the paper table beside it."""

    name: str  # the data set's name, for titles and file names
    labeled: str  # data.labeled (relative to the data root)
    test: Path | None  # evaluated(test=...); None: the run configuration's own test set
    paper_dataset: str | None  # "Rain200H" / "Rain800": the paper's table for this data set
    note: str


# Steps of each limited-label run (total, pre-training) per profile; None: the profile's own.
# quick: 9 runs must fit the 20-minute book beside Tables 1 and 4, so they train half as long.
# cpu: nine runs of the profile's own 12,000 steps would take about 15 h on 2 cores; 2,000 steps each, about 2 h.
LIMITED_STEPS: dict[str, tuple[int, int] | None] = {"smoke": None, "quick": (150, 50), "cpu": (2000, 1000), "paper": None}

# Table 4 configurations each profile trains (None or absent: all six); a profile whose budget
# cannot hold all six names the ones it trains here, and notebook 04 says which it left out.
TABLE4_CONFIGS: dict[str, tuple[str, ...] | None] = {}

# Steps of each Table 4 run (total, pre-training) per profile; absent: the profile's own (then Table
# 4's full and supervised runs are Table 1's). cpu: six runs of the profile's 12,000 steps would take
# about 8 h on 2 cores; at Tables 2-3's 2,000 steps all six take about an hour, and Table 4's
# supervised run is Tables 2-3's 100 % run (the same configuration, so the same cached run).
TABLE4_STEPS: dict[str, tuple[int, int]] = {"cpu": LIMITED_STEPS["cpu"]}


# Steps of each Table 1 run (total, pre-training) per profile; absent: the profile's own. cpu: a run
# must finish within one session (run folders do not outlive it; finished runs are archived): its own
# 12,000 steps take about 2 h 25 min for MOSS on 2 cores (self-training at 1.2 steps/s), 6,000 about
# 75 minutes, so three seeds of the pair (about 5 h) span two or three sessions.
TABLE1_STEPS: dict[str, tuple[int, int]] = {"cpu": (6000, 1500)}


def table4_configs(profile: str) -> tuple[str, ...]:
    """The Table 4 configurations ``profile`` trains, in the paper's order (``full`` last)."""
    chosen = TABLE4_CONFIGS.get(profile)
    return tuple(c for c in TABLE4_ORDER if chosen is None or c in chosen)


def table4_training_order(configs: Sequence[str]) -> tuple[str, ...]:
    """``configs`` with ``full`` and ``no_memory`` first: the runs that differ from one of them only in
    self-training settings (``no_selftrain``, ``no_tv``; ``basic``) then fork its pre-training."""
    first = [c for c in ("full", "no_memory") if c in configs]
    return tuple(first + [c for c in configs if c not in first])


def table4_specs(profile: str, seeds: Sequence[int]) -> list[RunSpec]:
    """Table 4's runs, seed by seed (a seed's six runs share its pre-training and are archived
    together); the first seed's ``full`` run keeps its memory diagnostics."""
    overrides = table4_overrides(profile)
    return [RunSpec.make(c, overrides, seed=s, label=TABLE4_LABELS[c], diagnose=c == "full" and s == seeds[0])
            for s in seeds for c in table4_training_order(table4_configs(profile))]


def table1_overrides(profile: str) -> dict[str, str]:
    """Overrides of every Table 1 run of ``profile`` (its reduced budget; {} for the profile's own)."""
    return _step_overrides(TABLE1_STEPS.get(profile))


def table1_specs(profile: str, seeds: Sequence[int]) -> list[RunSpec]:
    """Table 1's runs, seed by seed: supervised (``no_selftrain``), then MOSS (``full``) from the same
    pre-training; the first seed's pair keeps its weights (notebooks 01, 05 and 06 show its outputs)."""
    overrides, specs = table1_overrides(profile), []
    for s in seeds:
        first = s == seeds[0]
        specs.append(RunSpec.make("no_selftrain", overrides, seed=s, label="supervised (D_C)", weights=first))
        specs.append(RunSpec.make("full", overrides, seed=s, label="MOSS (D_C + D_U)", weights=first, diagnose=first))
    return specs


def _step_overrides(steps: tuple[int, int] | None) -> dict[str, str]:
    if steps is None:
        return {}
    return {"optim.steps": str(steps[0]), "optim.pretrain_steps": str(steps[1]),
            "optim.val_every": str(max(1, steps[0] // 3)), "optim.lr_decay_from": "0"}


def table4_overrides(profile: str) -> dict[str, str]:
    """Overrides of every Table 4 run of ``profile`` (its reduced budget; {} for the profile's own)."""
    return _step_overrides(TABLE4_STEPS.get(profile))


def limited_overrides(profile: str, percent: int, with_unlabeled: bool, labeled: str) -> dict[str, str]:
    """Overrides of one Tables 2-3 run: D_L's data set and fraction; with D_U: only the dropped-label rest."""
    ov = {"data.labeled": labeled, "data.labeled_split": "train", "data.label_fraction": str(percent / 100)}
    ov.update(_step_overrides(LIMITED_STEPS.get(profile)))
    if with_unlabeled:
        ov["data.unlabeled"] = ""  # paper 4.4: D_U is the rest of the training set, labels dropped
    return ov


def limited_specs(profile: str, setup: "LimitedSetup", seeds: Sequence[int],
                  percents: Sequence[int] = LIMITED_FRACTIONS) -> list[tuple[RunSpec, tuple[int, str]]]:
    """Tables 2-3's runs of one data set, each with its ``(percent, "D_L" | "D_L + D_U")`` key: per
    fraction and seed, D_L alone, then (below 100 %) D_L + D_U from the same pre-training."""
    out = []
    for pct in percents:
        for s in seeds:
            out.append((RunSpec.make("no_selftrain", limited_overrides(profile, pct, False, setup.labeled), seed=s,
                                     label=f"{setup.name} {pct} % D_L"), (pct, "D_L")))
            if pct < 100:
                out.append((RunSpec.make("full", limited_overrides(profile, pct, True, setup.labeled), seed=s,
                                         label=f"{setup.name} {pct} % D_L + D_U"), (pct, "D_L + D_U")))
    return out


def book_specs(notebook: str, profile: str, data_root: str | None, seeds: Sequence[int]) -> list[RunSpec]:
    """The training runs a notebook of the book needs (01, 02, 04; 05 and 06 use Table 1's first seed;
    [] for the others)."""
    key = Path(notebook).name[:2]
    if key == "01":
        return table1_specs(profile, seeds)
    if key in ("05", "06"):
        first = table1_specs(profile, [0])
        return first[1:] if key == "05" else first
    if key == "04":
        return table4_specs(profile, seeds)
    if key == "02":
        return [spec for setup in limited_setups(profile, data_root) for spec, _ in limited_specs(profile, setup, seeds)]
    return []


def run_state(spec: RunSpec, profile: str, data_root: str | None, runs_dir: str | os.PathLike,
              archive: str | os.PathLike | None = None) -> str:
    """Where a run stands: ``finished``, ``archived`` (restored when needed), ``at step k of N`` or ``to train``."""
    cfg = make_config(profile, spec.config, data_root=data_root, overrides=dict(spec.overrides), seed=spec.seed,
                      arch=spec.arch)
    folder = run_dir(cfg, runs_dir)
    if (folder / "done.json").is_file():
        return "finished"
    if archive is not None and (Path(archive) / archive_name(folder, cfg) / "done.json").is_file():
        return "archived"
    if (folder / "checkpoint.pt").is_file():
        try:
            return f"at step {int(load_checkpoint(folder / 'checkpoint.pt')['step']):,} of {cfg.optim.steps:,}"
        except (CheckpointError, KeyError, ValueError):
            return "to train (its checkpoint is unreadable)"
    return "to train"


def _child(root: Path, name: str) -> Path | None:
    for d in root.iterdir() if root.is_dir() else ():
        if d.is_dir() and d.name.lower() == name.lower():
            return d
    return None


def _has_test_split(folder: Path) -> bool:
    try:
        ds = open_dataset(folder)
    except DataError:
        return False
    return "train" in ds.splits and "test" in ds.splits and bool(ds.splits["test"].pairs)


def limited_setups(profile: str, data_root: str | None) -> list[LimitedSetup]:
    """The data of Tables 2-3: Rain200H and Rain800 when the data root holds them, else Rain100L, else
    the embedded labeled set (tested on its own test split, or on the configuration's test set)."""

    cfg = make_config(profile, "full", data_root=data_root)
    root = resolve_root(cfg.data)
    setups = []
    for name in ("Rain200H", "Rain800"):
        folder = _child(root, name) if cfg.data.root else None
        if folder is not None and _has_test_split(folder):
            setups.append(LimitedSetup(name, folder.name, folder, name,
                                       f"{name} train as D_L (labels dropped beyond the fraction), {name} test as test set"))
    if setups:
        return setups
    folder = _child(root, "Rain100L") if cfg.data.root else None
    if folder is not None and _has_test_split(folder):
        return [LimitedSetup("Rain100L", folder.name, folder, None,
                             "Rain200H and Rain800 are not in the data root; Rain100L (light synthetic rain) stands in: "
                             "Rain100L train as D_L, Rain100L test as test set")]
    labeled = root / cfg.data.labeled
    if _has_test_split(labeled):
        return [LimitedSetup(cfg.data.labeled, cfg.data.labeled, labeled, None,
                             f"{cfg.data.labeled} train as D_L, its test split as test set")]
    return [LimitedSetup(cfg.data.labeled, cfg.data.labeled, None, None,
                         f"{cfg.data.labeled} (train only, no test split) as D_L; tested on the configuration's "
                         f"test set {cfg.data.test} (a different rain distribution: a transfer test)")]


# -- Fig. 8: timing ---------------------------------------------------------------------------
# Extra `mosslib bench` flags when the book runs the benchmark itself (Fig. 8 needs inference latency
# only; `make bench` runs the full benchmark): smoke uses the benchmark's tiny --quick mode.
BENCH_FLAGS: dict[str, tuple[str, ...]] = {
    "smoke": ("--quick", "--no-train", "--no-psnr"),
    "quick": ("--repeats", "5", "--no-train", "--no-psnr"),
    "cpu": ("--no-train", "--no-psnr"),
    "paper": ("--no-train", "--no-psnr"),
}


def timing_results(profile: str, results: str | os.PathLike, timeout: float = 1200) -> Path:
    """``results/<profile>/timing.csv`` of ``python -m mosslib bench``, running the benchmark when missing.

    ``results`` is the profile's results folder. Raises :class:`BookError` with the command to run
    when the benchmark is not available or fails.
    """
    path = Path(results) / "timing.csv"
    if path.exists():
        return path
    if importlib.util.find_spec("mosslib.apps.bench") is None:
        raise BookError(
            f"{path} is missing and mosslib.apps.bench is not installed in this checkout; write it with "
            f"`python -m mosslib bench --profile {profile}` (make bench PROFILE={profile}) and re-run this notebook"
        )

    options = {o for a in build_parser("bench")._actions for o in a.option_strings}  # the flags it accepts
    cmd = [sys.executable, "-m", "mosslib", "bench", "--profile", profile]
    cwd = None
    out_flag = next((o for o in ("--out", "--output", "--csv") if o in options), None)
    if out_flag:
        cmd += [out_flag, str(path)]
    elif "--results" in options:
        cmd += ["--results", str(Path(results).parent)]
    else:  # the benchmark writes results/<profile>/timing.csv under its working folder
        cwd = Path(results).parent.parent
    flags = BENCH_FLAGS.get(profile, ())
    for i, flag in enumerate(flags):
        if flag.startswith("--") and flag in options:
            cmd.append(flag)
            if i + 1 < len(flags) and not flags[i + 1].startswith("--"):
                cmd.append(flags[i + 1])
    say("timing: " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if proc.returncode != 0 or not path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BookError(f"`{' '.join(cmd[1:])}` failed (exit {proc.returncode}) and wrote no {path}: " + " | ".join(tail))
    return path
