import json

import pytest

from conftest import PANCAKE
from lavis_vila.datasets.synthetic import event_frame_seen, straddles_segments
from lavis_vila.experiments.stages import SEVILA, SYSTEMS, TEACHER, UNIFORM_K, VILA
from lavis_vila.tools import demo, explain


def test_event_frame_seen_maps_candidate_indices_to_clip_frames_and_counts_clips_with_an_event_frame(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"frames": 8}))
    (tmp_path / "val.json").write_text(json.dumps([
        {"qid": "a", "video": "v0", "key_frames": [2, 3]},
        {"qid": "b", "video": "v1", "key_frames": [6, 7]},
        {"qid": "c", "video": "v2", "key_frames": [3, 4]},
        {"qid": "d", "video": "v3", "key_frames": [0, 1]},
    ]))
    # 2 candidates of 8 clip frames are the segment middles, clip frames 2 and 6
    uniform = [{"qid": q, "frame_idx": [0, 1]} for q in "abcd"]
    assert event_frame_seen(uniform, str(tmp_path), candidate_frames=2) == dict(a=True, b=True, c=False, d=False)
    chosen = [{"qid": "a", "frame_idx": [1, 5]}, {"qid": "b", "frame_idx": [0, 6]},
              {"qid": "c", "frame_idx": [3, 5]}, {"qid": "d", "frame_idx": [1, 7]}]
    assert event_frame_seen(chosen, str(tmp_path), candidate_frames=8) == dict(a=False, b=True, c=True, d=True)


def test_an_event_straddles_segments_when_its_key_frames_lie_in_two_of_them():
    assert straddles_segments([3, 4], clip_frames=8, num_segments=2)
    assert not straddles_segments([2, 3], clip_frames=8, num_segments=2)
    assert straddles_segments([1, 2], clip_frames=8, num_segments=4)


@pytest.mark.slow
def run_reduced_demo(out, data):
    demo.main(["--out", str(out), "--data-dir", str(data), "--seed", "0", "1", "--num-train", "32", "--num-val", "14"])
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_demo_runs_the_whole_recipe_and_writes_table_results_plot_and_strip_and_repeats_exactly(tmp_path, capsys):
    out = tmp_path / "demo"
    results = run_reduced_demo(out, tmp_path / "data")
    printed = capsys.readouterr().out
    assert "These are synthetic results, not benchmark results." in printed
    assert {"cpu", "torch", "python"} <= set(results["machine"])
    rows = results["rows"]
    assert {r["model"] for r in rows} == {system.label for system in SYSTEMS}
    assert {r["seed"] for r in rows} == {0, 1}
    for row in rows:
        assert {"model", "candidate_frames", "selected_frames", "accuracy", "latency_ms", "seed"} <= set(row)
        assert 0 <= row["accuracy"] <= 100 and row["latency_ms"] > 0 and 0 <= row["event_frame_seen"] <= 100
    assert all(r["event_frame_seen"] == 100 for r in rows if r["candidate_frames"] == r["selected_frames"] == 8)
    table = (out / "results.md").read_text()
    assert table in printed and "± " in table and "speed-up vs sevila_baseline" in table
    assert "worst seed" in table and "event frame seen %" in table and "| 0 | " in table and "| 1 | " in table and "holds on " in table
    # ViLA paired against uniform-K, the teacher and the trained SeViLA, per seed and pooled
    paired = results["paired"]
    assert [(f["a"], f["b"], f["seed"]) for f in paired] == [(VILA.label, other.label, seed) for other in
                                                           (UNIFORM_K, TEACHER, SEVILA) for seed in (0, 1, "pooled")]
    for figures in paired:
        assert figures["questions"] == (28 if figures["seed"] == "pooled" else 14)
        assert figures["only_a"] + figures["only_b"] + figures["both"] + figures["neither"] == figures["questions"]
        assert 0 <= figures["p_value"] <= 1 and figures["interval"][0] <= figures["difference"] <= figures["interval"][1]
    assert f"| {VILA.label} vs {UNIFORM_K.label} | " in table and "| A vs B | pooled over seeds | seed 0 | seed 1 |" in table
    for picture in ("accuracy_vs_latency.png", "frame_strip.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # explain draws the demo's own ViLA (8 -> 2) from its checkpoint's recorded config
    (vila_checkpoint,) = sorted((out / "seed0" / "vila").glob("*/checkpoint_*.pth"))[-1:]
    (result,) = explain.main(["--video", str(PANCAKE), "--question", "what colour?", "--options", "red", "blue",
                               "--out", str(tmp_path / "strip.png"), "--checkpoint", str(vila_checkpoint)])
    assert len(result.frame_idx) == 2 and [len(s) for s in result.probabilities] == [4, 4]
    assert printed.rstrip().endswith(f"python -m lavis_vila.tools.app --checkpoint {vila_checkpoint}")
    # Same machine, same seeds: a second run (fresh data and training) gives the same accuracies.
    again = run_reduced_demo(tmp_path / "again", tmp_path / "data_again")["rows"]
    accuracies = lambda rs: [(r["model"], r["seed"], r["accuracy"]) for r in rs]  # noqa: E731
    assert accuracies(again) == accuracies(rows)
