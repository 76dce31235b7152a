"""mosslib: a reproduction of MOSS (Huang, Yu, He, CVPR 2021) as a small library and a book.

Modules: ``config`` (frozen dataclasses), ``network`` (MOEDN), ``memory`` (RainMemory),
``metrics`` (PSNR/SSIM conventions), ``data`` (benchmark layouts, sampling), ``rain``
(procedural rain), ``embedded`` (the offline default data set), ``train`` (pre-training and
self-training), ``evaluate``; ``python -m mosslib --help`` lists the commands.
"""
__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy export: ``mosslib.derain(image)`` (the module ``mosslib.apps.derain`` is callable) imports torch on first use."""
    if name == "derain":
        import importlib

        return importlib.import_module(".apps.derain", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
