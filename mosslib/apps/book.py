"""The reproduction book: run the notebooks in order, and the training runs they share.

``python -m mosslib book --profile quick [--data ROOT]`` converts each ``notebooks/NN_name.py``
(jupytext percent format) and executes it with papermill, in order, writing
``build/<profile>/NN_name.ipynb``. Every notebook gets the parameters of :data:`PARAMETERS`
(and, where it declares them, ``seeds`` with ``--seeds`` and ``cache_dir`` = the build folder);
a notebook whose parameters cell lacks one is an error, so a misspelt name fails instead of
being silently ignored. A notebook is skipped when its stamp - a hash of its text, its
parameters, the mosslib sources and the files it declares it reads (``mosslib: reads:`` in its
jupytext header) - is unchanged and the files it wrote are still there. Training runs are cached
by configuration (:mod:`mosslib.method.runs`), so an interrupted book resumes where it stopped.

After the notebooks that write the tables, the book writes the claims ledger
(``results/<profile>/ledger.{md,csv,json}``, :mod:`mosslib.ledger`; for ``cpu`` also the README's
block between ``<!-- ledger:start -->`` and ``<!-- ledger:end -->``), then runs the notebooks that
show it (those that list ``ledger.json`` among the files they read: ``00_overview``), and ends by
rendering the executed notebooks as a static HTML book in ``build/<profile>/site/`` (:mod:`mosslib.apps.site`).

Notebooks use :func:`train_runs` (training with visible progress), :func:`limited_setups` (the
data of Tables 2-3) and :func:`timing_results` (Fig. 8's measurements).
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

from . import ledger, site
from . import bookruns
from .bookruns import BOOK_ENV, BookError, follow_log, say, find_notebooks
from ..measure import places
from ..method.profiles import PROFILES

__all__ = [
    "PARAMETERS",
    "BookError",
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


# -- notebooks ----------------------------------------------------------------------------------
def read_notebook(path: str | os.PathLike):
    """The jupytext notebook of ``path`` as an nbformat node (kernel python3 when it names none)."""
    import jupytext  # lazy: only the book runner needs the notebook tools

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
    pkg = Path(__file__).resolve().parents[1]
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
    import papermill as pm  # lazy: only the book runner needs the notebook tools (slow to import)

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
    say(f"profile {profile}, data {data_text}, {len(paths)} notebooks -> {out_dir}")
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
            say(f"not run: {', '.join(p.stem for p in rest)} (after a failure; --keep-going runs them)")
            break
        head = f"{i}/{len(paths)} {path.stem}"
        try:
            nb = read_notebook(path)
            nb_params = parameters_for(nb, params, path)
        except BookError as exc:
            say(f"{head} FAILED: {exc}")
            print(f"error: {exc}", file=sys.stderr)
            return 2
        output = out_dir / f"{path.stem}.ipynb"
        stamp_file = out_dir / f"{path.stem}.stamp.json"
        stamp = notebook_stamp(path, nb, nb_params, digest)
        if not force and _up_to_date(stamp_file, output, stamp):
            say(f"{head}: up to date (skipped; --force re-runs it)")
            continue
        if dry_run:
            say(f"{head}: would run -> {output}")
            for line in runs_plan(path, nb, nb_params):
                say(f"    {line}")
            continue
        say(f"{head} ...")
        t0 = time.time()
        stamp_file.unlink(missing_ok=True)
        saved_env = os.environ.get(BOOK_ENV)
        progress_log = out_dir / f"{path.stem}.progress.log"
        os.environ[BOOK_ENV] = str(progress_log.resolve())  # inherited by the kernel
        try:
            with follow_log(progress_log, sys.stderr):
                pm.execute_notebook(nb, str(output), parameters=nb_params, kernel_name="python3", cwd=os.getcwd(),
                                    progress_bar=progress, stdout_file=sys.stdout, stderr_file=sys.stderr)
        except Exception as exc:  # papermill raises PapermillExecutionError and kernel errors
            first = str(exc).strip().splitlines()
            reason = next((ln for ln in reversed(first) if ln.strip()), type(exc).__name__)
            say(f"{head} FAILED after {time.time() - t0:.0f} s: {reason} (executed notebook: {output})")
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
        say(f"{head} done in {time.time() - t0:.0f} s ({len(outputs)} files written)")
    if not dry_run:  # the ledger and the HTML book show whatever tables exist, also after a failure
        if not ledger_written:
            _write_ledger(profile, params, results_dir)
        _render_site(profile, params, notebooks, build_dir, results_dir, figures_dir)
    total = time.perf_counter() - t_book
    if failed:
        say(f"FAILED: {', '.join(failed)} ({total:.0f} s)")
        print(f"error: notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if dry_run:
        say("dry run: nothing executed")
        return 0
    say(f"finished in {total:.0f} s: executed notebooks in {out_dir}, tables in {watched[0]}, figures in {watched[1]}, "
        f"HTML book in {out_dir / 'site'}/index.html")
    return 0


def runs_plan(path: Path, nb, params: Mapping) -> list[str]:
    """What a notebook's training runs need (:func:`bookruns.run_state`, one line each), for ``--dry-run``."""
    try:
        seeds = int(params.get("seeds") or ast.literal_eval(notebook_parameters(nb, path).get("seeds", "1")))
        specs = bookruns.book_specs(path.stem, params["profile"], params["data_root"] or None, list(range(seeds)))
        archive = Path(params["results_dir"]) / params["profile"] / "runs"
        states = [bookruns.run_state(s, params["profile"], params["data_root"] or None, params["runs_dir"], archive)
                  for s in specs]
    except Exception as exc:  # a plan is a preview: say why there is none, the dry run goes on
        return [f"runs: not listed ({type(exc).__name__}: {exc})"]
    lines = [f"{s.label}, seed {s.seed}: {state}" for s, state in zip(specs, states)]
    left = sum(state != "finished" and state != "archived" for state in states)
    return lines + ([f"{left} of {len(specs)} runs to train"] if specs else [])


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
    results = Path(params["results_dir"]) / profile
    written = ledger.write_ledger(results, profile)
    counts = {v: sum(c.verdict == v for c in written["claims"]) for v in ledger.VERDICTS}
    say("claims ledger: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + f" -> {written['paths']['md']}")
    # the README shows the committed evidence only: the cpu profile, written into this checkout's results
    if profile == "cpu" and Path(params["results_dir"]).resolve() == (places.repo_root() / "results").resolve():
        if ledger.update_readme(places.repo_root() / "README.md", ledger.readme_markdown(written["claims"], profile)):
            say("README: the ledger block between its markers is updated")


def _render_site(profile: str, params: Mapping, notebooks, build_dir, results_dir: str, figures_dir: str) -> None:
    try:
        site.render_site(profile, build_dir, Path(params["results_dir"]), Path(params["figures_dir"]), notebooks,
                         data_root=params["data_root"] or None)
    except Exception as exc:  # the HTML book is a view: a failure there is reported, the book's results stand
        say(f"HTML book not rendered: {type(exc).__name__}: {exc}")


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
