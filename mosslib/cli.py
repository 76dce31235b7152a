"""Compatibility for console scripts installed before the role folders: ``.venv/bin/mosslib`` of an
older install calls ``mosslib.cli:main``. The command line is :mod:`mosslib.apps.cli`."""
from .apps.cli import main

__all__ = ["main"]
