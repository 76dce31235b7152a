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
# # 5. Inside the rain memory
#
# MOSS puts a memory of $m$ items between the encoder and the decoder (paper section 3.1.2).
# Every position $j$ of the encoding $z(x)$ is a query: its cosine similarity $s_{ij}$ to each
# item $e_i$ (Eq. 1) picks the nearest item (Eq. 2), which moves towards the mean of the
# queries that chose it (Eq. 3, self-supervised, no labels needed); the decoder reads the
# memory through the soft attention $a_{ij}$ (Eq. 4-5). The paper calls the items
# "prototypical patterns of rain degradations".
#
# This notebook looks at them, for the `full` MOSS run of the profile (Table 1's, first seed):
#
# * the rainy input, the derained output and the removed residual of an image;
# * which item is nearest at each position of $z(x)$;
# * how often each item is chosen over a set of images (alive items, items never chosen);
# * the attention map $a_{ij}$ of one item over an image, and the input patches whose queries
#   are nearest to it (the item's receptive field on the input);
# * a 2-D PCA of the items coloured by usage, for the memory after supervised pre-training
#   (`pretrain.pt`) and after self-training (`best.pt`), on shared axes.
#
# Executed non-interactively (papermill, `make reproduce`) the views are written to
# `figures/<profile>/memory_*.png` and shown below; in a live kernel the last cell opens the
# interactive explorer.

# %% tags=["parameters"]
profile = "quick"
data_root = ""  # empty: the embedded data set
results_dir = "results"
figures_dir = "figures"
runs_dir = "runs"
run_dir = ""  # an existing run folder to explore instead of Table 1's `full` run (seed 0)
max_images = 0  # images per source (test, real) in the explorer; 0: all
max_index_images = 48  # images over which usage and nearest patches are computed
precision = "fp32"  # "bf16": 2-3x faster views on CPUs with bf16 units (visually the same)

# %%
from pathlib import Path

from IPython.display import Image, display

from mosslib.apps import bookruns
from mosslib.apps import explorer as memviz
from mosslib.measure import places

dirs = places.book_dirs(profile, results_dir, figures_dir, runs_dir)  # relative folders start at the checkout
# Table 1's MOSS model (its first seed): trained, or restored with its weights from the archive
table1 = bookruns.table1_specs(profile, [0])
run = places.resolve_path(run_dir) if run_dir else bookruns.train_runs(
    table1[1:], profile, data_root or None, dirs.runs, quiet=True, archive=dirs.archive)[0]
models = memviz.run_checkpoints(run)
sources = memviz.run_image_sets(run, max_per_source=max_images or None)
all_images = {name: path for group in sources.values() for name, path in group.items()}
views = memviz.MemoryViews(models, all_images, index_images=memviz.spread(list(all_images), max_index_images),
                           precision=precision)
print(f"run {run.name}: checkpoints {list(models)}; {len(all_images)} images, usage over {len(views.index_images)}")

# %% [markdown]
# ## Is the memory used?
#
# Before looking at what the items hold, a test of whether the decoder uses them at all: the
# memory's usage and read sharpness over the test inputs, and the test-time ablations of
# `mosslib memory` - the read $\hat z(x)$ replaced by its per-image spatial mean (no spatial
# information left) or by zeros. If PSNR does not move, the memory is inert and the views below
# show a component the network goes around. Written to `results/<profile>/memory.json`.

# %%
import json

from IPython.display import Markdown

from mosslib.measure import memstudy
from mosslib.method.runs import memory_diagnosed

dirs = places.book_dirs(profile, results_dir, figures_dir, runs_dir)
diag = memory_diagnosed(run)
dirs.results.mkdir(parents=True, exist_ok=True)
(dirs.results / "memory.json").write_text(json.dumps(diag, indent=1) + "\n")
display(Markdown(memstudy.diagnostics_markdown(diag, f"the {profile} profile's `full` run")))

# %% [markdown]
# ## Item usage
#
# An item is *alive* when it is the nearest item of at least one query over the image set.
# With an untrained memory the random items are chosen very unevenly; training moves the
# chosen items towards the data (Eq. 3) while items nobody chooses keep their value.

# %%
table = memviz.usage_table(views)
table.to_csv(dirs.results / "memory_usage.csv")
table

# %% [markdown]
# ## Static views
#
# For each checkpoint: one image's input / output / residual, its nearest-item map, the usage
# histogram, and the attention maps and nearest patches of the three most used items.

# %%
figures = memviz.save_memory_figures(views, dirs.figures)
for path in figures:
    print(places.portable_path(path))
    display(Image(filename=str(path)))

# %% [markdown]
# ## The explorer
#
# Pick the checkpoint, a source (the test set, the unlabeled photos of D_U - real rain with real
# data, procedural rain with the embedded data - or your own upload) and an image; move
# the item slider to see that item's attention over the image (upsampled from $z(x)$'s grid)
# and the input patches nearest to it. The usage histogram and the PCA mark the selected item.
# Each new image costs one forward pass; changing the item costs no network call at all.

# %%
from mosslib.apps.explorer.widgets import MemoryExplorer

explorer = MemoryExplorer(views, {source: list(names) for source, names in sources.items()})
explorer.widget

# %% [markdown]
# ## The memory study
#
# Is the memory inert only in this run? Notebook 7 (`07_memory_study`) trains the paper's memory
# beside variants that make the read selective, keep the items alive, or take away the decoder's
# path around the memory, over several seeds, and gives the verdict.

# %%
display(Markdown("**The memory study's verdict (cpu scale):**\n\n"
                 + memstudy.study_verdict_markdown(dirs.results.parent / "study")))
