"""Validation scores of model files by the trainer's own rule (`Trainer.validate`: RGB PSNR mean
over the `cpu` profile's 60 validation pairs - 20 held-out Rain100L train pairs and their dense /
heavy procedural renderings - and per group), computed on this machine with the same code for
each file: how a stage's rule compares a new model with the shipped one.

    python scripts/device/validate_models.py MODEL.pt [MODEL.pt ...]   (data: $DATA_ROOT or ../shared/data)
"""
import json
import os
import sys
import tempfile

from mosslib.method.checkpoint import load_model
from mosslib.method.profiles import make_config
from mosslib.method.trainer import Trainer

if len(sys.argv) < 2:
    sys.exit(__doc__)
cfg = make_config("cpu", "full", data_root=os.environ.get("DATA_ROOT", "../shared/data"),
                  overrides=["data.val_extra_rain=dense,heavy"])
with tempfile.TemporaryDirectory() as tmp:
    trainer = Trainer(cfg, tmp, quiet=True)
    for path in sys.argv[1:]:
        trainer.model.load_state_dict(load_model(path).state_dict())
        print(json.dumps({"model": path, **trainer.validate()}))
