"""Every benchmark config end to end on prepared data: the official release format through
``tools.prepare``, videos laid out as each release names them, then the eval config (and one train
config) with the smoke options: ``model.model_type=tiny`` offline on the CPU."""
import csv
import json
import shutil

import pytest

from conftest import PANCAKE, REPO_ROOT, launch_in_process
from lavis_vila.tools import prepare

pytestmark = pytest.mark.slow
PROJECT = REPO_ROOT / "projects" / "vila"
SMOKE = ["model.model_type=tiny", "model.load_finetuned=False", "model.finetuned=null", "run.device=cpu",
         "run.num_workers=0", "run.batch_size_eval=2"]


def write_nextqa(folder):
    rows = [("101", "what does he do after the flip", "TN"), ("102", "why does he flip it", "CW"),
            ("103", "how many pancakes are there", "DC"), ("101", "what happens before the flip", "TP")]
    with open(folder / "val.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "frame_count", "width", "height", "question", "answer", "qid", "type",
                         "a0", "a1", "a2", "a3", "a4"])
        for qid, (video, question, qtype) in enumerate(rows):
            writer.writerow([video, 310, 640, 360, question, qid % 5, qid, qtype, "a", "b", "c", "d", "e"])
    (folder / "map.json").write_text(json.dumps({"101": "0001/101", "102": "0001/102", "103": "0002/103"}))
    return ["--input", str(folder / "val.csv"), "--video-map", str(folder / "map.json")]


def write_star(folder):
    rows = [{"question_id": f"{qtype}_T1_{i}", "question": "What did the person do?", "video_id": f"V{i}",
             "start": 1.0, "end": 8.5, "answer": "Flipped.",
             "choices": [{"choice_id": j, "choice": c} for j, c in enumerate(["Flipped.", "Ate.", "Sat.", "Ran."])]}
            for i, qtype in enumerate(["Interaction", "Sequence", "Prediction", "Feasibility"])]
    (folder / "STAR_val.json").write_text(json.dumps(rows))
    return ["--input", str(folder / "STAR_val.json")]


def write_jsonl(folder, name, rows):
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["--input", str(folder / name)]


def write_how2qa(folder):
    return write_jsonl(folder, "how2qa_val_release.jsonl", [
        {"vid_name": f"clip{i}_0_10", "q": "what is flipped?", "a0": "a pancake", "a1": "a coin", "a2": "a card",
         "a3": "a page", "answer_idx": i % 4, "ts": "1.70-1.70" if i == 1 else "0.5-9.0", "qid": f"how2qa_{50 + i}"}
        for i in range(3)])


def write_tvqa(folder):
    return write_jsonl(folder, "tvqa_val.jsonl", [
        {"vid_name": f"s01e01_seg01_clip_0{i}", "q": "What is in the pan?", "a0": "a pancake", "a1": "an egg",
         "a2": "soup", "a3": "rice", "a4": "nothing", "answer_idx": i, "ts": ["NaN-NaN", "1.0-9.5", "0-0"][i],
         "qid": 135000 + i}
        for i in range(3)])


def write_vlep(folder):
    return write_jsonl(folder, "vlep_dev_release.jsonl", [
        {"example_id": 100 + i, "vid_name": f"show_s01e01_clip_{i}", "ts": [1.0, 8.0],
         "events": ["He will flip it.", "He will leave."], "answer": i % 2, "split": "dev"} for i in range(3)])


BENCHMARKS = {  # dataset: (official-format writer, eval config, metric keys it must report, questions written)
    "nextqa": (write_nextqa, "nextqa_vila_32to4_eval.yaml",
               {"accuracy", "accuracy_Temporal", "accuracy_Causal", "accuracy_Descriptive"}, 4),
    "star": (write_star, "star_vila_32to4_eval.yaml",
             {"accuracy", "star_avg", "accuracy_Interaction", "accuracy_Sequence", "accuracy_Prediction",
              "accuracy_Feasibility"}, 4),
    "how2qa": (write_how2qa, "how2qa_vila_8to4_eval.yaml", {"accuracy", "accuracy_HOW2QA"}, 3),
    "tvqa": (write_tvqa, "tvqa_vila_32to4_eval.yaml", {"accuracy", "accuracy_TVQA"}, 3),
    "vlep": (write_vlep, "vlep_vila_32to4_eval.yaml", {"accuracy", "accuracy_VLEP"}, 3),
}


def prepared(dataset, tmp_path, *splits):
    """``data/<dataset>`` with the prepared splits and a copy of a real video under every record's name."""
    release, root = tmp_path / "release", tmp_path / "data" / dataset
    release.mkdir()
    root.mkdir(parents=True)
    source = BENCHMARKS[dataset][0](release)
    for split in splits:
        prepare.main([dataset, *source, "--out", str(root / f"{split}.json")])
    for record in json.loads((root / f"{splits[0]}.json").read_text()):
        video = root / "videos" / f"{record['video']}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PANCAKE, video)  # decord reads the container, whatever the extension
    return root, [r["qid"] for r in json.loads((root / f"{splits[0]}.json").read_text())]


def launch(module, cfg, dataset, root, out, *options):
    return launch_in_process(module, ["--cfg-path", cfg, "--options", *SMOKE, f"datasets.{dataset}.data_root={root}",
                                      f"run.output_dir={out}", *options])


@pytest.mark.parametrize("dataset", sorted(BENCHMARKS))
def test_benchmark_eval_config_evaluates_every_question_of_its_prepared_val_split_tiny_offline(dataset, tmp_path):
    root, qids = prepared(dataset, tmp_path, "val")
    result = launch("lavis_vila.evaluate", PROJECT / "eval" / BENCHMARKS[dataset][1], dataset, root, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    metrics = json.loads((job / "result" / "val_epochbest_metrics.json").read_text())
    assert BENCHMARKS[dataset][2] <= set(metrics) and metrics["total"] == len(qids) == BENCHMARKS[dataset][3]
    rows = json.loads((job / "result" / "val_epochbest.json").read_text())
    assert sorted(r["qid"] for r in rows) == sorted(qids)  # one row per qid
    config = json.loads((job / "config.json").read_text())
    assert config["model"]["t5_model"] == "tiny" and config["datasets"][dataset]["vis_processor"]["eval"]["image_size"] == 32


def test_a_sevila_format_tvqa_record_with_a_nan_window_evaluates_on_the_whole_clip(tmp_path):
    root, qids = prepared("tvqa", tmp_path, "val")
    records = json.loads((root / "val.json").read_text())
    for record in records:  # as SeViLA's TVQA files hold them
        record.update(start="NaN", end="NaN")
    (root / "val.json").write_text(json.dumps(records))
    result = launch("lavis_vila.evaluate", PROJECT / "eval" / BENCHMARKS["tvqa"][1], "tvqa", root, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    assert json.loads((job / "result" / "val_epochbest_metrics.json").read_text())["total"] == len(qids) == 3
    assert {r["qid"] for r in json.loads((job / "result" / "val_epochbest.json").read_text())} == set(qids)


@pytest.mark.parametrize("dataset, release_ids", [("how2qa", {"how2qa_50", "how2qa_51", "how2qa_52"}),
                                                  ("tvqa", {"135000", "135001", "135002"})])
def test_how2qa_and_tvqa_results_carry_the_release_ids_and_the_type_prefix(dataset, release_ids, tmp_path):
    root, _ = prepared(dataset, tmp_path, "val")
    result = launch("lavis_vila.evaluate", PROJECT / "eval" / BENCHMARKS[dataset][1], dataset, root, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    rows = json.loads((job / "result" / "val_epochbest.json").read_text())
    assert {r["release_id"] for r in rows} == release_ids
    assert {r["question_type"] for r in rows} == {dataset.upper()}
    assert all(r["qid"] == f"{dataset.upper()}_{r['release_id']}" for r in rows)


def test_a_vlep_record_of_a_tv_clip_finds_its_video_in_the_tvqa_folder(tmp_path):
    root, qids = prepared("vlep", tmp_path, "val")
    records = json.loads((root / "val.json").read_text())
    shutil.rmtree(root / "videos")
    (root / "videos").mkdir()  # VLEP's own folder (YouTube clips) is empty
    for i, record in enumerate(records):  # VLEP's names of TV-show clips; TVQA's folder holds them without _ep
        record["video"] = f"friends_s01e01_seg02_clip_0{i}_ep"
        tvqa_video = tmp_path / "data" / "tvqa" / "videos" / f"friends_s01e01_seg02_clip_0{i}.mp4"
        tvqa_video.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PANCAKE, tvqa_video)
    (root / "val.json").write_text(json.dumps(records))
    result = launch("lavis_vila.evaluate", PROJECT / "eval" / BENCHMARKS["vlep"][1], "vlep", root, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    assert json.loads((job / "result" / "val_epochbest_metrics.json").read_text())["total"] == len(qids) == 3


def test_star_train_config_trains_one_epoch_tiny(tmp_path):
    root, _ = prepared("star", tmp_path, "train", "val")
    result = launch("lavis_vila.train", PROJECT / "train" / "star_vila_32to4.yaml", "star", root, tmp_path / "out",
                    "run.max_epoch=1", "run.global_batch_size=2", "run.batch_size_train=2", "run.warmup_samples=2")
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    assert (job / "checkpoint_0.pth").is_file()
    metrics = [json.loads(p.read_text()) for p in (job / "result").glob("val_epoch*_metrics.json")]
    assert metrics and all(m["total"] == 4 for m in metrics)


def test_a_missing_evaluation_split_names_the_file_and_the_key(tmp_path):
    root, _ = prepared("nextqa", tmp_path, "val")
    (root / "val.json").unlink()
    result = launch("lavis_vila.evaluate", PROJECT / "eval" / "nextqa_vila_32to4_eval.yaml", "nextqa", root,
                    tmp_path / "out")
    assert result.returncode != 0
    assert f"annotation file not found: {root / 'val.json'}" in result.stderr
    assert "datasets.nextqa.build_info.annotations.val.storage" in result.stderr


SEVILA_BENCHMARKS = ("nextqa", "star", "how2qa", "tvqa", "vlep")


@pytest.mark.parametrize("dataset", SEVILA_BENCHMARKS)
def test_sevilas_refinement_and_answerer_configs_validate_every_epoch_at_32_to_4(dataset):
    from omegaconf import OmegaConf

    for step, train_frames in (("localizer", 4), ("answerer", 32)):
        cfg = OmegaConf.load(PROJECT / "train" / f"{dataset}_sevila_{step}.yaml")
        assert (cfg.model.num_candidate_frames, cfg.model.num_selected_frames) == (32, 4)
        assert OmegaConf.select(cfg, f"datasets.{dataset}.vis_processor.eval.num_frames") == 32
        assert OmegaConf.select(cfg, f"datasets.{dataset}.vis_processor.train.num_frames") == train_frames
        assert list(cfg.run.valid_splits) == ["val"] and cfg.model.train_localizer == (step == "localizer")


def test_sevilas_refinement_config_trains_on_4_frames_and_validates_4_of_32_tiny(tmp_path):
    root, qids = prepared("nextqa", tmp_path, "train", "val")
    result = launch("lavis_vila.train", PROJECT / "train" / "nextqa_sevila_localizer.yaml", "nextqa", root,
                    tmp_path / "out", "run.max_epoch=1",
                    "run.global_batch_size=2", "run.batch_size_train=2", "run.warmup_samples=2")
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "out").iterdir()
    rows = json.loads((job / "result" / "val_epoch0.json").read_text())
    assert sorted(r["qid"] for r in rows) == sorted(qids)
    assert all(len(r["frame_idx"]) == 4 and max(r["frame_idx"]) < 32 for r in rows)
    assert (job / "checkpoint_best.pth").is_file()
