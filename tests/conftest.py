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


def tiny_config():
    """A MOEDN small enough for unit tests (8 features, 3 blocks, 2 scales, 16 memory items)."""
    from mosslib.model.config import ModelConfig

    return ModelConfig(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=1, memory_items=16)


@pytest.fixture
def tiny_model_config():
    return tiny_config()


@pytest.fixture(scope="session")
def tiny_moedn(tmp_path_factory):
    """(model, checkpoint path) of a tiny MOEDN (seed 0, eval mode), shared: copy it to change it."""
    from mosslib.method.checkpoint import save_model
    from mosslib.model.network import MOEDN

    torch.manual_seed(0)
    model = MOEDN(tiny_config()).eval()
    return model, save_model(model, tmp_path_factory.mktemp("ckpt") / "tiny.pt")
