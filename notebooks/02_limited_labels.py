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
# # Tables 2-3: limited labeled data
#
# The paper (section 4.4) keeps the labels of only 10, 20, 40, 60 or 100 % of a synthetic
# training set ($\mathcal{D}_L$); the rest of its rainy images, labels dropped, form
# $\mathcal{D}_U$. Each fraction is trained once on $\mathcal{D}_L$ alone and once on
# $\mathcal{D}_L + \mathcal{D}_U$, and tested on the data set's test split: Rain200H (Table 2)
# and Rain800 (Table 3).
#
# **Which data this notebook uses** (decided by `mosslib.apps.bookruns.limited_setups`, printed below):
#
# 1. Rain200H and Rain800 when the data root holds them (the paper's protocol);
# 2. otherwise Rain100L from the data root (`DATA_ROOT`): its train split as
#    $\mathcal{D}_L$, its test split as test set - a light-rain stand-in, named as such;
# 3. otherwise (embedded data) the embedded labeled set `synthetic`, which has no test split of its
#    own, so the runs are tested on the configuration's test set `sirr_like` (other photos and a
#    "real-like" rain style: a transfer test, not the paper's in-distribution one).
#
# **Protocol choices.** "Without $\mathcal{D}_U$" is the `no_selftrain` ablation (Eq. 6 only);
# "with $\mathcal{D}_U$" is full MOSS whose only unlabeled images are the dropped-label rest of
# $\mathcal{D}_L$ (`data.unlabeled` emptied, as in the paper); 100 % has no $\mathcal{D}_U$ and is
# trained once. The validation split used for model selection is carved from the training set
# before the labels are dropped. In the `quick` profile the nine runs train for
# `LIMITED_STEPS["quick"]` steps (half the profile's) so that the whole book stays within about
# 20 minutes on 2 CPU cores; in the `cpu` profile they train `LIMITED_STEPS["cpu"]` steps (under a third
# of the profile's, about 2 h for the nine runs on 2 cores); `paper` uses its own step count.

# %% tags=["parameters"]
profile = "quick"
data_root = ""
results_dir = "results"
figures_dir = "figures"
runs_dir = "runs"
seeds = 1

# %%
from IPython.display import Markdown, display

from mosslib.apps import bookruns
from mosslib.measure import figures, gains, paper, places, tables
from mosslib.method.runs import config_of_run

dirs = places.book_dirs(profile, results_dir, figures_dir, runs_dir)
root = data_root or None
seed_list = list(range(int(seeds)))
setups = bookruns.limited_setups(profile, root)
print("steps per run:", bookruns.LIMITED_STEPS.get(profile) or "the profile's own")
for s in setups:
    print(f"- {s.name}: {s.note}; beside the paper's {s.paper_dataset or 'Tables 2 and 3 (another data set: reference only)'}")

# %% [markdown]
# ## Training and evaluation

# %%
PERCENTS = paper.LIMITED_FRACTIONS  # 10, 20, 40, 60, 100
tables_out = {}
for setup in setups:
    specs, keys = zip(*bookruns.limited_specs(profile, setup, seed_list, PERCENTS))
    runs = bookruns.train_runs(specs, profile, root, dirs.runs, archive=dirs.archive)
    evals = bookruns.evaluate_runs(runs, test=setup.test, archive=dirs.archive)
    results = {}
    for (pct, key), ev in zip(keys, evals):
        results.setdefault(pct, {}).setdefault(key, []).append(ev)
    cfg = config_of_run(runs[0])
    test_name = setup.test.name if setup.test is not None else cfg.data.test
    data = f"{tables.data_source(cfg)}: D_L = {setup.labeled}/train at each fraction; test = {test_name}"
    if setup.paper_dataset == "Rain200H":
        name = "table2"
    elif setup.paper_dataset == "Rain800":
        name = "table3"
    else:
        name = f"table2-3_{setup.name.lower()}"
    meta = tables.table_meta(
        f"Tables 2-3: limited labels on {setup.name}" + (f" (the paper's Table {paper.LIMITED[setup.paper_dataset][0]})"
                                                       if setup.paper_dataset else " (the paper used Rain200H / Rain800)"),
        evals, data, profile,
        notes=[setup.note,
               "D_L = no_selftrain on the labeled fraction; D_L + D_U = full MOSS, D_U = the rest of D_L without labels",
               f"steps per run: {cfg.optim.steps} (pre-training {cfg.optim.pretrain_steps})",
               "gain = (D_L + D_U) - D_L per test image, mean and 95 % paired bootstrap CI over test images (one seed) "
               "or over seeds, then test images (several seeds; mosslib.measure.stats)"],
    )
    table = tables.limited_table(results, meta, setup.paper_dataset, name=name)
    table.write(dirs.results)
    tables_out[setup.name] = table
    display(Markdown(table.markdown()))
    fig = figures.limited_figure(table, f"PSNR vs. labeled fraction: {setup.name} ({profile})")
    figures.save_figure(fig, dirs.figures / f"{name}_psnr_vs_labels.png")

# %% [markdown]
# ## Reading the gains
#
# A gain is told apart from noise only when its interval excludes zero and has width. With one
# seed the interval covers the test images only, not training noise; with several seeds it
# resamples seeds, then images (`mosslib.measure.stats`).

# %%
for setup_name, table in tables_out.items():
    f = table.frame
    book_rows = f[f["source"].str.startswith("this book") & f["psnr_gain"].notna()] if "psnr_gain" in f else f.iloc[:0]
    lines = [f"**{setup_name}** ({profile}):"]
    for _, r in book_rows.iterrows():
        g = gains.Gain(r["psnr_gain"], r["psnr_gain_ci_lo"], r["psnr_gain_ci_hi"], sum(table.meta.n_test.values()),
                        seeds=max(1, len(table.meta.seeds)))
        lines.append("- " + g.sentence(f"{int(r['percent'])} % labels, PSNR gain from D_U"))
    display(Markdown("\n".join(lines)))
