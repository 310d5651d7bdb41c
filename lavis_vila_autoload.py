"""Registers lavis_vila with LAVIS as soon as a program imports ``lavis``, and does nothing else.

The installed ``lavis_vila_autoload.pth`` imports this module at interpreter start-up. It only
puts a finder on ``sys.meta_path`` (no torch, no LAVIS); when a program first imports ``lavis``,
the finder lets LAVIS import as usual and then registers ``lavis_vila`` (``lavis_vila.register``),
so LAVIS's own ``train.py``, ``evaluate.py`` and ``load_model_and_preprocess`` see every class of
ours.

Around LAVIS's own ``__init__`` it runs ``lavis_vila.lavis_compat`` (``before_lavis`` just before,
``after_lavis`` just after), which gives LAVIS 1.0.2 what a current transformers no longer has and
does nothing on the transformers it pins.

Registration imports our registering modules. When one of our own modules is what imports LAVIS
(``import lavis_vila.inference`` does, half-way through), our modules under import are not
complete yet, so registration waits until the outermost of them is done: the finder counts the
``lavis_vila`` modules whose import is under way.
"""
import sys

_importing = 0  # lavis_vila modules whose import is under way
_waiting = False  # LAVIS is imported and registration waits for those imports to finish


def _register_when_ready() -> None:
    global _waiting
    if _importing:
        _waiting = True
        return
    _waiting = False
    import lavis_vila

    lavis_vila.register()


class _Hook:
    """Meta path finder: wraps the loader of ``lavis`` (once) and of every ``lavis_vila`` module."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "lavis" and fullname.partition(".")[0] != "lavis_vila":
            return None
        spec = self._find_elsewhere(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = (_ThenRegister if fullname == "lavis" else _Counted)(spec.loader)
        return spec

    def _find_elsewhere(self, fullname, path, target):
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                return spec
        return None


class _Loader:
    """The module's own loader, whose ``exec_module`` runs inside ``run``; everything else
    (``get_code`` for ``python -m``, ``get_source``, resources) is the own loader's."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # the module sees its own loader
        self.run(module)


class _Counted(_Loader):
    def run(self, module):
        global _importing
        _importing += 1
        try:
            self.loader.exec_module(module)
        finally:
            _importing -= 1
        if _waiting and not _importing:
            _register_when_ready()


class _ThenRegister(_Loader):
    def run(self, module):
        from lavis_vila import lavis_compat

        lavis_compat.before_lavis()
        self.loader.exec_module(module)
        lavis_compat.after_lavis()
        _register_when_ready()


def install() -> None:
    if "lavis" not in sys.modules and not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())


install()
