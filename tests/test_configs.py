import argparse
from pathlib import Path

import pytest
from lavis.common.config import Config
from lavis.common.registry import registry

import lavis.runners  # noqa: F401  (registers runner_base)
from lavis_vila.config_check import check_config

PROJECT_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "projects" / "vila").rglob("*.yaml"))


def test_every_dataset_and_stage_has_project_configs():
    names = {p.name for p in PROJECT_CONFIGS}
    for dataset, frames in [("nextqa", 32), ("star", 32), ("how2qa", 8), ("tvqa", 32), ("vlep", 32)]:
        for stage in [f"teacher_{frames}f", "student_4f", f"vila_{frames}to4"]:
            assert f"{dataset}_{stage}.yaml" in names
        assert f"{dataset}_vila_{frames}to4_eval.yaml" in names


def load(path, *options):
    return Config(argparse.Namespace(cfg_path=str(path), options=list(options)))


@pytest.mark.parametrize("path", PROJECT_CONFIGS, ids=lambda p: p.name)
def test_project_config_loads_and_its_processors_feed_the_model_all_candidate_frames(path):
    cfg = load(path)
    check_config(cfg, str(path))  # every key is one a class reads
    assert registry.get_task_class(cfg.run_cfg.task) is not None
    assert registry.get_runner_class(cfg.run_cfg.runner) is not None
    for name, dataset_cfg in cfg.datasets_cfg.items():
        builder = registry.get_builder_class(name)(dataset_cfg)
        builder.build_processors()
        if cfg.model_cfg.get("num_candidate_frames"):  # the processors must feed the selector all T frames
            # (SeViLA's self-refinement trains on frames judged one at a time, and selects in validation only)
            selecting = ["eval"] if cfg.model_cfg.get("train_localizer") else ["train", "eval"]
            for processor in filter(None, (builder.vis_processors[split] for split in selecting)):
                assert processor.num_frames == cfg.model_cfg.num_candidate_frames


DISTINCT_MODELS = sorted({(load(p).model_cfg.arch, load(p).model_cfg.model_type) for p in PROJECT_CONFIGS})


@pytest.mark.parametrize("arch, model_type", DISTINCT_MODELS)
def test_every_model_the_configs_name_builds_on_the_meta_device(arch, model_type):
    path = next(p for p in PROJECT_CONFIGS if (load(p).model_cfg.arch, load(p).model_cfg.model_type) == (arch, model_type))
    registry.get_model_class(arch).from_config(load(path).model_cfg, empty=True)


GPU_CONFIGS = [p for p in PROJECT_CONFIGS if "keyframe_qa" not in p.name]


@pytest.mark.parametrize("path", GPU_CONFIGS, ids=lambda p: p.name)
def test_gpu_project_config_also_passes_the_check_under_lavis_runner_base(path, caplog):
    cfg = Config(argparse.Namespace(cfg_path=str(path), options=["run.runner=runner_base"]))
    check_config(cfg, str(path))
    ignored = {r.getMessage().split("run.")[1].split(" ")[0] for r in caplog.records if "ignores it" in r.getMessage()}
    assert ignored <= {"find_unused_parameters", "lr_scales"}  # what docs/runners.md says runner_base ignores


def test_the_gpu_check_config_passes_the_check_with_both_runners(tmp_path):
    from lavis_vila.experiments import gpu_check

    args = argparse.Namespace(dry_run=False, batch_size=2)
    path = gpu_check.write_config(str(tmp_path / "vila_32to4.yaml"), str(tmp_path / "data"), args)
    for runner in ("runner_base", "vila_runner"):
        cfg = Config(argparse.Namespace(cfg_path=path, options=[f"run.runner={runner}", f"run.output_dir={tmp_path}"]))
        check_config(cfg, path)
        assert cfg.model_cfg.t5_model == "flan_t5_xl" and cfg.run_cfg.amp is True
