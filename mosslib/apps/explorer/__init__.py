"""The memory explorer: views of the rain memory (paper section 3.1.2, Eq. 1-4) over a trained
MOEDN and a set of images, their figures, and the notebook widgets (:mod:`.widgets`).

This package's namespace gathers the views (:mod:`.analysis`), the figures (:mod:`.figures`) and
the cached state over checkpoints x images (:mod:`.views`), so notebooks write
``from mosslib.apps import explorer as mv; mv.MemoryViews(...)``.
"""
from .analysis import to_tensor, to_uint8, derain_image, residual_image, ImageAnalysis, analyse, attention_map, attention_overlay, item_colors, nearest_map_image, Patch, MemoryIndex, build_index, usage_summary, pca_2d, PRECISIONS
from .figures import figure_png, fig_triptych, fig_nearest, item_from_x, fig_usage, fig_attention, fig_gallery, patch_mosaic, fig_pca, comparison_grid
from .views import MemoryViews, save_memory_figures, usage_table, run_checkpoints, spread, run_image_sets, CHECKPOINTS

__all__ = ["to_tensor", "to_uint8", "derain_image", "residual_image", "ImageAnalysis", "analyse", "attention_map", "attention_overlay", "item_colors", "nearest_map_image", "Patch", "MemoryIndex", "build_index", "usage_summary", "pca_2d", "PRECISIONS", "figure_png", "fig_triptych", "fig_nearest", "item_from_x", "fig_usage", "fig_attention", "fig_gallery", "patch_mosaic", "fig_pca", "comparison_grid", "MemoryViews", "save_memory_figures", "usage_table", "run_checkpoints", "spread", "run_image_sets", "CHECKPOINTS"]
