"""The claims ledger: one row per claim of the paper, with the evidence of a profile's results files.

:func:`build_ledger` reads ``results/<profile>/`` (the tables the book writes: ``table1.csv``,
``table2-3_*.csv``, ``table4.csv``, ``fig8_timing.csv``; the memory diagnostics ``memory.json``
and the user study's ``user_study.csv`` when present) and gives each claim the paper's number, the
evidence here (number, interval, what the interval covers, budget, data, seeds) and a verdict from
:data:`VERDICTS` with its reason. No number is typed here: every figure comes from a results file
or from :mod:`mosslib.paper`. :func:`write_ledger` writes ``ledger.md``, ``ledger.csv`` and
``ledger.json`` beside the tables; :func:`update_readme` puts the ledger between the README's
``<!-- ledger:start -->`` and ``<!-- ledger:end -->`` markers (``cpu`` profile only).

How a verdict is decided (:func:`gain_verdict`), for a claimed gain (or cost) of size P:

* **not held**: the interval includes zero, has no width, or excludes zero on the other side;
* **not testable here**: the interval excludes zero on the paper's side but comes from one seed
  (it covers test images only, so it cannot claim a gain against training noise), or the results
  file is missing;
* **held in sign, not in size**: the interval (over seeds and images) excludes zero on the
  paper's side, and its far end stays short of P;
* **held**: as above, and the interval reaches P.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from . import paper, stats

__all__ = [
    "VERDICTS",
    "TOY_PROFILES",
    "TOY_BANNER",
    "PAPER_BUDGET",
    "Claim",
    "Evidence",
    "budget_of",
    "budget_share",
    "share_text",
    "paper_budget_text",
    "gain_verdict",
    "build_ledger",
    "ledger_markdown",
    "readme_markdown",
    "write_ledger",
    "update_readme",
    "README_START",
    "README_END",
    "toy_banner",
]

VERDICTS = ("held", "held in sign, not in size", "not held", "not testable here")
TOY_PROFILES = ("smoke", "quick")
CPU_BOOK = "docs/book/index.html"  # the committed evidence, relative to the repository root
TOY_BANNER = ("pipeline demonstration at toy scale, not evidence; the evidence is the cpu book "
              "([docs/book/index.html]({link}))")
README_START, README_END = "<!-- ledger:start -->", "<!-- ledger:end -->"

# The paper's training budget (section 4.2): 100k iterations, batch 16, 256 x 256 crops.
PAPER_BUDGET = {"steps": 100_000, "batch": 16, "crop": 256}

# Where each claim's table and page are: the results file and the notebook of the book.
PAGES = {"table1": "01_ddn_sirr", "limited": "02_limited_labels", "fig8": "03_timing", "table4": "04_ablation",
         "memory": "05_memory", "fig6": "06_real_world"}


def toy_banner(link: str = CPU_BOOK) -> str:
    """The one-line banner of every toy-profile table and page."""
    return TOY_BANNER.format(link=link)


@dataclass(frozen=True)
class Evidence:
    """A measured difference with its interval; ``n`` test images, ``seeds`` training seeds."""

    mean: float
    lo: float = math.nan
    hi: float = math.nan
    n: int = 0
    seeds: int = 1

    def text(self, digits: int = 2, unit: str = " dB") -> str:
        if math.isnan(self.mean):
            return "n/a"
        ci = "" if math.isnan(self.lo) else f" [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"
        return f"{self.mean:+.{digits}f}{unit}{ci}"


@dataclass
class Claim:
    """One row of the ledger."""

    id: str
    claim: str  # the paper's claim, in words
    where: str  # "Table 1", "Fig. 8", ...
    paper: str  # the paper's number(s)
    evidence: str  # the number(s) here, with intervals
    interval: str  # what the interval covers
    budget: str
    data: str
    seeds: str
    verdict: str
    reason: str
    page: str  # notebook stem of the book page that shows it
    table: str = ""  # results file name that holds the numbers ("" when none)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


# -- reading the results files ------------------------------------------------------------------
def _read_table(path: Path):
    from .tables import read_table

    return read_table(path)


def _seeds_count(meta: Mapping[str, str]) -> int:
    m = re.match(r"\s*(\d+)", meta.get("seeds", ""))
    return int(m.group(1)) if m else 1


def _test_images(meta: Mapping[str, str], group: str) -> int:
    text = meta.get("test images", "")
    m = re.search(rf"\b{re.escape(group)} (\d+)", text)
    if m:
        return int(m.group(1))
    nums = [int(x) for x in re.findall(r"(\d+)", text)]
    return sum(nums) if group == "all" and nums else 0


def _notes(path: Path) -> list[str]:
    return [ln[len("# note: "):] for ln in path.read_text().splitlines() if ln.startswith("# note: ")]


def _where(results: Path) -> str:
    """``results/<profile>`` as a reader knows it (not this machine's absolute path)."""
    return f"{results.parent.name}/{results.name}"


def _f(v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def budget_share(steps: int, batch: int, crop: int) -> float:
    """Training pixels seen (``steps x batch x crop^2``) as a fraction of the paper's."""
    theirs = PAPER_BUDGET["steps"] * PAPER_BUDGET["batch"] * PAPER_BUDGET["crop"] ** 2
    return steps * batch * crop * crop / theirs


def paper_budget_text() -> str:
    b = PAPER_BUDGET
    return f"{b['steps']:,} iterations x batch {b['batch']} x {b['crop']}x{b['crop']} crops (section 4.2)"


def share_text(share: float) -> str:
    """A fraction as a percentage that stays readable for toy budgets (``0.75%``, ``1.1e-04%``)."""
    pct = 100 * share
    return f"{pct:.2f}%" if pct >= 0.01 else f"{pct:.1e}%"


def budget_of(steps: int, batch: int, crop: int) -> str:
    """``steps x batch x crop^2`` in words, with its fraction of the paper's budget."""
    return (f"{steps:,} steps x batch {batch} x {crop}x{crop} crops = {share_text(budget_share(steps, batch, crop))} of the "
            f"paper's {paper_budget_text()}")


def _profile_budget(profile: str, steps: int | None = None) -> str:
    from .profiles import make_config

    try:
        cfg = make_config(profile, "full", data_root="")
    except ValueError:
        return "unknown profile"
    return budget_of(steps or cfg.optim.steps, cfg.data.batch_size, cfg.data.crop)


def _steps_from_notes(notes: Sequence[str]) -> int | None:
    for note in notes:
        m = re.search(r"steps per run: (\d+)", note)
        if m:
            return int(m.group(1))
    return None


# -- verdicts ----------------------------------------------------------------------------------
def gain_verdict(ev: Evidence, claimed: float, digits: int = 2) -> tuple[str, str]:
    """(verdict, reason) for a claimed difference of ``claimed`` (its sign is the claim's direction)."""
    if math.isnan(ev.mean):
        return "not testable here", "no measurement in the results files"
    if math.isnan(ev.lo) or math.isnan(ev.hi):
        return "not testable here", "no interval in the results file, so no gain can be told from noise"
    sign = 1.0 if claimed >= 0 else -1.0
    v = stats.verdict_of(ev.mean, ev.lo, ev.hi, ev.n, digits)
    shown = ev.text(digits, "")
    if v == "degenerate":
        return "not held", f"the interval {shown} has no width: it cannot tell a difference from noise"
    if v == "below precision":
        return "not held", f"{shown}: no difference at this precision"
    if v == "noise":
        return "not held", f"the interval {shown} includes zero: not told apart from noise"
    if sign * ev.mean < 0:
        return "not held", f"the interval {shown} excludes zero on the other side: the opposite of the paper"
    if ev.seeds < 2:
        return ("not testable here",
                f"one seed: the interval {shown} excludes zero but covers test images only, not training noise "
                f"(the paper's {claimed:+.{digits}f} lies {'inside' if ev.lo <= claimed <= ev.hi else 'outside'} it); "
                f"a gain needs at least 2 seeds")
    far = ev.hi if sign > 0 else ev.lo
    if sign * far >= sign * claimed:
        return "held", f"the interval {shown} over {ev.seeds} seeds and {ev.n} images excludes zero and reaches the paper's {claimed:+.{digits}f}"
    return ("held in sign, not in size",
            f"the interval {shown} over {ev.seeds} seeds and {ev.n} images excludes zero but stays short of the paper's {claimed:+.{digits}f}")


_ORDER = {"not held": 0, "not testable here": 1, "held in sign, not in size": 2, "held": 3}


def _weakest(verdicts: Sequence[tuple[str, str]], labels: Sequence[str]) -> tuple[str, str]:
    worst = min(verdicts, key=lambda vr: _ORDER[vr[0]])[0]
    reason = "; ".join(f"{lab}: {r}" for lab, (v, r) in zip(labels, verdicts))
    return worst, reason


def _interval_words(seeds: int, n: int) -> str:
    return stats.coverage_text(seeds, n)


def _missing(cid, claim, where, paper_text, page, table, why) -> Claim:
    return Claim(cid, claim, where, paper_text, "-", "-", "-", "-", "-", "not testable here", why, page, table)


# -- the claims ------------------------------------------------------------------------------------
def _table1_claims(results: Path, profile: str) -> list[Claim]:
    path = results / "table1.csv"
    moss = paper.table1_entry("MOSS")
    out = []
    if not path.is_file():
        for g in ("dense", "sparse"):
            out.append(_missing(f"t1-gain-{g}", f"D_U improves MOSS on the {g} test images", "Table 1",
                                f"{getattr(moss, g)[2]:+.2f} dB {paper.REPORTED}", PAGES["table1"], "table1",
                                f"no {path.name} in {_where(results)}: run notebook 01"))
        out.append(_missing("t1-peers", "MOSS is ahead of every supervised peer", "Table 1", "-", PAGES["table1"],
                            "table1", f"no {path.name} in {_where(results)}"))
        return out
    meta, frame = _read_table(path)
    book = frame[frame["source"].astype(str).str.startswith("this book")]
    gain_rows = book[book["trained_on"].astype(str).str.startswith("gain")]
    seeds = _seeds_count(meta)
    budget = _profile_budget(profile, _steps_from_notes(_notes(path)))
    for g in ("dense", "sparse"):
        claimed = getattr(moss, g)[2]
        col = f"{g}_psnr"
        if gain_rows.empty or col not in gain_rows:
            out.append(_missing(f"t1-gain-{g}", f"D_U improves MOSS on the {g} test images", "Table 1",
                                f"{claimed:+.2f} dB {paper.REPORTED}", PAGES["table1"], "table1",
                                f"{path.name} has no {g} gain row"))
            continue
        r = gain_rows.iloc[0]
        n = _test_images(meta, g)
        ev = Evidence(_f(r[col]), _f(r.get(f"{col}_ci_lo")), _f(r.get(f"{col}_ci_hi")), n, seeds)
        verdict, reason = gain_verdict(ev, claimed)
        out.append(Claim(f"t1-gain-{g}", f"D_U improves MOSS on the {g} test images (D_C + D_U minus D_C, PSNR)",
                         "Table 1", f"{claimed:+.2f} dB {paper.REPORTED}", ev.text(), _interval_words(seeds, n),
                         budget, meta.get("data", "-"), meta.get("seeds", "-"), verdict, reason, PAGES["table1"], "table1"))
    # MOSS ahead of the supervised peers: needs peers trained alike (rows of this book other than MOSS)
    peers = [e for e in paper.TABLE1 if e.kind == "supervised"]
    best = {g: max(getattr(e, g)[0] for e in peers) for g in ("dense", "sparse")}
    paper_text = (f"MOSS {moss.dense[1]:.2f} / {moss.sparse[1]:.2f} dB against the best supervised peer "
                  f"{best['dense']:.2f} / {best['sparse']:.2f} {paper.REPORTED}")
    ours = book[book["trained_on"].astype(str) == "D_C + D_U"]
    alike = book[~book["method"].astype(str).str.startswith(("MOSS", "Input"))]
    if ours.empty:
        out.append(_missing("t1-peers", "MOSS is ahead of every supervised peer", "Table 1", paper_text,
                            PAGES["table1"], "table1", f"{path.name} has no MOSS (D_C + D_U) row"))
    else:
        o = ours.iloc[0]
        evidence = f"MOSS (this book) {_f(o['dense_psnr']):.2f} / {_f(o['sparse_psnr']):.2f} dB"
        if alike.empty:
            verdict = "not testable here"
            reason = ("no supervised peer was trained on this book's data and budget, and the paper's peer numbers "
                      "come from other training data (DDN's 9,100 pairs) and budgets, so ranking against them tests nothing")
        else:
            names = ", ".join(f"{p['method']} {_f(p['dense_psnr']):.2f} / {_f(p['sparse_psnr']):.2f}" for _, p in alike.iterrows())
            evidence += f"; peers trained alike: {names}"
            verdict, reason = ("not testable here",
                               "peer rows carry no paired interval against MOSS in the results file")
        out.append(Claim("t1-peers", "MOSS (D_C + D_U) is ahead of every supervised peer", "Table 1", paper_text,
                         evidence, "-", budget, meta.get("data", "-"), meta.get("seeds", "-"), verdict, reason,
                         PAGES["table1"], "table1"))
    return out


def _limited_claims(results: Path, profile: str) -> list[Claim]:
    paths = sorted(results.glob("table2-3_*.csv"))
    paths = [p for p in paths if not p.stem.endswith("_psnr_vs_labels")]
    fractions = [p for p in paper.LIMITED_FRACTIONS if p < 100]
    if not paths:
        return [_missing(f"t23-{pct}", f"unlabeled data improves MOSS with {pct} % labels", "Tables 2-3",
                         " / ".join(f"{ds} {paper.limited_row(ds, 'MOSS', pct).psnr[2]:+.2f}" for ds in paper.LIMITED),
                         PAGES["limited"], "", f"no table2-3_*.csv in {_where(results)}: run notebook 02") for pct in fractions]
    path = paths[0]
    meta, frame = _read_table(path)
    seeds = _seeds_count(meta)
    n = _test_images(meta, "all")
    budget = _profile_budget(profile, _steps_from_notes(_notes(path)))
    book = frame[frame["source"].astype(str).str.startswith("this book")]
    out = []
    for pct in fractions:
        reported = {ds: paper.limited_row(ds, "MOSS", pct).psnr[2] for ds in paper.LIMITED}
        paper_text = " / ".join(f"{ds} {v:+.2f} dB" for ds, v in reported.items()) + f" {paper.REPORTED}"
        row = book[book["percent"] == pct]
        if row.empty or math.isnan(_f(row.iloc[0].get("psnr_gain"))):
            out.append(_missing(f"t23-{pct}", f"unlabeled data improves MOSS with {pct} % labels", "Tables 2-3",
                                paper_text, PAGES["limited"], path.stem, f"{path.name} has no {pct} % gain"))
            continue
        r = row.iloc[0]
        ev = Evidence(_f(r["psnr_gain"]), _f(r.get("psnr_gain_ci_lo")), _f(r.get("psnr_gain_ci_hi")), n, seeds)
        claimed = min(reported.values())  # the smaller of the two reported gains: the weaker claim
        verdict, reason = gain_verdict(ev, claimed)
        ds_note = meta.get("table", "")
        out.append(Claim(f"t23-{pct}", f"unlabeled data improves MOSS with {pct} % labels (PSNR gain)", "Tables 2-3",
                         paper_text, ev.text(), _interval_words(seeds, n), budget,
                         meta.get("data", "-") + (f" ({ds_note})" if ds_note else ""), meta.get("seeds", "-"),
                         verdict, reason, PAGES["limited"], path.stem))
    return out


def _table4_claims(results: Path, profile: str) -> list[Claim]:
    path = results / "table4.csv"
    removed = [c for c in paper.TABLE4_ORDER if c != "full"]
    full = paper.TABLE4["full"]

    def paper_text(c):
        return " / ".join(f"{paper.TABLE4[c][g][0] - full[g][0]:+.2f}" for g in ("dense", "sparse")) + f" dB {paper.REPORTED}"

    if not path.is_file():
        return [_missing(f"t4-{c}", f"{paper.TABLE4_LABELS[c]} costs accuracy", "Table 4", paper_text(c),
                         PAGES["table4"], "table4", f"no {path.name} in {_where(results)}: run notebook 04") for c in removed]
    meta, frame = _read_table(path)
    frame = frame.set_index("config")
    seeds = _seeds_count(meta)
    budget = _profile_budget(profile, _steps_from_notes(_notes(path)))
    out = []
    for c in removed:
        label = paper.TABLE4_LABELS[c]
        what = f"{label} costs accuracy against full MOSS (configuration minus Ours, PSNR, dense / sparse)"
        if c not in frame.index:
            out.append(_missing(f"t4-{c}", what, "Table 4", paper_text(c), PAGES["table4"], "table4",
                                f"{path.name} has no {c} row (not trained at this profile)"))
            continue
        r = frame.loc[c]
        evs, verdicts, labels = [], [], []
        for g in ("dense", "sparse"):
            col = f"{g}_psnr_vs_full"
            if col not in r:
                continue
            n = _test_images(meta, g)
            ev = Evidence(_f(r[col]), _f(r.get(f"{col}_ci_lo")), _f(r.get(f"{col}_ci_hi")), n, seeds)
            claimed = paper.TABLE4[c][g][0] - full[g][0]
            evs.append(ev)
            verdicts.append(gain_verdict(ev, claimed))
            labels.append(g)
        if not evs:
            out.append(_missing(f"t4-{c}", what, "Table 4", paper_text(c), PAGES["table4"], "table4",
                                f"{path.name} has no difference to full"))
            continue
        verdict, reason = _weakest(verdicts, labels)
        out.append(Claim(f"t4-{c}", what, "Table 4", paper_text(c), " / ".join(e.text() for e in evs),
                         _interval_words(seeds, evs[0].n), budget, meta.get("data", "-"), meta.get("seeds", "-"),
                         verdict, reason, PAGES["table4"], "table4"))
    return out


def _fig8_claim(results: Path, profile: str) -> Claim:
    path = results / "fig8_timing.csv"
    claim = "MOSS is the second fastest of the compared models (ms per 256x256 image)"
    paper_text = f"{paper.FIG8['statement']}, {paper.FIG8['device']} {paper.REPORTED}"
    if not path.is_file():
        return _missing("fig8", claim, "Fig. 8", paper_text, PAGES["fig8"], "fig8_timing",
                        f"no {path.name} in {_where(results)}: run notebook 03")
    meta, frame = _read_table(path)
    m = re.search(r"per (\d+)x\d+ image", meta.get("table", ""))
    side = int(m.group(1)) if m else 256
    archs = frame[["arch", "ms"]].copy()
    archs["arch"] = archs["arch"].astype(str)
    # one row per network: MOEDN's other precisions and fast paths (moedn-int8, moedn-fast-bf16) are the
    # same network, compared in fp32 like its peers
    base = archs[~archs["arch"].str.contains("-")].sort_values("ms").reset_index(drop=True)
    device = next((n[len("device: "):] for n in _notes(path) if n.startswith("device: ")), "?")
    ranked = list(base["arch"])
    evidence = ", ".join(f"{a} {ms:.1f} ms" for a, ms in zip(base["arch"], base["ms"]))
    if "moedn" not in ranked:
        return Claim("fig8", claim, "Fig. 8", paper_text, evidence or "-", "-", "-", meta.get("data", "-"), "-",
                     "not testable here", f"no fp32 moedn row in {path.name}", PAGES["fig8"], "fig8_timing")
    rank = ranked.index("moedn") + 1
    ahead = ", ".join(ranked[: rank - 1]) or "none"
    if side != 256:
        verdict, reason = "not testable here", f"timed on {side}x{side} images (a pipeline check), not 256x256"
    elif rank <= 2:
        verdict = "held"
        reason = (f"MOEDN ranks {rank} of {len(ranked)} on {device} (ahead of it: {ahead}); a CPU, not the paper's GPU, "
                  f"and the peers measured here are the ones with public definitions")
    else:
        verdict = "not held"
        reason = f"MOEDN ranks {rank} of {len(ranked)} on {device} (ahead of it: {ahead})"
    return Claim("fig8", claim, "Fig. 8", paper_text, f"rank {rank} of {len(ranked)}: {evidence}",
                 "median of interleaved repeats; no interval", "inference only", meta.get("data", "-"), "-",
                 verdict, reason, PAGES["fig8"], "fig8_timing")


def _memory_claim(results: Path, profile: str) -> Claim:
    path = results / "memory.json"
    claim = "the memory records prototypical rain patterns (its read carries information the decoder uses)"
    full = paper.TABLE4["full"]
    cost = {g: paper.TABLE4["no_memory"][g][0] - full[g][0] for g in ("dense", "sparse")}
    paper_text = ("memory items as rain prototypes (section 3.1.2); removing the memory costs "
                  + " / ".join(f"{v:+.2f}" for v in cost.values()) + f" dB (Table 4) {paper.REPORTED}")
    if not path.is_file():
        return _missing("memory", claim, "Sec. 3.1.2, Table 4", paper_text, PAGES["memory"], "memory",
                        f"no {path.name} in {_where(results)}: the memory diagnostics (`python -m mosslib memory --json`) "
                        "have not been written for this profile")
    try:
        data = json.loads(path.read_text())
        usage, att, abl = data["usage"], data["attention"], data["ablation"]
    except (ValueError, KeyError, TypeError) as exc:
        return _missing("memory", claim, "Sec. 3.1.2, Table 4", paper_text, PAGES["memory"], "memory",
                        f"{path.name} is not readable as memory diagnostics ({exc})")
    ci = data.get("ablation_ci", {}).get("mean", {})
    n = int(data.get("n_images", {}).get("dense", 0) or 0) if isinstance(data.get("n_images"), dict) else 0
    parts, verdicts, labels = [], [], []
    for g in ("dense", "sparse"):
        if g not in abl.get("mean", {}):
            continue
        lo, hi = (ci.get(g) or [math.nan, math.nan])[:2]
        ev = Evidence(_f(abl["mean"][g]), _f(lo), _f(hi), n or 10, int(data.get("seeds", 1) or 1))
        parts.append(f"{g} {ev.text()}")
        if not math.isnan(ev.lo):
            v = stats.verdict_of(ev.mean, ev.lo, ev.hi, ev.n)
            if v == "real" and ev.mean < 0:
                far = ev.lo
                verdicts.append(("held", f"the read's spatial content costs {ev.text(2, '')} when removed")
                                if far <= cost[g] else
                                ("held in sign, not in size", f"removing the read's spatial content costs {ev.text(2, '')}, "
                                 f"short of the paper's {cost[g]:+.2f}"))
            else:
                verdicts.append(("not held", f"replacing the read by its per-image mean changes PSNR by {ev.text(2, '')}: "
                                 "no cost told apart from noise"))
        else:
            verdicts.append(("not held", f"replacing the read by its mean changes PSNR by {ev.mean:+.2f} dB (no interval given)")
                            if ev.mean >= -0.05 else
                            ("not testable here", f"a {ev.mean:+.2f} dB change with no interval"))
        labels.append(g)
    zeros = abl.get("zeros", {})
    evidence = ("ablation (read replaced by its per-image mean, minus as trained): " + ", ".join(parts)
                + ("; by zeros: " + ", ".join(f"{g} {_f(v):+.2f}" for g, v in zeros.items()) if zeros else "")
                + f"; items alive {usage.get('alive')}, top item's share {_f(usage.get('top_share')):.0%}, "
                  f"perplexity {_f(usage.get('perplexity')):.1f}; largest attention weight {_f(att.get('max_weight')):.4f}, "
                  f"entropy {_f(att.get('entropy')):.3f} of {_f(att.get('uniform_entropy')):.3f} (uniform)")
    if not verdicts:
        return Claim("memory", claim, "Sec. 3.1.2, Table 4", paper_text, evidence, "-", "-", "-", "-",
                     "not testable here", "no ablation deltas in memory.json", PAGES["memory"], "memory")
    verdict, reason = _weakest(verdicts, labels)
    ent, uni = _f(att.get("entropy")), _f(att.get("uniform_entropy"))
    if not math.isnan(ent) and not math.isnan(uni) and uni > 0 and ent >= 0.95 * uni:
        reason += f"; the attention is near uniform (entropy {ent / uni:.1%} of a uniform read's)"
    interval = ("paired bootstrap over test images" if ci else "no interval given")
    return Claim("memory", claim, "Sec. 3.1.2, Table 4", paper_text, evidence, interval,
                 str(data.get("checkpoint", "the shipped model")), str(data.get("data", "-")), str(data.get("seeds", "-")),
                 verdict, reason, PAGES["memory"], "memory")


def _fig6_claim(results: Path, profile: str) -> Claim:
    path = results / "user_study.csv"
    claim = "raters prefer MOSS on real rainy photos (user study)"
    paper_text = f"MOSS has the highest averaged selection percentage (Fig. 6; bars only, no numbers in the text) {paper.REPORTED}"
    answers = None
    if path.is_file():
        try:
            from .userstudy import read_choices

            answers = read_choices(path)
        except Exception as exc:  # a malformed CSV: say so
            return _missing("fig6", claim, "Fig. 6", paper_text, PAGES["fig6"], "user_study",
                            f"{path.name} is not readable ({exc})")
    if answers is None or len(answers) == 0:
        return _missing("fig6", claim, "Fig. 6", paper_text, PAGES["fig6"], "user_study",
                        "no rater has answered the blind study for this profile (no answers in "
                        f"{path.name}); the paper's protocol (its Appendix C) is not available")
    import numpy as np

    from .userstudy import tally

    t = tally(answers)
    if "MOSS" not in t.index:
        return _missing("fig6", claim, "Fig. 6", paper_text, PAGES["fig6"], "user_study",
                        f"{path.name} has no comparison with MOSS")
    involved = answers[(answers["left"] == "MOSS") | (answers["right"] == "MOSS")]
    score = np.where(involved["winner"] == "MOSS", 1.0, np.where(involved["winner"] == "same", 0.5, 0.0))
    lo, hi = stats.image_ci(score - 0.5)
    ev = Evidence(float(score.mean() - 0.5), lo, hi, len(score), 1)
    v = stats.verdict_of(ev.mean, ev.lo, ev.hi, ev.n)
    pct = 100 * score.mean()
    if v == "real" and ev.mean > 0:
        verdict, reason = "held", f"MOSS chosen in {pct:.0f} % of {len(score)} comparisons; the interval excludes 50 %"
    else:
        verdict, reason = "not held", f"MOSS chosen in {pct:.0f} % of {len(score)} comparisons; the interval does not exclude 50 % on MOSS's side"
    sessions = int(t.loc["MOSS", "sessions"])
    return Claim("fig6", claim, "Fig. 6", paper_text,
                 f"MOSS selected {pct:.0f} % [{100 * (lo + 0.5):.0f}, {100 * (hi + 0.5):.0f}] of {len(score)} comparisons",
                 f"bootstrap over {len(score)} answers of {sessions} session(s); the only peer here is the supervised model",
                 "-", "real photos of the profile's D_U", "-", verdict, reason, PAGES["fig6"], "user_study")


def build_ledger(results: str | os.PathLike, profile: str) -> list[Claim]:
    """The claims of the paper, judged on the results files of ``results`` (a profile's folder)."""
    results = Path(results)
    claims = _table1_claims(results, profile) + _limited_claims(results, profile) + _table4_claims(results, profile)
    claims += [_fig8_claim(results, profile), _memory_claim(results, profile), _fig6_claim(results, profile)]
    return claims


# -- writing ---------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def ledger_markdown(claims: Sequence[Claim], profile: str, link: Callable[[Claim], str] | None = None,
                    audit_link: str = "", banner_link: str = CPU_BOOK, heading: str = "## Claims ledger") -> str:
    """The ledger as Markdown: a count of verdicts, the table, how verdicts are decided."""
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    lines = [heading, ""]
    if profile in TOY_PROFILES:
        lines += [f"> **{profile} profile: {toy_banner(banner_link)}**", ""]
    lines += [f"Profile `{profile}`: " + ", ".join(f"**{n}** {v}" for v, n in counts.items()) + f" ({len(claims)} claims).", ""]
    lines += ["| Claim | Where | Paper | Here | Interval | Budget | Verdict | Why |", "|---|---|---|---|---|---|---|---|"]
    for c in claims:
        where = f"[{c.where}]({link(c)})" if link and link(c) else c.where
        short = c.budget.split(" = ")[-1].replace(f" of the paper's {paper_budget_text()}", " of the paper's")
        lines.append("| " + " | ".join(_cell(x) for x in (c.claim, where, c.paper, c.evidence, c.interval, short,
                                                             f"**{c.verdict}**", c.reason)) + " |")
    lines += ["", f"Where the evidence comes from (the paper trained for {paper_budget_text()}):", ""]
    seen: dict[str, list[str]] = {}
    for c in claims:
        if c.data in ("-", "") and c.budget in ("-", ""):
            continue
        key = f"data {c.data}; seeds {c.seeds}; budget {c.budget}"
        seen.setdefault(key, [])
        if c.where not in seen[key]:
            seen[key].append(c.where)
    lines += [f"- **{', '.join(wheres)}**: {key}" for key, wheres in seen.items()]
    lines += ["- **verdicts**: *held*: the interval (over seeds and test images) excludes zero on the paper's side and "
              "reaches the paper's size; *held in sign, not in size*: it excludes zero on the paper's side but stays "
              "short of the paper's size; *not held*: it includes zero, has no width, or shows the opposite; "
              "*not testable here*: no results, one seed only (an interval over test images alone cannot claim a gain "
              "against training noise), or nothing comparable was run."]
    if audit_link:
        lines += [f"- Before comparing with the paper's numbers, read the [audit of the authors' release]({audit_link})."]
    return "\n".join(lines) + "\n"


def readme_markdown(claims: Sequence[Claim], profile: str = "cpu") -> str:
    """The README's block: the verdict counts and a short table, with links to the full ledger and the book."""
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    lines = [f"Claims of the paper judged on the committed `{profile}` book (generated by `make reproduce PROFILE={profile}` "
             f"or `make book-html`; do not edit by hand): "
             + ", ".join(f"**{n}** {v}" for v, n in counts.items()) + ".", "",
             "| Claim | Paper | Here | Verdict |", "|---|---|---|---|"]
    for c in claims:
        where = f"[{c.where}](results/{profile}/{c.table}.md)" if c.table and c.table not in ("memory", "user_study") else c.where
        lines.append("| " + " | ".join(_cell(x) for x in (f"{c.claim} ({where})", c.paper, c.evidence, f"**{c.verdict}**")) + " |")
    lines += ["", f"Why each verdict, the intervals and the budgets: [`results/{profile}/ledger.md`](results/{profile}/ledger.md) "
              f"and the HTML book ([`docs/book/index.html`](docs/book/index.html)); before comparing with the paper's "
              f"numbers, the [audit of the authors' release](docs/release-audit.md)."]
    return "\n".join(lines) + "\n"


def write_ledger(results: str | os.PathLike, profile: str, audit_link: str = "../../docs/release-audit.md") -> dict:
    """Write ``ledger.md``, ``ledger.csv`` and ``ledger.json`` into ``results`` (the profile's folder)."""
    import pandas as pd

    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    claims = build_ledger(results, profile)
    md = ledger_markdown(claims, profile, link=lambda c: f"{c.table}.md" if c.table and (results / f"{c.table}.md").is_file() else "",
                         audit_link=audit_link, banner_link="../../" + CPU_BOOK)
    paths = {"md": results / "ledger.md", "csv": results / "ledger.csv", "json": results / "ledger.json"}
    paths["md"].write_text(f"# Claims ledger ({profile})\n\n" + md.split("\n", 2)[2])
    rows = [asdict(c) for c in claims]
    pd.DataFrame(rows).to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps({"profile": profile, "verdicts": list(VERDICTS), "claims": rows}, indent=1) + "\n")
    return {"claims": claims, "paths": paths}


def update_readme(readme: str | os.PathLike, block: str) -> bool:
    """Replace the text between the README's ledger markers with ``block``; False (untouched) without them."""
    readme = Path(readme)
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    i, j = text.find(README_START), text.find(README_END)
    if i < 0 or j < 0 or j < i:
        return False
    new = text[: i + len(README_START)] + "\n" + block.strip() + "\n" + text[j:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return True
