"""The memory study at GPU scale (issue 30): the device call's settings, and its scoring here.

    python experiments/memory_study/gpu.py settings ARM STEPS
        the ``--set`` options of one arm for a run of STEPS steps (scripts/device/study_gpu.sh uses them)
    python experiments/memory_study/gpu.py score DIR [--results results/gpu/study] [--data ROOT] [--force]
        score the models a device call returned (``DIR/<arm>-s<seed>-<full|no_selftrain>.pt``, each with
        its card) with the same measures as the CPU grid; one record per model in RESULTS/seeds/, and
        RESULTS/summary.md: the arms over their seeds (intervals over seeds, then test images)

The device has no test set: the models come back chosen on the validation pairs, and every test
score is computed here.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import ARMS, REPO, arm_settings, measure_model, say, write  # noqa: E402

from mosslib.measure import memstudy  # noqa: E402
from mosslib.measure.tables import markdown_table  # noqa: E402
from mosslib.method.checkpoint import CheckpointError, load_checkpoint, load_model  # noqa: E402
from mosslib.method.profiles import config_from_dict  # noqa: E402

NAME = re.compile(r"^(?P<arm>.+)-s(?P<seed>\d+)-(?P<kind>full|no_selftrain)$")


def settings(arm: str, steps: int) -> str:
    """An arm's model settings as ``--set`` options (one line, for a shell)."""
    if arm not in ARMS:
        raise SystemExit(f"unknown arm {arm!r}; the arms: {', '.join(ARMS)}")
    return " ".join(f"--set {s}" for s in arm_settings(arm, steps))


def localised(config: dict, data_root: Path) -> dict:
    """A configuration saved on the device, its data paths moved under this machine's ``data_root``."""
    data = dict(config.get("data") or {})
    remote = data.get("root") or ""
    for key in ("root", "unlabeled"):
        value = data.get(key)
        if not value:
            continue
        rel = Path(value).relative_to(remote) if remote and Path(value).is_relative_to(remote) else None
        if key == "root" or rel is not None:
            data[key] = str(data_root / rel) if rel is not None else str(data_root)
    return {**config, "data": data}


def score_file(path: Path, data_root: Path, cache: dict) -> dict:
    """The study's record of one returned model (:func:`run.measure_model`), with where it trained."""
    match = NAME.match(path.stem)
    if match is None:
        raise SystemExit(f"{path}: not a study model (expected <arm>-s<seed>-<full|no_selftrain>.pt)")
    card = load_checkpoint(path).get("card")
    if not card:
        raise SystemExit(f"{path}: no model card (export the run folder with `mosslib export`)")
    config = localised(card["config"], data_root)
    best = {"step": card["best_step"], **{k: v for k, v in (card.get("validation") or {}).items() if k != "step"}}
    rec = measure_model(load_model(path), config_from_dict(config), config, best, data_root, cache)
    return {"arm": match["arm"], "seed": int(match["seed"]), "kind": match["kind"], "scale": "gpu",
            "steps_trained": card.get("steps_trained"), "trained_with": card.get("trained_with", {}), **rec}


def summary_markdown(records: dict) -> str:
    """The arms over their seeds, with the budget and the device they trained on."""
    seeds = records["seeds"]
    if not seeds:
        return "# The memory study at GPU scale\n\nNo records yet.\n"
    cfg = seeds[0]["run_config"]
    steps = sorted({r["run_config"]["optim"]["steps"] for r in seeds})
    trained = sorted({r.get("steps_trained") or 0 for r in seeds})
    device = sorted({str((r.get("trained_with") or {}).get("device", "?")) for r in seeds})
    table = memstudy.seeds_table(records)
    return "\n".join([
        "# The memory study at GPU scale",
        "",
        f"Budget: {', '.join(map(str, steps))} steps planned ({', '.join(map(str, trained))} trained), batch "
        f"{cfg['data']['batch_size']} of {cfg['data']['crop']}x{cfg['data']['crop']} crops, self-training from step "
        f"{cfg['optim']['pretrain_steps']}; device {', '.join(device)}. Models chosen on the validation pairs "
        "there, scored here on DDN-SIRR (RGB PSNR). Intervals: 95 %, seeds resampled, then test images.",
        "",
        markdown_table(table.reset_index()),
        "",
    ])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("settings")
    s.add_argument("arm")
    s.add_argument("steps", type=int)
    c = sub.add_parser("score")
    c.add_argument("dir")
    c.add_argument("--results", default=str(REPO / "results" / "gpu" / "study"))
    c.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    c.add_argument("--force", action="store_true", help="score again the models whose record exists")
    args = p.parse_args()
    if args.cmd == "settings":
        print(settings(args.arm, args.steps))
        return 0
    results, data_root = Path(args.results), Path(args.data).resolve()
    files = sorted(Path(args.dir).glob("*.pt"))
    if not files:
        raise SystemExit(f"{args.dir}: no model files (*.pt)")
    cache: dict = {}
    for path in files:
        out = results / "seeds" / f"{path.stem}.json"
        if out.exists() and not args.force:
            say(f"{out} exists (--force scores it again)")
            continue
        try:
            rec = score_file(path, data_root, cache)
        except CheckpointError as exc:
            raise SystemExit(str(exc)) from exc
        write(out, rec)
        say(f"{path.stem}: test {rec['test']['trained']}, mean-ablation {rec['test']['ablation']['mean']}")
    text = summary_markdown(memstudy.load_records(results))
    (results / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
