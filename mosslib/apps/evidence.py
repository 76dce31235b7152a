"""The claims ledger's parts: a measured difference (:class:`Evidence`) and a claim's row (:class:`Claim`),
reading the book's results files, the training budget beside the paper's, and the verdicts."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..measure import paper
from ..measure import stats
from ..method.profiles import make_config


VERDICTS = ("held", "held in sign, not in size", "not held", "not testable here")
README_START, README_END = "<!-- ledger:start -->", "<!-- ledger:end -->"

# The paper's training budget (section 4.2): 100k iterations, batch 16, 256 x 256 crops.
PAPER_BUDGET = {"steps": 100_000, "batch": 16, "crop": 256}

# Where each claim's table and page are: the results file and the notebook of the book.
PAGES = {"table1": "01_ddn_sirr", "limited": "02_limited_labels", "fig8": "03_timing", "table4": "04_ablation",
         "memory": "05_memory", "fig6": "06_real_world", "study": "07_memory_study"}


@dataclass(frozen=True)
class Evidence:
    """A measured difference with its interval; ``n`` test images, ``seeds`` training seeds."""

    mean: float
    lo: float = math.nan
    hi: float = math.nan
    n: int = 0
    seeds: int = 1
    t_lo: float = math.nan  # Student's t interval over the seeds' means (several seeds; nan when not given)
    t_hi: float = math.nan

    @staticmethod
    def of_row(row: Mapping, col: str, n: int, seeds: int) -> "Evidence":
        """The columns ``col``, ``col_ci_lo/_ci_hi`` and, when present, ``col_t_lo/_t_hi`` of a results row."""
        return Evidence(as_float(row.get(col)), as_float(row.get(f"{col}_ci_lo")), as_float(row.get(f"{col}_ci_hi")),
                        n, seeds, as_float(row.get(f"{col}_t_lo")), as_float(row.get(f"{col}_t_hi")))

    @staticmethod
    def over_seeds(per_seed: Sequence[Sequence[float]], n: int) -> "Evidence":
        """Paired differences per seed on the same test images: the bootstrap over seeds then images,
        and the t interval over the seeds' means."""
        rows = [list(map(float, d)) for d in per_seed if len(d)]
        if not rows:
            return Evidence(math.nan, n=n, seeds=0)
        mean, lo, hi = stats.interval_of(rows, n_boot=4000)
        _, t_lo, t_hi = stats.seed_t_interval(rows) if len(rows) > 1 else (mean, math.nan, math.nan)
        return Evidence(mean, lo, hi, n, len(rows), t_lo, t_hi)

    def negated(self) -> "Evidence":
        return Evidence(-self.mean, -self.hi, -self.lo, self.n, self.seeds, -self.t_hi, -self.t_lo)

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
    split: str = ""  # each split's verdict where they differ ("dense: held; sparse: not held"), else ""

    def verdict_text(self) -> str:
        """The verdict in bold, with each split's own where the splits disagree."""
        return f"**{self.verdict}**" + (f" ({self.split})" if self.split else "")

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


# -- reading the results files ------------------------------------------------------------------
def seeds_count(meta: Mapping[str, str]) -> int:
    m = re.match(r"\s*(\d+)", meta.get("seeds", ""))
    return int(m.group(1)) if m else 1


def test_images_count(meta: Mapping[str, str], group: str) -> int:
    text = meta.get("test images", "")
    m = re.search(rf"\b{re.escape(group)} (\d+)", text)
    if m:
        return int(m.group(1))
    nums = [int(x) for x in re.findall(r"(\d+)", text)]
    return sum(nums) if group == "all" and nums else 0


def table_notes(path: Path) -> list[str]:
    return [ln[len("# note: "):] for ln in path.read_text().splitlines() if ln.startswith("# note: ")]


def results_label(results: Path) -> str:
    """``results/<profile>`` as a reader knows it (not this machine's absolute path)."""
    return f"{results.parent.name}/{results.name}"


def as_float(v) -> float:
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


def profile_budget(profile: str, steps: int | None = None) -> str:
    try:
        cfg = make_config(profile, "full", data_root="")
    except ValueError:
        return "unknown profile"
    return budget_of(steps or cfg.optim.steps, cfg.data.batch_size, cfg.data.crop)


def steps_from_notes(notes: Sequence[str]) -> int | None:
    for note in notes:
        m = re.search(r"steps per run: (\d+)", note)
        if m:
            return int(m.group(1))
    return None


# -- verdicts ----------------------------------------------------------------------------------
def gain_verdict(ev: Evidence, claimed: float, digits: int = 2) -> tuple[str, str]:
    """(verdict, reason) for a claimed difference of ``claimed`` (its sign is the claim's direction).

    Held needs several seeds and both intervals to exclude zero on the claim's side: the bootstrap
    over seeds then images, and (when given) Student's t over the seeds' means."""
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
    if not (math.isnan(ev.t_lo) or math.isnan(ev.t_hi)) and not stats.excludes_zero(ev.t_lo, ev.t_hi):
        return ("not held", f"the interval {shown} over {ev.seeds} seeds and {ev.n} images excludes zero, but a t interval "
                f"over the {ev.seeds} seeds' means, [{ev.t_lo:+.{digits}f}, {ev.t_hi:+.{digits}f}], includes it: with "
                f"{ev.seeds} seeds the bootstrap sees few seed draws, and seed noise is not ruled out")
    far = ev.hi if sign > 0 else ev.lo
    if sign * far >= sign * claimed:
        return "held", f"the interval {shown} over {ev.seeds} seeds and {ev.n} images excludes zero and reaches the paper's {claimed:+.{digits}f}"
    return ("held in sign, not in size",
            f"the interval {shown} over {ev.seeds} seeds and {ev.n} images excludes zero but stays short of the paper's {claimed:+.{digits}f}")


_ORDER = {"not held": 0, "not testable here": 1, "held in sign, not in size": 2, "held": 3}


def weakest(verdicts: Sequence[tuple[str, str]], labels: Sequence[str]) -> tuple[str, str]:
    """A claim over several splits takes its weakest split's verdict; the reason names every split's."""
    worst = min(verdicts, key=lambda vr: _ORDER[vr[0]])[0]
    reason = "; ".join(f"{lab}: {r}" for lab, (v, r) in zip(labels, verdicts))
    return worst, reason


def split_note(verdicts: Sequence[tuple[str, str]], labels: Sequence[str]) -> str:
    """Each split's verdict ("dense: held; sparse: not held") when they differ, else ""."""
    if len({v for v, _ in verdicts}) < 2:
        return ""
    return "; ".join(f"{lab}: {v}" for lab, (v, _) in zip(labels, verdicts))


def interval_words(seeds: int, n: int) -> str:
    return stats.coverage_text(seeds, n)


def missing_claim(cid, claim, where, paper_text, page, table, why) -> Claim:
    return Claim(cid, claim, where, paper_text, "-", "-", "-", "-", "-", "not testable here", why, page, table)
