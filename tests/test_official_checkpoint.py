"""Checkpoints trained with the official ViLA code (xijun-cs/ViLA) load into ``vila``: its
``fs.*`` (FrameSelector) and ``dist_fc_bn.*`` names are mapped to ours, and the log says so."""
import logging

import pytest
import torch
from lavis.models.blip2_models.Qformer import BertConfig, BertLMHeadModel
from torch import nn

from lavis_vila.checkpoints import CheckpointError, load_state_dict_into
from lavis_vila.models import build_model
from lavis_vila.models.backbones import build_llm, build_vision_encoder, load_architecture
from lavis_vila.official_names import official_name

T, K, QUERIES, PATCH_TOKENS = 32, 4, 32, 257  # 32 -> 4 frames, ViT-g at 224 px


def official_vila_state_on_meta() -> dict:
    """The state dict of the official ``vila`` at full size (Flan-T5-XL, 32 -> 4), on the meta
    device, as its ``__init__`` builds it: BLIP-2's ``init_Qformer`` (LAVIS's BERT with
    cross-attention, the [DEC] token added, ``cls`` removed) for ``Qformer`` and ``Qformer_T``,
    ``FrameSelector(inplanes=257, num_segments=K, frame_num=T)`` as ``fs`` and ``dist_fc_bn``
    = Linear(32K -> 32T), LayerNorm(32T). The ViT and T5 come from LAVIS's own classes, which
    both codes build."""
    arch = load_architecture("qformer_base")
    cross_attention_freq = arch.pop("cross_attention_freq")
    config = BertConfig(**arch, encoder_width=1408, add_cross_attention=True, cross_attention_freq=cross_attention_freq,
                        query_length=QUERIES)
    segment = T // K
    state = {}
    with torch.device("meta"):
        for suffix in ("", "_T"):
            qformer = BertLMHeadModel(config)
            qformer.cls = None
            state.update({f"Qformer{suffix}.{k}": v for k, v in qformer.state_dict().items()})
            state[f"query_tokens{suffix}"] = torch.empty(1, QUERIES, 768)
            state.update({f"t5_proj{suffix}.{k}": v for k, v in nn.Linear(768, 2048).state_dict().items()})
        state.update({f"ln_vision.{k}": v for k, v in nn.LayerNorm(1408).state_dict().items()})
        frame_selector = {"conv_pool": nn.Linear(PATCH_TOKENS * segment, segment), "ln": nn.LayerNorm(segment),
                          "conv_gs": nn.Linear(segment, segment)}
        for name, layer in frame_selector.items():
            state.update({f"fs.{name}.{k}": v for k, v in layer.state_dict().items()})
        dist_fc_bn = nn.Sequential(nn.Linear(QUERIES * K, QUERIES * T), nn.LayerNorm(QUERIES * T))
        state.update({f"dist_fc_bn.{k}": v for k, v in dist_fc_bn.state_dict().items()})
    state.update({f"visual_encoder.{k}": v for k, v in build_vision_encoder("eva_vit_g", None, 224, empty=True).state_dict().items()})
    state.update({f"t5_model.{k}": v for k, v in build_llm("google/flan-t5-xl", empty=True).state_dict().items()})
    return state


def test_a_state_dict_in_the_official_vila_layout_on_meta_loads_into_vila_with_nothing_missing_or_unexpected(caplog):
    model = build_model("vila", "flant5xl", empty=True)
    official = official_vila_state_on_meta()
    with caplog.at_level(logging.INFO):
        result = load_state_dict_into(model, official, "official_vila.pth", assign=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours = model.state_dict()
    assert {official_name(k): tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in official.items()}
    assert ("official_vila.pth: official ViLA names mapped to ours: fs.conv_pool.* -> frame_prompter.pool.*, "
            "fs.ln.* -> frame_prompter.norm.*, fs.conv_gs.* -> frame_prompter.score.*, "
            "dist_fc_bn.* -> distiller.decoder.*") in caplog.text


def test_a_tiny_checkpoint_under_the_official_names_loads_every_weight(tmp_path, caplog):
    trained = build_model("vila", "tiny")
    with torch.no_grad():
        for param in trained.parameters():
            param.add_(torch.randn_like(param))
    path = tmp_path / "official.pth"
    torch.save({"model": {official_name(k): v for k, v in trained.state_dict().items()}}, path)
    fresh = build_model("vila", "tiny")
    with caplog.at_level(logging.INFO):
        fresh.load_checkpoint(str(path))
    assert "official ViLA names mapped to ours" in caplog.text
    loaded = fresh.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in trained.state_dict().items())


def test_a_tensor_under_both_the_official_name_and_ours_is_an_error_naming_the_file():
    model = build_model("vila", "tiny")
    state = dict(model.state_dict())
    state["dist_fc_bn.0.weight"] = state["distiller.decoder.0.weight"]
    with pytest.raises(CheckpointError, match=r"both\.pth': it holds 'distiller\.decoder\.0\.weight' under both"):
        load_state_dict_into(model, state, "both.pth")


def test_official_names_differ_from_ours_only_for_the_frame_selector_and_the_distiller():
    assert official_name("distiller.decoder.0.weight") == "dist_fc_bn.0.weight"
    assert official_name("frame_prompter.pool.weight") == "fs.conv_pool.weight"
    assert official_name("frame_prompter.norm.bias") == "fs.ln.bias"
    assert official_name("frame_prompter.score.weight") == "fs.conv_gs.weight"
    assert official_name("Qformer.bert.encoder.layer.0.attention.self.query.weight") == \
        "Qformer.bert.encoder.layer.0.attention.self.query.weight"
