"""The reproduction book: run the notebooks in order, and the training runs they share.

``python -m mosslib book --profile quick [--data ROOT]`` converts each ``notebooks/NN_name.py``
(jupytext percent format) and executes it with papermill, in order, writing
``build/<profile>/NN_name.ipynb``. Every notebook gets the parameters of :data:`PARAMETERS`
(and, where it declares them, ``seeds`` with ``--seeds`` and ``cache_dir`` = the build folder);
a notebook whose parameters cell lacks one is an error, so a misspelt name fails instead of
being silently ignored. A notebook is skipped when its stamp - a hash of its text, its
parameters, the mosslib sources and the files it declares it reads (``mosslib: reads:`` in its
jupytext header) - is unchanged and the files it wrote are still there. Training runs are cached
by configuration (:mod:`mosslib.experiments`), so an interrupted book resumes where it stopped.

After the notebooks that write the tables, the book writes the claims ledger
(``results/<profile>/ledger.{md,csv,json}``, :mod:`mosslib.ledger`; for ``cpu`` also the README's
block between ``<!-- ledger:start -->`` and ``<!-- ledger:end -->``), then runs the notebooks that
show it (those that list ``ledger.json`` among the files they read: ``00_overview``), and ends by
rendering the executed notebooks as a static HTML book in ``build/<profile>/site/`` (:mod:`mosslib.site`).

Notebooks use :func:`train_runs` (training with visible progress), :func:`limited_setups` (the
data of Tables 2-3) and :func:`timing_results` (Fig. 8's measurements).
"""
from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

__all__ = [
    "PARAMETERS",
    "BookError",
    "RunSpec",
    "train_runs",
    "evaluate_runs",
    "LimitedSetup",
    "limited_setups",
    "LIMITED_STEPS",
    "TABLE4_CONFIGS",
    "table4_configs",
    "TABLE4_STEPS",
    "table4_overrides",
    "table4_training_order",
    "limited_overrides",
    "BENCH_FLAGS",
    "timing_results",
    "find_notebooks",
    "read_notebook",
    "notebook_parameters",
    "book_parameters",
    "check_parameters",
    "parameters_for",
    "notebook_stamp",
    "run_book",
    "add_arguments",
    "run",
]

# The parameters every notebook's `parameters` cell declares, in this order (``seeds`` optional).
PARAMETERS = ("profile", "data_root", "results_dir", "figures_dir", "runs_dir")
# Passed only to notebooks that declare them: seeds (with --seeds) and cache_dir (the build folder,
# for notebooks that cache derived files, e.g. 06_real_world's derained photos).
OPTIONAL_PARAMETERS = ("seeds", "cache_dir")
NOTEBOOK_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.py$")


class BookError(RuntimeError):
    """A notebook that cannot be run as part of the book (the message names it)."""


def _say(message: str) -> None:
    print(f"[book] {message}", flush=True)


# -- training runs shared by the notebooks ------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One training run of the book: an ablation, overrides (dotted keys), a seed, an architecture."""

    config: str = "full"
    overrides: tuple[tuple[str, str], ...] = ()
    seed: int = 0
    arch: str = "moedn"
    label: str = ""

    @staticmethod
    def make(config: str = "full", overrides: Mapping[str, object] | None = None, seed: int = 0,
             arch: str = "moedn", label: str = "") -> "RunSpec":
        items = tuple(sorted((str(k), str(v)) for k, v in (overrides or {}).items()))
        return RunSpec(config, items, seed, arch, label or config)


BOOK_ENV = "MOSSLIB_BOOK"  # set by run_book: notebooks executed by the book show text progress bars


@contextlib.contextmanager
def _console_progress():
    """Under the book runner, make the trainer's ``tqdm.auto`` bar a text bar on stderr (which papermill
    relays to the console) instead of a notebook widget that only JupyterLab can show."""
    if not os.environ.get(BOOK_ENV):
        yield
        return
    import tqdm.auto
    import tqdm.std

    saved = tqdm.auto.tqdm
    tqdm.auto.tqdm = functools.partial(tqdm.std.tqdm, file=sys.stderr, mininterval=5.0, ascii=True, ncols=100)
    try:
        yield
    finally:
        tqdm.auto.tqdm = saved


def train_runs(specs: Sequence[RunSpec], profile: str, data_root: str | None, runs_dir: str | os.PathLike,
               quiet: bool = False) -> list[Path]:
    """Train (or resume, or reuse) each run, printing ``[book] run i/n ...`` lines; their folders."""
    from .experiments import run_dir, trained
    from .profiles import make_config

    out = []
    for i, spec in enumerate(specs, 1):
        overrides = dict(spec.overrides)
        cfg = make_config(profile, spec.config, data_root=data_root, overrides=overrides, seed=spec.seed, arch=spec.arch)
        folder = run_dir(cfg, runs_dir)
        state = "cached" if (folder / "done.json").exists() else (
            "resuming" if (folder / "checkpoint.pt").exists() else "training")
        _say(f"run {i}/{len(specs)} {spec.label or spec.config} (seed {spec.seed}, {cfg.optim.steps} steps): {state}, {folder}")
        t0 = time.perf_counter()
        with _console_progress():
            path = trained(profile, spec.config, data_root=data_root, runs_dir=runs_dir, overrides=overrides,
                           seed=spec.seed, arch=spec.arch, quiet=quiet)
        if state != "cached":
            _say(f"run {i}/{len(specs)} done in {time.perf_counter() - t0:.0f} s")
        out.append(path)
    return out


def evaluate_runs(runs: Sequence[Path], convention: str = "rgb", test: str | os.PathLike | None = None) -> list[dict]:
    """:func:`mosslib.experiments.evaluated` of each run (cached in the run folders)."""
    from .experiments import evaluated

    return [evaluated(r, convention=convention, test=None if test is None else str(test)) for r in runs]


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


def table4_configs(profile: str) -> tuple[str, ...]:
    """The Table 4 configurations ``profile`` trains, in the paper's order (``full`` last)."""
    from .paper import TABLE4_ORDER

    chosen = TABLE4_CONFIGS.get(profile)
    return tuple(c for c in TABLE4_ORDER if chosen is None or c in chosen)


def table4_training_order(configs: Sequence[str]) -> tuple[str, ...]:
    """``configs`` with ``full`` and ``no_memory`` first: the runs that differ from one of them only in
    self-training settings (``no_selftrain``, ``no_tv``; ``basic``) then fork its pre-training."""
    first = [c for c in ("full", "no_memory") if c in configs]
    return tuple(first + [c for c in configs if c not in first])


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


def _child(root: Path, name: str) -> Path | None:
    for d in root.iterdir() if root.is_dir() else ():
        if d.is_dir() and d.name.lower() == name.lower():
            return d
    return None


def _has_test_split(folder: Path) -> bool:
    from .data import DataError, open_dataset

    try:
        ds = open_dataset(folder)
    except DataError:
        return False
    return "train" in ds.splits and "test" in ds.splits and bool(ds.splits["test"].pairs)


def limited_setups(profile: str, data_root: str | None) -> list[LimitedSetup]:
    """The data of Tables 2-3: Rain200H and Rain800 when the data root holds them, else Rain100L, else
    the embedded labeled set (tested on its own test split, or on the configuration's test set)."""
    from .profiles import make_config
    from .trainset import data_root as resolve_root

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
    import importlib.util

    path = Path(results) / "timing.csv"
    if path.exists():
        return path
    if importlib.util.find_spec("mosslib.bench") is None:
        raise BookError(
            f"{path} is missing and mosslib.bench is not installed in this checkout; write it with "
            f"`python -m mosslib bench --profile {profile}` (make bench PROFILE={profile}) and re-run this notebook"
        )
    from .cli import build_parser

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
    _say("timing: " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if proc.returncode != 0 or not path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BookError(f"`{' '.join(cmd[1:])}` failed (exit {proc.returncode}) and wrote no {path}: " + " | ".join(tail))
    return path


# -- notebooks ----------------------------------------------------------------------------------
def find_notebooks(folder: str | os.PathLike) -> list[Path]:
    """``NN_name.py`` notebooks of a folder, in order of NN."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BookError(f"{folder}: no notebooks folder")
    return sorted(p for p in folder.iterdir() if NOTEBOOK_NAME.match(p.name))


def read_notebook(path: str | os.PathLike):
    """The jupytext notebook of ``path`` as an nbformat node (kernel python3 when it names none)."""
    import jupytext

    path = Path(path)
    try:
        nb = jupytext.read(path)
    except Exception as exc:  # jupytext raises several types for bad files
        raise BookError(f"{path}: not a readable jupytext notebook: {exc}") from exc
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    return nb


def notebook_parameters(nb, path: str | os.PathLike = "<notebook>") -> dict[str, str]:
    """``{name: default source}`` of the cell tagged ``parameters`` (BookError when there is none)."""
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise BookError(f"{path}: no cell tagged 'parameters' (jupytext: `# %% tags=[\"parameters\"]`)")
    try:
        tree = ast.parse(cells[0].source)
    except SyntaxError as exc:
        raise BookError(f"{path}: the parameters cell is not valid Python: {exc}") from exc
    out = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name) and node.value is not None:
                out[t.id] = ast.unparse(node.value)
    return out


def book_parameters(profile: str, data_root: str = "", results_dir: str = "results", figures_dir: str = "figures",
                    runs_dir: str = "runs", seeds: int | None = None, cache_dir: str | None = None) -> dict:
    """The parameters the book passes to the notebooks (paths made absolute); the optional ones
    (``seeds``, ``cache_dir``) reach only notebooks that declare them (:func:`parameters_for`)."""
    params = {
        "profile": profile,
        "data_root": str(Path(data_root).expanduser().resolve()) if data_root else "",
        "results_dir": str(Path(results_dir).expanduser().resolve()),
        "figures_dir": str(Path(figures_dir).expanduser().resolve()),
        "runs_dir": str(Path(runs_dir).expanduser().resolve()),
    }
    if seeds is not None:
        params["seeds"] = int(seeds)
    if cache_dir is not None:
        params["cache_dir"] = str(Path(cache_dir).expanduser().resolve())
    return params


def check_parameters(nb, params: Mapping, path: str | os.PathLike) -> None:
    """BookError when a passed parameter is not declared by the notebook (a misspelt name)."""
    declared = notebook_parameters(nb, path)
    unknown = [k for k in params if k not in declared]
    if unknown:
        raise BookError(f"{path}: parameters {unknown} are not in its parameters cell (it declares {sorted(declared)})")


def parameters_for(nb, params: Mapping, path: str | os.PathLike) -> dict:
    """The book's parameters for one notebook: all of :data:`PARAMETERS` (checked), and the optional
    ones (``seeds``) only where the notebook declares them."""
    declared = notebook_parameters(nb, path)
    out = {k: v for k, v in params.items() if k not in OPTIONAL_PARAMETERS or k in declared}
    check_parameters(nb, out, path)
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_digest() -> str:
    """Hash of every mosslib source file (a changed library re-runs the notebooks)."""
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(pkg.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        h.update(p.relative_to(pkg).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _reads(nb, params: Mapping) -> list[Path]:
    reads = nb.metadata.get("mosslib", {}).get("reads", []) or []
    return [Path(str(r).format(**params)) for r in reads]


def _read_digest(p: Path) -> str:
    """A declared input's hash: a file's bytes, or a folder's files (names and bytes), or "missing"."""
    if p.is_file():
        return _sha(p.read_bytes())
    if p.is_dir():
        return _sha(b"".join(str(f.relative_to(p)).encode() + _sha(f.read_bytes()).encode()
                             for f in sorted(p.rglob("*")) if f.is_file()))
    return "missing"


def notebook_stamp(path: str | os.PathLike, nb, params: Mapping, digest: str | None = None) -> str:
    """Hash of what a notebook's results depend on: its text, parameters, mosslib and the files it reads."""
    reads = {str(p): _read_digest(p) for p in _reads(nb, params)}
    blob = {
        "notebook": _sha(Path(path).read_bytes()),
        "parameters": dict(sorted(params.items())),
        "mosslib": digest or source_digest(),
        "reads": reads,
    }
    return _sha(json.dumps(blob, sort_keys=True).encode())


def _written_since(folders: Sequence[Path], t0: float) -> list[str]:
    out = []
    for folder in folders:
        if folder.is_dir():
            out += [str(p) for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime >= t0 - 1]
    return sorted(out)


def _up_to_date(stamp_file: Path, output: Path, stamp: str) -> bool:
    if not (stamp_file.is_file() and output.is_file()):
        return False
    try:
        saved = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return False
    return saved.get("stamp") == stamp and all(Path(p).is_file() for p in saved.get("outputs", []))


def run_book(profile: str = "quick", data_root: str = "", notebooks: str | os.PathLike = "notebooks",
             build_dir: str | os.PathLike = "build", results_dir: str = "results", figures_dir: str = "figures",
             runs_dir: str = "runs", only: Sequence[str] = (), force: bool = False, keep_going: bool = False,
             seeds: int | None = None, dry_run: bool = False, progress: bool = True) -> int:
    """Execute the book; 0 when every notebook ran or was up to date, 1 when one failed, 2 on bad input."""
    import papermill as pm

    from .profiles import PROFILES

    if profile not in PROFILES:
        print(f"error: unknown profile {profile!r}; use one of {sorted(PROFILES)}", file=sys.stderr)
        return 2
    try:
        paths = find_notebooks(notebooks)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if only:
        wanted = {w.removesuffix(".py") for w in only}
        paths = [p for p in paths if p.stem in wanted or p.stem[:2] in wanted]
        missing = wanted - {p.stem for p in paths} - {p.stem[:2] for p in paths}
        if missing:
            print(f"error: no notebook {sorted(missing)} in {notebooks}", file=sys.stderr)
            return 2
    if not paths:
        print(f"error: no NN_name.py notebooks in {notebooks}", file=sys.stderr)
        return 2
    params = book_parameters(profile, data_root, results_dir, figures_dir, runs_dir, seeds, cache_dir=str(build_dir))
    out_dir = Path(build_dir) / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    watched = [Path(params["results_dir"]) / profile, Path(params["figures_dir"]) / profile]
    digest = source_digest()
    data_text = params["data_root"] or "embedded data"
    _say(f"profile {profile}, data {data_text}, {len(paths)} notebooks -> {out_dir}")
    failed: list[str] = []
    t_book = time.perf_counter()
    ledger_file = Path(params["results_dir"]) / profile / LEDGER_FILE
    # a notebook that shows the claims ledger (it lists the ledger among the files it reads) runs after the
    # others, once the ledger has been written from the tables they wrote
    readers = [p for p in paths if _reads_ledger(p, params, ledger_file)]
    order = [p for p in paths if p not in readers] + readers
    numbers = {p: i for i, p in enumerate(paths, 1)}
    ledger_written = False
    for path in order:
        i = numbers[path]
        if path in readers and not ledger_written and not dry_run:
            _write_ledger(profile, params, results_dir)
            ledger_written = True
        if failed and not keep_going:
            rest = order[order.index(path):]
            _say(f"not run: {', '.join(p.stem for p in rest)} (after a failure; --keep-going runs them)")
            break
        head = f"{i}/{len(paths)} {path.stem}"
        try:
            nb = read_notebook(path)
            nb_params = parameters_for(nb, params, path)
        except BookError as exc:
            _say(f"{head} FAILED: {exc}")
            print(f"error: {exc}", file=sys.stderr)
            return 2
        output = out_dir / f"{path.stem}.ipynb"
        stamp_file = out_dir / f"{path.stem}.stamp.json"
        stamp = notebook_stamp(path, nb, nb_params, digest)
        if not force and _up_to_date(stamp_file, output, stamp):
            _say(f"{head}: up to date (skipped; --force re-runs it)")
            continue
        if dry_run:
            _say(f"{head}: would run -> {output}")
            continue
        _say(f"{head} ...")
        t0 = time.time()
        stamp_file.unlink(missing_ok=True)
        saved_env = os.environ.get(BOOK_ENV)
        os.environ[BOOK_ENV] = "1"  # inherited by the kernel
        try:
            pm.execute_notebook(nb, str(output), parameters=nb_params, kernel_name="python3", cwd=os.getcwd(),
                                progress_bar=progress, stdout_file=sys.stdout, stderr_file=sys.stderr)
        except Exception as exc:  # papermill raises PapermillExecutionError and kernel errors
            first = str(exc).strip().splitlines()
            reason = next((ln for ln in reversed(first) if ln.strip()), type(exc).__name__)
            _say(f"{head} FAILED after {time.time() - t0:.0f} s: {reason} (executed notebook: {output})")
            failed.append(path.stem)
            continue
        finally:
            if saved_env is None:
                os.environ.pop(BOOK_ENV, None)
            else:
                os.environ[BOOK_ENV] = saved_env
        outputs = _written_since(watched, t0)
        stamp = notebook_stamp(path, nb, nb_params, digest)  # files it reads may have been written by it
        stamp_file.write_text(json.dumps({"stamp": stamp, "outputs": outputs, "seconds": round(time.time() - t0, 1)},
                                         indent=1) + "\n")
        _say(f"{head} done in {time.time() - t0:.0f} s ({len(outputs)} files written)")
    if not dry_run:  # the ledger and the HTML book show whatever tables exist, also after a failure
        if not ledger_written:
            _write_ledger(profile, params, results_dir)
        _render_site(profile, params, notebooks, build_dir, results_dir, figures_dir)
    total = time.perf_counter() - t_book
    if failed:
        _say(f"FAILED: {', '.join(failed)} ({total:.0f} s)")
        print(f"error: notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if dry_run:
        _say("dry run: nothing executed")
        return 0
    _say(f"finished in {total:.0f} s: executed notebooks in {out_dir}, tables in {watched[0]}, figures in {watched[1]}, "
         f"HTML book in {out_dir / 'site'}/index.html")
    return 0


# -- after the notebooks: the claims ledger and the HTML book -------------------------------------
LEDGER_FILE = "ledger.json"


def _reads_ledger(path: Path, params: Mapping, ledger_file: Path) -> bool:
    try:
        nb = read_notebook(path)
    except BookError:
        return False
    return any(p.resolve() == ledger_file.resolve() for p in _reads(nb, params))


def _write_ledger(profile: str, params: Mapping, results_dir: str) -> None:
    """``results/<profile>/ledger.{md,csv,json}`` from the tables; for ``cpu`` in this checkout, the README block."""
    from . import ledger
    from .tables import repo_root

    results = Path(params["results_dir"]) / profile
    written = ledger.write_ledger(results, profile)
    counts = {v: sum(c.verdict == v for c in written["claims"]) for v in ledger.VERDICTS}
    _say("claims ledger: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + f" -> {written['paths']['md']}")
    # the README shows the committed evidence only: the cpu profile, written into this checkout's results
    if profile == "cpu" and Path(params["results_dir"]).resolve() == (repo_root() / "results").resolve():
        if ledger.update_readme(repo_root() / "README.md", ledger.readme_markdown(written["claims"], profile)):
            _say("README: the ledger block between its markers is updated")


def _render_site(profile: str, params: Mapping, notebooks, build_dir, results_dir: str, figures_dir: str) -> None:
    from . import site

    try:
        site.render_site(profile, build_dir, Path(params["results_dir"]), Path(params["figures_dir"]), notebooks,
                         data_root=params["data_root"] or None)
    except Exception as exc:  # the HTML book is a view: a failure there is reported, the book's results stand
        _say(f"HTML book not rendered: {type(exc).__name__}: {exc}")


# -- command line -------------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--profile", default="quick", help="smoke | quick (default) | cpu | paper")
    p.add_argument("--data", default=os.environ.get("DATA_ROOT", ""),
                   help="data root (default: $DATA_ROOT; empty: the embedded data)")
    p.add_argument("--notebooks", default="notebooks", help="folder of NN_name.py notebooks")
    p.add_argument("--build", default="build", help="executed notebooks go to BUILD/<profile>/")
    p.add_argument("--results", default="results", help="tables go to RESULTS/<profile>/")
    p.add_argument("--figures", default="figures", help="figures go to FIGURES/<profile>/")
    p.add_argument("--runs", default=os.environ.get("MOSSLIB_RUNS", "runs"), help="training runs are cached in RUNS/<profile>/")
    p.add_argument("--only", nargs="*", default=[], help="run only these notebooks (e.g. 01 03_timing)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default: each notebook's own)")
    p.add_argument("--force", action="store_true", help="re-execute notebooks that are up to date")
    p.add_argument("--keep-going", action="store_true", help="run the remaining notebooks after a failure")
    p.add_argument("--dry-run", action="store_true", help="say which notebooks would run, run none")
    p.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")


def run(args) -> int:
    return run_book(profile=args.profile, data_root=args.data, notebooks=args.notebooks, build_dir=args.build,
                    results_dir=args.results, figures_dir=args.figures, runs_dir=args.runs, only=args.only,
                    force=args.force, keep_going=args.keep_going, seeds=args.seeds, dry_run=args.dry_run,
                    progress=not args.no_progress)
