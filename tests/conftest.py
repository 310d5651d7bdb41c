import contextlib
import io
import logging
import os
import traceback
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import lavis_vila  # noqa: E402,F401

REPO_ROOT = Path(__file__).resolve().parents[1]
# Three small real videos from decord's test data (Apache-2.0, tests/data/videos/LICENSE.decord).
TEST_VIDEOS = REPO_ROOT / "tests" / "data" / "videos"
PANCAKE = TEST_VIDEOS / "flipping_a_pancake.mkv"
CORRUPTED = TEST_VIDEOS / "corrupted.mp4"
ROTATED = TEST_VIDEOS / "rotated_90.mov"

QUESTION = (
    "Question: what is being flipped? Option A: a pancake Option B: a coin Option C: a card "
    "Option D: a page Considering the information presented in the frame, select the correct "
    "answer from the options."
)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def test_videos():
    return TEST_VIDEOS


def tiny_batch(model_frames: int, batch_size: int = 2, image_size: int = 32, num_option: int = 4):
    """A random batch in the model contract's format."""
    return {
        "video": torch.randn(batch_size, model_frames, 3, image_size, image_size),
        "qa_input": [QUESTION] * batch_size,
        "qa_output": [f"Option {'ABCDE'[i % num_option]}" for i in range(batch_size)],
        "num_option": [num_option] * batch_size,
    }


def write_solid_video(path: Path, width: int, height: int, num_frames: int = 2) -> Path:
    """An mp4 of ``num_frames`` solid grey frames of ``width`` x ``height``, written with OpenCV as
    keyframe_qa writes its clips: small on disk whatever its frame size."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write a {width} x {height} mp4v video at {path}"
    for number in range(num_frames):
        writer.write(np.full((height, width, 3), 60 * number, np.uint8))
    writer.release()
    return path


def train_step(model, optimizer, batch) -> float:
    """One optimizer step on the training loss (Gumbel temperature 1); returns the loss."""
    loss = model.train()(batch, temperature=1.0)["loss"]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@dataclass
class Launched:
    """What ``python -m lavis_vila.train|evaluate`` would have given: exit code, printed output, log."""

    returncode: int
    stdout: str
    stderr: str


def launch_in_process(module: str, argv: list, cwd=None) -> Launched:
    """Run ``python -m <module> <argv>`` (``lavis_vila.train`` or ``.evaluate``) in this process: the
    launcher is what is tested, not the interpreter's start (a few seconds of importing each time).
    Its log lines and a failure's traceback come back as ``stderr``, an exception as exit code 1."""
    from lavis_vila import launch

    log = io.StringIO()
    handler = logging.StreamHandler(log)
    root = logging.getLogger()
    level, previous_dir = root.level, os.getcwd()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(io.StringIO()) as stdout:
            try:
                launch.main([str(arg) for arg in argv], evaluate=module == "lavis_vila.evaluate")
                code, failure = 0, ""
            except Exception:
                code, failure = 1, traceback.format_exc()
    finally:
        os.chdir(previous_dir)
        root.removeHandler(handler)
        root.setLevel(level)
    return Launched(code, stdout.getvalue(), log.getvalue() + failure)
