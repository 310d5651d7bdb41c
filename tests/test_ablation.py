"""experiments.ablation (tools.ablation): the prompter ablation on keyframe_qa's two-event variant."""
import json

import pytest

from lavis_vila.experiments import ablation, stages
from lavis_vila.tools import ablation as ablation_tool


def test_accuracy_by_asked_event_splits_questions_by_which_event_in_time_they_ask_about(tmp_path):
    (tmp_path / "val.json").write_text(json.dumps([
        {"qid": "a", "asked": "first"}, {"qid": "b", "asked": "first"}, {"qid": "c", "asked": "first"},
        {"qid": "d", "asked": "second"}, {"qid": "e", "asked": "second"},
    ]))
    predictions = [{"qid": "a", "prediction": 1, "answer": 1}, {"qid": "b", "prediction": 0, "answer": 1},
                   {"qid": "c", "prediction": 2, "answer": 2}, {"qid": "d", "prediction": 3, "answer": 0},
                   {"qid": "e", "prediction": 3, "answer": 0}]
    assert ablation.accuracy_by_asked_event(predictions, str(tmp_path)) == {"accuracy_first": 200 / 3,
                                                                             "accuracy_second": 0.0}


def test_each_prompter_is_trained_with_its_own_model_options():
    assert ablation.PROMPTER_OPTIONS["segment"] == []  # the demo's stage-2 YAML as it is
    for name in ("free_form", "question_aware"):
        assert f"model.frame_prompter={name}" in ablation.PROMPTER_OPTIONS[name]


def test_each_prompter_is_paired_with_uniform_k_the_teacher_and_segment_when_segment_ran():
    assert ablation.pairs(["segment", "question_aware"]) == [
        ("segment", "uniform"), ("segment", "teacher"), ("question_aware", "uniform"), ("question_aware", "teacher"),
        ("question_aware", "segment")]
    assert ablation.pairs(["free_form"]) == [("free_form", "uniform"), ("free_form", "teacher")]


@pytest.mark.slow
def test_a_reduced_ablation_trains_every_prompter_and_writes_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "ablation"
    rows = ablation_tool.main(["--out", str(out), "--data-dir", str(tmp_path / "data"), "--seed", "0",
                          "--num-train", "24", "--num-val", "12"])
    assert [r["system"] for r in rows] == ["uniform", "teacher", "segment", "free_form", "question_aware"]
    for row in rows:
        assert 0 <= row["accuracy"] <= 100 and 0 <= row["asked_event_seen"] <= 100
        # 12 validation clips, half asked about each event: the overall accuracy is their mean
        assert row["accuracy"] == pytest.approx((row["accuracy_first"] + row["accuracy_second"]) / 2)
    assert next(r for r in rows if r["system"] == "teacher")["asked_event_seen"] == 100  # it sees all 8 frames
    table = (out / "results.md").read_text()
    assert table in capsys.readouterr().out
    assert "asked first | asked second | asked event seen %" in table and "ViLA 8->2 question_aware" in table
    results = json.loads((out / "results.json").read_text())
    assert results["rows"] == rows
    assert [(f["a"], f["b"]) for f in results["paired"] if f["seed"] == "pooled"] == [
        ("segment", "uniform"), ("segment", "teacher"), ("free_form", "uniform"), ("free_form", "teacher"),
        ("question_aware", "uniform"), ("question_aware", "teacher"), ("free_form", "segment"),
        ("question_aware", "segment")]
    assert all(f["questions"] == 12 and 0 <= f["p_value"] <= 1 for f in results["paired"])
    assert "| ViLA 8->2 question_aware vs ViLA 8->2 segment | " in table and "McNemar p" in table
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_vila_run_is_evaluated_from_its_trained_checkpoint_not_from_its_initialisation(monkeypatch, tmp_path):
    calls = {}
    monkeypatch.setattr(stages, "train", lambda stage, out, data_dir, seed, *options: calls.update(train=options)
                        or tmp_path / "checkpoint_4.pth")
    monkeypatch.setattr(stages, "evaluate", lambda system, out, data_dir, seed, checkpoint, *options: calls.update(
        evaluate=(checkpoint, options)) or {})
    init = ["model.load_finetuned=True", "model.finetuned=vila_init.pth"]
    options = ablation.STAGE2_OPTIONS + ablation.PROMPTER_OPTIONS["question_aware"]
    stages.train_and_evaluate([stages.VILA], "vila", tmp_path, "data", 0, init, options)
    assert calls["train"] == (*init, *options)
    # evaluated with the model.* options only: the run.* ones (the stage-2 lr) are training's
    assert calls["evaluate"] == (tmp_path / "checkpoint_4.pth", tuple(ablation.PROMPTER_OPTIONS["question_aware"]))
