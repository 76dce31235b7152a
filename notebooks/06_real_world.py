# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Real rainy photos and a blind user study
#
# Real rain has no ground truth, so the paper judges it by eye (Fig. 1, Fig. 5) and by a user
# study (Fig. 6, "averaged selection percentage"). Here the supervised model (pre-training
# only, Table 1's $\mathcal{D}_C$ column) and MOSS (self-trained with the unlabeled images)
# derain the real photos: the 147 DDN-SIRR real-world images when `data_root` holds them,
# otherwise the embedded data set's real-like images.
#
# The study shows two outputs of the same photo from different methods, in random order and
# unlabeled; you answer "left", "right" or "same". Answers are appended to
# `results/<profile>/user_study.csv` (one row each, with the session name), so a session can
# be stopped and resumed, and several raters can use their own `session`. A method's
# selection percentage is the share of its comparisons in which it was chosen ("same" counts
# half for each side), averaged over sessions. The paper's Appendix C, which describes its
# protocol, is not available; this is our reading.

# %% tags=["parameters"]
profile = "quick"
data_root = ""  # empty: the embedded data set
results_dir = "results"
figures_dir = "figures"
runs_dir = "runs"
cache_dir = "build"  # derained outputs are cached here (build/real_world/<profile>/...)
max_photos = -1  # -1: 4 for smoke, 24 for quick, all otherwise; 0: all
session = "default"  # the rater's session name in the CSV
seed = 0

# %%
from pathlib import Path

from IPython.display import Image, display

from mosslib.apps import bookruns
from mosslib.apps import explorer as memviz
from mosslib.apps import userstudy
from mosslib.data.imageio import read_rgb
from mosslib.measure import places
from mosslib.method.checkpoint import load_model
from mosslib.method.runs import config_of_run

dirs = places.book_dirs(profile, results_dir, figures_dir, runs_dir)  # relative folders start at the checkout
# Table 1's first-seed pair: trained, or restored with their weights from the archive
runs = dict(zip(("supervised", "MOSS"), bookruns.train_runs(bookruns.table1_specs(profile, [0]), profile,
                                                            data_root or None, dirs.runs, quiet=True,
                                                            archive=dirs.archive)))
if max_photos < 0:
    max_photos = {"smoke": 4, "quick": 24}.get(profile, 0)
photos = memviz.run_image_sets(runs["MOSS"], max_per_source=max_photos or None)["real"]
cache = places.resolve_path(cache_dir) / "real_world" / profile / runs["MOSS"].name
outputs = userstudy.method_outputs({m: load_model(r) for m, r in runs.items()}, photos, cache, include_input=True)
# with the embedded data the "real" set is photos with procedural rain: never call it real
real_rain = bool(config_of_run(runs["MOSS"]).data.root)
kind = "real rainy photos" if real_rain else "photos with procedural rain (embedded data, not real rain)"
print(f"{len(photos)} {kind} derained by {list(runs)}; outputs in {places.portable_path(cache)}")

# %% [markdown]
# ## Side by side (like Fig. 5)

# %%
figs = dirs.figures
methods = ["input", *runs]
shown = memviz.spread(list(photos), 4)
rows = [{m: read_rgb(outputs[p][m]) for m in methods} for p in shown]
titles = [t if real_rain else t.replace("real/", "procedural rain/", 1) for t in shown]
grid = memviz.comparison_grid(rows, titles=titles)
grid.savefig(figs / "real_world_grid.png", dpi=100)
display(Image(filename=str(figs / "real_world_grid.png")))

# %% [markdown]
# ## A detail enlarged (like Fig. 1)
#
# Thin streaks and background texture (Fig. 1's traffic markings) are easiest to judge on a
# crop: the red box is enlarged under each image.

# %%
zoom = memviz.comparison_grid(rows[:2], titles=titles[:2], zoom=(0.35, 0.35, 0.3))
zoom.savefig(figs / "real_world_zoom.png", dpi=100)
display(Image(filename=str(figs / "real_world_zoom.png")))

# %% [markdown]
# ## The blind preference study (Fig. 6)
#
# The chart counts the answers already in the CSV (all sessions). In a live kernel, answer
# with the buttons: each click appends a row and redraws the chart.

# %%
csv_path = dirs.results / "user_study.csv"
study_outputs = {p: {m: outputs[p][m] for m in runs} for p in photos}
study = userstudy.PreferenceStudy(study_outputs, csv_path, session=session, seed=seed)
table = userstudy.tally(csv_path, list(runs))
print(f"session {session!r}: {study.progress[0]} of {study.progress[1]} comparisons answered")
display(table)
if table["comparisons"].sum() > 0:
    selection = userstudy.fig_selection(table)
    selection.savefig(figs / "user_study.png", dpi=100)
    display(Image(filename=str(figs / "user_study.png")))
else:  # an empty chart is not a result: none is drawn, and the ledger calls Fig. 6 not testable here
    (figs / "user_study.png").unlink(missing_ok=True)
    print("no answers yet: no chart. Fig. 6 is not testable here until raters answer (the buttons below).")

# %%
from mosslib.apps.explorer.widgets import PreferenceWidget

PreferenceWidget(study).widget
