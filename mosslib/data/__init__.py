"""Data: the image convention, image files, benchmark layouts, procedural rain, the embedded
set and sampling. Knows nothing of training or screens."""
