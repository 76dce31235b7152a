"""The method: MOSS losses (Eq. 6-12), the EMA teacher, the training step and loop, selection,
runs (cache, fork, resume) and checkpoints."""
