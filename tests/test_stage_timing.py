import itertools
import threading

import pytest

from conftest import tiny_batch
from lavis_vila.models import build_model, stage_timing
from lavis_vila.models.stage_timing import LLM, PROMPTER, QFORMER, VIT, record_stages, stage


@pytest.fixture
def ticking_clock(monkeypatch):
    """perf_counter reads 0, 1, 2, ...: every timed block lasts exactly one second."""
    ticks = itertools.count()
    monkeypatch.setattr(stage_timing, "perf_counter", lambda: float(next(ticks)))


def test_a_recording_adds_up_each_stages_runs_and_stages_outside_one_record_nothing(ticking_clock):
    with stage(VIT):
        pass
    with record_stages() as seconds:
        for name in (VIT, PROMPTER, VIT):
            with stage(name):
                pass
    with stage(LLM):
        pass
    assert seconds == {VIT: 2.0, PROMPTER: 1.0}


def test_a_vila_request_records_its_vit_prompter_qformer_and_llm_stages():
    model = build_model("vila", "tiny").eval()
    with record_stages() as seconds:
        model.predict_answers(tiny_batch(model.num_candidate_frames, batch_size=1))
    assert set(seconds) == {VIT, PROMPTER, QFORMER, LLM}
    assert all(value > 0 for value in seconds.values())


def test_requests_in_concurrent_threads_keep_their_own_recordings():
    both_recording = threading.Barrier(2)
    recorded = {}

    def request(name):
        with record_stages() as seconds:
            both_recording.wait()
            with stage(name):
                pass
            both_recording.wait()
        recorded[name] = set(seconds)

    threads = [threading.Thread(target=request, args=(name,)) for name in (VIT, LLM)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorded == {VIT: {VIT}, LLM: {LLM}}
