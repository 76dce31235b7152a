"""Widget wiring through the ipywidgets API: values and clicks update state, outputs and CSV."""
from __future__ import annotations

import io
from datetime import datetime, timezone

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.backend_bases import MouseEvent
from PIL import Image

from mosslib.apps import explorer as mv
from mosslib.apps import userstudy as us
from mosslib.apps.explorer import widgets as mw
from mosslib.model.config import ModelConfig
from mosslib.model.network import MOEDN

TINY = dict(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=1, memory_items=16)


def img(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture()
def explorer():
    torch.manual_seed(0)
    pre = MOEDN(ModelConfig(**TINY)).eval()
    post = MOEDN(ModelConfig(**TINY)).eval()
    post.load_state_dict(pre.state_dict())
    with torch.no_grad():
        post.memory.items.copy_(F.normalize(post.memory.items + torch.randn_like(post.memory.items), dim=1))
    images = {"test/a": img(16, 16, 1), "test/b": img(20, 12, 2), "real/c": img(16, 24, 3)}
    with torch.no_grad():  # plant queries as items 3, 6, 9: several items alive, most never chosen
        for item, (name, r, c) in zip((3, 6, 9), (("test/a", 0, 0), ("test/b", 4, 2), ("real/c", 2, 5))):
            z = post.encode(mv.to_tensor(images[name]))
            post.memory.items[item] = F.normalize(z[0, :, r, c], dim=0)
    views = mv.MemoryViews({"pre-trained": pre, "self-trained": post}, images)
    return mw.MemoryExplorer(views, {"test": ["test/a", "test/b"], "real": ["real/c"]}, k=4)


def test_explorer_initial_state(explorer):
    e = explorer
    assert e.checkpoint.value == "self-trained" and e.source.value == "test" and e.image.value == "test/a"
    assert e.item.max == 15 and e.item.value == e.views.default_item("self-trained")
    for w in (e.triptych, e.nearest, e.usage, e.attention, e.gallery, e.pca):
        assert bytes(w.value).startswith(b"\x89PNG")
    trip = Image.open(io.BytesIO(bytes(e.triptych.value)))
    assert trip.size == (3 * 16, 16)  # input | derained | residual
    assert "items alive" in e.status.value


def test_moving_the_item_changes_attention_and_gallery(explorer):
    e = explorer
    before = {w: bytes(getattr(e, w).value) for w in ("attention", "gallery", "usage", "triptych")}
    e.item.value = (e.item.value + 1) % 16
    assert bytes(e.attention.value) != before["attention"]
    assert bytes(e.gallery.value) != before["gallery"]
    assert bytes(e.usage.value) != before["usage"]  # the selected bar is marked
    assert bytes(e.triptych.value) == before["triptych"]  # the image views stay
    an = e.views.analysis("self-trained", "test/a")
    expected = mw.png(mv.attention_overlay(an.rainy, mv.attention_map(an, e.item.value)))
    assert bytes(e.attention.value) == expected


def test_image_source_and_checkpoint_controls(explorer):
    e = explorer
    trip = bytes(e.triptych.value)
    e.image.value = "test/b"
    assert bytes(e.triptych.value) != trip
    assert Image.open(io.BytesIO(bytes(e.triptych.value))).size == (3 * 12, 20)
    e.source.value = "real"
    assert list(e.image.options) == ["real/c"] and e.image.value == "real/c"
    usage = bytes(e.usage.value)
    e.checkpoint.value = "pre-trained"
    assert bytes(e.usage.value) != usage
    assert "pre-trained" in e.status.value
    e.source.value = "uploaded"  # nothing uploaded yet: no image, views still render
    assert e.image.value is None


NOW = datetime(2021, 6, 1, tzinfo=timezone.utc)


def test_upload_adds_and_selects_the_image(explorer):
    e = explorer
    buf = io.BytesIO()
    Image.fromarray(img(24, 8, 9)).save(buf, format="png")
    e.upload.value = ({"name": "mine.png", "type": "image/png", "size": len(buf.getvalue()),
                       "content": memoryview(buf.getvalue()), "last_modified": NOW},)
    assert e.source.value == "uploaded" and e.image.value == "uploaded/mine.png"
    assert Image.open(io.BytesIO(bytes(e.triptych.value))).size == (3 * 8, 24)
    e.upload.value = ({"name": "junk.png", "type": "image/png", "size": 3, "content": memoryview(b"abc"),
                       "last_modified": NOW},)
    assert "junk.png" in e.status.value and "not an image" in e.status.value


def test_clicking_the_usage_histogram_selects_an_item(explorer):
    e = explorer
    assert e.click_usage(7.2) == 7 and e.item.value == 7
    assert e.click_usage(99.0) is None and e.item.value == 7
    fig = e.usage_figure
    fig.canvas.draw()
    ax = fig.axes[0]
    x_px, y_px = ax.transData.transform((11, 0.5))
    fig.canvas.callbacks.process("button_press_event", MouseEvent("button_press_event", fig.canvas, x_px, y_px, 1))
    assert e.item.value == 11


def test_preference_widget_buttons_write_the_csv(tmp_path):
    rng = np.random.default_rng(0)
    outs = {p: {m: rng.integers(0, 256, (6, 6, 3), dtype=np.uint8) for m in ("A", "B", "C")} for p in ("p1", "p2")}
    csv = tmp_path / "user_study.csv"
    w = mw.PreferenceWidget(us.PreferenceStudy(outs, csv, session="s"))
    first = w.study.current
    left = bytes(w.left.value)
    assert left == mw.png(outs[first.photo][first.left])
    chart = bytes(w.chart.value)
    w.buttons["left"].click()
    rows = us.read_choices(csv)
    assert len(rows) == 1 and rows.loc[0, "winner"] == first.left and rows.loc[0, "choice"] == "left"
    assert bytes(w.chart.value) != chart
    assert "Comparison 2 of 6" in w.progress.value
    w.buttons["same"].click()
    w.buttons["right"].click()
    assert list(us.read_choices(csv)["choice"]) == ["left", "same", "right"]
    resumed = mw.PreferenceWidget(us.PreferenceStudy(outs, csv, session="s"))
    assert "Comparison 4 of 6" in resumed.progress.value
    for _ in range(3):
        resumed.buttons["left"].click()
    assert "complete" in resumed.progress.value and all(b.disabled for b in resumed.buttons.values())
    resumed.buttons["left"].click()  # disabled in the browser; a programmatic click changes nothing
    assert len(us.read_choices(csv)) == 6


def test_most_used_dropdown_lists_items_by_usage_and_selects(explorer):
    e = explorer
    counts = e.views.usage(e.checkpoint.value)
    values = [v for _, v in e.top_items.options]
    assert values == sorted(values, key=lambda i: (-counts[i], i)) and all(counts[i] > 0 for i in values)
    assert e.top_items.value == e.item.value == values[0]
    assert len(values) > 1  # several items alive, some never chosen, in this fixture
    e.top_items.value = values[1]
    assert e.item.value == values[1]
    unused = [i for i in range(16) if counts[i] == 0]
    e.item.value = unused[0]
    assert e.top_items.value is None
