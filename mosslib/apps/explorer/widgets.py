"""ipywidgets wiring of the memory explorer and of the blind preference study.

Only wiring lives here: every view comes from :mod:`mosslib.apps.explorer` and every piece of study
state from :mod:`mosslib.apps.userstudy`. Images are shown with ``ipywidgets.Image`` (PNG bytes),
so a notebook needs no interactive matplotlib backend. The usage histogram is shown as a
picture; its matplotlib figure (``MemoryExplorer.usage_figure``) is wired so that a click on a
bar selects that item wherever the figure is live (e.g. ``display(explorer.usage_figure.canvas)``
under ipympl); the item slider selects everywhere.
"""
from __future__ import annotations

import io
import time
from typing import Mapping, Sequence

import ipywidgets as W
import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from . import analysis as memory
from . import figures, views
from ..userstudy import PreferenceStudy, fig_selection, tally
from ...data.imageio import to_rgb8

__all__ = ["MemoryExplorer", "PreferenceWidget", "png", "decode_upload"]

UPLOADED = "uploaded"


def png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) array."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def decode_upload(entry: Mapping) -> tuple[str, np.ndarray]:
    """(name, uint8 RGB image) of one ``FileUpload`` value entry; a clear error otherwise."""
    name = str(entry.get("name", "upload"))
    try:
        img = Image.open(io.BytesIO(bytes(entry["content"])))
        img.load()
    except (UnidentifiedImageError, OSError, KeyError) as exc:
        raise ValueError(f"{name}: the uploaded file is not an image Pillow can read ({exc})") from exc
    return name, to_rgb8(img)


def _image_widget(css: str, width: str = "auto") -> W.Image:
    w = W.Image(format="png", layout=W.Layout(width=width, max_width="100%", height="auto"))
    w.add_class(css)
    return w


class MemoryExplorer:
    """The memory explorer (05_memory): checkpoint, image source, image (or an upload) and
    item controls; each view is recomputed only when what it depends on changes.

    ``views``: a :class:`~mosslib.apps.explorer.views.MemoryViews`; ``sources``: label -> image names in
    ``views`` (e.g. {"test": [...], "real": [...]}); an "uploaded" source collects uploads.
    """

    def __init__(self, views: views.MemoryViews, sources: Mapping[str, Sequence[str]] | None = None, k: int = 8):
        self.views, self.k = views, k
        self.sources = {s: list(n) for s, n in (sources or {"images": views.image_names}).items()}
        self.sources.setdefault(UPLOADED, [])
        first_source = next(s for s, n in self.sources.items() if n) if any(self.sources.values()) else UPLOADED
        ckpts = list(views.models)
        self.checkpoint = W.Dropdown(options=ckpts, value=ckpts[-1], description="checkpoint")
        self.source = W.ToggleButtons(options=list(self.sources), value=first_source, description="images")
        self.image = W.Dropdown(options=self.sources[first_source], description="image")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.item = W.IntSlider(min=0, max=views.num_items - 1, value=views.default_item(ckpts[-1]),
                                description="item", continuous_update=False, layout=W.Layout(width="600px"))
        self.item.add_class("moss-item")
        self.top_items = W.Dropdown(description="most used", layout=W.Layout(width="260px"))
        self.status = W.HTML()
        # displayed sizes are fixed, so small images are enlarged and large ones fit the page
        self.triptych = _image_widget("moss-triptych", "960px")
        self.nearest = _image_widget("moss-nearest", "400px")
        self.usage = _image_widget("moss-usage", "700px")
        self.attention = _image_widget("moss-attention", "400px")
        self.gallery = _image_widget("moss-gallery", "400px")
        self.pca = _image_widget("moss-pca", "560px")
        self.timings: dict[str, float] = {}

        self.checkpoint.observe(lambda ch: self.refresh("checkpoint"), names="value")
        self.source.observe(self._on_source, names="value")
        self.image.observe(lambda ch: self.refresh("image"), names="value")
        self.item.observe(lambda ch: self.refresh("item"), names="value")
        self.top_items.observe(lambda ch: ch["new"] is not None and self.select_item(ch["new"]), names="value")
        self.upload.observe(self._on_upload, names="value")

        self.widget = W.VBox([
            W.HBox([self.checkpoint, self.source]),
            W.HBox([self.image, self.upload]),
            self.status,
            self.triptych,
            W.HBox([self.nearest, self.pca], layout=W.Layout(align_items="flex-start")),
            W.HTML("<b>Item usage over the image set</b>: pick an item with the slider or among the most used"),
            self.usage,
            W.HBox([self.item, self.top_items]),
            W.HBox([self.attention, self.gallery], layout=W.Layout(align_items="flex-start")),
        ])
        self.widget.add_class("moss-explorer")
        self.refresh("all")

    # -- actions --------------------------------------------------------------------------
    def select_item(self, item: int) -> None:
        self.item.value = int(np.clip(item, 0, self.views.num_items - 1))

    def click_usage(self, x: float | None) -> int | None:
        """A click at data coordinate ``x`` of the usage histogram selects the item there."""
        item = figures.item_from_x(x, self.views.num_items)
        if item is not None:
            self.select_item(item)
        return item

    def _on_source(self, change) -> None:
        names = self.sources[change["new"]]
        self.image.options = names  # selects the first name, which refreshes
        if not names:
            self.refresh("image")

    def _on_upload(self, change) -> None:
        value = change["new"]
        if not value:
            return
        try:
            name, image = decode_upload(value[-1])
        except ValueError as exc:
            self.status.value = f"<span style='color:#b00'>{exc}</span>"
            return
        key = f"{UPLOADED}/{name}"
        self.views.add_image(key, image)
        if key not in self.sources[UPLOADED]:
            self.sources[UPLOADED].append(key)
        if self.source.value != UPLOADED:
            self.source.value = UPLOADED  # sets the options and selects the first
        self.image.options = list(self.sources[UPLOADED])
        if self.image.value == key:
            self.refresh("image")
        else:
            self.image.value = key

    # -- rendering ------------------------------------------------------------------------
    def refresh(self, what: str = "all") -> None:
        """Recompute the views that depend on ``what``: all, checkpoint, image or item."""
        ckpt, name, item = self.checkpoint.value, self.image.value, self.item.value
        t0 = time.perf_counter()
        if what in ("all", "checkpoint", "item"):  # the selected item is marked in both
            self._render_usage()
            usage = {c: self.views.usage(c) for c in self.views.models}
            self.pca.value = figures.figure_png(figures.fig_pca(self.views.pca(), usage, item))
        analysis = None
        if name is not None:
            t = time.perf_counter()
            analysis = self.views.analysis(ckpt, name)
            self.timings["analysis"] = time.perf_counter() - t
            if what in ("all", "checkpoint", "image"):
                strip = np.concatenate([analysis.rainy, analysis.derained, analysis.residual], axis=1)
                self.triptych.value = png(strip)
                self.nearest.value = png(memory.nearest_map_image(analysis))
        t = time.perf_counter()
        if analysis is not None:
            self.attention.value = png(memory.attention_overlay(analysis.rainy, memory.attention_map(analysis, item)))
        self.gallery.value = png(figures.patch_mosaic(self.views.index(ckpt).nearest_patches(item, self.k), ncols=4))
        self.timings["item"] = time.perf_counter() - t
        self.timings["total"] = time.perf_counter() - t0
        s = memory.usage_summary(self.views.usage(ckpt))
        shape = "" if analysis is None else f"{analysis.rainy.shape[1]}x{analysis.rainy.shape[0]}, "
        self.status.value = (
            f"<code>{name}</code> ({shape}checkpoint <b>{ckpt}</b>): input | derained | residual. "
            f"Item {item} used {int(self.views.usage(ckpt)[item])}x; {s['alive']}/{s['items']} items alive, "
            f"{s['never_chosen']} never chosen. Refresh {self.timings['total'] * 1000:.0f} ms."
        )

    def _render_usage(self) -> None:
        counts = self.views.usage(self.checkpoint.value)
        top = [int(i) for i in np.argsort(-counts, kind="stable")[:20] if counts[i] > 0]
        options = [(f"item {i} ({int(counts[i])}x)", i) for i in top]
        if list(self.top_items.options) != options:
            self.top_items.options = options
        self.top_items.value = self.item.value if self.item.value in top else None
        fig = figures.fig_usage(counts, self.item.value, self.checkpoint.value)
        # a live canvas (ipympl) delivers clicks here; the picture below is the static view
        fig.canvas.mpl_connect("button_press_event", lambda ev: self.click_usage(ev.xdata))
        self.usage_figure = fig
        self.usage.value = figures.figure_png(fig)


class PreferenceWidget:
    """The blind pairwise preference study (06_real_world): two unlabeled outputs, buttons
    "left", "right", "same", progress, and the selection chart refreshed after each answer."""

    def __init__(self, study: PreferenceStudy, display_width: int = 420):
        self.study = study
        self.left = _image_widget("moss-left", f"{display_width}px")
        self.right = _image_widget("moss-right", f"{display_width}px")
        self.buttons = {c: W.Button(description=c, layout=W.Layout(width="120px")) for c in ("left", "same", "right")}
        for choice, button in self.buttons.items():
            button.add_class(f"moss-choose-{choice}")
            button.on_click(lambda _b, c=choice: self.choose(c))
        self.progress = W.HTML()
        self.chart = _image_widget("moss-chart")
        self.widget = W.VBox([
            self.progress,
            W.HBox([self.left, self.right], layout=W.Layout(align_items="flex-start")),
            W.HBox(list(self.buttons.values())),
            self.chart,
        ])
        self.refresh()

    def choose(self, choice: str) -> None:
        if self.study.finished:
            return
        self.study.record(choice)
        self.refresh()

    def refresh(self) -> None:
        done, total = self.study.progress
        if self.study.finished:
            self.progress.value = f"<b>Session complete</b> ({done} of {total} comparisons). Thank you."
            for b in self.buttons.values():
                b.disabled = True
        else:
            a, b = self.study.images()
            self.left.value, self.right.value = png(a), png(b)
            self.progress.value = f"Comparison {done + 1} of {total}: which image has less rain and a cleaner background?"
        table = tally(self.study.csv_path, self.study.methods)
        self.chart.value = figures.figure_png(fig_selection(table))
