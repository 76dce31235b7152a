"""mosslib: a reproduction of MOSS (Huang, Yu, He, CVPR 2021) as a small library and a book.

Folders by role, imports pointing one way (``apps`` -> ``method`` -> ``model``; ``method`` ->
``data``, ``measure``):

* ``model``: MOEDN (``network``, one forward walk), its ``memory``, ``config``, the ``fast``
  inference path, the peer ``baselines``;
* ``method``: MOSS's ``losses`` (Eq. 6-12, ``moss_loss``), ``teacher``, the ``step``, the
  ``trainer``, ``selection``, ``runs`` (cache, fork, resume), ``checkpoint``, ``profiles``;
* ``data``: ``images`` (the one pixel convention), ``imageio``, ``layouts`` (``open_dataset``),
  procedural ``rain``, the ``embedded`` set, ``sampling``;
* ``measure``: ``metrics``, ``stats``, ``paper`` numbers, ``evaluate``, ``tables``, ``memdiag``;
* ``apps``: the command line (``python -m mosslib --help`` lists the commands), ``derain``,
  the memory ``explorer``, ``userstudy``, the ``book`` runner, ``site``, ``bench``, ``export``.
"""
__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy export: ``mosslib.derain(image)`` (the module ``mosslib.apps.derain`` is callable) imports torch on first use."""
    if name == "derain":
        import importlib  # lazy: `import mosslib` stays light (no torch) until derain is used

        return importlib.import_module(".apps.derain", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
