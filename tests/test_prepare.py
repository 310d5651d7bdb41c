import json
import shutil
from pathlib import Path

import pytest

from conftest import PANCAKE
from lavis_vila.processors import VideoEvalProcessor
from lavis_vila.tools import prepare

FIXTURES = Path(__file__).parent / "fixtures" / "prepare"

CASES = {
    # dataset: (input file, good records, {line marker: reason fragment})
    "nextqa": ("nextqa_val.csv", 3, {"nextqa_val.csv:4": "field 'answer' is not an integer: 'three'"}),
    "star": ("STAR_val.json", 1, {"STAR_val.json:record 1": "answer 'Opened the door.' is not one of the choices"}),
    "how2qa": ("how2qa_val_release.jsonl", 3, {"how2qa_val_release.jsonl:2": "ends before it starts"}),
    "tvqa": ("tvqa_val.jsonl", 3, {"tvqa_val.jsonl:2": "missing field 'a4'"}),
    "vlep": ("vlep_dev_release.jsonl", 1, {"vlep_dev_release.jsonl:2": "must hold 2 events",
                                           "vlep_dev_release.jsonl:3": "invalid JSON"}),
}


def run(dataset, tmp_path, capsys):
    source, _, _ = CASES[dataset]
    out = tmp_path / f"{dataset}.json"
    argv = [dataset, "--input", str(FIXTURES / source), "--out", str(out)]
    if dataset == "nextqa":
        argv += ["--video-map", str(FIXTURES / "map_vid_vidorID.json")]
    prepare.main(argv)
    captured = capsys.readouterr()
    return json.loads(out.read_text()), captured.out, captured.err


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_prepare_writes_good_rows_and_reports_malformed_ones_with_file_and_line(dataset, tmp_path, capsys):
    records, out, err = run(dataset, tmp_path, capsys)
    _, good, bad = CASES[dataset]
    assert len(records) == good
    assert f"wrote {good} records" in out and f"skipped {len(bad)} malformed rows" in out
    for location, reason in bad.items():
        line = next(l for l in err.splitlines() if f"{location}:" in l)
        assert reason in line


def test_nextqa_records_follow_sevila_conventions(tmp_path, capsys):
    records, _, _ = run("nextqa", tmp_path, capsys)
    first = records[0]
    assert first["video"] == "1006/4010069381"
    assert first["qid"] == "TN_4010069381_4"
    assert first["question"].endswith("?") and first["a0"] == "sits down."
    assert (first["answer"], first["num_option"]) == (2, 5)


def test_a_nextqa_question_already_ending_in_a_question_mark_gets_no_second_one(tmp_path, capsys):
    records, _, _ = run("nextqa", tmp_path, capsys)
    assert records[-1]["question"] == "what is the man holding?"


def test_star_answer_is_the_index_of_the_matching_choice(tmp_path, capsys):
    records, _, _ = run("star", tmp_path, capsys)
    assert records[0]["answer"] == 1 and records[0]["qid"] == "Interaction_T1_13"
    assert (records[0]["start"], records[0]["end"]) == (11.1, 19.6)


def test_tvqa_nan_span_means_the_whole_video_and_qids_keep_the_release_ids(tmp_path, capsys):
    records, _, _ = run("tvqa", tmp_path, capsys)
    assert [(r["qid"], r["release_id"]) for r in records] == [("TVQA_7", 7), ("TVQA_9", 9), ("TVQA_12", 12)]
    assert "start" not in records[1]


def test_a_how2qa_row_without_a_release_qid_is_numbered_by_its_row(tmp_path, capsys):
    records, _, _ = run("how2qa", tmp_path, capsys)
    assert [(r["qid"], r["release_id"]) for r in records] == [("HOW2QA_0", 0), ("HOW2QA_2", 2), ("HOW2QA_3", 3)]


@pytest.mark.parametrize("dataset, window", [("how2qa", (1.7, 1.7)), ("tvqa", (0.0, 0.0))])
def test_a_zero_length_window_converts_and_its_clip_decodes_its_one_frame(dataset, window, tmp_path, capsys):
    records, _, _ = run(dataset, tmp_path, capsys)
    (record,) = [r for r in records if (r.get("start"), r.get("end")) == window]
    _, indices = VideoEvalProcessor(image_size=32, num_frames=4)(str(PANCAKE), record["start"], record["end"])
    assert indices == [int(window[0] * 30)] * 4  # the frame at that time, T times (30 fps)


def test_vlep_has_two_events_no_question_and_keeps_its_example_id(tmp_path, capsys):
    records, _, _ = run("vlep", tmp_path, capsys)
    assert records[0] == {"video": "friends_s03e09_seg02_clip_07_ep", "num_option": 2, "qid": "VLEP_20142",
                          "release_id": 20142, "a0": "Ross will sit down.", "a1": "Ross will leave.", "answer": 1,
                          "start": 38.81, "end": 41.65}


@pytest.mark.parametrize("dataset, source, expected", [
    ("tvqa", "nextqa_val.csv", "TVQA's JSON lines (tvqa_val.jsonl: vid_name, q, a0..a4, answer_idx, ts, qid)"),
    ("nextqa", "tvqa_val.jsonl", "NExT-QA's CSV (val.csv: video, frame_count"),
    ("how2qa", "vlep_dev_release.jsonl", "How2QA's JSON lines (how2qa_val_release.jsonl: vid_name, q, a0..a3"),
    ("star", "how2qa_val_release.jsonl", "STAR's JSON list (STAR_val.json: question_id"),
    ("vlep", "STAR_val.json", "VLEP's JSON lines (vlep_dev_release.jsonl: example_id"),
])
def test_a_file_in_the_wrong_format_is_one_error_naming_the_format_expected(dataset, source, expected, tmp_path, capsys):
    out = tmp_path / "out.json"
    argv = [dataset, "--input", str(FIXTURES / source), "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(argv + (["--video-map", str(FIXTURES / "map_vid_vidorID.json")] if dataset == "nextqa" else []))
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and "malformed row skipped" not in err
    assert err.startswith(f"prepare: {FIXTURES / source}: ") and expected in err


def test_an_empty_release_file_is_an_error_and_writes_nothing(tmp_path, capsys):
    source = tmp_path / "empty.jsonl"
    source.write_text("\n")
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["tvqa", "--input", str(source), "--out", str(out)])
    assert exit_info.value.code == 1 and not out.exists()
    assert f"{source}: holds no rows; expected TVQA's JSON lines" in capsys.readouterr().err


def test_a_truncated_star_json_is_an_error_naming_the_file(tmp_path, capsys):
    source = tmp_path / "STAR_val.json"
    source.write_text((FIXTURES / "STAR_val.json").read_text()[:100])
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["star", "--input", str(source), "--out", str(tmp_path / "out.json")])
    assert exit_info.value.code == 1
    assert f"{source}: not valid JSON (truncated?)" in capsys.readouterr().err


def prepare_file(dataset, source, tmp_path, *options):
    out = tmp_path / "out.json"
    prepare.main([dataset, "--input", str(source), "--out", str(out), *options])
    return json.loads(out.read_text())


@pytest.mark.parametrize("dataset, source, ids", [("tvqa", "tvqa_test_public.jsonl", [140000, 140001, 140002]),
                                                  ("vlep", "vlep_test_release.jsonl", [30001, 30002])])
def test_an_unlabelled_test_release_prepares_with_split_test_into_records_without_answers(
        dataset, source, ids, tmp_path, capsys):
    records = prepare_file(dataset, FIXTURES / source, tmp_path, "--split", "test")
    assert [r["release_id"] for r in records] == ids
    assert not any("answer" in r for r in records)
    assert f"wrote {len(ids)} records" in capsys.readouterr().out


def test_without_split_test_a_row_without_an_answer_is_reported_as_missing_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        prepare.main(["tvqa", "--input", str(FIXTURES / "tvqa_test_public.jsonl"), "--out", str(tmp_path / "o.json")])
    assert "missing field 'answer_idx' (an unlabelled test release: prepare --split test)" in capsys.readouterr().err


def test_the_hero_era_how2qa_csv_converts_whole_video_windows_with_balanced_answers(tmp_path, capsys):
    records = prepare_file("how2qa", FIXTURES / "how2QA_val_release.csv", tmp_path)
    err = capsys.readouterr().err
    assert [(r["video"], r["start"], r["end"], r["answer"]) for r in records] == [
        ("HkLfNhgP0TM", 35.5, 52.0, 0), ("Xo9ZXvZbYtc", 3.0, 9.5, 1), ("Xo9ZXvZbYtc", 12.0, 12.0, 2)]
    assert [r[f"a{r['answer']}"] for r in records] == ["a pan", "table", "a hand"]  # the correct answer, last in a row
    assert records[2]["question"] == "what closes the lid, at the end?" and records[2]["qid"] == "HOW2QA_2"
    assert f"how2QA_val_release.csv:4: timestamps are not '[start:end]': '12-30'" in err
    assert f"how2QA_val_release.csv:5: timestamps '[40:35]': the window ends before it starts" in err


def test_a_file_in_neither_how2qa_format_names_both(tmp_path, capsys):
    with pytest.raises(SystemExit):
        prepare.main(["how2qa", "--input", str(FIXTURES / "nextqa_val.csv"), "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert "How2QA's JSON lines (how2qa_val_release.jsonl" in err and "or the HERO-era CSV (how2QA_val_release.csv" in err


def test_custom_questions_as_jsonl_and_as_csv_convert_to_the_same_records(tmp_path, capsys):
    from_jsonl = prepare_file("custom", FIXTURES / "my_questions.jsonl", tmp_path)
    from_csv = prepare_file("custom", FIXTURES / "my_questions.csv", tmp_path)
    assert from_jsonl == from_csv
    assert [(r["qid"], r["num_option"], r["answer"]) for r in from_jsonl] == [
        ("Object_q1", 3, 0), ("Event_q2", 2, 1), ("CUSTOM_2", 5, 0)]
    assert (from_jsonl[0]["start"], from_jsonl[0]["end"]) == (1.0, 9.0) and "start" not in from_jsonl[2]


@pytest.mark.parametrize("row, reason", [
    ({"video": "v", "question": "q?", "options": ["a"], "answer": 0}, "needs 2 to 5 options, got 1"),
    ({"video": "v", "question": "q?", "options": ["a", "b"], "answer": 2}, "option index in 0..1, got 2"),
    ({"video": "v", "question": "q?", "options": ["a", "b"], "answer": 1.0}, "'answer' is not an integer: 1.0"),
    ({"video": "v", "question": "q?", "options": ["a", "b"], "answer": 0, "type": "my_type"}, "must not contain '_'"),
    ({"video": "v", "question": "q?", "options": ["a", "b"], "answer": 0, "start": 5, "end": 2}, "ends before it starts"),
])
def test_a_bad_custom_row_is_reported_with_file_line_and_reason(row, reason, tmp_path, capsys):
    source = tmp_path / "mine.jsonl"
    good = {"video": "v", "question": "q?", "options": ["a", "b"], "answer": 0, "id": "ok"}
    source.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    assert len(prepare_file("custom", source, tmp_path)) == 1
    line = next(l for l in capsys.readouterr().err.splitlines() if "mine.jsonl:2:" in l)
    assert reason in line


def test_a_custom_file_that_is_neither_csv_nor_jsonl_is_one_error(tmp_path, capsys):
    source = tmp_path / "mine.txt"
    source.write_text("video,question\n")
    with pytest.raises(SystemExit):
        prepare.main(["custom", "--input", str(source), "--out", str(tmp_path / "o.json")])
    assert f"{source}: a custom file must end in .csv or .jsonl" in capsys.readouterr().err


def test_release_ids_used_twice_are_one_error_naming_the_file_and_both_rows(tmp_path, capsys):
    source = tmp_path / "tvqa_val.jsonl"
    lines = (FIXTURES / "tvqa_val.jsonl").read_text().splitlines()
    source.write_text("\n".join(lines + [lines[0]]) + "\n")  # qid 7 again, on line 5
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit):
        prepare.main(["tvqa", "--input", str(source), "--out", str(out)])
    assert f"{source}:1 and {source}:5 (qid TVQA_7)" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("field, value, reason", [
    ("answer_idx", 1.7, "field 'answer_idx' is not an integer: 1.7"),
    ("answer_idx", True, "field 'answer_idx' is not an integer: True"),
    ("answer_idx", "2", None),
    ("ts", "NaN-4", "start is NaN but the other bound is not"),
])
def test_answer_indices_and_windows_are_read_exactly_or_reported(field, value, reason, tmp_path, capsys):
    row = json.loads((FIXTURES / "tvqa_val.jsonl").read_text().splitlines()[0])
    source = tmp_path / "tvqa_val.jsonl"
    source.write_text(json.dumps(row) + "\n" + json.dumps({**row, "qid": 8, field: value}) + "\n")
    records = prepare_file("tvqa", source, tmp_path)
    if reason is None:
        assert records[1]["answer"] == 2
    else:
        assert len(records) == 1
        assert reason in next(l for l in capsys.readouterr().err.splitlines() if "tvqa_val.jsonl:2:" in l)


def test_a_prepare_interrupted_while_writing_leaves_the_existing_output_intact(tmp_path, capsys, monkeypatch):
    out = tmp_path / "val.json"
    out.write_text('[{"an": "earlier conversion"}]')
    real_dump = json.dump

    def interrupted(obj, f, **kwargs):
        real_dump(obj[:1], f, **kwargs)  # half the output written, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr("lavis_vila.atomic_files.json.dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare.main(["tvqa", "--input", str(FIXTURES / "tvqa_val.jsonl"), "--out", str(out)])
    assert out.read_text() == '[{"an": "earlier conversion"}]'
    assert [p.name for p in tmp_path.iterdir()] == ["val.json"]  # no half-written file left beside it
