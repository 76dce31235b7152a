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
#     - '{results_dir}/study'
# ---

# %% [markdown]
# # Table 4: ablation study
#
# Six configurations of the training issue (`mosslib.method.profiles.ABLATIONS`), each trained on the
# profile's data and tested on the DDN-SIRR(-like) test set, dense and sparse:
#
# | configuration | what is removed |
# |---|---|
# | Basic (`basic`) | memory and self-training (MOEDN without memory, Eq. 6 only) |
# | w/o Memory (`no_memory`) | the memory: $\hat z(x) = z(x)$ |
# | w/o Self-Training (`no_selftrain`) | Eq. 7-10: supervised only; the same run as Table 1's "supervised" |
# | w/o TV (`no_tv`) | $\lambda_3 = 0$ in Eq. 12 |
# | w/o Skip-Connect (`no_skip`) | the $s(x) - g(x)$ subtraction |
# | Ours (`full`) | nothing: MOSS; the same run as Table 1's MOSS |
#
# Note on the paper: its Table 4 gives 20.99 / 25.83 dB (dense / sparse) for "w/o Self-Training"
# while its Table 1 gives 20.29 / 25.90 dB for the supervised MOSS model (both reported); the paper
# does not say what differs (perhaps the memory still saw $\mathcal{D}_U$ in Table 4). In this
# book both are the same run.
#
# Beside each configuration: its PSNR difference to "Ours" per test image, with a 95 % paired
# bootstrap interval, so a reader can see which removals hurt beyond noise on this test set.

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

# %% [markdown]
# ## Training
#
# At the profile's own budget Table 1's two runs are reused from the cache. The `cpu` profile
# trains Table 4 at a reduced budget (`bookruns.TABLE4_STEPS`: Tables 2-3's 2,000 steps), so that all
# six configurations of a seed train in 45 to 95 minutes on 2 cores (measured, by machine); its supervised
# run is then Tables 2-3's 100 % run, and its "Ours" is not Table 1's model. Seed by seed, `full` and `no_memory` train
# first so that the runs sharing their pre-training fork it instead of repeating it.

# %%
configs = bookruns.table4_configs(profile)
overrides = bookruns.table4_overrides(profile)
not_run = [paper.TABLE4_LABELS[c] for c in paper.TABLE4_ORDER if c not in configs]
if not_run:
    print(f"not trained in the {profile} profile (its budget): {', '.join(not_run)} - see bookruns.TABLE4_CONFIGS")
print("steps per run:", overrides.get("optim.steps", "the profile's own"))
# seed by seed: a seed's six runs share its pre-training; each is archived as it finishes
# (results/<profile>/runs, mosslib.method.archive), so a book stopped part-way keeps them
specs = bookruns.table4_specs(profile, seed_list)
runs = bookruns.train_runs(specs, profile, root, dirs.runs, archive=dirs.archive)
evals = {}
for spec, ev in zip(specs, bookruns.evaluate_runs(runs)):
    evals.setdefault(spec.config, []).append(ev)
cfg = config_of_run(runs[[s.config for s in specs].index("full")])

# %%
meta = tables.table_meta(
    "Table 4: ablation study on the DDN-SIRR(-like) test set",
    evals["full"], tables.data_description(cfg), profile,
    notes=["paper columns: DDN-SIRR test, full-size training (reported)",
           "'PSNR - Ours': configuration minus full MOSS per test image, mean and 95 % paired bootstrap CI "
           "(over test images for one seed; over seeds, then test images, for several)",
           "seed spread: '± sd' over seeds when more than one seed ran",
           f"steps per run: {cfg.optim.steps} (pre-training {cfg.optim.pretrain_steps})"
           + (" - a reduced budget (bookruns.TABLE4_STEPS), not Table 1's runs" if overrides else "")]
          + ([f"not trained in this profile (budget): {', '.join(not_run)}"] if not_run else []),
)
t4 = tables.table4(evals, meta)
t4.write(dirs.results)
display(Markdown(t4.markdown()))

# %%
fig = figures.ablation_figure(t4, f"Ablations ({profile}) beside the paper's Table 4")
figures.save_figure(fig, dirs.figures / "table4_ablation.png")

lines = [f"**Each removal against full MOSS** ({profile}, {len(seed_list)} seed(s)); "
         "a difference whose interval includes zero is not told apart from noise:", ""]
for g in gains.groups_of(evals["full"]):
    for c in configs[:-1]:
        gain = gains.gain_of(evals["full"], evals[c], g, "psnr")
        lines.append("- " + gain.sentence(f"{paper.TABLE4_LABELS[c]} - Ours, {g}"))
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## What "w/o Memory" removes
#
# Removing a component only tests it if the component does something. The memory of the `full`
# run, measured at test time (`mosslib memory`): its usage over the test inputs, how selective
# its read is, and what PSNR does when the read is replaced by its per-image mean or by zeros.
# The last lines are the verdict of the memory study (notebook 7, `results/study/`), which
# trains the paper's memory and variants over several seeds.

# %%
from mosslib.measure import memstudy
from mosslib.method.runs import memory_diagnosed

display(Markdown(memstudy.diagnostics_markdown(memory_diagnosed(runs[[s.config for s in specs].index("full")]),
                                               f"the {profile} `full` run of this table")))
display(Markdown("**The memory study's verdict (cpu scale):**\n\n"
                 + memstudy.study_verdict_markdown(dirs.results.parent / "study")))
