"""The book's tables and figures: paired bootstrap gains, tables beside the paper's, PNG figures.

A table is written twice to ``results/<profile>/``: ``NAME.csv`` (a ``# key: value`` header
block, then plain numbers; ``pandas.read_csv(path, comment="#")`` reads it) and ``NAME.md`` (the
same header as a list, then a pipe table whose paper numbers say "(reported)"). The header
names the profile, the data, the metric convention, the number of test images and the seeds.

Scores come as lists of :func:`mosslib.method.runs.evaluated` results, one per seed:
``{"splits": {group: {"n", "psnr", "ssim"}}, "per_image": {group: [{"name", "psnr", "ssim"}]}}``.
A gain is the mean of paired per-image differences with a 95 % percentile bootstrap interval
(:mod:`mosslib.measure.stats`): over test images for one seed, over seeds and then test images when
several seeds ran. A difference is called real only when that interval excludes zero and is not
degenerate.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import paper

from .gains import METRICS, image_rows, split_stats, gain_of, groups_of
from .metrics import CONVENTIONS
from .places import portable_path

__all__ = [
    "TOY_PROFILES",
    "TOY_BANNER",
    "CPU_BOOK",
    "toy_banner",
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
]

DIGITS = {"psnr": 2, "ssim": 3}


TOY_PROFILES = ("smoke", "quick")
CPU_BOOK = "docs/book/index.html"  # the committed evidence, relative to the repository root
TOY_BANNER = ("pipeline demonstration at toy scale, not evidence; the evidence is the cpu book "
              "([docs/book/index.html]({link}))")


def toy_banner(link: str = CPU_BOOK) -> str:
    """The one-line banner of every toy-profile table and page."""
    return TOY_BANNER.format(link=link)


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
        conv = f"{self.convention}: {CONVENTIONS[self.convention]}" if self.convention in CONVENTIONS else self.convention
        out = [("table", self.title), ("profile", self.profile), ("data", self.data), ("convention", conv)]
        if self.n_test:
            out.append(("test images", ", ".join(f"{g} {k}" for g, k in self.n_test.items())))
        if self.seeds:
            out.append(("seeds", f"{len(self.seeds)} ({', '.join(str(s) for s in self.seeds)})"))
        out.append(("paper", f"{paper.CITATION}; its numbers are marked {paper.REPORTED}"))
        return out + [("note", note) for note in self.notes]


def data_source(cfg) -> str:
    """The data root of a run configuration, in words (``$DATA_ROOT``, or the embedded data)."""
    d = cfg.data
    return "$DATA_ROOT" if d.root else f"embedded data ({d.embedded_size}; mosslib.data.embedded, procedural rain on scikit-image photos)"


def data_description(cfg) -> str:
    """One line naming a run configuration's data: root, D_L (with label fraction), D_U, test set."""
    d = cfg.data
    root = data_source(cfg)
    lab = f"{d.labeled}/{d.labeled_split}"
    if d.label_fraction < 1.0:
        lab += f" ({round(d.label_fraction * 100)} % labeled)"
    extra = f" + {d.extra_rain} procedural rain x{d.extra_rain_copies}" if d.extra_rain and d.extra_rain_copies else ""
    unlabeled = portable_path(d.unlabeled, d.root) if d.unlabeled and Path(d.unlabeled).is_absolute() else d.unlabeled
    return f"{root}: D_L = {lab}{extra}; D_U = {unlabeled or '(rest of D_L, labels dropped)'}; test = {d.test}"


def table_meta(title: str, evals: Sequence[Mapping], data: str, profile: str, notes: Sequence[str] = ()) -> TableMeta:
    """Header of a table from the scores it shows (convention, test-group sizes, seeds)."""
    first = evals[0]
    groups = groups_of(evals)
    n_test = {g: len(image_rows(first, g)) for g in groups}
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
            values.update(gain.columns(f"{g}_{m}"))
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
                row.update(g.columns(f"{m}_gain"))
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
                row.update(gain.columns(f"{g}_psnr_vs_full"))
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

