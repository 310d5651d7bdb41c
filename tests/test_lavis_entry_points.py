"""After ``pip install``, LAVIS's own entry points see our classes without ``import lavis_vila``."""
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest


ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}

# What LAVIS 1.0.2's train.py imports, and nothing of ours.
STOCK_TRAIN_PY_IMPORTS = """
import sys
import lavis.tasks as tasks
from lavis.common.config import Config
from lavis.common.dist_utils import get_rank, init_distributed_mode
from lavis.common.logger import setup_logger
from lavis.common.optims import LinearWarmupCosineLRScheduler, LinearWarmupStepLRScheduler
from lavis.common.registry import registry
from lavis.common.utils import now
from lavis.datasets.builders import *
from lavis.models import *
from lavis.processors import *
from lavis.runners import *
from lavis.tasks import *
"""


def neutral_dir() -> str:
    """An empty folder to run in: nothing of ours on the path by accident (not the repository, nor its
    parent, where a clone named lavis_vila would pass for the package)."""
    return tempfile.mkdtemp(prefix="lavis_vila_cwd_")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=neutral_dir())


def test_stock_train_py_imports_find_every_class_and_load_model_and_preprocess_builds_tiny_vila():
    result = run_python(STOCK_TRAIN_PY_IMPORTS + textwrap.dedent("""
        print("models", sorted(set(registry.list_models()) & {"vila", "vila_lora", "vila_uniform", "sevila_baseline"}))
        print("processors", sorted(set(registry.list_processors()) & {"vila_video_train", "vila_video_eval", "vila_question"}))
        print("builders", sorted(set(registry.list_datasets()) & {"nextqa", "star", "how2qa", "tvqa", "vlep", "keyframe_qa"}))
        print("tasks", "videoqa_mc" in registry.list_tasks(), "runners", sorted(registry.list_runners()))
        from lavis.models import load_model_and_preprocess
        model, vis_processors, _ = load_model_and_preprocess("vila", "tiny", is_eval=True)
        print("built", type(model).__name__, model.num_candidate_frames, type(vis_processors["eval"]).__name__)
    """))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "models ['sevila_baseline', 'vila', 'vila_lora', 'vila_uniform']" in lines
    assert "processors ['vila_question', 'vila_video_eval', 'vila_video_train']" in lines
    assert "builders ['how2qa', 'keyframe_qa', 'nextqa', 'star', 'tvqa', 'vlep']" in lines
    assert "tasks True runners ['runner_base', 'runner_iter', 'vila_runner']" in lines
    assert "built ViLA 16 VideoEvalProcessor" in lines


def test_python_start_up_imports_neither_lavis_nor_torch():
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True,
                            env=ENV, cwd=neutral_dir())
    assert result.returncode == 0
    modules = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "lavis_vila_autoload" in modules  # the hook is installed ...
    heavy = [m for m in modules if m.split(".")[0] in ("lavis", "lavis_vila", "torch", "transformers", "numpy")]
    assert heavy == []  # ... and costs no heavy import


def test_importing_lavis_vila_first_still_registers_everything_once():
    result = run_python("import lavis_vila, lavis\nfrom lavis.common.registry import registry\n"
                        "print(registry.get_model_class('vila').__module__)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "lavis_vila.models.vila"


@pytest.mark.parametrize("module", ["lavis_vila.processors.video", "lavis_vila.models.backbones", "lavis_vila.inference"])
def test_a_module_that_imports_lavis_half_way_can_be_imported_first_and_everything_is_registered(module):
    """Importing LAVIS registers our classes; when one of our modules imports LAVIS half-way
    through, registration waits until it is complete (lavis_vila_autoload), since the registering
    modules import names from it."""
    result = run_python(f"import {module}\nfrom lavis.common.registry import registry\n"
                        "print(sorted(m for m in registry.list_models() if 'vila' in m))")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['sevila_baseline', 'vila', 'vila_lora', 'vila_uniform']"
