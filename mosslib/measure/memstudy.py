"""The memory study's results (issue 30): tables and a verdict read from ``results/study/``.

The grid itself is ``experiments/memory_study/run.py``; each finished job leaves a JSON
record: ``screen/<arm>.json`` (one seed, supervised pre-training only) and
``seeds/<arm>-s<seed>-<full|no_selftrain>.json``. Intervals cover training noise and test
images together: :func:`seed_image_bootstrap` resamples seeds, then images within each seed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import stats

__all__ = ["SPLITS", "load_records", "seed_image_bootstrap", "ablation_diffs", "arms_table", "screen_table",
           "seeds_table", "by_arm", "paired_diffs", "planned_arms", "verdict", "WORKS_DB", "PARITY_DB", "STUDY_SEEDS"]

SPLITS = ("dense", "sparse")
WORKS_DB = 0.3  # a memory "works" when ablating its read costs at least this much, dense (issue 30)
PARITY_DB = 0.3  # the seeded arms' validation PSNR must lie within this of the paper-faithful arm's
STUDY_SEEDS = 3  # seeds per seeded arm (issue 30); every verdict answer waits for all of them


def load_records(results: str | Path) -> dict[str, list[dict]]:
    """``{"screen": [...], "seeds": [...]}`` of the study's JSON records (empty lists when absent)."""
    root = Path(results)
    out = {}
    for kind in ("screen", "seeds"):
        out[kind] = [json.loads(p.read_text()) for p in sorted((root / kind).glob("*.json"))]
    return out


def seed_image_bootstrap(per_seed: Sequence[Sequence[float]], level: float = 0.95, n_boot: int = 4000,
                         seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi) of paired differences, ``per_seed[s]`` being seed s's per-image differences
    on the same test images: :func:`mosslib.measure.stats.interval_of` (seeds resampled, then images; one
    seed gives the image bootstrap)."""
    rows = [np.asarray(d, dtype=np.float64) for d in per_seed if len(d)]
    if not rows:
        return math.nan, math.nan, math.nan
    return stats.interval_of(np.stack(rows), level, n_boot, seed)


def _fmt(mean: float, lo: float, hi: float, digits: int = 2) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def ablation_diffs(rec: dict, how: str, split: str) -> list[float]:
    """Per-image test PSNR of a record with the read ablated (``how``: "mean" | "zeros") minus as trained."""
    per = rec["test_per_image"]
    base = per["trained"][split]
    return [per[how][split][k] - base[k] for k in base]


# Model settings that only matter for the Gumbel read (shown for the other arms they would mislead).
_GUMBEL_ONLY = ("memory_min_temperature", "memory_anneal")


def arms_table(records: Mapping[str, list[dict]], baseline: str = "paper") -> pd.DataFrame:
    """What each screened arm changes: its model settings that differ from the ``baseline`` arm's
    (and, for a Gumbel read, its anneal), read from the records' saved configurations."""
    screens = {r["arm"]: r["run_config"]["model"] for r in records["screen"]}
    base = screens.get(baseline)
    if base is None:
        return pd.DataFrame()
    rows = []
    for arm, model in sorted(screens.items(), key=lambda kv: kv[0] != baseline):
        gumbel = model.get("memory_read") == "gumbel"
        changed = {k: v for k, v in model.items() if (k in _GUMBEL_ONLY and gumbel)
                   or (base.get(k) != v and k not in _GUMBEL_ONLY)}
        rows.append({"arm": arm, "changes": ", ".join(f"{k}={v}" for k, v in changed.items()) or "- (Eq. 1-5 as written)"})
    return pd.DataFrame(rows).set_index("arm")


def screen_table(records: Mapping[str, list[dict]]) -> pd.DataFrame:
    """One row per screened arm (one seed, supervised): accuracy, memory health, ablation cost
    (PSNR of the "mean" read minus as trained, 95 % interval over test images), real photos."""
    rows = []
    for r in sorted(records["screen"], key=lambda r: r["arm"] != "paper"):  # the paper-faithful arm first
        h, t = r["health"], r["test"]
        row = {
            "arm": r["arm"],
            "val PSNR": r["val"]["trained"]["val"],
            "dense": t["trained"]["dense"],
            "sparse": t["trained"]["sparse"],
            "alive items": h["usage"]["alive"],
            "top share": h["usage"]["top_share"],
            "perplexity": h["usage"]["perplexity"],
            "max weight": h["attention"]["max_weight"],
            "entropy / log m": h["attention"]["entropy"] / h["attention"]["uniform_entropy"],
        }
        for split in SPLITS:
            lo, hi = t["ablation_ci"]["mean"][split]
            row[f"ablation {split}"] = _fmt(t["ablation"]["mean"][split], lo, hi)
        row["ablation val"] = _fmt(r["val"]["ablation"]["mean"]["val"], *r["val"]["ablation_ci"]["mean"]["val"])
        row["real: removed"] = r["real"]["removed"]
        row["real: memory share"] = r["real"]["ablation_change"]["mean"] / max(r["real"]["removed"], 1e-9)
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm") if rows else pd.DataFrame()


def by_arm(records: Mapping[str, list[dict]]) -> dict[str, dict[int, dict[str, dict]]]:
    """The seeded records as ``{arm: {seed: {"full" | "no_selftrain": record}}}``."""
    arms: dict[str, dict[int, dict[str, dict]]] = {}
    for r in records["seeds"]:
        arms.setdefault(r["arm"], {}).setdefault(int(r["seed"]), {})[r["kind"]] = r
    return arms


def paired_diffs(a: dict, b: dict, split: str) -> list[float]:
    """Per-image PSNR of run b minus run a (as trained), paired by image name."""
    pa, pb = a["test_per_image"]["trained"][split], b["test_per_image"]["trained"][split]
    return [pb[k] - pa[k] for k in pa if k in pb]


def arm_summary(seeds: Mapping[int, Mapping[str, dict]]) -> dict:
    """Means and seed-and-image intervals of one arm: MOSS and supervised PSNR, the
    self-training gain (full minus no_selftrain, same seed), the ablation cost of both runs."""
    full = [s["full"] for s in seeds.values() if "full" in s]
    sup = [s["no_selftrain"] for s in seeds.values() if "no_selftrain" in s]
    both = [(s["no_selftrain"], s["full"]) for s in seeds.values() if "full" in s and "no_selftrain" in s]
    out: dict = {"seeds": len(full), "seeds_paired": len(both)}
    for split in SPLITS:
        out[f"moss {split}"] = float(np.mean([r["test"]["trained"][split] for r in full])) if full else math.nan
        out[f"supervised {split}"] = float(np.mean([r["test"]["trained"][split] for r in sup])) if sup else math.nan
        out[f"gain {split}"] = seed_image_bootstrap([paired_diffs(a, b, split) for a, b in both])
        out[f"ablation {split}"] = seed_image_bootstrap([ablation_diffs(r, "mean", split) for r in full])
        out[f"ablation supervised {split}"] = seed_image_bootstrap([ablation_diffs(r, "mean", split) for r in sup])
    out["real removed by seed"] = [r["real"]["removed"] for r in full]
    out["real removed"] = float(np.mean(out["real removed by seed"])) if full else math.nan
    out["alive"] = float(np.mean([r["health"]["usage"]["alive"] for r in full])) if full else math.nan
    out["max weight"] = float(np.mean([r["health"]["attention"]["max_weight"] for r in full])) if full else math.nan
    return out


def seeds_table(records: Mapping[str, list[dict]]) -> pd.DataFrame:
    """One row per arm trained over several seeds (MOSS and its supervised twin per seed)."""
    rows = []
    for arm, seeds in sorted(by_arm(records).items(), key=lambda kv: kv[0] != "paper"):
        s = arm_summary(seeds)
        row = {"arm": arm, "seeds": s["seeds"]}
        for split in SPLITS:
            row[f"MOSS {split}"] = s[f"moss {split}"]
            row[f"supervised {split}"] = s[f"supervised {split}"]
            row[f"self-training gain {split}"] = _fmt(*s[f"gain {split}"])
            row[f"memory ablation {split}"] = _fmt(*s[f"ablation {split}"])
        row["alive items"] = s["alive"]
        row["real: removed"] = s["real removed"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm") if rows else pd.DataFrame()


def seed_runs_table(records: Mapping[str, list[dict]]) -> pd.DataFrame:
    """One row per seed of each seeded arm: its MOSS and supervised twin's test PSNR, and the
    self-training gain with an interval over test images only: how much seeds alone move it."""
    rows = []
    for arm, seeds in sorted(by_arm(records).items(), key=lambda kv: kv[0] != "paper"):
        for seed, runs in sorted(seeds.items()):
            row = {"arm": arm, "seed": seed}
            for split in SPLITS:
                for kind, name in (("full", "MOSS"), ("no_selftrain", "supervised")):
                    row[f"{name} {split}"] = runs[kind]["test"]["trained"][split] if kind in runs else math.nan
                both = "full" in runs and "no_selftrain" in runs
                gain = seed_image_bootstrap([paired_diffs(runs["no_selftrain"], runs["full"], split)]) if both else None
                row[f"self-training gain {split}"] = _fmt(*gain) if gain else "-"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["arm", "seed"]) if rows else pd.DataFrame()


def _by_seed(summary: Mapping) -> str:
    """'9.64 (seeds: 9.64, 9.10, 9.80)': an arm's mean change on real photos, and each seed's."""
    seeds = summary["real removed by seed"]
    return f"{summary['real removed']:.2f} (seeds: {', '.join(f'{v:.2f}' for v in seeds)})"


def _excludes_zero(lo: float, hi: float) -> bool:
    return not math.isnan(lo) and (lo > 0 or hi < 0)


def planned_arms(screens: Sequence[dict], order: Sequence[str] | None = None, baseline: str = "paper") -> list[str]:
    """The arms that get ``STUDY_SEEDS`` seeds, by the rule fixed before screening (docs/memory-study.md):
    the paper-faithful arm, then the two with the largest validation read-ablation cost (most negative
    "mean" delta) among those within ``PARITY_DB`` of its validation PSNR; then the amendment (made
    before any seeded run): the arm with the largest such cost whatever its PSNR, when that cost's
    interval lies below zero. ``order`` breaks ties (the screening order); empty without the baseline."""
    recs = {r["arm"]: r for r in screens}
    if baseline not in recs:
        return []
    names = [a for a in (order or sorted(recs)) if a in recs]

    def cost(arm: str) -> float:
        return recs[arm]["val"]["ablation"]["mean"]["val"]

    base = recs[baseline]["val"]["trained"]["val"]
    chosen = [baseline] + sorted((a for a in names if a != baseline and recs[a]["val"]["trained"]["val"] >= base - PARITY_DB),
                                 key=cost)[:2]
    live = [a for a in names if a not in chosen and recs[a]["val"]["ablation_ci"]["mean"]["val"][1] < 0]
    return chosen + ([min(live, key=cost)] if live else [])


def verdict(records: Mapping[str, list[dict]], baseline: str = "paper") -> dict:
    """The study's three answers, each ``{"answer": "yes"|"no"|"open", "text": ...}``, computed from
    the records by rules written here: (1) the paper-faithful memory carries information when
    ablating its read costs PSNR with an interval over seeds and images below zero; (2) a variant
    works when that cost is at least ``WORKS_DB`` dB dense (interval below zero) and its MOSS PSNR
    is not below the baseline's (the interval of the difference reaches zero or above);
    (3) a memory the decoder uses changes the self-training gain when the gains' difference excludes
    zero: the variant that works, else the one whose read costs most in either split (at least
    ``WORKS_DB``, interval below zero; the amendment in docs/memory-study.md), whatever its PSNR.
    An answer is "open" until the arms it reads have ``STUDY_SEEDS`` seeds."""
    arms = by_arm(records)
    screened = {r["arm"]: r for r in records["screen"]}
    out = {}
    base = arms.get(baseline)
    if base:
        s = arm_summary(base)
        m, lo, hi = s["ablation dense"]
        ms, los, his = s["ablation sparse"]
        fulls = [runs["full"] for runs in base.values() if "full" in runs]
        n = len(fulls[0]["test_per_image"]["trained"]["dense"]) if fulls else 0
        # a cost: an interval below zero that is neither degenerate nor below the table's precision
        carries = any(stats.verdict_of(a, b, c, n) == "real" and c < 0 for a, b, c in ((m, lo, hi), (ms, los, his)))
        shown = (f"ablating the paper-faithful memory's read (its per-image mean instead of z_hat) changes MOSS's PSNR by "
                 f"{_fmt(m, lo, hi)} dB dense and {_fmt(ms, los, his)} dB sparse")
        if s["seeds"] < STUDY_SEEDS:
            where = "test images only" if s["seeds"] == 1 else "seeds x test images"
            out["carries"] = {"answer": "open", "text": (
                f"{shown} with {s['seeds']} of {STUDY_SEEDS} seeds ({where}); the answer waits for the study's "
                f"{STUDY_SEEDS} seeds, since a few training runs cannot tell the memory from training noise.")}
        else:
            out["carries"] = {"answer": "yes" if carries else "no", "text": (
                f"{shown} ({s['seeds']} seeds x test images, 95 %): "
                + ("the memory carries information the decoder uses." if carries else
                   "no loss distinguishable from zero: the memory is inert, the decoder goes around it."))}
    elif baseline in screened:
        t = screened[baseline]["test"]
        lo, hi = t["ablation_ci"]["mean"]["dense"]
        out["carries"] = {"answer": "open", "text": (
            f"screen only (one seed, supervised): ablating the paper-faithful read changes PSNR by "
            f"{_fmt(t['ablation']['mean']['dense'], lo, hi)} dB dense; seeds pending.")}
    else:
        out["carries"] = {"answer": "open", "text": "no result of the paper-faithful arm yet."}
    planned = [a for a in planned_arms(records["screen"], baseline=baseline) if a != baseline]
    planned += [a for a in arms if a != baseline and a not in planned]
    used = []  # the variants whose read costs >= WORKS_DB in a split, interval below zero (over their seeds)
    for arm, seeds in arms.items():
        if arm == baseline:
            continue
        s = arm_summary(seeds)
        costly = {split: s[f"ablation {split}"][2] < 0 and s[f"ablation {split}"][0] <= -WORKS_DB for split in SPLITS}
        if base and min(s["seeds"], arm_summary(base)["seeds"]) >= STUDY_SEEDS and any(costly.values()):
            common = [k for k in seeds if k in base and "full" in seeds[k] and "full" in base[k]]
            dense = seed_image_bootstrap([paired_diffs(base[k]["full"], seeds[k]["full"], "dense") for k in common])
            sparse = seed_image_bootstrap([paired_diffs(base[k]["full"], seeds[k]["full"], "sparse") for k in common])
            parity = not math.isnan(dense[2]) and dense[2] >= 0
            used.append({"arm": arm, "cost": s["ablation dense"], "dense": dense, "sparse": sparse, "summary": s,
                         "works": costly["dense"] and parity,
                         "largest": min(s[f"ablation {split}"][0] for split in SPLITS)})
    working = [u for u in used if u["works"]]  # the rule fixed in advance reads dense only
    n_seeds = {a: len([k for k in arms.get(a, {}).values() if "full" in k]) for a in [baseline] + planned}
    complete = bool(planned) and all(n >= STUDY_SEEDS for n in n_seeds.values())
    rule = f"ablation cost >= {WORKS_DB} dB dense, interval below zero, PSNR not below the paper-faithful arm"
    progress = ", ".join(f"{a} {n}/{STUDY_SEEDS}" for a, n in n_seeds.items())

    def described(u: dict) -> str:
        return (f"'{u['arm']}': ablating its read costs {_fmt(*u['cost'])} dB dense and "
                f"{_fmt(*u['summary']['ablation sparse'])} dB sparse, and its MOSS PSNR differs from the paper-faithful "
                f"arm's by {_fmt(*u['dense'])} dB dense and {_fmt(*u['sparse'])} dB sparse ({u['summary']['seeds']} seeds")

    if working:
        best = min(working, key=lambda u: u["cost"][0])
        out["works"] = {"answer": "yes", "arm": best["arm"],
                        "text": described(best) + "; the rule, fixed in advance, reads dense only)."}
    elif complete:
        below = "; ".join(described(u) + ")" for u in used)
        out["works"] = {"answer": "no", "text": (
            f"no variant trained over seeds met the rule ({rule}); seeds: {progress}."
            + (f" Used by the decoder, but short of the rule: {below}." if below else ""))}
    else:
        out["works"] = {"answer": "open", "text": (
            f"no variant meets the rule ({rule}) so far; the answer waits for every seeded arm's seeds: {progress}.")}
    # the third question reads a memory the decoder uses: the variant that works, else (the amendment
    # in docs/memory-study.md) the one whose read costs most in either split, whatever its PSNR
    chosen = (min(working, key=lambda u: u["cost"][0]) if working
              else min(used, key=lambda u: u["largest"]) if complete and used else None)
    if chosen is not None:
        arm, seeds, w, b = chosen["arm"], arms[chosen["arm"]], chosen["summary"], arm_summary(base)
        pair = {"full", "no_selftrain"}
        common = [k for k in seeds if k in base and pair <= set(seeds[k]) and pair <= set(base[k])]
        # per split, per seed, per image: the arm's self-training gain minus the paper-faithful arm's
        diff = {split: [np.subtract(paired_diffs(seeds[k]["no_selftrain"], seeds[k]["full"], split),
                                    paired_diffs(base[k]["no_selftrain"], base[k]["full"], split)) for k in common]
                for split in SPLITS}
        gm, gs = seed_image_bootstrap(diff["dense"]), seed_image_bootstrap(diff["sparse"])
        per_seed = ", ".join(f"{float(np.mean(d)):+.2f}" for d in diff["dense"])
        tm = stats.seed_t_interval(diff["dense"])
        kind = "" if chosen["works"] else " (a memory the decoder uses, though it does not meet the rule above)"
        changed = _excludes_zero(gm[1], gm[2])
        if not changed:
            how = "no: the difference of the gains includes zero"
        elif _excludes_zero(tm[1], tm[2]):
            how = "a smaller gain" if gm[0] < 0 else "a larger gain"
        else:  # the rule's bootstrap excludes zero, the t interval over the seeds' means does not
            how = (f"{'a smaller' if gm[0] < 0 else 'a larger'} gain by the rule, weakly: a t interval over the "
                   f"{len(common)} seeds' means, which does not narrow with few seeds as a bootstrap over them does, "
                   f"is {_fmt(*tm)}")
        out["changes"] = {"answer": "yes" if changed else "no", "arm": arm, "text": (
            f"with '{arm}'{kind}, self-training gains {_fmt(*w['gain dense'])} dB dense against "
            f"{_fmt(*b['gain dense'])} dB with the paper-faithful memory: a difference of {_fmt(*gm)} dB (per seed "
            f"{per_seed}); {how}. The rule reads dense; sparse, for the record: {_fmt(*w['gain sparse'])} against "
            f"{_fmt(*b['gain sparse'])} (difference {_fmt(*gs)}). On real photos, without ground truth, the mean change "
            f"from the input (|output - input|, 8-bit levels: rain removed, and anything else) is {_by_seed(w)} against "
            f"{_by_seed(b)}.")}
    elif complete:
        out["changes"] = {"answer": "cannot be asked", "text": (
            f"no memory to compare with: no variant's read costs {WORKS_DB} dB or more in either split with an "
            "interval below zero.")}
    else:
        out["changes"] = {"answer": "open", "text": "waits for every seeded arm's seeds."}
    return out


def diagnostics_markdown(diag: Mapping, label: str = "this model") -> str:
    """A reader's paragraph for one model's memory diagnostics (``mosslib memory`` output)."""
    if not diag:
        return f"{label} has no memory."
    u, a = diag["usage"], diag["attention"]
    lines = [
        f"**Is the memory used? ({label})** {u['alive']} of {diag['items']} items are ever the nearest item over the "
        f"test inputs, and the most used takes {100 * u['top_share']:.0f} % of the queries (perplexity "
        f"{u['perplexity']:.1f}). The read's largest weight is {a['max_weight']:.4f} on average, against "
        f"{1 / diag['items']:.4f} for a uniform read (entropy {a['entropy']:.2f} of at most {a['uniform_entropy']:.2f}).",
        "",
        "| read of the memory at test time | " + " | ".join(diag["trained"]) + " |",
        "|---|" + "---|" * len(diag["trained"]),
        "| as trained (Eq. 4-5), PSNR | " + " | ".join(f"{v:.2f}" for v in diag["trained"].values()) + " |",
    ]
    names = {"mean": "z_hat replaced by its per-image mean, minus as trained",
             "zeros": "z_hat replaced by zeros, minus as trained"}
    for how, by_group in diag["ablation"].items():
        cells = [_fmt(d, *diag["ablation_ci"][how][g]) for g, d in by_group.items()]
        lines.append(f"| {names.get(how, how)} | " + " | ".join(cells) + " |")
    lines += ["", "Intervals: 95 % paired bootstrap over the test images (one model: training noise not included). "
              "A memory whose ablation costs nothing is inert: the decoder goes around it."]
    return "\n".join(lines)


def study_verdict_markdown(study_dir: str | Path) -> str:
    """The verdict read from a study's records folder, or a line saying there are none yet: what
    the book's pages 00, 04 and 05 show."""
    records = load_records(study_dir)
    if not (records["screen"] or records["seeds"]):
        return "No memory-study records in this results folder yet (`experiments/memory_study/queue.sh` trains them)."
    return verdict_markdown(verdict(records))


def verdict_markdown(v: Mapping) -> str:
    """The study's three answers as a short list."""
    q = {"carries": "Does the memory, as the paper specifies it, carry information?",
         "works": "Which formulation makes it do so?",
         "changes": "Does a working memory change the self-training gain or real-rain removal?"}
    return "\n".join(f"- **{q[k]}** {v[k]['answer']}: {v[k]['text']}" for k in q if k in v)
