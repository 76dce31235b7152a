# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   mosslib:
#     reads:
#     - '{results_dir}/{profile}/timing.csv'
# ---

# %% [markdown]
# # Fig. 8: running time per 256x256 image
#
# The paper times MOSS and the compared networks on one TITAN RTX GPU and finds MOSS the second
# fastest, a little behind DID-MDN (section 4.5; the bar heights are printed only in the figure,
# so no paper number is repeated here). We measure MOEDN and the baseline architectures of the
# benchmark (`mosslib.apps.bench`) side by side, in one run, on the device at hand, and name it.
#
# The measurements come from `results/<profile>/timing.csv`, written by
# `python -m mosslib bench --profile <profile>` (also `make bench`). When the file is missing
# this notebook runs the benchmark (inference timings only, `mosslib.apps.bookruns.BENCH_FLAGS`); delete
# the file to measure again. Rows: MOEDN (`moedn`, fp32, the network the book trains), its fast
# inference path (`moedn-fast-...`, `mosslib.model.fast`), in results measured before it left the package the
# int8 experiment (`moedn-int8`, now `experiments/int8/`: faster, but not accurate enough to be offered for
# deraining), and the peers of `mosslib.model.baselines`
# written from their papers. Timings depend on the machine and on what else runs on it: compare
# architectures within one run (the benchmark interleaves them), not across runs.

# %% tags=["parameters"]
profile = "quick"
data_root = ""
results_dir = "results"
figures_dir = "figures"
runs_dir = "runs"
seeds = 1

# %%
import pandas as pd
from IPython.display import Markdown, display

from mosslib.apps import bookruns
from mosslib.measure import figures, paper, places, tables
from mosslib.measure.places import portable_path

dirs = places.book_dirs(profile, results_dir, figures_dir, runs_dir)
path = bookruns.timing_results(profile, dirs.results)
timing = tables.timing_frame(pd.read_csv(path, comment="#"))
device = tables.timing_device(timing)
side = tables.timing_side(path)
print(f"{portable_path(path)}: {len(timing)} architectures measured on {device}, {side}x{side} images")
if side != 256:
    print(f"note: timed on {side}x{side} images (the benchmark's --quick mode, used by the smoke profile): "
          "these numbers only show that the pipeline works, they are not Fig. 8's")

# %%
meta = tables.TableMeta(
    f"Fig. 8: milliseconds per {side}x{side} image, measured side by side",
    profile,
    f"random {side}x{side} inputs (timing is data-independent); timings from {path.name}",
    "ms per image: wall clock, median of repeated forward passes timed in interleaved rounds (mosslib.apps.bench)",
    {},  # no test images: timing is data-independent
    (),  # no training seeds
    notes=(f"device: {device}",
           f"paper: {paper.FIG8['statement']}, on {paper.FIG8['device']} {paper.REPORTED}; its bars carry no numbers in the text"),
)
tt = tables.timing_table(timing, meta, side)
tt.write(dirs.results)
display(Markdown(tt.markdown()))

# %%
fig = figures.timing_figure(timing, device, f"ms per {side}x{side} image on {device} ({profile})", side)
figures.save_figure(fig, dirs.figures / "fig8_timing.png")
ranked = list(timing.sort_values("ms")["arch"])
moedn = next((a for a in ranked if str(a).lower() in ("moedn", "moss")), None)  # the fp32 MOEDN row
if moedn is not None:
    display(Markdown(f"On {device}, MOEDN ranks **{ranked.index(moedn) + 1} of {len(ranked)}** (fastest first: "
                     f"{', '.join(map(str, ranked))}). The paper ranks MOSS second on its GPU {paper.REPORTED}."))
