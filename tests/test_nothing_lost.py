"""Nothing lost, nothing silent: user folders survive, typos and wrong checkpoints are errors."""
import argparse
import re

import pytest
import torch
from lavis.common.config import Config
from omegaconf import OmegaConf

from conftest import REPO_ROOT, launch_in_process, tiny_batch
from lavis_vila.checkpoints import CheckpointError
from lavis_vila.config_check import ConfigError, check_config
from lavis_vila.datasets.builders import KeyframeQABuilder
from lavis_vila.datasets.synthetic import GeneratorError
from lavis_vila.models import build_model
from lavis_vila.checkpoints import CheckpointMismatchError
from lavis_vila.stage_weights import STUDENT_PREFIXES
from lavis_vila.tools import make_synthetic, merge_weights

TRAIN_CFG = REPO_ROOT / "projects" / "vila" / "train" / "keyframe_qa_tiny_vila.yaml"


# ---------------------------------------------------------------- never delete what we did not create

def test_make_synthetic_refuses_a_folder_with_other_files_and_force_keeps_them(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("my notes")
    with pytest.raises(SystemExit) as exit_info:
        make_synthetic.main(["--out", str(tmp_path), "--num-train", "3", "--num-val", "3"])
    assert exit_info.value.code == 1
    assert f"{tmp_path} holds files that keyframe_qa did not write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    make_synthetic.main(["--out", str(tmp_path), "--num-train", "3", "--num-val", "3", "--force"])
    assert (tmp_path / "a.txt").read_text() == "my notes" and (tmp_path / "meta.json").is_file()


def test_keyframe_qa_data_dir_with_a_users_annotations_and_no_meta_is_refused_untouched(tmp_path):
    user_file = tmp_path / "train.json"
    user_file.write_text('[{"my": "annotations"}]')
    config = OmegaConf.load(KeyframeQABuilder.default_config_path()).datasets.keyframe_qa
    config.data_dir = str(tmp_path)
    with pytest.raises(GeneratorError, match=rf"data_dir {tmp_path} holds files but no meta.json"):
        KeyframeQABuilder(config).build_datasets()
    assert user_file.read_text() == '[{"my": "annotations"}]' and sorted(p.name for p in tmp_path.iterdir()) == ["train.json"]


# ---------------------------------------------------------------- configs that reject what they do not know

def config_with(*options):
    return Config(argparse.Namespace(cfg_path=str(TRAIN_CFG), options=list(options)))


@pytest.mark.parametrize("option, message", [
    ("model.num_selected_frame=2", r"model: unknown key 'num_selected_frame'; did you mean 'num_selected_frames'\?"),
    ("model.num_candiate_frames=8", r"model: unknown key 'num_candiate_frames'; did you mean 'num_candidate_frames'\?"),
    ("model.frame_num=2", r"model: unknown key 'frame_num'; SeViLA's 'frame_num' is 'num_selected_frames' here"),
    ("datasets.keyframe_qa.vis_processor.train.n_frms=4",
     r"datasets.keyframe_qa.vis_processor.train: unknown key 'n_frms'; SeViLA's 'n_frms' is 'num_frames' here"),
    ("datasets.keyframe_qa.on_bad_video_evl=skip", r"datasets.keyframe_qa: unknown key 'on_bad_video_evl'; did you mean 'on_bad_video_eval'\?"),
    ("run.max_epochs=3", r"run: unknown key 'max_epochs'; did you mean 'max_epoch'\?"),
    ("run.runner=vila_runer", r"run.runner: unknown runner 'vila_runer'. Registered: \[.*'vila_runner'"),
    ("datasets.keyframe_qa.vis_processor.eval.name=vila_video_evl",
     r"vis_processor.eval.name: unknown processor 'vila_video_evl'. Registered: \[.*'vila_video_eval'"),
])
def test_an_unknown_config_key_or_name_is_an_error_naming_file_section_and_closest_known(option, message):
    with pytest.raises(ConfigError, match=rf"^{TRAIN_CFG}: .*{message}"):
        check_config(config_with(option), str(TRAIN_CFG))


def test_keys_read_by_lavis_runner_base_stay_valid():
    check_config(config_with("run.runner=runner_base", "run.use_dist_eval_sampler=False", "run.lr_decay_rate=0.9",
                             "run.train_dataset_ratios=null"), str(TRAIN_CFG))


def test_the_launcher_rejects_a_typo_before_training_naming_the_yaml(tmp_path):
    result = launch_in_process("lavis_vila.train", ["--cfg-path", TRAIN_CFG, "--options", "model.num_selected_frame=2",
                                                    f"run.output_dir={tmp_path}"])
    assert result.returncode != 0
    assert f"{TRAIN_CFG} (with --options): model: unknown key 'num_selected_frame'" in result.stderr
    assert not any(tmp_path.iterdir())


def test_build_model_rejects_an_unknown_override():
    with pytest.raises(ConfigError, match=r"vila model config: unknown key 'num_selected_frame'"):
        build_model("vila", "tiny", num_selected_frame=2)


# ---------------------------------------------------------------- checkpoints that know what they are

def save_trainable(model, path):
    torch.save({"model": {k: v for k, v in model.state_dict(keep_vars=True).items()
                          if not (isinstance(v, torch.nn.Parameter) and not v.requires_grad)}}, path)
    return path


def test_a_vila_uniform_checkpoint_into_vila_is_refused_naming_the_frame_prompter(tmp_path):
    path = save_trainable(build_model("vila_uniform", "tiny"), tmp_path / "uniform.pth")
    with pytest.raises(CheckpointMismatchError, match=r"model.finetuned: .*uniform.pth' does not cover .*frame_prompter"):
        build_model("vila", "tiny", load_finetuned=True, finetuned=str(path))


def test_a_checkpoint_that_covers_every_trainable_parameter_loads(tmp_path):
    source = build_model("vila", "tiny", num_candidate_frames=8, num_selected_frames=2)
    path = save_trainable(source, tmp_path / "vila.pth")
    loaded = build_model("vila", "tiny", num_candidate_frames=8, num_selected_frames=2, load_finetuned=True,
                         finetuned=str(path))
    assert torch.equal(loaded.frame_prompter.pool.weight, source.frame_prompter.pool.weight)


def test_pretrained_weights_are_a_partial_initialisation(tmp_path):
    path = save_trainable(build_model("vila_uniform", "tiny"), tmp_path / "instructblip_like.pth")
    model = build_model("vila", "tiny", pretrained=str(path))  # the prompter and distiller start fresh
    assert model.frame_prompter.pool.weight.requires_grad


def test_finetuned_without_load_finetuned_is_an_error_naming_both_keys(tmp_path):
    with pytest.raises(ValueError, match=r"model.finetuned is set .* but model.load_finetuned is False"):
        build_model("vila", "tiny", finetuned=str(tmp_path / "x.pth"))


# ---------------------------------------------------------------- inputs checked where they enter

def test_prediction_leaves_the_model_usable_for_training():
    model = build_model("vila_uniform", "tiny")
    model.eval()
    model.predict_answers(tiny_batch(4))
    model.train()
    model(tiny_batch(4))["loss"].backward()
    assert model.query_tokens.grad is not None


@pytest.mark.parametrize("num_option", [0, 1, 6])
def test_num_option_outside_2_to_5_is_an_error(num_option):
    model = build_model("vila_uniform", "tiny").eval()
    batch = tiny_batch(4, batch_size=1)
    batch["num_option"] = [num_option]
    with pytest.raises(ValueError, match=rf"num_option must be 2 to 5 for every sample, got \[{num_option}\]"):
        model.predict_answers(batch)


def test_batch_entries_that_disagree_with_the_videos_are_an_error():
    model = build_model("vila_uniform", "tiny")
    batch = tiny_batch(4, batch_size=2)
    batch["qa_input"] = batch["qa_input"][:1]
    with pytest.raises(ValueError, match=r"samples\['qa_input'\] has 1 entries for 2 videos"):
        model(batch)
    batch = tiny_batch(4, batch_size=1)
    batch["qa_input"] = batch["qa_input"][0]
    with pytest.raises(ValueError, match=r"samples\['qa_input'\] must be a list with one entry per video, got the string"):
        model.predict_answers(batch)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "truncated"])
def test_an_unreadable_checkpoint_is_an_error_naming_file_and_key(tmp_path, content):
    path = tmp_path / "broken.pth"
    if content == "truncated":
        torch.save({"model": {"w": torch.ones(1000)}}, path)
        path.write_bytes(path.read_bytes()[:500])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"^model.finetuned: '{path}' is not a readable PyTorch checkpoint"):
        build_model("vila", "tiny", load_finetuned=True, finetuned=str(path))


def stage1(tmp_path, name, frames):
    """A vila_uniform checkpoint as training writes it, recording its config (processor frames)."""
    model = build_model("vila_uniform", "tiny")
    config = {"model": {"arch": "vila_uniform", "model_type": "tiny"},
              "datasets": {"keyframe_qa": {"vis_processor": {"train": {"num_frames": frames}}}}}
    path = tmp_path / f"{name}.pth"
    torch.save({"model": {k: v for k, v in model.state_dict().items() if k.startswith(STUDENT_PREFIXES)},
                "config": config}, path)
    return path


def test_merge_weights_refuses_swapped_teacher_and_student(tmp_path, capsys):
    teacher, student = stage1(tmp_path, "teacher8", 8), stage1(tmp_path, "student2", 2)
    with pytest.raises(SystemExit) as exit_info:
        merge_weights.main(["--teacher", str(student), "--student", str(teacher), "--out", str(tmp_path / "m.pth")])
    assert exit_info.value.code == 1
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and re.search(r"teacher .*student2.pth was trained on 2 frames and the "
                                                   r"student .*teacher8.pth on 8.*swapped", message)
    merge_weights.main(["--teacher", str(teacher), "--student", str(student), "--out", str(tmp_path / "m.pth")])
    merged = torch.load(tmp_path / "m.pth", weights_only=True)
    assert "Frame-Prompter and the distiller start fresh" in merged["partial"]
    build_model("vila", "tiny", num_candidate_frames=8, num_selected_frames=2, load_finetuned=True,
                finetuned=str(tmp_path / "m.pth"))  # a partial load, and it says so


def test_processor_frames_that_disagree_with_the_models_candidates_are_an_error():
    with pytest.raises(ConfigError, match=r"datasets.keyframe_qa.vis_processor.eval.num_frames is 16 but "
                                          r"model.num_candidate_frames is 8"):
        check_config(config_with("datasets.keyframe_qa.vis_processor.eval.num_frames=16"), str(TRAIN_CFG))


def test_distilling_from_teacher_slots_a_checkpoint_left_unfilled_is_an_error_naming_qformer_t(tmp_path):
    path = save_trainable(build_model("vila_uniform", "tiny"), tmp_path / "instructblip_like.pth")
    model = build_model("vila", "tiny", num_candidate_frames=8, num_selected_frames=2, pretrained=str(path)).train()
    with pytest.raises(ValueError, match=r"leaves the teacher slots unfilled \(query_tokens_T \(1\), Qformer_T "
                                         r"\(\d+\), t5_proj_T \(2\)\).*merge_weights"):
        model(tiny_batch(8), temperature=1.0)
    model.eval()
    model.predict_answers(tiny_batch(8))  # evaluation never runs the teacher
    model.distill_weight = 0.0
    model.train()
    model(tiny_batch(8), temperature=1.0)  # nor does training without distillation


def test_a_merged_stage_2_initialisation_fills_the_teacher_and_distils(tmp_path):
    teacher, student = stage1(tmp_path, "teacher8", 8), stage1(tmp_path, "student2", 2)
    merge_weights.main(["--teacher", str(teacher), "--student", str(student), "--out", str(tmp_path / "m.pth")])
    model = build_model("vila", "tiny", num_candidate_frames=8, num_selected_frames=2, load_finetuned=True,
                        finetuned=str(tmp_path / "m.pth")).train()
    assert model.unfilled_teacher == [] and "loss_distill" in model(tiny_batch(8), temperature=1.0)
