"""The blind pairwise preference study of the paper (section 4.3.2, Fig. 6): state, CSV, tallies.

A rater sees two outputs of the same photo from two different methods, in random order and
unlabeled, and answers "left", "right" or "same". Every photo is shown once with every
unordered pair of methods, so any number of methods works. The order of trials and the side
of each method are drawn from ``(seed, session)``, so a session re-opened later sees the same
sequence and resumes after the trials its CSV already holds.

CSV (one row per answer, appended and flushed at once; header on the first line):
``time, session, trial, photo, left, right, choice, winner`` where ``winner`` is the chosen
method's name or ``same``.

Averaged selection percentage of a method (Fig. 6; the paper's Appendix C is not available,
so this is our definition): within one session, the share of the comparisons involving the
method in which it was chosen, a "same" counting half for each side (so the two shares of a
pair add to 100 %); then averaged over the sessions that compared it.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import os
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import numpy as np

from .explorer import analysis
from ..data.imageio import read_rgb
from ..data.imageio import read_rgb, write_rgb

__all__ = ["CHOICES", "COLUMNS", "PreferenceStudy", "Trial", "fig_selection", "make_trials", "method_outputs",
           "read_choices", "tally"]

CHOICES = ("left", "right", "same")
COLUMNS = ("time", "session", "trial", "photo", "left", "right", "choice", "winner")


@dataclass(frozen=True)
class Trial:
    """One comparison: ``photo`` with method ``left`` shown on the left, ``right`` on the right."""

    index: int
    photo: str
    left: str
    right: str

    @property
    def key(self) -> tuple[str, frozenset]:
        """Identity of a trial regardless of sides: (photo, {method, method})."""
        return self.photo, frozenset((self.left, self.right))


def _rng(seed: int, session: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{session}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def make_trials(photos: list[str], methods: list[str], seed: int = 0, session: str = "default") -> list[Trial]:
    """Every photo with every unordered pair of methods, shuffled, sides drawn at random."""
    if len(methods) < 2:
        raise ValueError(f"a pairwise study needs at least two methods, got {methods}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"method names must be distinct, got {methods}")
    rng = _rng(seed, session)
    pairs = [(p, a, b) for p in photos for a, b in itertools.combinations(methods, 2)]
    rng.shuffle(pairs)
    out = []
    for i, (p, a, b) in enumerate(pairs):
        if rng.random() < 0.5:
            a, b = b, a
        out.append(Trial(i, p, a, b))
    return out


def read_choices(path: str | os.PathLike):
    """The answers in a study CSV as a DataFrame with :data:`COLUMNS` (empty if no file)."""
    import pandas as pd  # lazy: pandas is slow to import and only this table needs it

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(COLUMNS))
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises several types for malformed files
        raise ValueError(f"{path}: not a readable user-study CSV ({exc})") from exc
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a user-study CSV: missing columns {missing} (has {list(df.columns)})")
    bad = sorted(set(df["choice"]) - set(CHOICES))
    if bad:
        raise ValueError(f"{path}: unknown choices {bad}; expected one of {list(CHOICES)}")
    return df[list(COLUMNS)]


class PreferenceStudy:
    """State of one rater's session over ``outputs`` (photo -> method -> image or path).

    Answers are appended to ``csv_path``; answers already there for this ``session`` are
    skipped, so constructing the study again resumes it.
    """

    def __init__(self, outputs: Mapping[str, Mapping[str, object]], csv_path: str | os.PathLike,
                 session: str = "default", seed: int = 0):
        if not outputs:
            raise ValueError("the study needs at least one photo")
        photos = list(outputs)
        methods = list(next(iter(outputs.values())))
        for p in photos:
            if sorted(outputs[p]) != sorted(methods):
                raise ValueError(f"photo {p!r} has outputs of {sorted(outputs[p])}, expected {sorted(methods)}")
        if not session or any(ch in session for ch in ",\n\r\""):
            raise ValueError(f"session name {session!r} must be non-empty without commas, quotes or newlines")
        self.outputs, self.photos, self.methods = outputs, photos, methods
        self.csv_path, self.session, self.seed = Path(csv_path), session, seed
        self.trials = make_trials(photos, methods, seed, session)
        done = read_choices(self.csv_path)
        done = done[done["session"] == session]
        self._done = {(r.photo, frozenset((r.left, r.right))) for r in done.itertuples()}
        self._pos = 0
        self._advance()

    def _advance(self) -> None:
        while self._pos < len(self.trials) and self.trials[self._pos].key in self._done:
            self._pos += 1

    @property
    def current(self) -> Trial | None:
        """The trial to show now, or None when the session is complete."""
        return self.trials[self._pos] if self._pos < len(self.trials) else None

    @property
    def finished(self) -> bool:
        return self.current is None

    @property
    def progress(self) -> tuple[int, int]:
        """(answered, total) for this session."""
        return len(self._done), len(self.trials)

    def images(self, trial: Trial | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The (left, right) images of a trial (default: the current one), uint8 (H, W, 3)."""
        trial = trial or self.current
        if trial is None:
            raise ValueError("the session is complete: no trial to show")
        return self._load(trial.photo, trial.left), self._load(trial.photo, trial.right)

    def _load(self, photo: str, method: str) -> np.ndarray:
        value = self.outputs[photo][method]
        if isinstance(value, np.ndarray):
            return value

        return read_rgb(value)

    def record(self, choice: str) -> dict:
        """Answer the current trial with "left", "right" or "same"; appends one CSV row."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {list(CHOICES)}, got {choice!r}")
        trial = self.current
        if trial is None:
            raise ValueError("the session is complete: nothing to record")
        winner = {"left": trial.left, "right": trial.right, "same": "same"}[choice]
        row = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "session": self.session,
            "trial": str(trial.index),
            "photo": trial.photo,
            "left": trial.left,
            "right": trial.right,
            "choice": choice,
            "winner": winner,
        }
        self._append(row)
        self._done.add(trial.key)
        self._advance()
        return row

    def _append(self, row: dict) -> None:
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        if not new:
            read_choices(self.csv_path)  # refuse to append to a file that is not ours
        with open(self.csv_path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            if new:
                writer.writeheader()
            writer.writerow(row)
            fh.flush()
            os.fsync(fh.fileno())


def tally(choices, methods: list[str] | None = None):
    """Per method: comparisons, wins, ties, losses and the averaged selection percentage.

    ``choices``: a DataFrame from :func:`read_choices` (or a CSV path). Returns a DataFrame
    indexed by method; methods never compared get 0 comparisons and NaN percentage.
    """
    import pandas as pd  # lazy: pandas is slow to import and only this table needs it

    if not isinstance(choices, pd.DataFrame):
        choices = read_choices(choices)
    methods = list(methods) if methods else sorted(set(choices["left"]) | set(choices["right"]))
    rows = []
    for m in methods:
        involved = choices[(choices["left"] == m) | (choices["right"] == m)]
        wins = int((involved["winner"] == m).sum())
        ties = int((involved["winner"] == "same").sum())
        n = len(involved)
        per_session = [
            100.0 * ((g["winner"] == m).sum() + 0.5 * (g["winner"] == "same").sum()) / len(g)
            for _, g in involved.groupby("session")
        ]
        rows.append({
            "method": m,
            "comparisons": n,
            "wins": wins,
            "ties": ties,
            "losses": n - wins - ties,
            "sessions": len(per_session),
            "selection_pct": float(np.mean(per_session)) if per_session else float("nan"),
        })
    return pd.DataFrame(rows).set_index("method")


def fig_selection(table, title: str = "Averaged selection percentage (user study)"):
    """A bar chart of :func:`tally`'s ``selection_pct`` per method, like the paper's Fig. 6."""
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only figures need it

    fig = Figure(figsize=(max(3.0, 1.1 * len(table) + 1.5), 3.0), layout="constrained")
    ax = fig.subplots()
    raw = table["selection_pct"].to_numpy(dtype=float)
    values = np.nan_to_num(raw, nan=0.0)
    bars = ax.bar(list(table.index), values, color="#4477aa")
    for bar, v, r, n in zip(bars, values, raw, table["comparisons"]):
        label = "no answers\nyet" if np.isnan(r) else f"{v:.1f}%\n(n={n})"
        ax.text(bar.get_x() + bar.get_width() / 2, v + 1, label, ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 115)
    ax.set_ylabel("selected (%)")
    ax.set_title(title, fontsize=10)
    return fig


def method_outputs(models: Mapping[str, object], photos: Mapping[str, object], cache_dir: str | os.PathLike,
                   include_input: bool = False) -> dict[str, dict[str, Path]]:
    """Derain every photo (name -> path or uint8 image) with every model (method -> MOEDN),
    writing ``cache_dir/<method>/<photo>.png`` once (existing files are reused).

    Returns photo -> method -> PNG path, the ``outputs`` of :class:`PreferenceStudy`;
    ``include_input`` adds the rainy photo itself as method "input".
    """

    cache_dir = Path(cache_dir)
    out: dict[str, dict[str, Path]] = {p: {} for p in photos}
    loaded: dict[str, np.ndarray] = {}

    def image(name):
        if name not in loaded:
            v = photos[name]
            loaded[name] = v if isinstance(v, np.ndarray) else read_rgb(v)
        return loaded[name]

    def slug(text: str) -> str:
        return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)

    methods = (["input"] if include_input else []) + list(models)
    for name in photos:
        for method in methods:
            path = cache_dir / slug(method) / f"{slug(str(Path(name).with_suffix('')))}.png"
            if not path.is_file():
                result = image(name) if method == "input" else analysis.derain_image(models[method], image(name))
                write_rgb(path, result)
            out[name][method] = path
        loaded.pop(name, None)
    return out
