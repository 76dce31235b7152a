"""Memory views (mosslib.apps.explorer) on a tiny untrained MOEDN and numpy images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from mosslib.apps import explorer as mv
from mosslib.model.config import ModelConfig
from mosslib.model.network import MOEDN

TINY = dict(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=1, memory_items=16)


def tiny_model(seed: int = 0, **kw) -> MOEDN:
    torch.manual_seed(seed)
    return MOEDN(ModelConfig(**{**TINY, **kw})).eval()


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module", params=[True, False], ids=["fused", "paper-strict"])
def model(request):
    return tiny_model(fuse=request.param)


def test_tensor_round_trip_is_exact():
    img = image(5, 7)
    x = mv.to_tensor(img)
    assert x.shape == (1, 3, 5, 7) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(mv.to_uint8(x), img)
    with pytest.raises(ValueError, match="uint8"):
        mv.to_tensor(img.astype(np.float32))


def test_analyse_matches_the_network(model):
    img = image(30, 21)  # not a multiple of 4: padded inside
    an = mv.analyse(model, img)
    h, w = 8, 6  # ceil(30/4), ceil(21/4)
    assert an.attention.shape == (16, h, w) and an.nearest.shape == (h, w)
    np.testing.assert_allclose(an.attention.sum(0), 1.0, atol=1e-5)  # softmax over items (Eq. 4)
    assert np.array_equal(an.nearest, an.attention.argmax(0))
    with torch.inference_mode():
        x = mv.to_tensor(img)
        ref_att = model.attention(x)[0].numpy()
        ref_near = model.memory.assign(model.encode(x))[0].numpy()
    np.testing.assert_allclose(an.attention, ref_att, rtol=1e-5, atol=1e-7)
    assert np.array_equal(an.nearest, ref_near)
    assert np.array_equal(an.derained, mv.derain_image(model, img))
    assert an.residual.shape == img.shape and an.residual.dtype == np.uint8


def test_analyse_refuses_a_model_without_memory():
    with pytest.raises(ValueError, match="no memory"):
        mv.analyse(tiny_model(use_memory=False), image(8, 8))


def test_attention_map_upsamples_to_the_image(model):
    an = mv.analyse(model, image(30, 21))
    amap = mv.attention_map(an, 3)
    assert amap.shape == (30, 21)
    # bilinear up-sampling keeps values inside the range of the latent map
    assert amap.min() >= an.attention[3].min() - 1e-7 and amap.max() <= an.attention[3].max() + 1e-7
    # the centre of latent cell (1, 2) is at pixel (1.5*4, 2.5*4) = (6, 10) -> close to that cell's value
    assert abs(amap[6, 10] - an.attention[3, 1, 2]) < 0.5 * np.ptp(an.attention[3]) + 1e-9
    with pytest.raises(ValueError, match="out of range"):
        mv.attention_map(an, 16)
    over = mv.attention_overlay(an.rainy, amap)
    assert over.shape == an.rainy.shape and over.dtype == np.uint8


def test_residual_image():
    a = image(6, 6)
    assert not mv.residual_image(a, a).any()
    b = a.copy()
    b[0, 0, 0] = 255 - b[0, 0, 0]
    assert mv.residual_image(a, b, gain=1.0)[0, 0, 0] == abs(int(a[0, 0, 0]) - int(b[0, 0, 0]))


def test_nearest_map_colours_each_cell_by_its_item(model):
    an = mv.analyse(model, image(16, 16))
    out = mv.nearest_map_image(an, alpha=1.0)
    colors = mv.item_colors(an.num_items)
    assert np.array_equal(out[5, 9], colors[an.nearest[1, 2]])
    assert len({tuple(c) for c in colors}) == len(colors)  # distinct colours


def test_index_usage_counts_every_query(model):
    imgs = {"a": image(16, 24, 1), "b": image(20, 20, 2)}
    idx = mv.build_index(model, imgs)
    assert idx.counts.sum() == 4 * 6 + 5 * 5
    expected = np.zeros(16, np.int64)
    with torch.inference_mode():
        for img in imgs.values():
            expected += np.bincount(model.memory.assign(model.encode(mv.to_tensor(img))).flatten().numpy(), minlength=16)
    assert np.array_equal(idx.counts, expected)
    s = mv.usage_summary(idx.counts)
    assert s["alive"] == (expected > 0).sum() and s["alive"] + s["never_chosen"] == 16
    assert s["top_item"] == expected.argmax()


def test_nearest_patches_find_a_planted_query():
    model = tiny_model(1)
    imgs = {"a": image(16, 16, 3), "b": image(24, 16, 4)}
    with torch.inference_mode():
        z = model.encode(mv.to_tensor(imgs["b"]))  # (1, c, 6, 4)
        model.memory.items[5] = F.normalize(z[0, :, 4, 1], dim=0)  # item 5 := the query at (4, 1) of b
    idx = mv.build_index(model, imgs)
    patches = idx.nearest_patches(5, k=3, patch=8)
    assert [p.image for p in patches][0] == "b" and (patches[0].row, patches[0].col) == (4, 1)
    assert patches[0].similarity == pytest.approx(1.0, abs=1e-5)
    sims = [p.similarity for p in patches]
    assert sims == sorted(sims, reverse=True)
    # the patch is centred on the latent cell: pixels (16..24, 2..10) of b
    assert np.array_equal(patches[0].pixels, imgs["b"][14:22, 2:10])
    # a patch at the border is still patch x patch (edge padding)
    corner = idx._crop(imgs["a"], 0, 0, 12)
    assert corner.shape == (12, 12, 3)
    with pytest.raises(ValueError, match="out of range"):
        idx.nearest_patches(99)
    mosaic = mv.patch_mosaic(patches, ncols=2, scale=2, gap=1)
    assert mosaic.shape == (2 * 16 + 1, 2 * 16 + 1, 3)


def test_pca_shares_axes_and_keeps_planar_geometry():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(10, 2)))[0]  # (10, 2) orthonormal
    centre = rng.normal(size=10) * 5
    pts = rng.normal(size=(40, 2)) * [3.0, 1.0]
    items = torch.tensor(pts @ basis.T + centre)
    items = items / items.norm(dim=1, keepdim=True) * 1.0
    (a,), (b, c) = mv.pca_2d([items]), mv.pca_2d([items, items.clone()])
    assert np.allclose(b, c)  # same memory, same coordinates
    assert np.allclose(a, b)
    # unit items in a 3-d affine subspace: the two PCs hold almost all variance of the centred set
    d_orig = np.linalg.norm(items.numpy()[:, None] - items.numpy()[None], axis=-1)
    d_proj = np.linalg.norm(a[:, None] - a[None], axis=-1)
    assert d_proj.max() <= d_orig.max() + 1e-9
    moved = items.clone()
    moved[0] = -moved[0]
    p, q = mv.pca_2d([items, moved])
    assert np.allclose(p[1:], q[1:]) and not np.allclose(p[0], q[0])


def test_item_from_x():
    assert mv.item_from_x(3.4, 16) == 3 and mv.item_from_x(-0.4, 16) == 0
    assert mv.item_from_x(15.6, 16) is None and mv.item_from_x(None, 16) is None
    assert mv.item_from_x(float("nan"), 16) is None


def test_figures(model):
    an = mv.analyse(model, image(16, 16))
    idx = mv.build_index(model, {"a": image(16, 16)})
    figs = [mv.fig_triptych(an, "t"), mv.fig_nearest(an), mv.fig_usage(idx.counts, 2), mv.fig_attention(an, 2),
            mv.fig_gallery(idx.nearest_patches(2, 5), 2), mv.fig_pca({"x": idx.items.numpy()[:, :2]}, {"x": idx.counts}, 1)]
    assert all(isinstance(f, Figure) for f in figs)
    assert len(figs[0].axes) == 3
    s = mv.usage_summary(idx.counts)
    assert f"{s['alive']} of 16 items alive" in figs[2].axes[0].get_title()
    assert mv.figure_png(figs[1]).startswith(b"\x89PNG")


def test_comparison_grid():
    rows = [{"input": image(20, 30, i), "MOSS": image(20, 30, i + 9)} for i in range(3)]
    fig = mv.comparison_grid(rows, titles=["a", "b", "c"], zoom=(0.2, 0.3, 0.4))
    assert len(fig.axes) == 2 * 2 * 3
    assert len(mv.comparison_grid(rows).axes) == 6
    with pytest.raises(ValueError, match="row 1"):
        mv.comparison_grid([rows[0], {"MOSS": rows[1]["MOSS"]}])


def test_memory_views_cache_and_static_figures(tmp_path):
    pre, post = tiny_model(0), tiny_model(0)
    with torch.no_grad():
        post.memory.items.copy_(F.normalize(post.memory.items + 0.3 * torch.randn_like(post.memory.items), dim=1))
    views = mv.MemoryViews({"pre-trained": pre, "self-trained": post}, {"a": image(16, 16, 1), "b": image(12, 20, 2)})
    first = views.analysis("pre-trained", "a")
    assert views.analysis("pre-trained", "a") is first
    views.add_image("a", image(16, 16, 5))
    assert views.analysis("pre-trained", "a") is not first
    assert views.usage("self-trained").sum() == 16 + 15
    coords = views.pca()
    assert set(coords) == {"pre-trained", "self-trained"} and coords["pre-trained"].shape == (16, 2)
    assert views.default_item("pre-trained") == int(views.usage("pre-trained").argmax())
    written = mv.save_memory_figures(views, tmp_path / "figs", items=[0, 1], k=3)
    names = {p.name for p in written}
    assert "memory_pca.png" in names and "memory_self_trained_attention_1.png" in names
    assert "memory_pre_trained_usage.png" in names and "memory_pre_trained_gallery_0.png" in names
    assert all(p.stat().st_size > 1000 for p in written)
    # a re-render that picks other items leaves no stale per-item figure behind
    (tmp_path / "figs" / "unrelated.png").write_bytes(b"x")
    mv.save_memory_figures(views, tmp_path / "figs", items=[2], k=3)
    on_disk = {p.name for p in (tmp_path / "figs").iterdir()}
    assert "memory_self_trained_attention_2.png" in on_disk and "memory_pre_trained_gallery_2.png" in on_disk
    assert not any(n.endswith(("_attention_0.png", "_attention_1.png", "_gallery_0.png", "_gallery_1.png")) for n in on_disk)
    assert "unrelated.png" in on_disk and "memory_pca.png" in on_disk
    with pytest.raises(ValueError, match="different sizes"):
        mv.MemoryViews({"a": pre, "b": tiny_model(memory_items=8)}, {})


def test_bf16_analysis_is_close_to_fp32(model):
    img = image(32, 32, 7)
    a32 = mv.analyse(model, img)
    a16 = mv.analyse(model, img, precision="bf16")
    assert a16.attention.dtype == np.float32
    np.testing.assert_allclose(a16.attention, a32.attention, atol=2e-3)
    assert np.abs(a16.derained.astype(int) - a32.derained.astype(int)).max() <= 8
    assert (a16.nearest == a32.nearest).mean() > 0.8
    with pytest.raises(ValueError, match="precision"):
        mv.analyse(model, img, precision="fp16")


def _save_model(model: MOEDN, path) -> None:
    from mosslib.method.checkpoint import atomic_save
    from mosslib.model.config import to_dict

    atomic_save({"format": "mosslib", "version": 1, "kind": "model", "config": {"model": to_dict(model.cfg)},
                 "model": model.state_dict(), "meta": {}}, path)


def test_run_checkpoints_reads_pretrain_and_best(tmp_path):
    from mosslib.method.checkpoint import CheckpointError

    pre, post = tiny_model(0), tiny_model(1)
    _save_model(post, tmp_path / "best.pt")
    assert list(mv.run_checkpoints(tmp_path)) == ["self-trained"]
    _save_model(pre, tmp_path / "pretrain.pt")
    models = mv.run_checkpoints(tmp_path)
    assert list(models) == ["pre-trained", "self-trained"]
    assert torch.equal(models["pre-trained"].memory.items, pre.memory.items)
    assert not models["self-trained"].training
    with pytest.raises(CheckpointError, match="no pretrain.pt or best.pt"):
        mv.run_checkpoints(tmp_path / "empty")


def test_run_image_sets_follow_the_run_configuration(tmp_path):
    import json

    from mosslib.model.config import to_dict
    from mosslib.data.imageio import write_rgb
    from mosslib.method.profiles import make_config

    data = tmp_path / "data" / "DDN-SIRR"
    for n in (1, 2, 11, 12):
        write_rgb(data / "input_val" / f"input{n}.png", image(8, 8, n))
        write_rgb(data / "label_val" / f"norain{n}.png", image(8, 8, n + 50))
    for n in range(1, 6):
        write_rgb(data / "real_input" / f"{n}.png", image(8, 8, n + 100))
    run = tmp_path / "run"
    run.mkdir()
    cfg = make_config("smoke", "full", data_root=str(tmp_path / "data"))
    (run / "config.json").write_text(json.dumps(to_dict(cfg)))
    sets = mv.run_image_sets(run)
    assert [k.split("/")[1] for k in sets["test"]] == ["dense", "dense", "sparse", "sparse"]
    assert [p.name for p in sets["test"].values()] == ["input1.png", "input2.png", "input11.png", "input12.png"]
    assert all(p.is_file() for p in sets["test"].values())
    assert len(sets["real"]) == 5 and all(k.startswith("real/") for k in sets["real"])
    few = mv.run_image_sets(run, max_per_source=2)
    assert len(few["test"]) == 2 and len(few["real"]) == 2


def test_spread():
    assert mv.spread(range(10), 3) == [0, 3, 6]
    assert mv.spread([1, 2], 5) == [1, 2] and mv.spread([1, 2, 3], None) == [1, 2, 3]
