"""lavis_vila.comparison, lavis_vila.result_files and tools.compare: two evaluations paired by qid, one against a published number."""
import json
from math import comb

import numpy as np
import pytest

from lavis_vila.comparison import (
    ComparisonError,
    against_reference,
    compare,
    comparison_report,
    mcnemar_p,
    paired,
    reference_accuracy,
)
from lavis_vila.experiments.report import paired_figures, paired_table
from lavis_vila.result_files import ResultFileError, read_results, result_file
from lavis_vila.tools import compare as compare_tool


def runs_from_table(both: int, only_a: int, only_b: int, neither: int, qtype: str = "Colour"):
    """Two runs' records whose 2x2 table of right / wrong is the one given."""
    outcomes = [(1, 1)] * both + [(1, 0)] * only_a + [(0, 1)] * only_b + [(0, 0)] * neither
    a = [{"qid": f"{qtype}_val_{i:05d}", "prediction": 0 if right else 1, "answer": 0} for i, (right, _) in enumerate(outcomes)]
    b = [{"qid": f"{qtype}_val_{i:05d}", "prediction": 0 if right else 2, "answer": 0} for i, (_, right) in enumerate(outcomes)]
    return a, b


def write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


def test_mcnemar_p_is_the_exact_two_sided_binomial_test_of_the_discordant_pairs():
    assert mcnemar_p(10, 2) == pytest.approx(2 * sum(comb(12, k) for k in range(3)) / 2**12)  # 0.0386
    assert round(mcnemar_p(10, 2), 4) == 0.0386 and mcnemar_p(2, 10) == mcnemar_p(10, 2)
    assert mcnemar_p(6, 0) == pytest.approx(2 / 2**6)
    assert mcnemar_p(5, 5) == 1.0 and mcnemar_p(0, 0) == 1.0
    figures = compare(*runs_from_table(both=20, only_a=10, only_b=2, neither=8))["overall"]
    assert (figures["both"], figures["only_a"], figures["only_b"], figures["neither"]) == (20, 10, 2, 8)
    assert figures["p_value"] == mcnemar_p(10, 2) and figures["significant"]
    assert (figures["accuracy_a"], figures["accuracy_b"], figures["difference"]) == (75.0, 55.0, 20.0)
    assert not compare(*runs_from_table(both=20, only_a=6, only_b=3, neither=8))["overall"]["significant"]


def test_the_bootstrap_interval_of_a_fixed_input_is_the_same_on_two_runs_and_contains_the_difference():
    rng = np.random.default_rng(7)
    a, b = rng.random(200) < 0.7, rng.random(200) < 0.6
    first, second = paired(a, b, seed=3), paired(a, b, seed=3)
    assert first["interval"] == second["interval"]
    low, high = first["interval"]
    assert low < first["difference"] < high and high - low < 30
    assert paired(a, b, seed=4)["interval"] != first["interval"]  # the seed is what fixes it


def test_two_identical_result_files_differ_by_0_with_p_1(tmp_path):
    a, _ = runs_from_table(both=0, only_a=7, only_b=0, neither=5)
    (_, first), (_, second) = read_results(write(tmp_path / "a.json", a)), read_results(write(tmp_path / "b.json", a))
    figures = compare(first, second)["overall"]
    assert figures["difference"] == 0 and figures["interval"] == [0, 0] and figures["p_value"] == 1.0
    assert figures["only_a"] == figures["only_b"] == 0 and not figures["significant"]


def test_per_type_breakdowns_add_up_to_the_overall_counts():
    parts = [runs_from_table(3, 2, 1, 1, "CW"), runs_from_table(4, 0, 2, 2, "TN"), runs_from_table(1, 1, 1, 1, "DC"),
             runs_from_table(2, 2, 0, 1, "CH")]
    a = [r for part, _ in parts for r in part]
    b = [r for _, part in parts for r in part]
    result = compare(a, b)
    fine = {t: f for t, f in result["by_type"].items() if t in {"CW", "TN", "DC", "CH"}}
    groups = {t: f for t, f in result["by_type"].items() if t in {"Causal", "Temporal", "Descriptive"}}
    assert set(result["by_type"]) == set(fine) | set(groups) and len(fine) == 4 and len(groups) == 3
    for breakdown in (fine, groups):
        for key in ("questions", "only_a", "only_b", "both", "neither"):
            assert sum(f[key] for f in breakdown.values()) == result["overall"][key]
    assert groups["Causal"]["questions"] == fine["CW"]["questions"] + fine["CH"]["questions"]
    report = comparison_report(result, "a.json", "b.json")
    assert "| CW | 7 | " in report and "| Causal (group) | 12 | " in report


def test_mismatched_qids_fail_with_how_many_are_missing_on_each_side_unless_restricted_to_the_shared_ones(tmp_path):
    a, b = runs_from_table(5, 2, 2, 1)
    with pytest.raises(ComparisonError, match="3 qids only in A, 1 only in B"):
        compare(a, b[3:] + [{"qid": "Colour_val_99999", "prediction": 0, "answer": 0}])
    shared = compare(a, b[3:], intersection=True)
    assert shared["overall"]["questions"] == 7 and shared["left_out"] == {"only_a": 3, "only_b": 0}
    write(tmp_path / "a.json", a)
    write(tmp_path / "b.json", b[3:])
    report = compare_tool.main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--intersection"])
    assert "restricted to the shared qids (--intersection): 3 only in A and 0 only in B left out" in report
    report = compare_tool.main([str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--intersection"])
    assert "10 questions matched by qid; restricted to the shared qids (--intersection): 0 only in A" in report


def test_compare_tool_exits_1_with_one_line_naming_the_problem(tmp_path, capsys):
    a, b = runs_from_table(5, 2, 2, 1)
    write(tmp_path / "a.json", a)
    write(tmp_path / "b.json", b[:-2])
    with pytest.raises(SystemExit) as exit_info:
        compare_tool.main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "r.md")])
    error = capsys.readouterr().err
    assert exit_info.value.code == 1 and error == "compare: the two runs answer different questions: 2 qids only in A, " \
                                                 "0 only in B (compare the shared ones with --intersection)\n"
    assert not (tmp_path / "r.md").exists()


def test_a_folder_gives_its_one_result_file_or_its_best_epochs_and_an_error_naming_it_otherwise(tmp_path):
    job = tmp_path / "eval" / "20250101120000"
    write(job / "result" / "val_epochbest_metrics.json", {"accuracy": 50})
    best = write(job / "result" / "val_epochbest.json", [])
    assert result_file(tmp_path / "eval") == best and result_file(job) == best and result_file(best) == best
    write(job / "result" / "val_epoch0.json", [])
    assert result_file(tmp_path / "eval") == best  # a training run's folder: its best epoch
    write(job / "result" / "test_epochbest.json", [])
    with pytest.raises(ResultFileError, match=r"eval: 3 result files, 2 of them \*_epochbest.json: .*test_epochbest.json.*pass one"):
        result_file(tmp_path / "eval")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultFileError, match=r"empty: no per-question result file"):
        result_file(tmp_path / "empty")


def test_a_bad_record_is_an_error_naming_the_file_and_the_record(tmp_path):
    path = write(tmp_path / "r.json", [{"qid": "a", "prediction": 1, "answer": 1}, {"qid": "b", "answer": 1}])
    with pytest.raises(ResultFileError, match=r"r.json: record 1 needs a qid and a prediction"):
        read_results(path)
    write(path, [{"qid": "a", "prediction": 1, "label": 1}, {"qid": "a", "prediction": 1, "label": 0}])
    with pytest.raises(ResultFileError, match=r"r.json: record 1: qid a appears twice"):
        read_results(path)
    write(path, [{"qid": "a", "prediction": 1}])
    with pytest.raises(ResultFileError, match=r"r.json: record 0 \(qid a\) has no answer \(or label\)"):
        read_results(path)


def test_a_run_against_a_published_number_gives_the_exact_binomial_interval_and_whether_the_number_is_inside(tmp_path):
    a, _ = runs_from_table(both=0, only_a=75, only_b=0, neither=25)  # 75 of 100 right
    result = against_reference(a, 74.4)["overall"]
    low, high = result["interval"]
    assert result["accuracy"] == 75.0 and result["inside"] and 65 < low < 66 and 83 < high < 84  # Clopper-Pearson
    assert not against_reference(a, 88.0)["overall"]["inside"] and against_reference(a, 88.0)["overall"]["p_value"] < 0.05
    write(tmp_path / "metrics.json", {"accuracy": 74.4, "total": 5000})
    assert reference_accuracy(str(tmp_path / "metrics.json")) == (74.4, f"the accuracy in {tmp_path / 'metrics.json'}")
    write(tmp_path / "run.json", a)
    report = compare_tool.main([str(tmp_path / "run.json"), "--reference", "74.4", "--out", str(tmp_path / "r.md")])
    assert "The published 74.4 is inside the run's interval [65.3, 83.1]" in report
    assert (tmp_path / "r.md").read_text() == report


def test_the_experiments_pair_systems_per_seed_and_pooled_over_the_seeds_questions():
    seed0, seed1 = runs_from_table(10, 6, 1, 3), runs_from_table(10, 5, 0, 5)
    predictions = {0: {"vila": seed0[0], "uniform": seed0[1]}, 1: {"vila": seed1[0], "uniform": seed1[1]}}
    figures = paired_figures(predictions, [("vila", "uniform")])
    assert [f["seed"] for f in figures] == [0, 1, "pooled"]
    pooled = figures[-1]
    assert (pooled["questions"], pooled["only_a"], pooled["only_b"]) == (40, 11, 1)
    assert pooled["p_value"] == mcnemar_p(11, 1) and pooled["significant"]
    table = "\n".join(paired_table(figures, {"vila": "ViLA", "uniform": "uniform 2"}))
    assert "| A vs B | pooled over seeds | seed 0 | seed 1 |" in table
    assert "| ViLA vs uniform 2 | +25.0 [" in table and f"p = {mcnemar_p(11, 1):.3f}*" in table
