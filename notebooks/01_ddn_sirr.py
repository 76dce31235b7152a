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
# ---

# %% [markdown]
# # Table 1 and Figs. 4-5: supervised vs. MOSS on DDN-SIRR
#
# The paper trains each method on the labeled synthetic set $\mathcal{D}_C$ of DDN-SIRR and the
# semi-supervised ones also on its 147 unlabeled real photos $\mathcal{D}_U$, then reports PSNR on
# the 20 synthetic test images, split into 10 *dense* and 10 *sparse* ones. MOSS gains
# 2.62 dB (dense) and 1.88 dB (sparse) from $\mathcal{D}_U$ (reported).
#
# Here we train the same network twice, on the profile's data:
#
# * **supervised** (`no_selftrain`): $\mathcal{D}_C$ only, Eq. 6 - Table 1's "Ours, $\mathcal{D}_C$";
# * **MOSS** (`full`): $\mathcal{D}_C + \mathcal{D}_U$ with the memory and self-training - Table 1's
#   "Ours, $\mathcal{D}_C + \mathcal{D}_U$" and Table 4's "Ours" (the run is shared with `04_ablation`,
#   except in the `cpu` profile, whose Table 4 trains at a reduced budget).
#
# The gain is the paired difference per test image, with a 95 % bootstrap interval: with 10
# images per group, a gain whose interval includes zero is not told apart from noise. With one
# seed the interval covers the test images only, not training noise, so no gain is called real;
# with several seeds it resamples seeds, then images.
# With the embedded data (profiles `smoke` and `quick`) the DDN-SIRR test set is replaced by
# `sirr_like`, a DDN-SIRR-shaped set rendered on other photographs, so the book's numbers are not
# comparable in absolute value to the paper's; the comparison is between the two training regimes.

# %% tags=["parameters"]
profile = "quick"
data_root = ""
results_dir = "results"
figures_dir = "figures"
runs_dir = "runs"
seeds = 1

# %%
from pathlib import Path

from IPython.display import Markdown, display

from mosslib.apps import bookruns
from mosslib.measure import figures, gains, paper, places, tables
from mosslib.method.checkpoint import load_model
from mosslib.data.layouts import open_dataset
from mosslib.measure.evaluate import derain_tensor
from mosslib.method.runs import config_of_run
from mosslib.data.imageio import read_rgb
from mosslib.method.trainset import data_root as resolve_root, test_dataset

dirs = places.book_dirs(profile, results_dir, figures_dir, runs_dir)
root = data_root or None  # None: the profile's default (embedded for smoke/quick, $DATA_ROOT for cpu/paper)
seed_list = list(range(int(seeds)))

# %% [markdown]
# ## Training (cached: a finished run is reused, an interrupted one resumes, an archived one is restored)

# %%
# seed by seed, supervised then MOSS from the same pre-training; each run is archived as it finishes
# (results/<profile>/runs), the first seed's with its weights: the figures below show their outputs
specs = bookruns.table1_specs(profile, seed_list)
overrides = bookruns.table1_overrides(profile)
print("steps per run:", overrides.get("optim.steps", "the profile's own"))
runs = bookruns.train_runs(specs, profile, root, dirs.runs, archive=dirs.archive)
sup_runs, moss_runs = runs[0::2], runs[1::2]
cfg = config_of_run(moss_runs[0])

# %% [markdown]
# ## Evaluation on the test set (RGB convention, the paper's)

# %%
supervised = bookruns.evaluate_runs(sup_runs)
moss = bookruns.evaluate_runs(moss_runs)
inputs = gains.input_scores(test_dataset(cfg.data).root)
meta = tables.table_meta(
    "Table 1: PSNR (and SSIM) on the DDN-SIRR(-like) synthetic test set",
    moss, tables.data_description(cfg), profile,
    notes=[
        "paper rows: DDN-SIRR test, methods trained on DDN-SIRR's 9,100 labeled pairs (+ 147 real photos); PSNR only",
        "book rows: MOEDN trained with this profile; 'supervised' = ablation no_selftrain, 'MOSS' = full",
        "gain = MOSS - supervised per test image, mean and 95 % paired bootstrap CI over test images (one seed) "
        "or over seeds, then test images (several seeds; mosslib.measure.stats)",
        "seed spread: '± sd' over seeds when more than one seed ran",
        f"steps per run: {cfg.optim.steps} (pre-training {cfg.optim.pretrain_steps})"
        + (" - a reduced budget (bookruns.TABLE1_STEPS: a run must finish within a session)" if overrides else ""),
    ],
)
t1 = tables.table1(inputs, supervised, moss, meta)
t1.write(dirs.results)
display(Markdown(t1.markdown()))

# %%
groups = gains.groups_of(moss)
lines = [f"**What this run shows** ({profile}, {len(seed_list)} seed(s)):", ""]
for g in groups:
    gain = gains.gain_of(supervised, moss, g, "psnr")
    lines.append("- " + gain.sentence(f"MOSS - supervised, {g} PSNR"))
    if g in paper.TABLE1_INPUT:
        rep = paper.table1_entry("MOSS")
        lines.append(f"  - the paper: {getattr(rep, g)[2]:+.2f} dB {paper.REPORTED} (DDN-SIRR, full-size training)")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Fig. 4: test images (rainy, supervised, MOSS, ground truth)

# %%
sup_model, moss_model = load_model(sup_runs[0]), load_model(moss_runs[0])
test_groups = test_dataset(cfg.data).test_groups()
rows, titles = [], []
for g, pairs in test_groups.items():
    for pair in pairs[:2]:
        rainy, clean = pair.load()
        rows.append({"rainy": rainy, "supervised (D_C)": derain_tensor(sup_model, rainy),
                     "MOSS (D_C + D_U)": derain_tensor(moss_model, rainy), "ground truth": clean})
        titles.append(f"{g}: {pair.name}")
fig = figures.comparison_figure(rows, titles, suptitle=f"test images, {profile} profile, seed {seed_list[0]}")
figures.save_figure(fig, dirs.figures / "fig4_test.png");  # the ";" keeps the returned path out of the page

# %% [markdown]
# ## Fig. 5: rainy photos without ground truth ($\mathcal{D}_U$)
#
# The first photos of $\mathcal{D}_U$ (the unlabeled set the MOSS run trained on): DDN-SIRR's real
# rainy photos with real data; with the embedded data (`smoke`, `quick`), photos with procedural
# rain, which is not real rain. Downscaled to at most 384 pixels for speed.

# %%
import numpy as np
from PIL import Image

d = cfg.data
real_dir = Path(d.unlabeled) if Path(d.unlabeled).is_absolute() else resolve_root(d) / d.unlabeled
photos = open_dataset(real_dir).split("all").unlabeled[:3] if d.unlabeled else []


def shrink(img, side=384):
    im = Image.fromarray(img)
    im.thumbnail((side, side))
    return np.asarray(im)


rows = []
for path in photos:
    rainy = shrink(read_rgb(path))
    rows.append({"rainy photo": rainy, "supervised (D_C)": derain_tensor(sup_model, rainy),
                 "MOSS (D_C + D_U)": derain_tensor(moss_model, rainy)})
if rows:
    kind = "real rainy photos" if d.root else "photos with procedural rain (embedded data, not real rain)"
    fig = figures.comparison_figure(rows, [p.name for p in photos], suptitle=f"{kind} ({real_dir.name}), {profile}")
    figures.save_figure(fig, dirs.figures / "fig5_real.png")
else:
    print("no unlabeled photos configured (data.unlabeled is empty): Fig. 5 skipped")
