"""Registers lavis_vila with LAVIS as soon as a program imports ``lavis``, and does nothing else.

The installed ``lavis_vila_autoload.pth`` imports this module at interpreter start-up. It only
puts a finder on ``sys.meta_path`` (no torch, no LAVIS); when a program first imports ``lavis``,
the finder lets LAVIS import as usual and then imports ``lavis_vila``, so LAVIS's own
``train.py``, ``evaluate.py`` and ``load_model_and_preprocess`` see every class of ours.

Around LAVIS's own ``__init__`` it runs ``lavis_vila.lavis_compat`` (``before_lavis`` just before,
``after_lavis`` just after), which gives LAVIS 1.0.2 what a current transformers no longer has and
does nothing on the transformers it pins.
"""
import sys


class _RegisterAfterLavis:
    """Meta path finder, used once: wraps the loader of the top-level ``lavis`` package."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "lavis":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec("lavis")
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenImportLavisVila(spec.loader)
        return spec


class _ThenImportLavisVila:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # LAVIS sees its own loader
        from lavis_vila import lavis_compat

        lavis_compat.before_lavis()
        self.loader.exec_module(module)
        lavis_compat.after_lavis()
        import lavis_vila

        lavis_vila.register()


def install() -> None:
    if "lavis" not in sys.modules and not any(isinstance(f, _RegisterAfterLavis) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterLavis())


install()
