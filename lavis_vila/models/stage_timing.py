"""Wall time of the model's stages (ViT, prompter, Q-Former, LLM) for one request, on demand.

The models wrap each stage in ``stage(VIT)`` and so on. Outside ``record_stages()`` a stage
costs one context-variable lookup. Inside, each stage's seconds add up in the dict it yields
(a stage that runs twice, like the ViT around an early ``prompter_layer``, counts both runs).
The dict lives in a context variable, not on the model, so concurrent requests served by one
model from different threads keep their own timings. On a GPU each stage synchronises at its
start and end while recording, so its time is its own.

    with record_stages() as seconds:
        model.answer_scores(samples)
    seconds  # {"ViT": 0.012, "prompter": 0.0004, "Q-Former": 0.003, "LLM": 0.002}
"""
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter
from typing import Dict, Iterator, Optional

import torch

VIT, PROMPTER, QFORMER, LLM = "ViT", "prompter", "Q-Former", "LLM"

_recording: ContextVar[Optional[Dict[str, float]]] = ContextVar("stage_seconds", default=None)


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the block's wall time to stage ``name`` of the current recording, if there is one."""
    seconds = _recording.get()
    if seconds is None:
        yield
        return
    _synchronize()
    start = perf_counter()
    try:
        yield
    finally:
        _synchronize()
        seconds[name] = seconds.get(name, 0.0) + perf_counter() - start


@contextmanager
def record_stages() -> Iterator[Dict[str, float]]:
    """Yield a dict that collects the seconds of every stage run in this context."""
    seconds: Dict[str, float] = {}
    token = _recording.set(seconds)
    try:
        yield seconds
    finally:
        _recording.reset(token)
