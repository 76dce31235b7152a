"""Where the book's files go: the checkout, the notebooks' folder parameters resolved against it
(not against the working directory), and paths as committed results write them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path



# -- where things go ---------------------------------------------------------------------------
def repo_root() -> Path:
    """The checkout that holds the mosslib package (relative book paths start here)."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BookDirs:
    """``results/<profile>``, ``figures/<profile>`` and the runs folder, as absolute paths."""

    results: Path
    figures: Path
    runs: Path

    @property
    def archive(self) -> Path:
        """``results/<profile>/runs``: the finished runs kept without their weights (:mod:`mosslib.method.archive`)."""
        return self.results / "runs"


def resolve_path(p: str | Path) -> Path:
    """A notebook's folder parameter as an absolute path: a relative one starts at :func:`repo_root`
    (not at the working directory, which is ``notebooks/`` under ``make lab``)."""
    p = Path(p).expanduser()
    return p if p.is_absolute() else repo_root() / p


def book_dirs(profile: str, results_dir: str = "results", figures_dir: str = "figures", runs_dir: str = "runs") -> BookDirs:
    """Resolve the notebooks' folder parameters (:func:`resolve_path`) and create them."""
    dirs = BookDirs(resolve_path(results_dir) / profile, resolve_path(figures_dir) / profile, resolve_path(runs_dir))
    for d in (dirs.results, dirs.figures, dirs.runs):
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def portable_path(path: str | Path, data_root: str | Path | None = None) -> str:
    """A path as committed results write it, the same on every machine: ``$DATA_ROOT/...`` under
    the data root, relative under the checkout, else the folder's name (never an absolute path)."""
    path = Path(path).expanduser().resolve()
    for base, prefix in ((data_root, "$DATA_ROOT"), (repo_root(), "")):
        if base:
            try:
                rel = path.relative_to(Path(base).expanduser().resolve())
            except ValueError:
                continue
            text = rel.as_posix()
            return (f"{prefix}/{text}" if text != "." else prefix) if prefix else (text if text != "." else ".")
    return path.name
