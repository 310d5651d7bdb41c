"""Lazy package re-exports (PEP 562), as Hugging Face packages keep them: a sub-package's
``__init__`` names what it offers and imports nothing until a name is used, so importing one
module never drags in its siblings (or LAVIS and torch)."""
import importlib


def exports(package: str, names: dict):
    """``__getattr__`` and ``__dir__`` for ``package``, re-exporting ``{name: module}`` on first use."""

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name]), name)

    def __dir__():
        return sorted(names)

    return __getattr__, __dir__
