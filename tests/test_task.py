import pytest

from lavis_vila.tasks.metrics import accuracy_metrics
from lavis_vila.tasks.videoqa_mc import gumbel_temperature


def rec(qtype, correct):
    return {"question_type": qtype, "prediction": 1, "answer": 1 if correct else 0}


def test_nextqa_metrics_group_fine_types_into_temporal_causal_descriptive():
    records = [rec("TN", True), rec("TC", False), rec("CW", True), rec("CH", True), rec("DC", False)]
    metrics = accuracy_metrics(records)
    assert metrics["accuracy"] == pytest.approx(60.0)
    assert metrics["accuracy_Temporal"] == pytest.approx(50.0)
    assert metrics["accuracy_Causal"] == pytest.approx(100.0)
    assert metrics["accuracy_Descriptive"] == pytest.approx(0.0)
    assert metrics["accuracy_TN"] == 100.0 and metrics["count_TC"] == 1 and metrics["total"] == 5
    assert metrics["agg_metrics"] == metrics["accuracy"]


def test_star_agg_metric_is_the_unweighted_mean_of_its_four_types():
    records = ([rec("Interaction", True)] * 3 + [rec("Interaction", False)] + [rec("Sequence", True)]
               + [rec("Prediction", False)] + [rec("Feasibility", True), rec("Feasibility", False)])
    metrics = accuracy_metrics(records)
    assert metrics["star_avg"] == pytest.approx((75 + 100 + 0 + 50) / 4)
    assert metrics["agg_metrics"] == metrics["star_avg"]
    assert metrics["accuracy"] == pytest.approx(100 * 5 / 8)


def test_temperature_schedule_follows_the_official_exponential_decay():
    assert gumbel_temperature(0, 100) == pytest.approx(1.0)
    assert gumbel_temperature(50 * 100, 100) == pytest.approx(0.01)
    assert gumbel_temperature(10 * 100, 100) == pytest.approx(0.01 ** 0.2)  # ~0.398 after 10 epochs
    assert gumbel_temperature(5, 10, start=2.0, end=0.5, epochs=1) == pytest.approx(1.0)


def test_an_evaluation_whose_every_video_was_skipped_writes_metrics_over_no_questions(tmp_path, monkeypatch, caplog):
    import json
    import logging

    from lavis.common.registry import registry

    from lavis_vila.tasks.videoqa_mc import VideoQAMultipleChoiceTask

    (tmp_path / "result").mkdir()
    monkeypatch.setitem(registry.mapping["paths"], "result_dir", str(tmp_path / "result"))
    monkeypatch.setitem(registry.mapping["paths"], "output_dir", str(tmp_path))
    skipped = [{"qid": "Colour_val_00000", "skipped": "unreadable"}]
    with caplog.at_level(logging.INFO):
        metrics = VideoQAMultipleChoiceTask().after_evaluation(skipped, "val", 0)
    assert metrics["total"] == 0 and metrics["skipped_eval_videos"] == 1
    assert json.loads((tmp_path / "result" / "val_epoch0_metrics.json").read_text())["total"] == 0
    assert "val epoch 0: accuracy 0.00 over 0 labelled questions" in caplog.text
