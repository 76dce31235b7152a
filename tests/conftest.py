import os
from pathlib import Path

import pytest
import torch

# Test workloads are tiny: one thread is faster for them and immune to oversubscription when
# other processes share the cores (with 2 busy threads a tiny conv can be 20x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by notebook kernels and workers
torch.set_num_threads(1)

SHARED_DATA = Path(os.environ.get("DATA_ROOT") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture
def shared_data() -> Path:
    """The real data beside the checkout (../shared/data); the test is skipped without it."""
    if not (SHARED_DATA / "DDN-SIRR").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def tiny_model_config():
    from mosslib.config import ModelConfig

    return ModelConfig(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=1, memory_items=16)
