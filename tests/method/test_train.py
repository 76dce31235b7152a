"""Trainer behaviour on the tiny embedded data (``smoke`` profile)."""
import json
import os
import time

import pytest
import torch

from mosslib.method import losses
from mosslib.method.checkpoint import load_checkpoint, load_model
from mosslib.method.profiles import ABLATIONS, config_from_dict, config_hash, make_config
from mosslib.method.trainer import Trainer, TrainingDiverged
from mosslib.model.config import to_dict


def smoke(ablation="full", **over):
    base = {"optim.steps": 4, "optim.pretrain_steps": 2, "optim.val_every": 2, "optim.ckpt_every": 2}
    base.update(over)
    return make_config("smoke", ablation, data_root="", overrides=base)


@pytest.mark.parametrize("ablation", sorted(set(ABLATIONS) - {"supervised"}))
def test_each_ablation_builds_and_steps(ablation, tmp_path):
    cfg = smoke(ablation, **{"optim.steps": 3, "optim.pretrain_steps": 1})
    summary = Trainer(cfg, tmp_path, quiet=True).fit()
    assert summary["steps"] == 3
    assert (tmp_path / "done.json").exists() and (tmp_path / "best.pt").exists()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    stages = {r["stage"] for r in log}
    assert stages == ({"pretrain", "self-train"} if cfg.loss.self_train else {"pretrain"})
    if cfg.loss.self_train:
        assert any(r["l_un"] > 0 for r in log if r["stage"] == "self-train")
    model = load_model(tmp_path)
    assert (model.memory is None) == (not cfg.model.use_memory)


def test_stage_switch_resets_teacher_and_writes_pretrain_checkpoint(tmp_path):
    cfg = smoke(**{"optim.steps": 3, "optim.pretrain_steps": 2})
    tr = Trainer(cfg, tmp_path, quiet=True)
    tr.fit(stop_at=2)
    for k, v in tr.teacher.net.state_dict().items():  # xi <- theta at the switch
        assert torch.equal(v, tr.model.state_dict()[k]), k
    assert (tmp_path / "pretrain.pt").exists()
    assert load_checkpoint(tmp_path / "pretrain.pt")["step"] == 2


def test_exact_resume(tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        cfg = smoke()
        a = Trainer(cfg, tmp_path / "a", quiet=True)
        a.fit()
        b = Trainer(cfg, tmp_path / "b", quiet=True)
        b.fit(stop_at=2)
        b2 = Trainer(cfg, tmp_path / "b", quiet=True)  # a fresh process would do the same
        b2.fit(resume=True)
    finally:
        torch.use_deterministic_algorithms(False)
    ca, cb = load_checkpoint(tmp_path / "a" / "checkpoint.pt"), load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ca["step"] == cb["step"] == 4
    for part in ("model", "teacher"):
        for k in ca[part]:
            assert torch.equal(ca[part][k], cb[part][k]), (part, k)
    assert torch.equal(ca["model"]["memory.items"], cb["model"]["memory.items"])
    sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no duplicated log lines after the resume


def test_time_limit_validates_checkpoints_and_resumes_the_same_schedule(tmp_path, capsys, monkeypatch):
    torch.use_deterministic_algorithms(True)
    try:
        cfg = smoke(**{"optim.steps": 5, "optim.val_every": 4, "optim.ckpt_every": 4})
        Trainer(cfg, tmp_path / "a", quiet=True).fit()
        cut = Trainer(cfg, tmp_path / "b", quiet=True).fit(time_limit=0)  # out of time after its first step
        assert cut["steps"] == 1 and cut["stopped"] == "time_limit"
        assert not (tmp_path / "b" / "done.json").exists()
        assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 1
        log = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
        assert log[-1]["step"] == 1 and "val_psnr" in log[-1]  # the step in hand was validated
        assert load_checkpoint(tmp_path / "b" / "best.pt")["step"] == 1
        saved = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["val_seconds"]
        resumed = Trainer(cfg, tmp_path / "b", quiet=True)
        resumed.load(tmp_path / "b" / "checkpoint.pt")
        assert saved > 0 and resumed._val_seconds == saved  # a resumed run keeps its margin for the final validation
        done = Trainer(cfg, tmp_path / "b", quiet=True).fit(resume=True, time_limit=3600)
        assert done["steps"] == 5 and "stopped" not in done and (tmp_path / "b" / "done.json").exists()
    finally:
        torch.use_deterministic_algorithms(False)
    ca, cb = load_checkpoint(tmp_path / "a" / "checkpoint.pt"), load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    for k in ca["model"]:  # the cut changed nothing but an extra validation
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    from mosslib.apps import cli

    monkeypatch.chdir(tmp_path)
    args = ["train", "--profile", "smoke", "--data", "", "--device", "cpu", "--quiet", "--out", "c",
            "--set", "optim.steps=3", "--set", "optim.pretrain_steps=1"]
    assert cli.main([*args, "--time-limit", "0"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1])["stopped"] == "time_limit" and "--resume continues" in out.err
    assert cli.main([*args, "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 3
    assert cli.main([*args[:-4], "--out", "d", "--time-limit", "-1"]) == 2


def test_time_limit_keeps_room_for_the_final_validation(tmp_path):
    class SlowValidation(Trainer):
        def validate(self, net="student"):
            time.sleep(0.8)
            return super().validate(net)

    cfg = smoke(**{"optim.steps": 8, "optim.val_every": 2, "optim.ckpt_every": 8, "optim.select_teacher": False})
    tr = SlowValidation(cfg, tmp_path, quiet=True)
    # step 2's validation ends ~0.9 s in: the next step is less than a validation (0.8 s) before
    # the 1.6 s limit, so it stops there and validates, rather than at step 4's scheduled validation
    summary = tr.fit(time_limit=1.6)
    assert summary["stopped"] == "time_limit" and summary["steps"] == 3
    assert tr._val_seconds >= 0.8


def test_prefetched_batches_train_the_same_weights(tmp_path):
    """The CUDA default (batches made on a thread) forced on the CPU: same weights, also across a resume."""
    torch.use_deterministic_algorithms(True)
    try:
        cfg = smoke()
        a = Trainer(cfg, tmp_path / "a", quiet=True, prefetch=False)
        assert not a.prefetch  # the CPU default
        a.fit()
        b = Trainer(cfg, tmp_path / "b", quiet=True, prefetch=True)
        b.fit(stop_at=3)  # stops mid-stream: the thread is closed
        assert b._prefetcher is None
        Trainer(cfg, tmp_path / "b", quiet=True, prefetch=True).fit(resume=True)
    finally:
        torch.use_deterministic_algorithms(False)
    ca, cb = load_checkpoint(tmp_path / "a" / "checkpoint.pt"), load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k


def test_resume_refuses_another_configuration(tmp_path):
    Trainer(smoke(), tmp_path, quiet=True).fit(stop_at=2)
    with pytest.raises(ValueError, match="another configuration"):
        Trainer(smoke(**{"loss.lambda_tv": 0.5}), tmp_path, quiet=True).fit(resume=True)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    tr = Trainer(smoke(), tmp_path, quiet=True)
    tr.fit(stop_at=2)
    good = load_checkpoint(tmp_path / "checkpoint.pt")

    def crash(obj, fh, *a, **k):
        fh.write(b"partial")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        tr.save()
    monkeypatch.undo()
    again = load_checkpoint(tmp_path / "checkpoint.pt")
    assert again["step"] == good["step"] == 2
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    tr = Trainer(smoke(), tmp_path, quiet=True)
    tr.fit(stop_at=2)
    real = losses.l1
    monkeypatch.setattr(losses, "l1", lambda a, b: real(a, b) * float("nan"))
    with pytest.raises(TrainingDiverged, match="non-finite loss at step 2"):
        tr.fit(resume=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2


def test_smoke_loss_goes_down(tmp_path):
    cfg = smoke("no_selftrain", **{"optim.steps": 40, "optim.val_every": 40, "optim.ckpt_every": 40, "optim.lr": 1e-3})
    tr = Trainer(cfg, tmp_path, quiet=True)

    def fixed_batches_l1():  # the same four training batches before and after
        tr.model.eval()
        with torch.no_grad():
            return sum(losses.l1(tr.model(x), y).item() for x, y in map(tr.data.labeled.batch, range(4))) / 4

    before, val_before = fixed_batches_l1(), tr.validate()["val_psnr"]
    tr.fit()
    assert fixed_batches_l1() < 0.9 * before
    assert tr.validate()["val_psnr"] > val_before + 0.3


def test_cli_train_then_evaluate(tmp_path, capsys):
    from mosslib.apps.cli import main
    from mosslib.data.embedded import ensure

    out = tmp_path / "run"
    assert main(["train", "--profile", "smoke", "--data", "", "--steps", "2", "--out", str(out), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2
    assert main(["train", "--profile", "smoke", "--data", "", "--out", str(out), "--quiet"]) == 2  # exists
    test_root = ensure(size="tiny") / "sirr_like"
    assert main(["evaluate", "--data", str(test_root), "--checkpoint", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["splits"]) == {"dense", "sparse", "all"} and res["convention"] == "rgb"


def _ddp_worker(rank, world, store, out, result):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        tr = Trainer(smoke(**{"optim.steps": 3, "optim.pretrain_steps": 1}), out, quiet=True)
        tr.fit()
        torch.save({"model": tr.model.state_dict(), "items": tr.model.memory.items}, f"{result}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_process_distributed_run_keeps_ranks_identical(tmp_path):
    import torch.multiprocessing as mp

    from mosslib.data.embedded import ensure

    ensure(size="tiny")  # build the cache before the workers race for it
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path / "run"), str(tmp_path / "r")), nprocs=2)
    r0 = torch.load(tmp_path / "r.0", weights_only=True)
    r1 = torch.load(tmp_path / "r.1", weights_only=True)
    assert torch.equal(r0["items"], r1["items"])
    for k in r0["model"]:
        assert torch.allclose(r0["model"][k], r1["model"][k], atol=1e-6), k
    # the memory moved away from its initialisation (the all-reduced update ran)
    from mosslib.model.network import MOEDN

    assert not torch.equal(MOEDN(smoke().model).memory.items, r0["items"])


def test_second_trainer_on_the_same_folder_is_refused(tmp_path):
    import fcntl

    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".lock", "w") as held:  # as a running trainer holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="another process"):
            Trainer(smoke(), tmp_path, quiet=True).fit(stop_at=2)
    Trainer(smoke(), tmp_path, quiet=True).fit(stop_at=1)  # free again


def test_prenet_trains_as_a_supervised_peer(tmp_path):
    from mosslib.apps.cli import main

    out = tmp_path / "prenet"
    rc = main(["train", "--profile", "smoke", "--data", "", "--model", "prenet", "--config", "no_selftrain",
               "--steps", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    model = load_model(out)
    assert type(model).__name__ == "PReNet"
    x = torch.rand(1, 3, 20, 28) * 2 - 1
    assert model(x).shape == x.shape


def _same_state(pa, pb):
    ca, cb = load_checkpoint(pa), load_checkpoint(pb)
    assert ca["step"] == cb["step"]
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


@pytest.mark.parametrize("ablation", ["no_selftrain", "no_tv"])
def test_fork_from_pretraining_equals_training_from_scratch(ablation, tmp_path):
    from mosslib.method.lineage import fork_pretrained

    torch.use_deterministic_algorithms(True)
    try:
        Trainer(smoke("full"), tmp_path / "full", quiet=True).fit()
        cfg = smoke(ablation)
        Trainer(cfg, tmp_path / "scratch", quiet=True).fit()
        fork_pretrained(tmp_path / "full", cfg, tmp_path / "fork")
        assert load_checkpoint(tmp_path / "fork" / "checkpoint.pt")["step"] == cfg.optim.pretrain_steps
        Trainer(cfg, tmp_path / "fork", quiet=True).fit(resume=True)
    finally:
        torch.use_deterministic_algorithms(False)
    _same_state(tmp_path / "scratch" / "checkpoint.pt", tmp_path / "fork" / "checkpoint.pt")
    _same_state(tmp_path / "scratch" / "best.pt", tmp_path / "fork" / "best.pt")
    note = json.loads((tmp_path / "fork" / "forked.json").read_text())
    assert note["step"] == 2 and note["from"].endswith("full")
    steps = [json.loads(x)["step"] for x in (tmp_path / "fork" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 4


def test_fork_refuses_a_run_with_other_pretraining(tmp_path):
    from mosslib.method.lineage import fork_pretrained

    Trainer(smoke("full"), tmp_path / "full", quiet=True).fit()
    for other in (smoke("no_memory"), smoke("no_selftrain", **{"optim.lr": 3e-4})):
        with pytest.raises(ValueError, match="pre-trained with another configuration"):
            fork_pretrained(tmp_path / "full", other, tmp_path / "x")
    with pytest.raises(ValueError, match="no such checkpoint"):
        fork_pretrained(tmp_path / "nothing", smoke("no_selftrain"), tmp_path / "y")


def test_book_runs_share_pretraining(tmp_path):
    from mosslib.method.runs import trained

    over = {"optim.steps": 4, "optim.pretrain_steps": 2, "optim.val_every": 2, "optim.ckpt_every": 2}
    full = trained("smoke", "full", data_root="", runs_dir=tmp_path, overrides=over, quiet=True)
    sup = trained("smoke", "supervised", data_root="", runs_dir=tmp_path, overrides=over, quiet=True)
    assert not (full / "forked.json").exists()
    assert json.loads((sup / "forked.json").read_text())["from"] == str(full)
    assert (sup / "done.json").exists()
    basic = trained("smoke", "basic", data_root="", runs_dir=tmp_path, overrides=over, quiet=True)
    assert not (basic / "forked.json").exists()  # no memory: another network, trained from scratch


def test_cli_fork_from(tmp_path, capsys):
    from mosslib.apps.cli import main

    src = tmp_path / "full"
    Trainer(smoke("full"), src, quiet=True).fit()
    args = ["train", "--profile", "smoke", "--data", "", "--config", "no_selftrain", "--quiet", "--fork-from", str(src)]
    args += [f"--set={k}={v}" for k, v in {"optim.steps": 4, "optim.pretrain_steps": 2, "optim.val_every": 2, "optim.ckpt_every": 2}.items()]
    assert main(args + ["--out", str(tmp_path / "sup")]) == 0
    assert (tmp_path / "sup" / "forked.json").exists()
    assert main(args + ["--out", str(tmp_path / "bad"), "--set", "optim.lr=1e-3"]) == 2
    assert "another configuration" in capsys.readouterr().err


def test_lr_schedule_is_fixed_then_cosine_to_the_final_fraction():
    from mosslib.method.lineage import lr_at

    fixed = smoke("full", **{"optim.steps": 100}).optim
    assert {lr_at(fixed, s) for s in range(100)} == {fixed.lr}
    o = smoke("full", **{"optim.steps": 100, "optim.lr_decay_from": 60, "optim.lr_final": 0.1}).optim
    lrs = [lr_at(o, s) for s in range(101)]
    assert lrs[:61] == [o.lr] * 61
    assert all(a > b for a, b in zip(lrs[60:], lrs[61:]))  # strictly decreasing
    assert lrs[80] == pytest.approx(o.lr * 0.55) and lrs[100] == pytest.approx(o.lr * 0.1)


def test_extending_a_run_equals_training_the_longer_run_from_scratch(tmp_path):
    """A run of 4 steps at a fixed lr, extended to 8 steps with a decay from step 5, ends in the
    very state of the 8-step run trained from scratch; a decay that starts too early is refused."""
    from mosslib.method.runs import shorter_sibling
    from mosslib.method.lineage import extend_run

    short = smoke("full", **{"optim.steps": 4})
    long = smoke("full", **{"optim.steps": 8, "optim.lr_decay_from": 5})
    assert config_hash(short) != config_hash(long)
    torch.use_deterministic_algorithms(True)
    try:
        Trainer(short, tmp_path / "smoke" / "short", quiet=True).fit()
        Trainer(long, tmp_path / "scratch", quiet=True).fit()
        assert shorter_sibling(long, tmp_path) == tmp_path / "smoke" / "short"
        extend_run(tmp_path / "smoke" / "short", long, tmp_path / "ext")
        assert not (tmp_path / "ext" / "done.json").exists()
        Trainer(long, tmp_path / "ext", quiet=True).fit(resume=True)
    finally:
        torch.use_deterministic_algorithms(False)
    _same_state(tmp_path / "scratch" / "checkpoint.pt", tmp_path / "ext" / "checkpoint.pt")
    _same_state(tmp_path / "scratch" / "best.pt", tmp_path / "ext" / "best.pt")
    assert json.loads((tmp_path / "ext" / "extended.json").read_text())["step"] == 4
    assert load_checkpoint(tmp_path / "smoke" / "short" / "checkpoint.pt")["step"] == 4  # source kept
    early = smoke("full", **{"optim.steps": 8, "optim.lr_decay_from": 2})
    with pytest.raises(ValueError, match="cannot be extended"):
        extend_run(tmp_path / "smoke" / "short", early, tmp_path / "bad")
    assert shorter_sibling(early, tmp_path) is None
    with pytest.raises(ValueError, match="learning-rate schedule differs"):
        Trainer(early, tmp_path / "scratch", quiet=True).load(tmp_path / "scratch" / "checkpoint.pt")


def test_warm_start_from_a_model_checkpoint(tmp_path, capsys):
    """--init-from: the run starts from the file's weights and memory (teacher too), records the
    file's SHA-256 in its configuration, and refuses a changed file or another architecture."""
    from mosslib.method.checkpoint import save_model
    from mosslib.apps.cli import main
    from mosslib.method.lineage import file_sha256, warm_start

    Trainer(smoke("full"), tmp_path / "src", quiet=True).fit()
    init = save_model(load_model(tmp_path / "src"), tmp_path / "init.pt", dtype=torch.float16)
    base = ["train", "--profile", "smoke", "--data", "", "--quiet"]
    args = base + ["--init-from", str(init)]
    args += [f"--set={k}={v}" for k, v in {"optim.steps": 2, "optim.pretrain_steps": 0, "optim.val_every": 2, "optim.ckpt_every": 2}.items()]
    assert main(args + ["--out", str(tmp_path / "warm")]) == 0
    saved = json.loads((tmp_path / "warm" / "config.json").read_text())["optim"]
    assert saved["init_from"] == str(init) and saved["init_sha256"] == file_sha256(init)
    log = [json.loads(x) for x in (tmp_path / "warm" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log} == {"self-train"}  # pretrain_steps=0: self-training from step 1

    cfg = make_config("smoke", "full", data_root="", overrides=[f"optim.init_from={init}", f"optim.init_sha256={file_sha256(init)}"])
    assert config_hash(cfg) != config_hash(make_config("smoke", "full", data_root=""))
    tr = Trainer(cfg, tmp_path / "t", quiet=True)
    warm_start(tr.model, cfg)
    ref = load_model(init).state_dict()
    for k, v in tr.model.state_dict().items():  # weights and memory buffers (items, usage)
        assert torch.equal(v, ref[k]), k

    init.write_bytes(init.read_bytes()[:-8] + b"changed!")
    with pytest.raises(ValueError, match="changed since the run was configured"):
        warm_start(tr.model, cfg)
    other = save_model(load_model(tmp_path / "src"), tmp_path / "other.pt")
    bigger = make_config("smoke", "full", data_root="", overrides=["model.ngf=12", f"optim.init_from={other}"])
    with pytest.raises(ValueError, match="another MOEDN configuration"):
        warm_start(Trainer(bigger, tmp_path / "b", quiet=True).model, bigger)
    assert main(base + ["--init-from", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "m")]) == 2
    assert "no such warm-start checkpoint" in capsys.readouterr().err


def test_val_extra_rain_adds_rained_validation_pairs_and_logs_each_group(tmp_path):
    from mosslib.method.trainset import build_training_data

    plain = build_training_data(smoke())
    cfg = smoke(**{"data.val_extra_rain": "dense,heavy"})
    data = build_training_data(cfg)
    n = len(plain.val)
    assert n > 0 and len(data.val) == 3 * n
    assert data.val_groups == ["labeled"] * n + ["dense"] * n + ["heavy"] * n
    assert data.counts["val_extra_rain"] == 2 * n
    for i in range(n):  # same clean images, the labeled pairs untouched, new rain on the others
        assert (data.val[i][0] == plain.val[i][0]).all()
        for k in (1, 2):
            rainy, clean = data.val[k * n + i]
            assert (clean == plain.val[i][1]).all() and not (rainy == plain.val[i][0]).all()
    assert config_hash(cfg) != config_hash(smoke())
    Trainer(cfg, tmp_path, quiet=True).fit()
    rec = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines() if "val_psnr" in line][-1]
    groups = [rec[f"val_psnr_{g}"] for g in ("labeled", "dense", "heavy")]
    assert rec["val_n"] == 3 * n
    assert abs(rec["val_psnr"] - sum(groups) / 3) < 1e-6  # equal group sizes: the mean of the means
    with pytest.raises(ValueError, match="unknown rain style"):
        build_training_data(smoke(**{"data.val_extra_rain": "drizzle"}))


def test_bf16_training_steps_in_bf16_keeps_fp32_weights_and_validates_in_fp32(tmp_path):
    cfg = smoke(**{"optim.precision": "bf16"})
    tr = Trainer(cfg, tmp_path, quiet=True)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.fit()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log} == {"pretrain", "self-train"}
    assert all(r["loss"] == r["loss"] and r["loss"] < 1e3 for r in log)
    state = tr.model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in state.items())  # master weights stay fp32
    assert any(not torch.equal(v, before[k]) for k, v in state.items() if v.is_floating_point())
    # selection does not depend on the training precision: the same weights, the same validation
    fp32 = Trainer(smoke(), tmp_path / "fp32", quiet=True)
    fp32.model.load_state_dict(state)
    assert tr.validate() == fp32.validate()


def test_metadata_is_recorded_at_start_and_each_resume_adds_a_segment(tmp_path, monkeypatch):
    import mosslib.method.checkpoint as ck

    commits = iter(["aaa111", "bbb222", "ccc333", "ddd444"])
    monkeypatch.setattr(ck, "_git_commit", lambda: next(commits))
    cfg = smoke()
    Trainer(cfg, tmp_path, quiet=True).fit(stop_at=2)  # process 1 reads the commit once: aaa111
    first = load_checkpoint(tmp_path / "checkpoint.pt")
    assert first["meta"]["git_commit"] == "aaa111"
    assert [s["git_commit"] for s in first["segments"]] == ["aaa111"]
    summary = Trainer(cfg, tmp_path, quiet=True).fit(resume=True)  # process 2: bbb222
    last = load_checkpoint(tmp_path / "checkpoint.pt")
    assert last["meta"]["git_commit"] == "bbb222"  # not a commit read at save time (ccc333)
    assert [(s["from_step"], s["git_commit"]) for s in last["segments"]] == [(0, "aaa111"), (2, "bbb222")]
    assert summary["segments"] == last["segments"]
    assert json.loads((tmp_path / "done.json").read_text())["segments"] == last["segments"]


def test_resume_of_a_checkpoint_without_segments_keeps_its_metadata(tmp_path):
    cfg = smoke()
    Trainer(cfg, tmp_path, quiet=True).fit(stop_at=2)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    del ckpt["segments"]
    ckpt["meta"]["git_commit"] = "old0000"
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    Trainer(cfg, tmp_path, quiet=True).fit(resume=True)
    segs = load_checkpoint(tmp_path / "checkpoint.pt")["segments"]
    assert [s["from_step"] for s in segs] == [0, 2] and segs[0]["git_commit"] == "old0000"


def test_select_teacher_validates_both_and_ships_the_better_one(tmp_path, monkeypatch):
    from mosslib.apps.export import model_card

    cfg = smoke(**{"optim.select_teacher": "true"})
    assert cfg.optim.select_teacher and config_hash(cfg) != config_hash(smoke())
    tr = Trainer(cfg, tmp_path, quiet=True)
    real = Trainer.validate

    def teacher_wins(self, net="student"):  # the teacher scores 1 dB above the student
        out = real(self, net)
        if net == "teacher":
            out["val_psnr"] += 1.0
        return out

    monkeypatch.setattr(Trainer, "validate", teacher_wins)
    tr.fit()
    rec = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines() if "val_psnr" in line]
    assert all("teacher_val_psnr" in r for r in rec)
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["best"]["net"] == "teacher" and best["best"]["psnr"] == max(r["teacher_val_psnr"] for r in rec)
    # the stored model is the teacher of that step (here the last validation: the last step)
    assert best["step"] == cfg.optim.steps
    for k, v in tr.teacher.net.state_dict().items():
        assert torch.equal(best["model"][k], v), k
    assert any(not torch.equal(best["model"][k], v) for k, v in tr.model.state_dict().items() if v.is_floating_point())
    assert "EMA teacher" in model_card(tmp_path)["selection"]


def test_select_teacher_stores_whichever_scores_higher_unpatched(tmp_path):
    cfg = smoke(**{"optim.select_teacher": "true", "optim.pretrain_steps": 0})
    tr = Trainer(cfg, tmp_path, quiet=True)
    tr.fit()
    rec = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines() if "val_psnr" in line]
    best = load_checkpoint(tmp_path / "best.pt")
    r = next(r for r in rec if r["step"] == best["step"])
    assert best["best"]["net"] == ("teacher" if r["teacher_val_psnr"] > r["val_psnr"] else "student")
    assert best["best"]["psnr"] == max(r["val_psnr"], r["teacher_val_psnr"])


def test_bf16_training_warns_where_there_are_no_bf16_kernels(tmp_path, monkeypatch):
    import mosslib.model.fast as fast

    monkeypatch.setattr(fast, "bf16_supported", lambda device="cpu": False)
    with pytest.warns(RuntimeWarning, match="without bf16 kernels"):
        Trainer(smoke(**{"optim.precision": "bf16"}), tmp_path / "a", quiet=True)
    monkeypatch.setattr(fast, "bf16_supported", lambda device="cpu": True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        Trainer(smoke(**{"optim.precision": "bf16"}), tmp_path / "b", quiet=True)
        Trainer(smoke(), tmp_path / "c", quiet=True)


def test_commit_named_by_the_environment_wins_over_git(monkeypatch):
    from mosslib.method import checkpoint as ck

    monkeypatch.setattr(ck, "_git_rev", lambda: "def5678-dirty")  # a stale .git copied along
    assert ck.run_metadata()["git_commit"] == "def5678-dirty"
    monkeypatch.setenv("MOSSLIB_GIT_COMMIT", "abc1234")
    assert ck.run_metadata()["git_commit"] == "abc1234"


def test_selection_policy_prefers_the_higher_mean_among_those_above_the_labeled_floor():
    from mosslib.method.selection import SelectionPolicy

    s = {"val_psnr": 29.62, "val_ssim": 0.92, "val_psnr_labeled": 32.13}
    t = {"val_psnr": 29.56, "val_ssim": 0.93, "val_psnr_labeled": 32.17}
    plain, floor, high = SelectionPolicy(), SelectionPolicy(min_labeled=32.159), SelectionPolicy(min_labeled=32.2)
    assert plain.candidate(5, s) == {"step": 5, "psnr": 29.62, "ssim": 0.92}  # no teacher: no "net"
    assert plain.candidate(5, s, t)["net"] == "student"
    assert floor.candidate(5, s, t) == {"step": 5, "psnr": 29.56, "ssim": 0.93, "net": "teacher"}
    assert high.candidate(5, s, t) is None and high.candidate(5, s, None) is None
    assert plain.candidate(5, s, dict(s))["net"] == "student"  # ties: the student
    # without extra rained groups the floor applies to the mean over all pairs
    assert SelectionPolicy(min_labeled=29.0).candidate(1, {"val_psnr": 30.0, "val_ssim": 0.9})["psnr"] == 30.0


def test_selection_policy_reads_old_and_new_configurations():
    """The policy lives in three config fields whose meaning is unchanged: a configuration saved
    before they existed (no keys) reads as the plain rule, and a TrainConfig and its saved dict agree."""
    from mosslib.method.selection import SelectionPolicy

    assert SelectionPolicy.of({"optim": {"lr": 1e-4}, "data": {}}) == SelectionPolicy()
    cfg = smoke(**{"optim.select_teacher": "true", "optim.select_min_labeled": "31.5", "data.val_extra_rain": "dense, heavy"})
    policy = SelectionPolicy.of(cfg)
    assert policy == SelectionPolicy(teacher=True, min_labeled=31.5, extra_rain=("dense", "heavy"))
    assert SelectionPolicy.of(to_dict(cfg)) == policy
    assert SelectionPolicy.of(config_from_dict(json.loads(json.dumps(to_dict(cfg))))) == policy


def test_select_min_labeled_passes_over_candidates_below_it(tmp_path):
    from mosslib.model.config import to_dict
    from mosslib.apps.export import export_model, selection_rule
    from mosslib.method.checkpoint import CheckpointError

    base = smoke()
    cfg = smoke(**{"optim.select_min_labeled": "1000"})  # unreachable: no candidate qualifies
    assert config_hash(base) == config_hash(smoke(**{"optim.select_min_labeled": "0"}))
    assert config_hash(cfg) != config_hash(base)
    with pytest.warns(RuntimeWarning, match="select_min_labeled"):
        summary = Trainer(cfg, tmp_path, quiet=True).fit()
    assert summary["best"]["step"] == -1 and not (tmp_path / "best.pt").exists()
    rec = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines() if "val_psnr" in line]
    assert rec and all(r["below_select_min_labeled"] for r in rec)
    with pytest.raises(CheckpointError, match="select_min_labeled=1000"):
        export_model(tmp_path, tmp_path / "m.pt")
    assert "passed over" in selection_rule(to_dict(cfg)) and "passed over" not in selection_rule(to_dict(base))
