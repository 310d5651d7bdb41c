"""Nothing lost, nothing silent: user folders survive, typos and wrong checkpoints are errors."""
import argparse
import re

import pytest
import torch
from lavis.common.config import Config
from omegaconf import OmegaConf

from conftest import REPO_ROOT, launch_in_process, tiny_batch
from lavis_vila.checkpoints import CheckpointError
from lavis_vila.config_check import ConfigError, check_config, check_names
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
    ("model.frame_num=2", r"model: unknown key 'frame_num'; the official code's 'frame_num' is 'num_selected_frames' here"),
    ("datasets.keyframe_qa.vis_processor.train.n_frms=4",
     r"datasets.keyframe_qa.vis_processor.train: unknown key 'n_frms'; the official code's 'n_frms' is 'num_frames' here"),
    ("datasets.keyframe_qa.on_bad_video_evl=skip", r"datasets.keyframe_qa: unknown key 'on_bad_video_evl'; did you mean 'on_bad_video_eval'\?"),
    ("run.max_epochs=3", r"run: unknown key 'max_epochs'; did you mean 'max_epoch'\?"),
    ("run.runner=vila_runer", r"run.runner: unknown runner 'vila_runer'. Registered: \[.*'vila_runner'"),
    ("datasets.keyframe_qa.vis_processor.eval.name=vila_video_evl",
     r"vis_processor.eval.name: unknown processor 'vila_video_evl'. Registered: \[.*'vila_video_eval'"),
])
def test_an_unknown_config_key_or_name_is_an_error_naming_file_section_and_closest_known(option, message):
    with pytest.raises(ConfigError, match=rf"^{TRAIN_CFG}: .*{message}"):
        check_config(config_with(option), str(TRAIN_CFG))


def written(*options):
    """The YAML and its options as written, what the launcher checks before LAVIS's ``Config``."""
    return OmegaConf.merge(OmegaConf.load(TRAIN_CFG), OmegaConf.from_dotlist(list(options)))


@pytest.mark.parametrize("option, message", [
    ("model.teacher_frame_num=8", r"model: unknown key 'teacher_frame_num'; the official code's 'teacher_frame_num' "
                                  r"is 'num_candidate_frames' here"),
    ("model.freeze_vit=True", r"model: unknown key 'freeze_vit'; drop it \(the ViT is always frozen here\)"),
    ("model.answer_num=4", r"model: unknown key 'answer_num'; drop it \(each record's num_option"),
    ("run.temp=True", r"run: unknown key 'temp'; drop it \(the Gumbel temperature always anneals here.*"
                      r"run.temperature_start/end/epochs set it\)"),
    ("run.max_len=30", r"run: unknown key 'max_len'; drop it \(answers are scored over the options here"),
    ("run.min_len=8", r"run: unknown key 'min_len'; drop it \(answers are scored"),
    ("run.num_beams=5", r"run: unknown key 'num_beams'; drop it \(answers are scored"),
    ("run.task=videoqa", r"run.task: the official code's task 'videoqa' is 'videoqa_mc' here"),
    ("model.arch=vila_ori", r"model.arch: the official code's model 'vila_ori' is 'vila_uniform' here"),
    ("model.arch=sevila", r"model.arch: the official code's model 'sevila' is 'sevila_baseline' here"),
    ("datasets.keyframe_qa.vis_processor.train.name=blip2_video_train",
     r"vis_processor.train.name: the official code's processor 'blip2_video_train' is 'vila_video_train' here"),
    ("datasets.keyframe_qa.vis_processor.eval.name=blip_video_eval",
     r"vis_processor.eval.name: the official code's processor 'blip_video_eval' is 'vila_video_eval' here"),
])
def test_the_official_vila_and_sevila_vocabulary_points_to_ours_or_says_drop_it(option, message):
    with pytest.raises(ConfigError, match=rf"^{TRAIN_CFG}: (?s:.*){message}") as error:
        check_names(written(option), str(TRAIN_CFG))
    assert "did you mean" not in str(error.value)  # max_len is not max_iters, num_beams not num_workers


def test_a_yaml_with_five_official_keys_gets_one_error_listing_all_five_before_training(tmp_path):
    config = OmegaConf.load(TRAIN_CFG)
    config.model.update(frame_num=2, teacher_frame_num=8, freeze_vit=True)
    config.run.update(temp=True, max_len=30)
    path = tmp_path / "official.yaml"
    OmegaConf.save(config, path)
    result = launch_in_process("lavis_vila.train", ["--cfg-path", path, "--options", f"run.output_dir={tmp_path / 'out'}"])
    assert result.returncode != 0 and not (tmp_path / "out").exists()
    assert f"ConfigError: {path} (with --options): 5 problems, all of them:" in result.stderr
    for line in ["model: unknown key 'frame_num'; the official code's 'frame_num' is 'num_selected_frames' here",
                 "model: unknown key 'teacher_frame_num'; the official code's 'teacher_frame_num' is "
                 "'num_candidate_frames' here",
                 "model: unknown key 'freeze_vit'; drop it", "run: unknown key 'temp'; drop it",
                 "run: unknown key 'max_len'; drop it"]:
        assert f"\n  - {line}" in result.stderr


def test_blip_question_is_a_warning_that_it_rewrites_every_prompt(caplog):
    check_config(config_with("datasets.keyframe_qa.text_processor.eval.name=blip_question"), str(TRAIN_CFG))
    (warning,) = [r.getMessage() for r in caplog.records if "blip_question" in r.getMessage()]
    assert "text_processor.eval.name: blip_question lower-cases every question and option" in warning
    assert "never applied" in warning and "vila_question keeps them as written" in warning


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
