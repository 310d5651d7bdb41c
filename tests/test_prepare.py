import json
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


def test_vlep_has_two_events_and_no_question(tmp_path, capsys):
    records, _, _ = run("vlep", tmp_path, capsys)
    assert records[0] == {"video": "friends_s03e09_seg02_clip_07_ep", "num_option": 2, "qid": "VLEP_20142",
                          "a0": "Ross will sit down.", "a1": "Ross will leave.", "answer": 1,
                          "start": 38.81, "end": 41.65}


@pytest.mark.parametrize("dataset, source, expected", [
    ("tvqa", "nextqa_val.csv", "TVQA's JSON lines (tvqa_val.jsonl: vid_name, q, a0..a4, answer_idx, ts)"),
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
