"""Every documented weight source loads offline, from files written in the released formats.

The files are written from tiny models whose tensors hold known, non-random values, so each test
can check that every tensor arrives where it belongs.
"""
import logging
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from transformers import BertTokenizer, T5Tokenizer, T5TokenizerFast

from conftest import QUESTION
from lavis_vila.datasets.synthetic import QUESTION_TYPES
from lavis_vila.models import backbones, build_model
from lavis_vila.prompts import mc_prompt
from lavis_vila.experiments.make_tiny_tokenizers import corpus

TINY_T5_SPIECE = os.path.join(backbones.TOKENIZER_DIR, "tiny_t5", "spiece.model")
TINY_BERT_VOCAB = os.path.join(backbones.TOKENIZER_DIR, "tiny_bert", "vocab.txt")


def known_values(module: torch.nn.Module, offset: float = 0.0) -> dict:
    """Give every tensor of ``module`` distinct deterministic values; return a copy of them."""
    with torch.no_grad():
        for index, tensor in enumerate(module.state_dict(keep_vars=True).values()):
            if tensor.is_floating_point():
                tensor.copy_(torch.linspace(-1, 1, tensor.numel()).reshape(tensor.shape) * (index + 1) / 100 + offset)
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def assert_arrived(expected: dict, actual: dict) -> None:
    """Every expected tensor is in ``actual`` under its name, equal once cast to the model's dtype."""
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor.to(actual[name].dtype), rtol=0, atol=0, msg=name)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --------------------------------------------------------------------------- ViT


def write_vit(path, image_size=32) -> dict:
    vit = backbones.build_vision_encoder("eva_vit_tiny", None, image_size)
    weights = known_values(vit)
    torch.save(weights, path)  # EVA's release format: a plain state dict
    return weights


def test_vit_weights_from_a_local_pth_arrive_exactly(tmp_path, no_network):
    weights = write_vit(tmp_path / "eva_vit_tiny.pth")
    model = build_model("vila_uniform", "tiny", vit_weights=str(tmp_path / "eva_vit_tiny.pth"))
    assert_arrived(weights, model.visual_encoder.state_dict())


def test_vit_weights_at_another_image_size_interpolate_the_position_embedding_as_lavis_does(tmp_path):
    weights = write_vit(tmp_path / "eva_vit_tiny.pth", image_size=32)  # 4 x 4 patches + cls
    vit = backbones.build_vision_encoder("eva_vit_tiny", str(tmp_path / "eva_vit_tiny.pth"), image_size=48)
    assert vit.pos_embed.shape == (1, 1 + 6 * 6, 64)
    torch.testing.assert_close(vit.pos_embed[:, :1], weights["pos_embed"][:, :1])  # the cls position is kept
    assert_arrived({k: v for k, v in weights.items() if k != "pos_embed"}, vit.state_dict())


def test_vit_weights_url_already_in_lavis_cache_loads_without_the_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    weights = write_vit(cache / "eva_vit_tiny.pth")
    url = "https://storage.googleapis.com/sfr-vision-language-research/LAVIS/models/BLIP2/eva_vit_tiny.pth"
    vit = backbones.build_vision_encoder("eva_vit_tiny", url, image_size=32)
    assert_arrived(weights, vit.state_dict())


def test_a_url_not_in_the_cache_does_try_the_network(tmp_path, monkeypatch, no_network):
    """The guard above is real: a URL missing from the cache reaches for the network and fails."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(AssertionError, match="a network connection was attempted"):
        backbones.build_vision_encoder("eva_vit_tiny", "https://example.com/eva_vit_tiny.pth", image_size=32)


# --------------------------------------------------------------------------- T5 and tokenizers


def demo_prompts() -> list:
    synthetic = [mc_prompt(t["question"], t["options"]) for t in QUESTION_TYPES.values()]
    return [QUESTION, *synthetic, *list(corpus(repeats=2))]


@pytest.fixture(scope="module")
def t5_dirs(tmp_path_factory):
    """A tiny T5 saved as transformers does, next to its slow tokenizer (no tokenizer.json), and a
    copy with the fast tokenizer file that a hub download has."""
    slow_dir = tmp_path_factory.mktemp("t5_slow")
    tokenizer = backbones.build_t5_tokenizer("tiny")
    llm = backbones.build_llm("tiny", vocab_size=len(tokenizer))
    weights = known_values(llm)
    llm.save_pretrained(slow_dir)
    tokenizer.save_pretrained(slow_dir)
    # A slow tokenizer's folder, as transformers 4.x saves it: spiece.model, no tokenizer.json
    # (transformers 5 writes tokenizer.json whatever the class).
    (slow_dir / "tokenizer.json").unlink(missing_ok=True)
    shutil.copy(TINY_T5_SPIECE, slow_dir / "spiece.model")
    fast_dir = tmp_path_factory.mktemp("t5_fast")
    # Writing tokenizer.json converts spiece.model, which needs protobuf's pure-Python backend here.
    convert = (f"from transformers import T5TokenizerFast; "
               f"T5TokenizerFast.from_pretrained({str(slow_dir)!r}).save_pretrained({str(fast_dir)!r})")
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    subprocess.run([sys.executable, "-c", convert], check=True, env=env, capture_output=True)
    llm.save_pretrained(fast_dir)
    return slow_dir, fast_dir, weights


def test_a_t5_directory_without_tokenizer_json_loads_with_no_environment_variable(t5_dirs, no_network):
    slow_dir, _, weights = t5_dirs
    assert not (slow_dir / "tokenizer.json").exists()
    assert "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION" not in os.environ
    model = build_model("vila_uniform", "tiny", t5_model=str(slow_dir))
    assert isinstance(model.t5_tokenizer, T5Tokenizer) and model.t5_tokenizer.truncation_side == "left"
    assert_arrived(weights, model.t5_model.state_dict())
    assert model.t5_model.config.dense_act_fn == "gelu"  # LAVIS's override, as for the hub model


def test_a_t5_directory_with_tokenizer_json_loads_the_fast_tokenizer(t5_dirs, no_network):
    _, fast_dir, weights = t5_dirs
    assert (fast_dir / "tokenizer.json").exists()
    model = build_model("vila_uniform", "tiny", t5_model=str(fast_dir))
    assert isinstance(model.t5_tokenizer, T5TokenizerFast)
    assert_arrived(weights, model.t5_model.state_dict())


def test_slow_and_fast_t5_tokenizers_give_the_same_ids_for_the_demos_prompts(t5_dirs):
    slow_dir, fast_dir, _ = t5_dirs
    slow, fast = backbones.build_t5_tokenizer(str(slow_dir)), backbones.build_t5_tokenizer(str(fast_dir))
    assert isinstance(slow, T5Tokenizer) and isinstance(fast, T5TokenizerFast)
    prompts = demo_prompts()
    assert slow(prompts).input_ids == fast(prompts).input_ids
    assert slow(prompts).input_ids == backbones.build_t5_tokenizer("tiny")(prompts).input_ids


def test_a_qformer_tokenizer_directory_loads_with_the_dec_token(tmp_path, no_network):
    BertTokenizer(TINY_BERT_VOCAB).save_pretrained(tmp_path / "bert")
    tokenizer = backbones.build_qformer_tokenizer(str(tmp_path / "bert"))
    shipped = backbones.build_qformer_tokenizer("tiny")
    assert tokenizer.bos_token == "[DEC]" and len(tokenizer) == len(shipped)
    assert tokenizer(demo_prompts()).input_ids == shipped(demo_prompts()).input_ids


# --------------------------------------------------------------------------- model checkpoints


def test_an_instructblip_trimmed_checkpoint_fills_the_student_and_reports_only_what_it_cannot_hold(
        tmp_path, caplog, no_network):
    source = build_model("vila_uniform", "tiny")
    parts = ("Qformer.", "query_tokens", "t5_proj.", "ln_vision.")
    weights = {k: v for k, v in known_values(source).items() if k.startswith(parts)}
    assert not any(k.startswith("Qformer.cls.") for k in weights)  # InstructBLIP drops the MLM head too
    torch.save({"model": weights}, tmp_path / "instruct_blip_trimmed.pth")  # LAVIS's released layout
    with caplog.at_level(logging.INFO):
        model = build_model("vila", "tiny", pretrained=str(tmp_path / "instruct_blip_trimmed.pth"))
    assert_arrived(weights, model.state_dict())
    (report,) = [r.getMessage() for r in caplog.records if "keep their initialisation" in r.getMessage()]
    reported = dict(group.rsplit(" (", 1) for group in report.split(": ")[-1].split(", "))
    assert set(reported) == {"frame_prompter", "distiller", "Qformer_T", "query_tokens_T", "t5_proj_T"}
    assert not [r for r in caplog.records if "this model does not have" in r.getMessage()]  # nothing unexpected


@pytest.mark.fullsize
def test_full_size_vila_loads_a_local_vit_g_file_with_no_missing_or_unexpected_keys(tmp_path, caplog):
    vit = backbones.build_vision_encoder("eva_vit_g", None, 224)
    torch.save(vit.state_dict(), tmp_path / "eva_vit_g.pth")
    expected = {k: v for k, v in list(vit.state_dict().items())[::40]}
    del vit
    with caplog.at_level(logging.INFO):
        model = build_model("vila", "flant5xl", vit_weights=str(tmp_path / "eva_vit_g.pth"), t5_model="flan_t5_xl",
                            t5_tokenizer="tiny", qformer_tokenizer="tiny", pretrained=None)
    assert "ViT weights from" in caplog.text and "(unused keys: 0)" in caplog.text  # missing ones would raise
    assert_arrived(expected, model.visual_encoder.state_dict())  # fp16 matmul weights, fp32 norms
