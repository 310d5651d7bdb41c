"""Trained models as saved-model folders: ``model.safetensors`` with ``config.yaml`` beside it."""
import argparse

import pytest
import torch
from lavis.common.config import Config
from lavis.common.registry import registry
from lavis.models import load_model_and_preprocess
from omegaconf import OmegaConf

from conftest import REPO_ROOT, tiny_batch, train_step
from lavis_vila.checkpoints import CheckpointError, load_checkpoint_file
from lavis_vila.tools import export

EVAL_CONFIG = REPO_ROOT / "projects" / "vila" / "eval" / "keyframe_qa_tiny_vila_eval.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(trained tiny ViLA, its training checkpoint as the runner writes it, the exported folder)."""
    torch.manual_seed(0)
    run = OmegaConf.load(EVAL_CONFIG)
    model_cfg = OmegaConf.merge(OmegaConf.load(registry.get_model_class("vila").default_config_path("tiny")).model,
                                run.model, {"load_finetuned": False})
    model = registry.get_model_class("vila").from_config(model_cfg)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        train_step(model, optimizer, tiny_batch(model_frames=8))
    model.eval()
    run.model = model_cfg
    trainable = {k: v for k, v in model.state_dict(keep_vars=True).items()
                 if not (isinstance(v, torch.nn.Parameter) and not v.requires_grad)}
    folder = tmp_path_factory.mktemp("saved") / "my_vila"
    path = folder.parent / "checkpoint_best.pth"
    torch.save({"model": {k: v.detach() for k, v in trainable.items()}, "epoch": 3,
                "config": OmegaConf.to_container(run, resolve=True)}, path)
    export.main([str(path), "--out", str(folder)])
    return model, path, folder


def assert_same_weights(expected, actual):
    expected, actual = expected.state_dict(), actual.state_dict()
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert different == []


def test_the_folder_holds_safetensors_and_the_config_of_the_trained_model(trained):
    _, _, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "model.safetensors"]
    config = OmegaConf.load(folder / "config.yaml")
    assert config.model.arch == "vila" and config.model.num_candidate_frames == 8
    assert config.preprocess.vis_processor.eval.num_frames == 8  # the run's processors, resolved
    assert load_checkpoint_file(str(folder), "model.finetuned")["epoch"] == 3


def test_a_saved_folder_loads_back_bit_exact_through_load_model_and_preprocess(trained):
    model, _, folder = trained
    loaded, vis_processors, _ = load_model_and_preprocess("vila", str(folder), is_eval=True)
    assert_same_weights(model, loaded)
    assert vis_processors["eval"].num_frames == 8
    batch = tiny_batch(model_frames=8)
    assert loaded.predict_answers(batch) == model.predict_answers(batch)


def test_a_saved_folder_loads_back_bit_exact_through_an_evaluation_config(trained):
    from lavis import tasks

    model, _, folder = trained
    cfg = Config(argparse.Namespace(cfg_path=str(EVAL_CONFIG), options=[f"model.finetuned={folder}"]))
    loaded = tasks.setup_task(cfg).build_model(cfg)
    assert_same_weights(model, loaded)


def test_a_folder_of_another_model_is_refused_naming_both(trained):
    _, _, folder = trained
    with pytest.raises(CheckpointError, match="saved 'vila' model, not a VilaUniform"):
        load_model_and_preprocess("vila_uniform", str(folder))


def test_a_folder_without_weights_and_a_damaged_safetensors_file_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"folder '{tmp_path}' holds no model.safetensors"):
        load_checkpoint_file(str(tmp_path), "model.finetuned")
    damaged = tmp_path / "model.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1")
    with pytest.raises(CheckpointError, match="model.finetuned: .*model.safetensors' is not a readable safetensors"):
        load_checkpoint_file(str(damaged), "model.finetuned")


def test_export_refuses_a_checkpoint_that_records_no_model_config(tmp_path, capsys):
    path = tmp_path / "weights.pth"
    torch.save({"model": {"w": torch.zeros(1)}}, path)
    with pytest.raises(SystemExit):
        export.main([str(path), "--out", str(tmp_path / "out")])
    assert "records no model config" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
