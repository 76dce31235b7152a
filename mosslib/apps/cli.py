"""``python -m mosslib COMMAND ...``: one sub-command per module, imported only when used.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from .. import __version__

__all__ = ["COMMANDS", "main", "build_parser"]

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "datasets": ("mosslib.apps.datasets", "detect a data set's layout, splits and counts"),
    "train": ("mosslib.apps.train", "pre-train and self-train MOEDN (MOSS) with a profile"),
    "evaluate": ("mosslib.apps.evaluate", "PSNR/SSIM of a model, or of the rainy inputs, on a test set"),
    "derain": ("mosslib.apps.derain", "derain your own photos (files, folders, globs)"),
    "memory": ("mosslib.apps.memory", "is the rain memory used? usage, read sharpness, norms and ablations of a model's memory"),
    "export": ("mosslib.apps.export", "export a run's best model (fp16) with a model card, e.g. the shipped model"),
    "bench": ("mosslib.apps.bench", "side-by-side speed benchmark of MOEDN and its peers"),
    "book": ("mosslib.apps.book", "execute the reproduction book's notebooks with papermill"),
    "site": ("mosslib.apps.site", "render the executed book (and its claims ledger) as static HTML pages"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser(command: str) -> argparse.ArgumentParser:
    """The argument parser of one command (its module imported)."""
    module_name, help_text = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"python -m mosslib {command}", description=help_text)
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def _usage(available: dict[str, tuple[str, str]]) -> str:
    width = max(len(k) for k in available)
    lines = ["usage: python -m mosslib COMMAND [options]   (COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {k.ljust(width)}  {v[1]}" for k, v in available.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    available = _available()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(available))
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"mosslib {__version__}")
        return 0
    command = argv[0]
    if command not in available:
        print(f"error: unknown command {command!r}\n\n{_usage(available)}", file=sys.stderr)
        return 2
    args = build_parser(command).parse_args(argv[1:])
    return int(args._run(args) or 0)
