"""Cases of issue 28's probe, each made clear or fine: a crash, a silent drop or a silent
acceptance turned into a message naming what is wrong, or into correct behaviour."""
import json
import os

import pytest
import torch
from lavis.common.registry import registry
from omegaconf import OmegaConf

from conftest import REPO_ROOT, tiny_batch
from lavis_vila.config_check import ConfigError, check_names
from lavis_vila.datasets import synthetic
from lavis_vila.datasets.annotations import AnnotationError
from lavis_vila.datasets.mc_video_qa import MCVideoQADataset
from lavis_vila.datasets.synthetic import GeneratorError, ensure_generated, generate, is_generated
from lavis_vila.models import build_model
from lavis_vila.processors import VideoEvalProcessor
from lavis_vila.stage_weights import STUDENT_PREFIXES
from lavis_vila.tools import make_synthetic, merge_weights, selection_trace

TRAIN_CFG = REPO_ROOT / "projects" / "vila" / "train" / "keyframe_qa_tiny_vila.yaml"
SMALL = dict(num_train=0, num_val=3, frames=8)  # generates in about a second


@pytest.fixture(scope="module")
def vila():
    return build_model("vila", "tiny").eval()


def saved_with_config(model, arch: str, path):
    """A checkpoint as training writes one: the weights and the model config it was built from."""
    config = OmegaConf.load(registry.get_model_class(arch).default_config_path("tiny"))
    torch.save({"model": model.state_dict(), "config": {"model": OmegaConf.to_container(config.model)}}, path)
    return path


# ---------------------------------------------------------------- selection_trace on a vila_uniform run


def test_selection_trace_of_a_vila_uniform_run_exits_1_saying_the_model_selects_no_frames(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    saved_with_config(build_model("vila_uniform", "tiny"), "vila_uniform", run_dir / "checkpoint_0.pth")
    data_dir = generate(str(tmp_path / "kq"), **SMALL)
    capsys.readouterr()  # the generator's progress
    with pytest.raises(SystemExit) as exit_info:
        selection_trace.main(["--run-dir", str(run_dir), "--data-dir", data_dir])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1 and stderr.count("\n") == 1
    assert stderr.startswith(f"selection_trace: {run_dir / 'checkpoint_0.pth'} is a VilaUniform checkpoint: "
                             f"that model selects no frames")


# ---------------------------------------------------------------- duplicate qids


def test_a_qid_that_appears_twice_in_the_annotations_is_an_error_naming_it_and_both_records(tmp_path):
    records = [{"video": f"v{i}", "qid": f"Colour_val_{i:05d}", "question": "q?", "a0": "x", "a1": "y",
                "answer": 0, "num_option": 2} for i in range(15)]
    records.append({**records[3], "answer": 1})  # 16 records, 15 qids
    path = tmp_path / "val.json"
    path.write_text(json.dumps(records))
    with pytest.raises(AnnotationError, match=rf"^{path}: record 15 has qid Colour_val_00003, as record 3 of {path} does"):
        MCVideoQADataset(None, None, str(tmp_path), [str(path)])


def test_a_qid_repeated_across_two_annotation_files_of_one_split_is_an_error_naming_both_files(tmp_path):
    record = {"video": "v", "qid": "Count_val_00000", "question": "q?", "a0": "x", "a1": "y", "answer": 0, "num_option": 2}
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps([record]))
    second.write_text(json.dumps([record]))
    with pytest.raises(AnnotationError, match=rf"^{second}: record 0 has qid Count_val_00000, as record 0 of {first}"):
        MCVideoQADataset(None, None, str(tmp_path), [str(first), str(second)])


# ---------------------------------------------------------------- merge_weights with a stage-2 teacher


def test_merge_weights_refuses_a_vila_checkpoint_as_the_teacher_naming_what_it_expected(tmp_path, vila, capsys):
    teacher = tmp_path / "vila.pth"
    torch.save({"model": vila.state_dict()}, teacher)
    student = tmp_path / "student.pth"
    uniform = build_model("vila_uniform", "tiny")
    torch.save({"model": {k: v for k, v in uniform.state_dict().items() if k.startswith(STUDENT_PREFIXES)}}, student)
    with pytest.raises(SystemExit) as exit_info:
        merge_weights.main(["--teacher", str(teacher), "--student", str(student), "--out", str(tmp_path / "m.pth")])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1 and not (tmp_path / "m.pth").exists()
    assert stderr.startswith(f"merge_weights: {teacher} holds Qformer_T*, query_tokens_T*, t5_proj_T*, frame_prompter*, "
                             f"distiller* weights: a stage-2 vila checkpoint; the teacher must be a stage-1 vila_uniform")


# ---------------------------------------------------------------- predict_answers on frames that are not normalised


def test_predict_answers_refuses_nan_pixels_naming_the_video(vila):
    batch = tiny_batch(vila.num_candidate_frames)
    batch["qid"] = ["q0", "q1"]
    batch["video"][1, 3, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite pixels \(videos \['q1'\] of the batch\)"):
        vila.predict_answers(batch)


def test_predict_answers_refuses_uint8_frames_and_0_to_255_floats_as_not_normalised(vila, test_videos):
    processor = VideoEvalProcessor(image_size=vila.visual_encoder.image_size, num_frames=vila.num_candidate_frames)
    pixels, _ = processor.decode(str(test_videos / "flipping_a_pancake.mkv"))  # (T, 3, S, S) uint8
    batch = {"video": pixels[None], "qa_input": ["what is flipped?"], "num_option": [2]}
    with pytest.raises(ValueError, match=r"samples\['video'\] is torch.uint8: give normalised float frames"):
        vila.predict_answers(batch)
    with pytest.raises(ValueError, match=r"pixels up to 2\d\d \(videos \[0\] of the batch\): not normalised"):
        vila.predict_answers({**batch, "video": pixels[None].float()})
    assert vila.predict_answers({**batch, "video": processor.normalize(pixels)[None]})["prediction"][0] in (0, 1)


# ---------------------------------------------------------------- misspelled nested dataset keys


@pytest.mark.parametrize("option, message", [
    ("datasets.keyframe_qa.build_info.videos.storge=videos",
     r"datasets.keyframe_qa.build_info.videos: unknown key 'storge'; did you mean 'storage'\?"),
    ("datasets.keyframe_qa.build_info.annotations.train.storag=train.json",
     r"datasets.keyframe_qa.build_info.annotations.train: unknown key 'storag'; did you mean 'storage'\?"),
    ("datasets.keyframe_qa.build_info.video.storage=videos",
     r"datasets.keyframe_qa.build_info: unknown key 'video'; did you mean 'videos'\?"),
])
def test_a_misspelled_key_inside_build_info_is_an_error_naming_its_path_and_the_closest_key(option, message):
    config = OmegaConf.merge(OmegaConf.load(TRAIN_CFG), OmegaConf.from_dotlist([option]))
    with pytest.raises(ConfigError, match=rf"^{TRAIN_CFG}: (?s:.*){message}"):
        check_names(config, str(TRAIN_CFG))


def test_every_shipped_keyframe_qa_build_info_passes_the_nested_check():
    check_names(OmegaConf.load(TRAIN_CFG), str(TRAIN_CFG))


# ---------------------------------------------------------------- make_synthetic: interrupted, other options, no clips


def interrupted_regeneration(out: str, monkeypatch, moves_before_kill: int = 1) -> None:
    """Regenerate ``out`` with seed 1, stopping (as a kill would) after ``moves_before_kill`` files are moved in."""
    real_replace, moves = os.replace, []

    def replace_then_stop(source, target):
        if os.path.dirname(os.path.dirname(target)) == out or os.path.dirname(target) == out:
            if len(moves) == moves_before_kill:
                raise KeyboardInterrupt
            moves.append(target)
        real_replace(source, target)

    monkeypatch.setattr(synthetic.os, "replace", replace_then_stop)
    with pytest.raises(KeyboardInterrupt):
        generate(out, seed=1, **SMALL)
    monkeypatch.setattr(synthetic.os, "replace", real_replace)


def test_an_interrupted_regeneration_leaves_a_folder_no_reader_trusts_and_the_next_run_completes_it(tmp_path, monkeypatch):
    out = generate(str(tmp_path / "kq"), seed=0, **SMALL)
    old_val = (tmp_path / "kq" / "val.json").read_text()
    interrupted_regeneration(out, monkeypatch)
    assert not is_generated(out)  # 1 new video among the old ones, under no meta.json
    assert not (tmp_path / "kq" / "meta.json").exists() and (tmp_path / "kq" / "generating.json").exists()
    ensure_generated(out, seed=1, **SMALL)  # the next run writes it again, whole
    assert is_generated(out) and json.loads((tmp_path / "kq" / "meta.json").read_text())["seed"] == 1
    assert (tmp_path / "kq" / "val.json").read_text() != old_val
    assert (tmp_path / "kq" / "val.json").read_text() == open(generate(str(tmp_path / "fresh"), seed=1, **SMALL) + "/val.json").read()


def test_an_interrupted_folder_is_written_again_by_make_synthetic_without_force(tmp_path, monkeypatch, capsys):
    out = generate(str(tmp_path / "kq"), seed=0, **SMALL)
    interrupted_regeneration(out, monkeypatch, moves_before_kill=2)
    make_synthetic.main(["--out", out, "--seed", "1", "--num-train", "0", "--num-val", "3", "--frames", "8"])
    assert is_generated(out) and json.loads((tmp_path / "kq" / "meta.json").read_text())["seed"] == 1


def test_ensure_generated_refuses_a_folder_generated_with_other_options_naming_each(tmp_path):
    out = generate(str(tmp_path / "kq"), seed=0, **SMALL)
    with pytest.raises(GeneratorError, match=r"generated with other options than asked \(frames: 8 in meta.json, 16 asked; "
                                             r"seed: 0 in meta.json, 1 asked\)"):
        ensure_generated(out, **{**SMALL, "seed": 1, "frames": 16})
    assert ensure_generated(out, seed=0, num_val=3) == out  # options it was generated with, or none: used as it is
    assert ensure_generated(out) == out


@pytest.mark.parametrize("counts, message", [
    (["--num-train", "-5"], "argument --num-train: must be 0 or more, got -5"),
    (["--num-val", "-1"], "argument --num-val: must be 0 or more, got -1"),
    (["--num-train", "0", "--num-val", "0"], "--num-train and --num-val are both 0: nothing to generate"),
])
def test_make_synthetic_refuses_negative_or_no_clips_as_a_usage_error(tmp_path, capsys, counts, message):
    with pytest.raises(SystemExit) as exit_info:
        make_synthetic.main(["--out", str(tmp_path / "kq"), *counts])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "kq").exists()
