"""ViLA (ECCV 2024) for LAVIS.

Once the package is installed, its classes are in LAVIS's registry as soon as a program imports
``lavis`` (``lavis_vila_autoload``). ``import lavis_vila`` does the same: it registers at once when
LAVIS is already imported, else when it is. The package itself imports neither torch nor LAVIS,
so light tools such as ``tools.prepare`` start at once.

Registered names: models ``vila``, ``vila_lora``, ``vila_uniform``, ``sevila_baseline``; processors
``vila_video_train``, ``vila_video_eval``, ``vila_question``; builders ``nextqa``, ``star``,
``how2qa``, ``tvqa``, ``vlep``, ``keyframe_qa``; task ``videoqa_mc``; runner ``vila_runner``.
"""
import importlib
import sys

import lavis_vila_autoload

__version__ = "0.1.0"
# The modules whose classes carry LAVIS registry decorators, leaves first.
REGISTERING_MODULES = (
    "lavis_vila.processors.text", "lavis_vila.processors.video", "lavis_vila.datasets.builders",
    "lavis_vila.models.vila_uniform", "lavis_vila.models.vila", "lavis_vila.models.vila_lora",
    "lavis_vila.models.sevila_baseline", "lavis_vila.tasks.videoqa_mc", "lavis_vila.runners.vila_runner",
)


def register() -> None:
    """Import every module that registers a class with LAVIS (LAVIS registers its own first)."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


def _lavis_imported() -> bool:
    """LAVIS is in ``sys.modules`` and done (not still running its ``__init__``)."""
    lavis = sys.modules.get("lavis")
    return lavis is not None and not getattr(getattr(lavis, "__spec__", None), "_initializing", False)


if _lavis_imported():
    register()
else:
    lavis_vila_autoload.install()
