"""The book's figures: image grids beside each other, PSNR against the labeled fraction, the
ablations and the timing, saved as PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import paper


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


def _spread(table) -> str:
    """What the error bars are, for a legend: '' for one seed."""
    n = len(table.meta.seeds)
    return f", mean ± sd over {n} seeds" if n > 1 else ""


def limited_figure(table, title: str = ""):
    """PSNR against the labeled percentage: the book's D_L and D_L + D_U (with seed spread), paper's dashed."""
    plt = _plt()
    f = table.frame
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    book = f[f["source"].str.startswith("this book")].sort_values("percent")
    for col, lab, mk in (("psnr_dl", "D_L", "o"), ("psnr_dlu", "D_L + D_U", "s")):
        if col in book and book[col].notna().any():
            b = book[book[col].notna()]
            err = b[f"{col}_seed_std"].fillna(0.0) if f"{col}_seed_std" in b else None
            ax.errorbar(b["percent"], b[col], yerr=err, marker=mk, capsize=3, label=f"MOSS, this book: {lab}{_spread(table)}")
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


def ablation_figure(table, title: str = ""):
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
               label=f"{g}, this book ({table.meta.profile}{_spread(table)})")
        rep = f.get(f"{g}_psnr_reported")
        if rep is not None and rep.notna().any():
            ax.plot(pos, rep, "k_", markersize=14, mew=2, label=f"paper {paper.REPORTED}" if k == 0 else None)
    ax.set_xticks(x)
    ax.set_xticklabels(f["label"], rotation=20, fontsize=8)
    ax.set_ylabel("PSNR (dB)")
    cols = [c for g in groups for c in (f"{g}_psnr", f"{g}_psnr_reported") if c in f]
    lo, hi = np.nanmin(f[cols].to_numpy(dtype=float)), np.nanmax(f[cols].to_numpy(dtype=float))
    bottom = max(0.0, lo - 3.0)
    ax.set_ylim(bottom=bottom, top=hi + 0.3 * (hi - bottom))  # headroom: the legend stays clear of the bars
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or table.meta.title, fontsize=9)
    fig.tight_layout()
    return fig
