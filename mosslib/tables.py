"""The book's tables and figures: paired bootstrap gains, tables beside the paper's, PNG figures.

A table is written twice to ``results/<profile>/``: ``NAME.csv`` (a ``# key: value`` header
block, then plain numbers; ``pandas.read_csv(path, comment="#")`` reads it) and ``NAME.md`` (the
same header as a list, then a pipe table whose paper numbers say "(reported)"). The header
names the profile, the data, the metric convention, the number of test images and the seeds.

Scores come as lists of :func:`mosslib.experiments.evaluated` results, one per seed:
``{"splits": {group: {"n", "psnr", "ssim"}}, "per_image": {group: [{"name", "psnr", "ssim"}]}}``.
A gain is the mean of paired per-image differences with a 95 % percentile bootstrap interval
(:mod:`mosslib.stats`): over test images for one seed, over seeds and then test images when
several seeds ran. A difference is called real only when that interval excludes zero and is not
degenerate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import paper, stats

__all__ = [
    "repo_root",
    "BookDirs",
    "book_dirs",
    "Gain",
    "bootstrap_ci",
    "paired_gain",
    "per_image",
    "split_stats",
    "per_seed",
    "gain_of",
    "input_scores",
    "groups_of",
    "TableMeta",
    "data_source",
    "data_description",
    "table_meta",
    "Table",
    "markdown_table",
    "read_table",
    "table1",
    "limited_table",
    "table4",
    "timing_frame",
    "timing_device",
    "timing_side",
    "timing_table",
    "comparison_figure",
    "limited_figure",
    "ablation_figure",
    "timing_figure",
    "save_figure",
]

PSNR_CAP = 100.0  # identical images give inf; capped as in mosslib.evaluate.summarise
METRICS = ("psnr", "ssim")
DIGITS = {"psnr": 2, "ssim": 3}


# -- where things go ---------------------------------------------------------------------------
def repo_root() -> Path:
    """The checkout that holds the mosslib package (relative book paths start here)."""
    return Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BookDirs:
    """``results/<profile>``, ``figures/<profile>`` and the runs folder, as absolute paths."""

    results: Path
    figures: Path
    runs: Path


def book_dirs(profile: str, results_dir: str = "results", figures_dir: str = "figures", runs_dir: str = "runs") -> BookDirs:
    """Resolve the notebooks' folder parameters (relative ones against :func:`repo_root`) and create them."""

    def resolve(p) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else repo_root() / p

    dirs = BookDirs(resolve(results_dir) / profile, resolve(figures_dir) / profile, resolve(runs_dir))
    for d in (dirs.results, dirs.figures, dirs.runs):
        d.mkdir(parents=True, exist_ok=True)
    return dirs


# -- statistics ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gain:
    """Mean paired difference (b - a) over ``n`` test images (and ``seeds`` seeds) with its bootstrap interval."""

    mean: float
    lo: float
    hi: float
    n: int
    level: float = 0.95
    seeds: int = 1

    @property
    def degenerate(self) -> bool:
        """True when the interval cannot tell anything (no width, fewer than 2 images, not finite)."""
        return stats.is_degenerate(self.lo, self.hi, self.n)

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero and is not degenerate (a gain told apart from noise)."""
        return stats.excludes_zero(self.lo, self.hi) and not self.degenerate and not math.isnan(self.mean)

    @property
    def real(self) -> bool:
        """True when the difference may be called real: significant over several seeds and the test images."""
        return self.significant and self.seeds > 1

    def verdict(self, digits: int = 2) -> str:
        """:func:`mosslib.stats.verdict_of`: "real", "noise", "degenerate" or "below precision"."""
        return stats.verdict_of(self.mean, self.lo, self.hi, self.n, digits)

    def text(self, digits: int = 2) -> str:
        """``+1.23 [+0.80, +1.60]``."""
        if math.isnan(self.mean):
            return "n/a"
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"

    def coverage(self) -> str:
        """What the interval covers, in words (:func:`mosslib.stats.coverage_text`)."""
        return stats.coverage_text(self.seeds, self.n)

    def sentence(self, what: str, unit: str = "dB", digits: int = 2) -> str:
        """A line for the narrative: the gain, its interval, what it covers and whether it is told from noise."""
        if math.isnan(self.mean):
            return f"{what}: no paired test images"
        verdict = self.verdict(digits)
        if verdict == "below precision":
            return f"{what}: {self.mean:+.{digits}f} {unit} ({self.n} images) - no difference at this precision"
        if verdict == "degenerate":
            return (f"{what}: {self.mean:+.{digits}f} {unit} (interval {self.lo:+.{digits}f} to {self.hi:+.{digits}f}, "
                    f"{self.n} images) - the interval has no width, so it cannot tell a difference from noise")
        if verdict == "real" and self.seeds > 1:
            told = "the interval excludes zero: a real difference over these seeds and test images"
        elif verdict == "real":
            told = ("the interval excludes zero on these test images, but one seed leaves training noise out, "
                    "so this is not called a real difference (it needs several seeds)")
        else:
            told = "the interval includes zero: not distinguishable from noise"
        return (f"{what}: {self.mean:+.{digits}f} {unit} (95 % CI {self.lo:+.{digits}f} to {self.hi:+.{digits}f}; "
                f"{self.coverage()}) - {told}")


def bootstrap_ci(diffs: Sequence[float], level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (resampling images with replacement)."""
    return stats.image_ci(diffs, level, n_boot, seed)


def paired_gain(a: Mapping[str, float], b: Mapping[str, float], level: float = 0.95, n_boot: int = 10000,
                seed: int = 0) -> Gain:
    """Gain of ``b`` over ``a`` (per-image values keyed by image name, one seed), paired by name."""
    names = [k for k in a if k in b]
    if not names:
        raise ValueError(f"no test image in common to pair (a has {list(a)[:3]}..., b has {list(b)[:3]}...)")
    d = np.array([b[k] - a[k] for k in names], dtype=np.float64)
    lo, hi = bootstrap_ci(d, level, n_boot, seed)
    return Gain(float(d.mean()), lo, hi, len(names), level)


def _rows(ev: Mapping, group: str) -> list[dict]:
    per = ev["per_image"]
    if group in per:
        return list(per[group])
    if group == "all":
        return [r for rows in per.values() for r in rows]
    raise KeyError(f"no test group {group!r} in these scores; they have {sorted(per)}")


def per_image(evals: Sequence[Mapping], group: str, metric: str) -> dict[str, float]:
    """``{image name: value}`` of one group, averaged over the seeds' scores (PSNR capped at 100)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {METRICS}")
    if not evals:
        raise ValueError("no scores given (an empty list of evaluations)")
    acc: dict[str, list[float]] = {}
    for ev in evals:
        for r in _rows(ev, group):
            v = float(r[metric])
            acc.setdefault(r["name"], []).append(min(v, PSNR_CAP) if metric == "psnr" else v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def split_stats(evals: Sequence[Mapping], group: str, metric: str) -> tuple[float, float]:
    """(mean over seeds of the group mean, standard deviation over seeds; nan for one seed)."""
    vals = [float(np.mean(list(per_image([ev], group, metric).values()))) for ev in evals]
    return float(np.mean(vals)), (float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan)


def per_seed(evals: Sequence[Mapping], group: str, metric: str) -> dict:
    """``{seed: {image name: value}}`` of one group (a seed that repeats, or none, is keyed by position)."""
    keys = [ev.get("seed") for ev in evals]
    if None in keys or len(set(keys)) != len(keys):
        keys = list(range(len(evals)))
    return {k: per_image([ev], group, metric) for k, ev in zip(keys, evals)}


def gain_of(base: Sequence[Mapping], new: Sequence[Mapping], group: str, metric: str, level: float = 0.95,
            n_boot: int | None = None, seed: int = 0) -> Gain:
    """Paired bootstrap gain of ``new`` over ``base`` on one test group.

    One seed a side: a bootstrap over test images. Several: seeds are paired (by seed number, else in
    order) and the interval resamples seeds, then images (:func:`mosslib.stats.hierarchical_ci`).
    """
    if not base or not new:
        raise ValueError("no scores given (an empty list of evaluations)")
    matrix, pairs, names = stats.paired_matrix(per_seed(base, group, metric), per_seed(new, group, metric))
    mean, lo, hi = stats.interval_of(matrix, level, n_boot, seed)
    return Gain(mean, lo, hi, len(names), level, seeds=len(pairs))


def input_scores(test_root, convention: str = "rgb") -> dict:
    """Scores of the rainy test images themselves (the paper's "Input" column), shaped like evaluated()."""
    from .data import open_dataset
    from .evaluate import evaluate_pairs, summarise

    ds = open_dataset(test_root)
    per = evaluate_pairs(ds.test_groups(), None, convention)
    return {"test": str(ds.root), "convention": convention, "splits": summarise(per), "per_image": per, "seed": None}


def groups_of(evals: Sequence[Mapping]) -> list[str]:
    """The test groups of a set of scores, DDN-SIRR's dense and sparse first."""
    names = list(evals[0]["per_image"]) if evals else []
    order = [g for g in ("dense", "sparse") if g in names]
    return order + [g for g in names if g not in order]


# -- table metadata ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableMeta:
    """What produced a table's numbers; written as its header block."""

    title: str
    profile: str
    data: str
    convention: str
    n_test: Mapping[str, int]
    seeds: tuple[int, ...]
    notes: tuple[str, ...] = ()

    def items(self) -> list[tuple[str, str]]:
        from .metrics import CONVENTIONS

        conv = f"{self.convention}: {CONVENTIONS[self.convention]}" if self.convention in CONVENTIONS else self.convention
        out = [("table", self.title), ("profile", self.profile), ("data", self.data), ("convention", conv)]
        if self.n_test:
            out.append(("test images", ", ".join(f"{g} {k}" for g, k in self.n_test.items())))
        if self.seeds:
            out.append(("seeds", f"{len(self.seeds)} ({', '.join(str(s) for s in self.seeds)})"))
        out.append(("paper", f"{paper.CITATION}; its numbers are marked {paper.REPORTED}"))
        return out + [("note", note) for note in self.notes]


def data_source(cfg) -> str:
    """The data root of a run configuration, in words (a folder, or the embedded data)."""
    d = cfg.data
    return d.root or f"embedded data ({d.embedded_size}; mosslib.embedded, procedural rain on scikit-image photos)"


def data_description(cfg) -> str:
    """One line naming a run configuration's data: root, D_L (with label fraction), D_U, test set."""
    d = cfg.data
    root = data_source(cfg)
    lab = f"{d.labeled}/{d.labeled_split}"
    if d.label_fraction < 1.0:
        lab += f" ({round(d.label_fraction * 100)} % labeled)"
    extra = f" + {d.extra_rain} procedural rain x{d.extra_rain_copies}" if d.extra_rain and d.extra_rain_copies else ""
    return f"{root}: D_L = {lab}{extra}; D_U = {d.unlabeled or '(rest of D_L, labels dropped)'}; test = {d.test}"


def table_meta(title: str, evals: Sequence[Mapping], data: str, profile: str, notes: Sequence[str] = ()) -> TableMeta:
    """Header of a table from the scores it shows (convention, test-group sizes, seeds)."""
    first = evals[0]
    groups = groups_of(evals)
    n_test = {g: len(_rows(first, g)) for g in groups}
    seeds = tuple(sorted({int(ev["seed"]) for ev in evals if ev.get("seed") is not None}))
    return TableMeta(title, profile, data, first.get("convention", "rgb"), n_test, seeds, tuple(notes))


# -- tables -----------------------------------------------------------------------------------
def _cell(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub pipe table of a DataFrame of strings (no extra dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class Table:
    """A result table: numbers for the CSV, formatted text for Markdown, and its header."""

    name: str
    frame: pd.DataFrame
    display: pd.DataFrame
    meta: TableMeta
    paths: dict = field(default_factory=dict)

    def banner(self) -> str:
        """The toy profiles' one-line banner (pipeline demonstration, not evidence); "" for the others."""
        from .ledger import TOY_PROFILES, toy_banner

        if self.meta.profile not in TOY_PROFILES:
            return ""
        return f"{self.meta.profile} profile: " + toy_banner("../../docs/book/index.html")

    def markdown(self) -> str:
        head = [f"### {self.meta.title}", ""]
        if self.banner():
            head += [f"> **{self.banner()}**", ""]
        head += [f"- **{k}**: {v}" for k, v in self.meta.items()]
        return "\n".join(head) + "\n\n" + markdown_table(self.display)

    def write(self, results: str | Path) -> dict[str, Path]:
        """Write ``NAME.csv`` and ``NAME.md`` into ``results`` (the profile's folder)."""
        results = Path(results)
        results.mkdir(parents=True, exist_ok=True)
        csv, md = results / f"{self.name}.csv", results / f"{self.name}.md"
        head = "".join(f"# {k}: {v}\n" for k, v in self.meta.items())
        if self.banner():
            head += f"# status: {self.banner()}\n"
        csv.write_text(head + self.frame.to_csv(index=False))
        md.write_text(self.markdown())
        self.paths = {"csv": csv, "md": md}
        return self.paths

    def _repr_markdown_(self) -> str:
        return self.markdown()


def read_table(path: str | Path) -> tuple[dict[str, str], pd.DataFrame]:
    """(header block, numbers) of a table CSV written by :meth:`Table.write`."""
    path = Path(path)
    meta: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        meta.setdefault(key, value)
    return meta, pd.read_csv(path, comment="#")


def _fmt_stat(mean: float, std: float, digits: int) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if not math.isnan(std) else "")


def _rep(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f} {paper.REPORTED}"


def table1(inputs: Mapping, supervised: Sequence[Mapping], moss: Sequence[Mapping], meta: TableMeta,
           label: str = "MOSS (this book)") -> Table:
    """Table 1 beside the paper's: every reported row, then the book's Input, D_C, D_C + D_U and gain rows."""
    groups = groups_of(moss)
    rows, disp = [], []

    def add(method, venue, trained_on, source, values: dict, shown: dict):
        rows.append({"method": method, "venue": venue, "trained_on": trained_on, "source": source, **values})
        disp.append({"Method": method, "Trained on": trained_on, **shown})

    reported_cols = ("dense", "sparse")  # Table 1's groups (PSNR only)
    # the paper's rows (PSNR only)
    add("Input", "", "-", "reported", {f"{g}_psnr": paper.TABLE1_INPUT[g] for g in reported_cols},
        {f"{g.title()} PSNR": _rep(paper.TABLE1_INPUT[g], 2) for g in reported_cols})
    for e in paper.TABLE1:
        labels = ("D_C",) if e.kind == "supervised" else ("D_C", "D_C + D_U", "gain")
        for i, lab in enumerate(labels):
            vals = {g: getattr(e, g)[i] for g in reported_cols}
            add(f"{e.method} ({e.venue})", e.venue, lab, "reported", {f"{g}_psnr": v for g, v in vals.items()},
                {f"{g.title()} PSNR": (("+" if lab == "gain" else "") + _rep(v, 2)) if v is not None else "-"
                 for g, v in vals.items()})
    # the book's rows
    book = [("Input (this book)", "-", [inputs]), (label, "D_C", supervised), (label, "D_C + D_U", moss)]
    for method, trained_on, evals in book:
        values, shown = {}, {}
        for g in groups:
            for m in METRICS:
                mean, std = split_stats(evals, g, m)
                values[f"{g}_{m}"] = mean
                values[f"{g}_{m}_seed_std"] = std
                shown[f"{g.title()} {m.upper()}"] = _fmt_stat(mean, std, DIGITS[m])
        add(method, "", trained_on, f"this book ({meta.profile})", values, shown)
    values, shown = {}, {}
    for g in groups:
        for m in METRICS:
            gain = gain_of(supervised, moss, g, m)
            values.update({f"{g}_{m}": gain.mean, f"{g}_{m}_ci_lo": gain.lo, f"{g}_{m}_ci_hi": gain.hi})
            shown[f"{g.title()} {m.upper()}"] = gain.text(DIGITS[m])
    add(label, "", "gain [95 % CI]", f"this book ({meta.profile})", values, shown)
    frame = pd.DataFrame(rows)
    display = pd.DataFrame(disp).fillna("-")
    return Table("table1", frame, display, meta)


def limited_table(results: Mapping[int, Mapping[str, Sequence[Mapping]]], meta: TableMeta,
                  paper_dataset: str | None = None, name: str = "limited", group: str = "all") -> Table:
    """Tables 2-3: per labeled percentage, PSNR/SSIM with D_L only, with D_L + D_U, and the gain.

    ``results``: ``{percent: {"D_L": evals, "D_L + D_U": evals}}`` (the second key may be absent,
    e.g. at 100 %). ``paper_dataset``: "Rain200H" / "Rain800" shows that table's rows beside the
    book's; None shows both tables' rows (another data set, for reference only).
    """
    targets = [paper_dataset] if paper_dataset else list(paper.LIMITED)
    rows, disp = [], []
    for pct in sorted(set(results) | set(paper.LIMITED_FRACTIONS)):
        for ds in targets:
            number, tab = paper.LIMITED[ds]
            for method in ("Syn2Real", "MOSS"):
                r = [x for x in tab[method] if x.percent == pct]
                if not r:
                    continue
                r = r[0]
                src = f"Table {number}, {ds}"
                rows.append({"percent": pct, "method": method, "source": f"reported ({src})",
                             **{f"{m}_{k}": getattr(r, m)[i] for m in METRICS for i, k in enumerate(("dl", "dlu", "gain"))}})
                disp.append({"D_L %": pct, "Method": f"{method} ({src}) {paper.REPORTED}",
                             **{f"{m.upper()} {k}": _cell(getattr(r, m)[i], DIGITS[m])
                                for m in METRICS for i, k in enumerate(("D_L", "D_L + D_U", "gain"))}})
        if pct not in results:
            continue
        res = results[pct]
        row = {"percent": pct, "method": "MOSS", "source": f"this book ({meta.profile})"}
        shown = {"D_L %": pct, "Method": f"MOSS (this book, {meta.profile})"}
        for m in METRICS:
            for key, col in (("D_L", "dl"), ("D_L + D_U", "dlu")):
                if res.get(key):
                    mean, std = split_stats(res[key], group, m)
                    row[f"{m}_{col}"], row[f"{m}_{col}_seed_std"] = mean, std
                    shown[f"{m.upper()} {key}"] = _fmt_stat(mean, std, DIGITS[m])
                else:
                    shown[f"{m.upper()} {key}"] = "-"
            if res.get("D_L") and res.get("D_L + D_U"):
                g = gain_of(res["D_L"], res["D_L + D_U"], group, m)
                row.update({f"{m}_gain": g.mean, f"{m}_gain_ci_lo": g.lo, f"{m}_gain_ci_hi": g.hi})
                shown[f"{m.upper()} gain"] = g.text(DIGITS[m])
            else:
                shown[f"{m.upper()} gain"] = "-"
        rows.append(row)
        disp.append(shown)
    cols = ["D_L %", "Method"] + [f"{m.upper()} {k}" for m in METRICS for k in ("D_L", "D_L + D_U", "gain")]
    return Table(name, pd.DataFrame(rows), pd.DataFrame(disp)[cols].fillna("-"), meta)


def table4(evals: Mapping[str, Sequence[Mapping]], meta: TableMeta) -> Table:
    """Table 4 beside the paper's: each configuration's PSNR/SSIM per group, and its difference to "full"."""
    rows, disp = [], []
    full = evals.get("full")
    for config in paper.TABLE4_ORDER:
        if config not in evals:
            continue
        ev = evals[config]
        row = {"config": config, "label": paper.TABLE4_LABELS[config]}
        shown = {"Configuration": paper.TABLE4_LABELS[config]}
        for g in groups_of(ev):
            for i, m in enumerate(METRICS):
                rep = paper.TABLE4[config].get(g, (None, None))[i] if g in ("dense", "sparse") else None
                mean, std = split_stats(ev, g, m)
                row.update({f"{g}_{m}_reported": rep, f"{g}_{m}": mean, f"{g}_{m}_seed_std": std})
                shown[f"{g.title()} {m.upper()} {paper.REPORTED}"] = _cell(rep, DIGITS[m])
                shown[f"{g.title()} {m.upper()} (book)"] = _fmt_stat(mean, std, DIGITS[m])
            if full is not None and config != "full":
                gain = gain_of(full, ev, g, "psnr")
                row.update({f"{g}_psnr_vs_full": gain.mean, f"{g}_psnr_vs_full_ci_lo": gain.lo,
                            f"{g}_psnr_vs_full_ci_hi": gain.hi})
                shown[f"{g.title()} PSNR - Ours (book) [95 % CI]"] = gain.text(2)
            else:
                shown[f"{g.title()} PSNR - Ours (book) [95 % CI]"] = "-"
        rows.append(row)
        disp.append(shown)
    return Table("table4", pd.DataFrame(rows), pd.DataFrame(disp).fillna("-"), meta)


_TIMING_COLUMNS = {
    "arch": ("arch", "architecture", "model", "network", "name", "method"),
    "ms": ("ms", "ms_per_image", "median_ms", "ms_median", "time_ms", "ms_per_image_median", "latency_ms"),
    "ms_min": ("ms_min", "min_ms"),
    "params": ("params", "parameters", "num_params", "n_params"),
    "device": ("device", "device_name", "hardware"),
}


def timing_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The benchmark's CSV with its columns named ``arch``, ``ms`` (and ``params``, ``device`` if present)."""
    lower = {str(c).lower(): c for c in df.columns}
    out = {}
    for key, names in _TIMING_COLUMNS.items():
        found = next((lower[n] for n in names if n in lower), None)
        if found is not None:
            out[key] = df[found]
    missing = [k for k in ("arch", "ms") if k not in out]
    if missing:
        raise ValueError(f"timing table lacks {missing} columns (it has {list(df.columns)}); expected e.g. "
                         f"'arch' and 'ms' per 256x256 image")
    frame = pd.DataFrame(out)
    frame["ms"] = frame["ms"].astype(float)
    return frame


def timing_side(path: str | Path) -> int:
    """The image side of the CSV's ``ms`` column: the first of ``sizes [a, b]`` in its comment header
    (the benchmark's --quick mode times tiny images), else 256."""
    import re

    for line in Path(path).read_text().splitlines():
        if not line.startswith("#"):
            break
        m = re.search(r"sizes \[(\d+)", line)
        if m:
            return int(m.group(1))
    return 256


def timing_device(timing: pd.DataFrame) -> str:
    """The device named in the timing table, else the one this process would use."""
    if "device" in timing and timing["device"].notna().any():
        names = sorted({str(d) for d in timing["device"].dropna()})
        return ", ".join(names)
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({torch.get_num_threads()} threads)"


def timing_table(timing: pd.DataFrame, meta: TableMeta, side: int = 256) -> Table:
    """Fig. 8 as a table: milliseconds per ``side`` x ``side`` image per architecture (``arch``, ``ms``)."""
    t = timing.sort_values("ms").reset_index(drop=True)
    disp = pd.DataFrame({
        "Architecture": t["arch"],
        f"ms / {side}x{side} image (median)": [f"{v:.1f}" for v in t["ms"]],
        **({"fastest run (ms)": [f"{v:.1f}" for v in t["ms_min"]]} if "ms_min" in t else {}),
        **({"Parameters (M)": [_cell(v / 1e6, 2) for v in t["params"]]} if "params" in t else {}),
        **({"Device": t["device"]} if "device" in t else {}),
    })
    return Table("fig8_timing", t, disp, meta)


# -- figures ----------------------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt  # inline in notebooks, Agg when there is no display

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def comparison_figure(rows: Sequence[Mapping[str, np.ndarray]], row_titles: Sequence[str] = (), cell: float = 2.6,
                      suptitle: str = ""):
    """Figs. 4-5: one row per image, one column per method (uint8 (H, W, 3) images)."""
    plt = _plt()
    if not rows:
        raise ValueError("comparison_figure needs at least one row of images")
    cols = list(rows[0])
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(cell * len(cols), cell * len(rows) * 0.8), squeeze=False)
    for i, row in enumerate(rows):
        for j, name in enumerate(cols):
            ax = axes[i][j]
            ax.imshow(row[name])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
            if j == 0 and i < len(row_titles):
                ax.set_ylabel(row_titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def limited_figure(table: Table, title: str = ""):
    """PSNR against the labeled percentage: the book's D_L and D_L + D_U (with seed spread), paper's dashed."""
    plt = _plt()
    f = table.frame
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    book = f[f["source"].str.startswith("this book")].sort_values("percent")
    for col, lab, mk in (("psnr_dl", "D_L", "o"), ("psnr_dlu", "D_L + D_U", "s")):
        if col in book and book[col].notna().any():
            b = book[book[col].notna()]
            err = b[f"{col}_seed_std"].fillna(0.0) if f"{col}_seed_std" in b else None
            ax.errorbar(b["percent"], b[col], yerr=err, marker=mk, capsize=3, label=f"MOSS, this book: {lab}")
    for src in sorted(s for s in f["source"].unique() if s.startswith("reported")):
        r = f[(f["source"] == src) & (f["method"] == "MOSS")].sort_values("percent")
        ax.plot(r["percent"], r["psnr_dl"], "--", marker=".", alpha=0.7, label=f"MOSS {src}: D_L")
        r2 = r[r["psnr_dlu"].notna()]
        ax.plot(r2["percent"], r2["psnr_dlu"], ":", marker=".", alpha=0.7, label=f"MOSS {src}: D_L + D_U")
    ax.set_xlabel("labeled fraction of the training set (%)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_xticks(list(paper.LIMITED_FRACTIONS))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or table.meta.title, fontsize=9)
    fig.tight_layout()
    return fig


def timing_figure(timing: pd.DataFrame, device: str, title: str = "", side: int = 256):
    """Fig. 8: horizontal bars of milliseconds per ``side`` x ``side`` image, MOEDN highlighted."""
    plt = _plt()
    t = timing.sort_values("ms", ascending=False)
    fig, ax = plt.subplots(figsize=(5.5, 0.45 * len(t) + 1.2))
    colors = ["tab:red" if str(a).lower().startswith(("moedn", "moss")) else "tab:gray" for a in t["arch"]]
    bars = ax.barh([str(a) for a in t["arch"]], t["ms"], color=colors)
    for bar, v in zip(bars, t["ms"]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v:.1f}", va="center", fontsize=8)
    ax.set_xlabel(f"ms per {side}x{side} image ({device})")
    ax.set_title(title or f"Running time, measured on {device}", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def ablation_figure(table: Table, title: str = ""):
    """Table 4 as grouped bars: the book's PSNR per configuration and group, the paper's as markers."""
    plt = _plt()
    f = table.frame
    groups = [c[: -len("_psnr")] for c in f.columns if c.endswith("_psnr") and not c.startswith("seed")]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    x = np.arange(len(f))
    width = 0.8 / max(1, len(groups))
    for k, g in enumerate(groups):
        pos = x - 0.4 + width * (k + 0.5)
        std = f.get(f"{g}_psnr_seed_std")
        ax.bar(pos, f[f"{g}_psnr"], width, yerr=None if std is None else std.fillna(0.0), capsize=3,
               label=f"{g}, this book ({table.meta.profile})")
        rep = f.get(f"{g}_psnr_reported")
        if rep is not None and rep.notna().any():
            ax.plot(pos, rep, "k_", markersize=14, mew=2, label=f"paper {paper.REPORTED}" if k == 0 else None)
    ax.set_xticks(x)
    ax.set_xticklabels(f["label"], rotation=20, fontsize=8)
    ax.set_ylabel("PSNR (dB)")
    cols = [c for g in groups for c in (f"{g}_psnr", f"{g}_psnr_reported") if c in f]
    lo = np.nanmin(f[cols].to_numpy(dtype=float))
    ax.set_ylim(bottom=max(0.0, lo - 3.0))
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or table.meta.title, fontsize=9)
    fig.tight_layout()
    return fig
