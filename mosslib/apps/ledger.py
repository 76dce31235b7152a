"""The claims ledger: one row per claim of the paper, with the evidence of a profile's results files.

:func:`build_ledger` reads ``results/<profile>/`` (the tables the book writes: ``table1.csv``,
``table2-3_*.csv``, ``table4.csv``, ``fig8_timing.csv``; the memory diagnostics ``memory.json``
and the user study's ``user_study.csv`` when present) and gives each claim the paper's number, the
evidence here (number, interval, what the interval covers, budget, data, seeds) and a verdict from
:data:`VERDICTS` with its reason. No number is typed here: every figure comes from a results file
or from :mod:`mosslib.measure.paper`. :func:`write_ledger` writes ``ledger.md``, ``ledger.csv`` and
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

A claim made on both test splits (Table 4) takes the weaker split's verdict; where the splits
disagree, the row names each split's (:attr:`Claim.split`).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from .claims import table1_claims, limited_claims, table4_claims, fig8_claim, memory_claim, fig6_claim
from .evidence import (README_START, README_END, Evidence, Claim, budget_share, paper_budget_text, share_text, budget_of, gain_verdict, VERDICTS, PAPER_BUDGET)  # noqa: F401 (re-exported)
from ..measure.tables import CPU_BOOK, TOY_BANNER, TOY_PROFILES, toy_banner  # noqa: F401 (re-exported)

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

def build_ledger(results: str | os.PathLike, profile: str) -> list[Claim]:
    """The claims of the paper, judged on the results files of ``results`` (a profile's folder)."""
    results = Path(results)
    claims = table1_claims(results, profile) + limited_claims(results, profile) + table4_claims(results, profile)
    return claims + [fig8_claim(results, profile), memory_claim(results, profile), fig6_claim(results, profile)]


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
                                                             c.verdict_text(), c.reason)) + " |")
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
              "against training noise), or nothing comparable was run. A claim on both test splits takes the weaker "
              "split's verdict, and names each split's where they differ."]
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
        lines.append("| " + " | ".join(_cell(x) for x in (f"{c.claim} ({where})", c.paper, c.evidence, c.verdict_text())) + " |")
    lines += ["", f"Why each verdict, the intervals and the budgets: [`results/{profile}/ledger.md`](results/{profile}/ledger.md) "
              f"and the HTML book ([`docs/book/index.html`](docs/book/index.html)); before comparing with the paper's "
              f"numbers, the [audit of the authors' release](docs/release-audit.md)."]
    return "\n".join(lines) + "\n"


def write_ledger(results: str | os.PathLike, profile: str, audit_link: str = "../../docs/release-audit.md") -> dict:
    """Write ``ledger.md``, ``ledger.csv`` and ``ledger.json`` into ``results`` (the profile's folder)."""
    import pandas as pd  # lazy: pandas is slow to import and only this table needs it

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
