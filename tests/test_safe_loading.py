"""Loading a checkpoint never runs code: every entry point reads .pth files with weights_only=True."""

import pytest
import torch

from conftest import PANCAKE, launch_in_process
from lavis_vila.checkpoints import UnsafeCheckpointError
from lavis_vila.models import build_model
from lavis_vila.tools import convert_checkpoint, explain, merge_weights


class CreatesMarkerWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture
def malicious(tmp_path):
    """A .pth holding a tensor and an object whose unpickling would create ``marker``."""
    marker = tmp_path / "marker"
    path = tmp_path / "malicious.pth"
    torch.save({"model": {"query_tokens": torch.zeros(1), "payload": CreatesMarkerWhenUnpickled(marker)}}, path)
    return path, marker


@pytest.mark.parametrize("config_key, overrides", [
    ("vit_weights", lambda p: {"vit_weights": str(p)}),
    ("model.pretrained", lambda p: {"pretrained": str(p)}),
    ("model.finetuned", lambda p: {"load_finetuned": True, "finetuned": str(p)}),
])
def test_model_weight_sources_refuse_a_pickle_that_would_run_code(malicious, config_key, overrides):
    path, marker = malicious
    with pytest.raises(UnsafeCheckpointError, match=rf"^{config_key}: refused to load '{path}'") as error:
        build_model("vila", "tiny", **overrides(path))
    assert "convert_checkpoint --trust" in str(error.value)
    assert not marker.exists()


def test_merge_weights_refuses_a_teacher_that_would_run_code(malicious, tmp_path, capsys):
    path, marker = malicious
    with pytest.raises(SystemExit) as exit_info:
        merge_weights.main(["--teacher", str(path), "--student", str(path), "--out", str(tmp_path / "m.pth")])
    assert exit_info.value.code == 1 and f"--teacher: refused to load '{path}'" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "m.pth").exists()


def test_explain_refuses_a_checkpoint_that_would_run_code(malicious, tmp_path, capsys):
    path, marker = malicious
    with pytest.raises(SystemExit) as exit_info:
        explain.main(["--video", str(PANCAKE), "--question", "q?", "--options", "a", "b",
                      "--out", str(tmp_path / "s.png"), "--checkpoint", str(path)])
    assert exit_info.value.code == 1 and f"--checkpoint: refused to load '{path}'" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_that_would_run_code(malicious, tmp_path):
    from lavis_vila.datasets.synthetic import generate
    from test_pipeline import TRAIN_CFG

    path, marker = malicious
    data = generate(str(tmp_path / "kq"), seed=2, num_train=8, num_val=4)
    result = launch_in_process("lavis_vila.train", [
        "--cfg-path", TRAIN_CFG, "--options", f"datasets.keyframe_qa.data_dir={data}",
        f"run.output_dir={tmp_path / 'out'}", "run.batch_size_train=4", f"run.resume_ckpt_path={path}"])
    assert result.returncode != 0
    assert f"run.resume_ckpt_path: refused to load '{path}'" in result.stderr
    assert not marker.exists()


def test_convert_checkpoint_needs_trust_then_writes_a_copy_that_loads_safely(tmp_path):
    path = tmp_path / "with_numpy.pth"
    import numpy as np

    torch.save({"model": {"w": torch.ones(2)}, "epoch": np.int64(3)}, path)  # numpy scalars are not plain types
    with pytest.raises(UnsafeCheckpointError):
        build_model("vila_uniform", "tiny", pretrained=str(path))
    with pytest.raises(SystemExit):
        convert_checkpoint.main([str(path), "--out", str(tmp_path / "out.pth")])
    convert_checkpoint.main(["--trust", str(path), "--out", str(tmp_path / "out.pth")])
    converted = torch.load(tmp_path / "out.pth", weights_only=True)
    assert list(converted) == ["model"] and torch.equal(converted["model"]["w"], torch.ones(2))
