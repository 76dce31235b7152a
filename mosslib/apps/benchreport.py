"""The benchmark's report: the speed issue's targets (PASS / FAIL / SKIP), the CSV the timing
notebook reads, and the text summary."""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path

TARGETS = {
    "moedn_vs_prenet_256": ("MOEDN fp32 time / PReNet fp32 time at 256x256", "<=", 0.2),
    "moedn_conv_ceiling": ("MOEDN fp32 GFLOP/s / fp32 conv ceiling", ">=", 0.6),
    "fast_speedup_256": ("MOEDN fp32 time / fast path time at 256x256", ">=", 3.0),
    "fast_psnr_change_db": ("|PSNR(fast) - PSNR(fp32)| on DDN-SIRR test (dB)", "<=", 0.05),
    "train_bf16_speedup_quick": ("training step fp32 time / bf16 autocast time (quick profile)", ">=", 1.5),
    "memory_share_512": ("memory module time / MOEDN fp32 time at 512x512", "<=", 0.05),
}


# -- targets ------------------------------------------------------------------------------------
def evaluate_targets(result: dict) -> dict:
    """``{name: {"value", "threshold", "op", "pass", "what"}}``; value None when not measured."""
    rows = {(m["name"], m["variant"]): m for m in result.get("models", [])}
    moedn, prenet, fastm = rows.get(("moedn", "fp32")), rows.get(("prenet", "fp32")), rows.get(("moedn", "fast"))
    values = {
        "moedn_vs_prenet_256": moedn["ms_256"] / prenet["ms_256"] if moedn and prenet else None,
        "moedn_conv_ceiling": moedn["ceiling_fraction"] if moedn else None,
        "fast_speedup_256": moedn["ms_256"] / fastm["ms_256"] if moedn and fastm else None,
        "fast_psnr_change_db": None,
        "train_bf16_speedup_quick": (result.get("train_images_per_s") or {}).get("bf16_speedup_quick"),
        "memory_share_512": result.get("memory_share_512"),
    }
    fp = result.get("fast_psnr") or {}
    if "delta_db" in fp:
        values["fast_psnr_change_db"] = abs(fp["delta_db"])
    out = {}
    for name, (what, op, thr) in TARGETS.items():
        v = values[name]
        ok = None if v is None else (v <= thr if op == "<=" else v >= thr)
        out[name] = {"value": v, "op": op, "threshold": thr, "pass": ok, "what": what}
    # the same ratios from the fastest of the repeats (less sensitive to other load on the machine)
    if moedn and prenet:
        out["moedn_vs_prenet_256"]["value_min"] = moedn["ms_256_min"] / prenet["ms_256_min"]
    if moedn and fastm:
        out["fast_speedup_256"]["value_min"] = moedn["ms_256_min"] / fastm["ms_256_min"]
    return out


def target_lines(targets: dict) -> list[str]:
    lines = []
    for name, t in targets.items():
        if t["value"] is None:
            lines.append(f"SKIP  {name}: not measured ({t['what']})")
            continue
        extra = f", fastest-run ratio {t['value_min']:.3f}" if "value_min" in t else ""
        lines.append(f"{'PASS' if t['pass'] else 'FAIL'}  {name}: {t['value']:.3f} {t['op']} {t['threshold']} "
                     f"({t['what']}{extra})")
    return lines


# -- output -------------------------------------------------------------------------------------
CSV_COLUMNS = ("arch", "name", "variant", "device", "threads", "size", "params", "gflop_256", "ms", "ms_512", "ms_min",
               "ms_512_min", "peak_mb", "gflops_achieved", "ceiling_fraction")


def write_csv(result: dict, path: str | os.PathLike) -> Path:
    """``timing.csv``: one row per network and variant (``arch``, ``ms`` per image of ``size``^2 -
    256 normally, 32 with ``--quick`` - ``ms_512`` at twice that side, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        ceil = result["ceiling_gflops"]
        fh.write(f"# mosslib bench: {result['device']}, torch {result['torch']}, sizes {result['sizes']}, "
                 f"{result['repeats']} repeats{' (quick mode)' if result.get('quick') else ''}, load average "
                 f"{result.get('loadavg_start')} -> {result.get('loadavg_end')}\n")
        fh.write(f"# ceiling GFLOP/s: conv3x3_fp32 {ceil['conv3x3_fp32']:.1f}, matmul_fp32 {ceil['matmul_fp32']:.1f}\n")
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for m in result["models"]:
            arch = _arch_name(m)
            w.writerow([arch, m["name"], m["variant"], result["device"], result["threads"], result["sizes"][0], m["params"],
                        f"{m['gflop_256']:.3f}", f"{m['ms_256']:.2f}", f"{m['ms_512']:.2f}", f"{m['ms_256_min']:.2f}",
                        f"{m['ms_512_min']:.2f}", f"{m['peak_mb']:.1f}", f"{m['gflops_achieved']:.1f}",
                        f"{m['ceiling_fraction']:.3f}"])
    os.replace(tmp, path)
    return path


def _arch_name(m: dict) -> str:
    """``moedn``, ``moedn-fast-bf16``: one name per row of the CSV."""
    if m["variant"] == "fp32":
        return m["name"]
    parts = [m["name"], m["variant"]] + ([m["precision"]] if m.get("precision") not in (None, "", m["variant"]) else [])
    return "-".join(parts)


def human_report(result: dict) -> str:
    s0, s1 = result["sizes"]
    lines = [f"device: {result['device']}, torch {result['torch']}, CPU capability {result['cpu']['capability']}"
             f"{', avx512_bf16' if result['cpu'].get('avx512_bf16') else ''}; load average at start "
             f"{result.get('loadavg_start')}, at end {result.get('loadavg_end')}",
             "ceiling GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in result["ceiling_gflops"].items()), ""]
    head = f"{'network':8s} {'variant':8s} {'params':>9s} {'GFLOP256':>8s} {f'ms@{s0}':>9s} {f'ms@{s1}':>9s} " \
           f"{'min@' + str(s0):>9s} {'peak MB':>8s} {'GFLOP/s':>8s} {'ceil%':>6s}"
    lines.append(head)
    for m in result["models"]:
        lines.append(f"{m['name']:8s} {m['variant']:8s} {m['params']:9d} {m['gflop_256']:8.2f} {m['ms_256']:9.1f} "
                     f"{m['ms_512']:9.1f} {m['ms_256_min']:9.1f} {m['peak_mb']:8.1f} {m['gflops_achieved']:8.1f} "
                     f"{100 * m['ceiling_fraction']:6.1f}")
    if result.get("memory_share_512") is not None:
        lines.append(f"\nmemory module share of MOEDN fp32 time at {s1}x{s1}: {100 * result['memory_share_512']:.2f} %")
    if result.get("train_images_per_s"):
        lines.append("training images/s: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                         for k, v in result["train_images_per_s"].items()))
    fp = result.get("fast_psnr")
    if fp:
        if "delta_db" in fp:
            lines.append(f"fast path PSNR on DDN-SIRR ({fp['n']} images, {fp['model']}): fp32 {fp['psnr_fp32']:.3f} dB, "
                         f"fast {fp['psnr_fast']:.3f} dB, change {fp['delta_db']:+.4f} dB (largest per image "
                         f"{fp['max_abs_delta_db']:.4f}), max pixel difference {fp['max_pixel_diff']}")
        else:
            lines.append(f"fast path PSNR check skipped: {fp.get('skipped')}")
    if result.get("warning"):
        lines.append(f"WARNING: {result['warning']}")
    lines.append("")
    lines += target_lines(result["targets"])
    return "\n".join(lines)
