"""Unlabelled test splits end to end: prepared with ``--split test``, evaluated without a fake
accuracy, and written as each evaluation server's submission file (``tools.submission``)."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import PANCAKE, REPO_ROOT, launch_in_process
from lavis_vila.submission import SubmissionError, write_submission
from lavis_vila.tasks.metrics import accuracy_metrics
from lavis_vila.tools import prepare, submission

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "prepare"
SMOKE = ["model.model_type=tiny", "model.load_finetuned=False", "model.finetuned=null", "run.device=cpu",
         "run.num_workers=0", "run.batch_size_eval=2"]
ROWS = [{"qid": "VLEP_30001", "release_id": "30001", "prediction": 1, "answer": None, "question_type": "VLEP"},
        {"qid": "VLEP_30002", "release_id": "30002", "prediction": 0, "answer": None, "question_type": "VLEP"}]


def test_metrics_of_an_unlabelled_split_report_no_accuracy_and_say_there_are_no_labels():
    metrics = accuracy_metrics(ROWS)
    assert metrics["accuracy"] is None and metrics["agg_metrics"] is None
    assert (metrics["total"], metrics["labelled"], metrics["count_VLEP"]) == (2, 0, 2)
    assert metrics["note"].startswith("no labels")


def test_accuracy_counts_only_labelled_questions_and_says_how_many():
    metrics = accuracy_metrics([{**ROWS[0], "answer": 1}, ROWS[1]])
    assert (metrics["accuracy"], metrics["labelled"], metrics["total"]) == (100.0, 1, 2)


@pytest.mark.parametrize("server, name, text", [
    ("vlep", "vlep_test_submission.jsonl",
     '{"example_id": 30001, "pred_ans": 1}\n{"example_id": 30002, "pred_ans": 0}\n'),
    ("value", "vlep_test_predictions.json", '{"30001": 1, "30002": 0}'),
])
def test_vlep_predictions_are_written_in_each_servers_format(server, name, text, tmp_path):
    chosen = write_submission(ROWS, "results.json", "vlep", str(tmp_path / "sub"), server)
    assert (tmp_path / "sub").read_text() == text and chosen.file_names["test"] == name


def test_a_result_row_without_the_release_id_cannot_be_submitted(tmp_path):
    rows = [{**ROWS[0], "release_id": "VLEP_30001"}]
    with pytest.raises(SubmissionError, match=r"results.json: record 0 \(qid VLEP_30001\): release_id 'VLEP_30001'"):
        write_submission(rows, "results.json", "vlep", str(tmp_path / "sub"))
    assert not (tmp_path / "sub").exists()


def test_the_submission_tool_reads_results_and_writes_without_importing_scipy(tmp_path):
    """``python -m lavis_vila.tools.submission`` in a fresh interpreter, which then says whether SciPy was imported."""
    (tmp_path / "results.json").write_text(json.dumps(ROWS))
    script = ("import runpy, sys\n"
              "sys.argv = ['submission', *sys.argv[1:]]\n"
              "runpy.run_module('lavis_vila.tools.submission', run_name='__main__', alter_sys=True)\n"
              "print('scipy imported:', 'scipy' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "results.json"), "--benchmark", "vlep",
                             "--out", str(tmp_path / "sub")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "sub").is_file() and result.stdout.endswith("scipy imported: False\n")


@pytest.mark.slow
def test_an_unlabelled_tvqa_test_release_evaluates_tiny_and_makes_a_value_submission(tmp_path, capsys):
    root = tmp_path / "data" / "tvqa"
    root.mkdir(parents=True)
    prepare.main(["tvqa", "--input", str(FIXTURES / "tvqa_test_public.jsonl"), "--split", "test",
                  "--out", str(root / "test.json")])
    for record in json.loads((root / "test.json").read_text()):
        (root / "videos").mkdir(exist_ok=True)
        shutil.copyfile(PANCAKE, root / "videos" / f"{record['video']}.mp4")
    result = launch_in_process("lavis_vila.evaluate", [
        "--cfg-path", REPO_ROOT / "projects" / "vila" / "eval" / "tvqa_vila_32to4_eval.yaml", "--options", *SMOKE,
        f"datasets.tvqa.data_root={root}", "datasets.tvqa.build_info.annotations.test.storage=test.json",
        "run.test_splits=[test]", f"run.output_dir={tmp_path / 'out'}"])
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    metrics = json.loads((job / "result" / "test_epochbest_metrics.json").read_text())
    assert metrics["accuracy"] is None and metrics["total"] == 3 and metrics["note"].startswith("no labels")
    submission.main([str(job), "--benchmark", "tvqa", "--out", str(tmp_path / "tvqa_test_public_predictions.json")])
    predictions = json.loads((tmp_path / "tvqa_test_public_predictions.json").read_text())
    assert sorted(predictions) == ["140000", "140001", "140002"]
    assert all(option in range(5) for option in predictions.values())
    assert "expects the file named tvqa_test_public_predictions.json" in capsys.readouterr().out
