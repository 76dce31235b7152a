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
#     - '{results_dir}/{profile}/ledger.json'
#     - '{results_dir}/study'
# ---

# %% [markdown]
# # MOSS, reproduced: overview
#
# This book reproduces *Memory Oriented Transfer Learning for Semi-Supervised Image Deraining*
# (MOSS; Huang, Yu, He, CVPR 2021) with the `mosslib` package.
#
# **What MOSS is.** A deraining network trained on two kinds of data: labeled synthetic pairs
# $\mathcal{D}_L$ (rainy image, clean image) and unlabeled real rainy photos $\mathcal{D}_U$.
# Two ideas let it learn from the photos without labels:
#
# 1. **MOEDN**, an encoder-decoder whose encoder output $z(x)$ (features of the *rain*, thanks to
#    the skip connection $s(x) - g(x)$ that keeps the background out of the encoder) queries a
#    **memory** of $m$ rain prototypes. The memory is updated without gradients, by moving each
#    item towards the mean of the queries that chose it (Eq. 1-3), and read with soft attention
#    (Eq. 4-5). Rain seen in unlabeled photos shapes the memory too.
# 2. **Self-training**: a teacher network (an exponential moving average of the student, Eq. 7)
#    derains the unlabeled photos; their rain residuals and the labeled ones are mixed with
#    random backgrounds into new noisy pairs (Eq. 8-9) on which the student is trained with L1 and
#    a small total-variation term (Eq. 10-12).
#
# The notebooks that follow: `01_ddn_sirr` (Table 1, Figs. 4-5), `02_limited_labels`
# (Tables 2-3), `03_timing` (Fig. 8), `04_ablation` (Table 4), `05_memory` (what the memory
# holds), `06_real_world` (the user study) and `07_memory_study` (is the memory used, and what
# makes it work). Every number the book prints names the profile,
# data and metric convention that produced it, next to the paper's number marked "(reported)".

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | cpu | paper
data_root = ""  # empty: the embedded data; else the data root (DATA_ROOT)
results_dir = "results"
figures_dir = "figures"
runs_dir = "runs"
seeds = 1

# %%
import importlib
import inspect

import pandas as pd
from IPython.display import Markdown, display

from mosslib.measure import figures, paper, places, tables
from mosslib.method.checkpoint import run_metadata
from mosslib.measure.metrics import CONVENTIONS
from mosslib.method.profiles import PROFILES, make_config

dirs = places.book_dirs(profile, results_dir, figures_dir, runs_dir)
cfg = make_config(profile, "full", data_root=data_root or None)
from mosslib.measure.places import portable_path

print(f"profile {profile}; results -> {portable_path(dirs.results)}; figures -> {portable_path(dirs.figures)}; "
      f"runs -> {portable_path(dirs.runs)}")

# %% [markdown]
# ## Did MOSS reproduce? The claims ledger
#
# One row per claim of the paper, judged on this profile's tables (`results/<profile>/`, written by
# the notebooks that follow; the book writes the ledger before it runs this notebook). Each verdict
# names its evidence, what its interval covers, the training budget beside the paper's, and why.
# A verdict needs an interval over seeds: where a table has one seed, its row borrows the same
# comparison measured over seeds at a smaller budget, and says so. Table 1's gain from $\mathcal{D}_U$
# comes from the memory study's paper-faithful MOSS and its supervised twin (3 seeds, 3,000 steps)
# once all three are in, else from Table 4's seeds; the memory row comes from the study's seeds.

# %%
from mosslib.apps import ledger

claims = ledger.build_ledger(dirs.results, profile)
display(Markdown(ledger.ledger_markdown(claims, profile, heading="### Claims ledger",
                                        link=lambda c: f"{c.page}.ipynb",
                                        audit_link="../../docs/release-audit.md")))  # from build/<profile>/

# %% [markdown]
# ### The memory: is it used, and what would make it work?
#
# Until the study's seeds are in, the ledger's memory row judges one model. The memory study
# (notebook 7, `docs/memory-study.md`) trains the paper's memory and variants of it at the `cpu`
# profile's data over several seeds, and answers three questions by rules fixed in
# `mosslib.measure.memstudy.verdict`:

# %%
from mosslib.measure import memstudy

display(Markdown(memstudy.study_verdict_markdown(dirs.results.parent / "study")))

# %% [markdown]
# ## The equations and the code that implements them
#
# Each row names the function or class that implements an equation; the cell resolves every
# name, so a renamed function breaks this notebook instead of silently leaving the table stale.

# %%
EQUATIONS = [
    ("Fig. 2", "MOEDN: head s(x), encoder z(x), memory, decoder g(x) (plus the release's encoder-to-decoder fusion, ModelConfig.fuse), tail on s(x) - g(x), tanh", "mosslib.model.network:MOEDN"),
    ("Eq. 1", "cosine similarity s_ij of item e_i and query z_j", "mosslib.model.memory:RainMemory.similarity"),
    ("Eq. 2", "nearest item k(j) = argmax_i s_ij", "mosslib.model.memory:RainMemory.assign"),
    ("Eq. 3", "self-supervised update e_i <- tau e_i + (1 - tau) mean of its queries", "mosslib.model.memory:RainMemory.update_"),
    ("Eq. 4", "attention a_ij = softmax_i(s_ij)", "mosslib.model.memory:RainMemory.attention"),
    ("Eq. 5", "memory read z_hat_j = sum_i a_ij e_i", "mosslib.model.memory:RainMemory.read"),
    ("Eq. 6", "supervised loss L_SU = |f(x_l) - y_l|_1", "mosslib.method.losses:l1"),
    ("Eq. 7", "teacher EMA xi <- v xi + (1 - v) theta", "mosslib.method.teacher:Teacher.update"),
    ("Eq. 8-9", "rain residuals R and noisy pairs x_n = T(x_hat + alpha r)", "mosslib.method.losses:noisy_samples"),
    ("Eq. 10", "unsupervised loss L_UN = |f(x_n) - y_hat|_1", "mosslib.method.losses:l1"),
    ("Eq. 11", "total variation of f(x_n)", "mosslib.method.losses:tv"),
    ("Eq. 12", "L = l1 L_SU + l2 L_UN + l3 L_TV (the step: mosslib.method.step)", "mosslib.method.losses:moss_loss"),
    ("Sec. 4.1", "PSNR / SSIM on RGB with scikit-image", "mosslib.measure.metrics:psnr"),
]


def resolve(target: str):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


rows = []
for where, what, target in EQUATIONS:
    doc = (inspect.getdoc(resolve(target)) or "").splitlines()
    rows.append({"paper": where, "what": what, "mosslib": target.replace(":", "."), "docstring": doc[0] if doc else ""})
display(Markdown(tables.markdown_table(pd.DataFrame(rows))))

# %% [markdown]
# ## How to run the book
#
# ```
# make reproduce                                   # profile quick, embedded data (about 20 min on 2 cores)
# make reproduce PROFILE=cpu DATA_ROOT=/path/to/data   # real data, hours on 2 cores
# make reproduce PROFILE=paper DATA_ROOT=...       # the paper's hyper-parameters, for a GPU
# make lab                                         # JupyterLab on these notebooks
# ```
#
# `make reproduce` runs `python -m mosslib book --profile PROFILE [--data DATA_ROOT]`: each
# notebook is executed with papermill into `build/<profile>/`, tables go to
# `results/<profile>/` (CSV and Markdown), figures to `figures/<profile>/` (PNG). Training runs
# are cached in `runs/<profile>/` by a hash of their configuration, so an interrupted book
# resumes, notebooks share models (Table 1's MOSS model is Table 4's "Ours" where Table 4 runs the
# profile's own budget; the `cpu` profile trains Table 4 at Tables 2-3's 2,000 steps and shares
# its supervised run with Tables 2-3), and a notebook
# whose inputs did not change is not executed again.
#
# ## The profiles
#
# The profile of this execution is printed below the table; the numbers of the following
# notebooks come from it.

# %%
prof = []
for name in PROFILES:
    try:
        c = make_config(name, "full", data_root=data_root or ("" if name in ("smoke", "quick") else None))
        src = tables.data_description(c)
    except ValueError as exc:  # cpu / paper without a data root
        c, src = make_config(name, "full", data_root=""), f"needs real data ({exc})"
    share = ledger.budget_share(c.optim.steps, c.data.batch_size, c.data.crop)
    prof.append({"profile": name, "steps": c.optim.steps, "pre-training steps": c.optim.pretrain_steps,
                 "crop": c.data.crop, "batch": c.data.batch_size,
                 "steps x batch x crop pixels, share of the paper's": ledger.share_text(share), "data": src})
display(Markdown(tables.markdown_table(pd.DataFrame(prof))))
print(f"the paper: {ledger.paper_budget_text()} = 100 %")

meta = run_metadata(seed=None)
lines = [
    f"- **profile of this execution**: `{profile}`",
    f"- **data**: {tables.data_description(cfg)}",
    f"- **metric convention** (the paper's): `{paper.CONVENTION}` - {CONVENTIONS[paper.CONVENTION]}",
    f"- **seeds per configuration**: {seeds}",
    f"- **software**: mosslib {meta['mosslib_version']} (git {meta['git_commit']}), torch {meta['torch_version']}, "
    f"Python {meta['python_version']}, {meta['threads']} threads on {meta['machine']}",
    f"- **paper**: {paper.CITATION}",
]
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## The data
#
# One test pair of the configured test set (rainy input and ground truth).

# %%
from mosslib.method.trainset import test_dataset

groups = test_dataset(cfg.data).test_groups()
rows = []
for group, pairs in groups.items():
    rainy, clean = pairs[0].load()
    rows.append({"rainy": rainy, "ground truth": clean})
fig = figures.comparison_figure(rows, [f"{g}: {p[0].name}" for g, p in groups.items()],
                               suptitle=f"test set {cfg.data.test} ({profile})")
figures.save_figure(fig, dirs.figures / "overview_test_pairs.png")
print({g: len(p) for g, p in groups.items()}, "test images per group")
