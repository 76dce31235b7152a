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
#   mosslib:
#     reads:
#     - '{results_dir}/study'
# ---

# %% [markdown]
# # 7. The memory study: is MOSS's memory used, and what makes it work?
#
# The memory is the paper's central idea (section 3.1.2, Fig. 2, Table 4). In the models this
# book trains it is inert: replacing its read $\hat z(x)$ by a per-image constant leaves PSNR
# where it was (notebook 5, `mosslib memory`). Three reasons, each measured on the shipped model
# (`docs/memory-study.md`):
#
# 1. Eq. 4's softmax over *cosine* similarities in $[-1, 1]$ across $m = 512$ items cannot put
#    much weight on any one item: the read is close to the mean of all items.
# 2. The items are unit-norm vectors while the queries $z(x)$ are hundreds of times larger, so
#    what the memory returns is small beside what the decoder also receives.
# 3. The encoder-to-decoder fusion gives the decoder a path around the memory.
#
# The authors' own training code reads the memory differently from Eq. 4: a hard Gumbel-softmax
# sample over the cosine scores, its temperature annealed from 1.0 to 0.03. This page trains the
# paper's memory beside variants that answer each reason, and asks three questions by rules
# fixed before the first run (`mosslib.measure.memstudy.verdict`):
#
# * does the memory, as the paper specifies it, carry information the decoder uses;
# * which formulation makes it do so;
# * does a working memory change the self-training gain or the rain removed on real photos.
#
# **How.** `experiments/memory_study/run.py`, in the background across sessions: the `cpu`
# profile's data (Rain100L train plus procedural heavy rain as $\mathcal{D}_L$, the 147
# DDN-SIRR real photos as $\mathcal{D}_U$, DDN-SIRR test), batch 4 of 128x128 crops, lr 1e-4.
# Every arm is *screened* on seed 0 with 1,500 supervised steps. Then the paper-faithful arm,
# the two arms with the largest ablation cost on the validation pairs among those within 0.3 dB
# of its validation PSNR, and the arm with the largest validation ablation cost whatever its
# PSNR, get *three seeds* of MOSS (3,000 steps, self-training after 1,500) and of its supervised
# twin from the same pre-training. Model selection uses the validation pairs, never the test
# set. The records (`results/study/`) do not depend on this book's profile: every profile's
# book shows the same study.

# %% tags=["parameters"]
profile = "quick"
data_root = ""  # empty: the embedded data set
results_dir = "results"
figures_dir = "figures"
runs_dir = "runs"

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

from mosslib.measure import memstudy, places
from mosslib.measure.places import portable_path

pd.set_option("display.max_colwidth", 200)
dirs = places.book_dirs(profile, results_dir, figures_dir, runs_dir)
study_dir = dirs.results.parent / "study"
study = memstudy.load_records(study_dir)
print(f"{len(study['screen'])} screened arms, {len(study['seeds'])} seeded runs in {portable_path(study_dir)}")

# %% [markdown]
# ## The arms
#
# Each arm's model settings that differ from the paper-faithful memory's, read from the
# configuration saved with its run. `memory_temperature` divides the cosine logits of Eq. 4;
# `memory_read=gumbel` is the authors' training read (hard straight-through sample; the nearest
# item at test time) with its anneal per update; `memory_rescale` scales the read items to the
# query's norm; `memory_reseed=N` re-seeds items no query chose in N updates from current
# queries; `memory_kmeans=N` initialises the items by k-means over the first N batches'
# queries; `fuse=False` removes the encoder-to-decoder fusion, so the memory is the decoder's
# only path.

# %%
memstudy.arms_table(study)

# %% [markdown]
# ## Screen: one seed, supervised
#
# DDN-SIRR test PSNR (RGB, the paper's convention) and validation PSNR; the memory's health over
# the test inputs (items ever chosen, the most chosen item's share, the perplexity of the
# choices, the largest read weight, the read's entropy over $\log m$: 1 is a uniform read); the
# *ablation*: PSNR with the read replaced by its per-image mean, minus as trained (95 % interval
# over test images or validation pairs; negative: the decoder uses the memory). On 11 real
# photos: the mean absolute change from the input (8-bit levels, "removed") and how much the
# ablation moves the output, as a share of that.

# %%
if study["screen"]:
    display(memstudy.screen_table(study).round(3))
else:
    display(Markdown("No screen yet: run `experiments/memory_study/run.py` (hours, resumable)."))

# %% [markdown]
# ## Over seeds: MOSS and its supervised twin
#
# Means over seeds of test PSNR; the self-training gain (MOSS minus its supervised twin, per seed
# and image) and the ablation cost of MOSS, each with a 95 % interval that resamples seeds, then
# test images: it covers training noise as well as the choice of test images.

# %%
if study["seeds"]:
    display(memstudy.seeds_table(study).round(2))
else:
    display(Markdown("No seeded runs yet: the grid trains them after the screen."))

# %% [markdown]
# Seed by seed: each run's test PSNR and its self-training gain with an interval over the test
# images only. Where two seeds of the same arm give gains whose intervals exclude zero on
# opposite sides, the image-only interval of one run says nothing about the method: training
# noise is larger than the test set's.

# %%
if study["seeds"]:
    display(memstudy.seed_runs_table(study).round(2))

# %% [markdown]
# ## Verdict
#
# Generated from the records by the rules above: "open" while the runs it needs are missing.

# %%
display(Markdown(memstudy.verdict_markdown(memstudy.verdict(study))))

# %% [markdown]
# ## Real photos
#
# Three of the 147 DDN-SIRR real rainy photos through every screened arm: a central crop at the
# photo's own resolution (the input first), from each screen's validation-selected checkpoint.
# Real rain is what the method is for; the synthetic PSNR above does not see it. Whole photos,
# input beside output, one figure per arm: `results/study/figures/<arm>.jpg`.

# %%
def show_grids(prefix: str, missing: str) -> None:
    grids = sorted((study_dir / "figures").glob(f"{prefix}*.jpg"))
    for jpg in grids:
        display(Markdown(f"**{jpg.stem.removeprefix(prefix)}.jpg**"))
        display(Image(filename=str(jpg)))
    if not grids:
        display(Markdown(missing))


show_grids("real_", "No real-photo figures yet (`experiments/memory_study/run.py --grids` draws them).")

# %% [markdown]
# The same photos through seed 0 of each seeded arm after its 3,000 steps: MOSS (self-trained on
# the real photos, $\mathcal{D}_U$, from step 1,500) beside its supervised twin from the same
# pre-training. If self-training or a working memory helps with real rain, it shows here.

# %%
show_grids("seeds_real_", "Drawn once seed 0 of every seeded arm has finished.")
