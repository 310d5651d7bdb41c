"""InstructBLIP weights in the Hugging Face Hub's layout: converted, loaded, and computing what HF computes.

A tiny ``InstructBlipForConditionalGeneration`` in our tiny architecture is built from a config with
random weights (offline), saved with HF's own ``save_pretrained``, converted with
``tools.convert_hf_instructblip`` and loaded into our models. transformers has InstructBLIP from
4.31, so these tests run on the current stack; on the pinned one (4.26) they are reported skipped.
"""
import json
import os

import pytest
import torch
import transformers

from lavis_vila.checkpoints import OWN_SOURCES, CheckpointError
from lavis_vila.hf_instructblip import (FUSED_QKV_BIAS, PRETRAINED_FILE, VIT_FILE, split_fused_qkv_bias,
                                        vit_and_pretrained)
from lavis_vila.models import build_model
from lavis_vila.models.backbones import build_qformer_tokenizer, build_t5_tokenizer, load_architecture
from lavis_vila.tools import convert_hf_instructblip

HAS_INSTRUCTBLIP = hasattr(transformers, "InstructBlipForConditionalGeneration")
needs_instructblip = pytest.mark.skipif(
    not HAS_INSTRUCTBLIP, reason=f"transformers {transformers.__version__} has no InstructBLIP (from 4.31): "
                                 f"the pinned stack; these run on the current stack")
QUESTION = "Question: what is flipped? Option A: a pancake Option B: a coin Answer:"
IMAGE_SIZE = 32


def tiny_hf_config():
    """The HF InstructBLIP config of our tiny architecture (configs/backbones/*_tiny.json)."""
    vit, qformer, t5 = (load_architecture(name) for name in ("eva_vit_tiny", "qformer_tiny", "t5_tiny"))
    vision_config = dict(hidden_size=vit["embed_dim"], intermediate_size=int(vit["embed_dim"] * vit["mlp_ratio"]),
                         num_hidden_layers=vit["depth"], num_attention_heads=vit["num_heads"], image_size=IMAGE_SIZE,
                         patch_size=vit["patch_size"], hidden_act="gelu", layer_norm_eps=1e-6, qkv_bias=True)
    qformer_config = dict(vocab_size=len(build_qformer_tokenizer("tiny")), hidden_size=qformer["hidden_size"],
                          num_hidden_layers=qformer["num_hidden_layers"],
                          num_attention_heads=qformer["num_attention_heads"],
                          intermediate_size=qformer["intermediate_size"], hidden_act="gelu", hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0, max_position_embeddings=qformer["max_position_embeddings"],
                          layer_norm_eps=qformer["layer_norm_eps"], cross_attention_frequency=1,
                          encoder_hidden_size=vit["embed_dim"], pad_token_id=0)
    text_config = {key: value for key, value in t5.items() if key != "_comment"}
    text_config.update(model_type="t5", vocab_size=len(build_t5_tokenizer("tiny")))
    return transformers.InstructBlipConfig(vision_config=vision_config, qformer_config=qformer_config,
                                           text_config=text_config, num_query_tokens=8)


@pytest.fixture(scope="module")
def hf_model_and_folder(tmp_path_factory):
    """(HF model in eval mode, the folder its save_pretrained wrote, tokenizers beside it)."""
    torch.manual_seed(0)
    model = transformers.InstructBlipForConditionalGeneration(tiny_hf_config()).eval()
    # LAVIS runs T5 with exact GELU (backbones.t5_config); make HF's run the same for the comparison.
    model.language_model.config.dense_act_fn = "gelu"
    for module in model.language_model.modules():
        if hasattr(module, "act"):
            module.act = torch.nn.GELU()
    with torch.no_grad():  # every tensor random, LayerNorm gains and biases too, so nothing loads by luck
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.2 + (1.0 if param.ndim == 1 and param.shape[0] % 2 == 0 else 0.0))
    folder = tmp_path_factory.mktemp("hf_instructblip")
    model.save_pretrained(folder)
    build_t5_tokenizer("tiny").save_pretrained(folder)
    build_qformer_tokenizer("tiny").save_pretrained(folder / "qformer_tokenizer")
    return model, folder


@pytest.fixture(scope="module")
def converted(hf_model_and_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    convert_hf_instructblip.main([str(hf_model_and_folder[1]), "--out", str(out)])
    with open(out / "model_overrides.yaml") as f:
        keys = dict(line.strip().split(": ", 1) for line in f if line.startswith("  "))
    keys["image_size"], keys["num_query_token"] = int(keys["image_size"]), int(keys["num_query_token"])
    return out, keys


def test_fused_qkv_bias_splits_into_q_and_v_and_drops_the_key_third():
    bias = torch.arange(12.0)
    split = split_fused_qkv_bias("3", bias)
    assert torch.equal(split["blocks.3.attn.q_bias"], bias[:4]) and torch.equal(split["blocks.3.attn.v_bias"], bias[8:])
    assert FUSED_QKV_BIAS.match("vision_model.encoder.layers.3.self_attn.qkv.bias")


def test_a_tensor_of_no_known_part_is_an_error_naming_it():
    with pytest.raises(CheckpointError, match="vision_model.extra_head.weight"):
        vit_and_pretrained({"vision_model.extra_head.weight": torch.zeros(1), "query_tokens": torch.zeros(1, 2, 3)})


def test_a_folder_without_safetensors_is_refused_naming_the_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"vision_config": {}, "qformer_config": {},
                                                      "text_config": {"model_type": "t5"}}))
    with pytest.raises(SystemExit), pytest.raises(FileNotFoundError, match=str(tmp_path)):
        convert_hf_instructblip.main([str(tmp_path), "--out", str(tmp_path / "out")])


@needs_instructblip
def test_every_hf_tensor_lands_in_exactly_one_converted_source(hf_model_and_folder, converted):
    from safetensors import safe_open

    hf_model, hf_folder = hf_model_and_folder
    out, _ = converted

    def names(path):
        with safe_open(path, "pt") as f:
            return set(f.keys())

    saved = names(hf_folder / "model.safetensors")
    vit, pretrained = names(out / VIT_FILE), names(out / PRETRAINED_FILE)
    with open(out / "t5" / "model.safetensors.index.json") as f:
        t5 = set(json.load(f)["weight_map"])
    language = {k for k in saved if k.startswith("language_model.")}
    vision = {k for k in saved if k.startswith("vision_model.") and ".post_layernorm." not in k}
    blocks = len(hf_model.vision_model.encoder.layers)
    # transformers 5 ties T5's lm_head to its input embeddings and saves no lm_head: written as a copy
    assert "language_model.lm_head.weight" not in saved
    assert t5 == {k[len("language_model."):] for k in language} | {"lm_head.weight"}
    assert len(vit) == len(vision) + blocks  # each fused qkv.bias becomes q_bias and v_bias
    # the rest (post_layernorm, Q-Former, queries, projection), and the position_ids buffer HF leaves out
    assert len(pretrained) == len(saved - language - vision) + 1
    assert "Qformer.bert.embeddings.position_ids" in pretrained and not pretrained & vit
    assert all(not k.startswith(OWN_SOURCES) for k in pretrained)


@needs_instructblip
def test_a_t5_folder_missing_a_weight_is_refused_naming_it(converted, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from lavis_vila.models.backbones import build_llm

    out, _ = converted
    t5 = tmp_path / "t5"
    shutil.copytree(out / "t5", t5)
    for shard in t5.glob("*.safetensors"):
        tensors = load_file(shard)
        if tensors.pop("lm_head.weight", None) is not None:
            save_file(tensors, shard, metadata={"format": "pt"})
    (t5 / "model.safetensors.index.json").unlink()
    shutil.move(next(t5.glob("model-*.safetensors")), t5 / "model.safetensors")
    with pytest.raises(KeyError, match="lm_head.weight"):
        build_llm(str(t5))


@needs_instructblip
@pytest.mark.parametrize("arch", ["vila_uniform", "vila", "vila_lora", "sevila_baseline"])
def test_converted_weights_load_into_every_model_with_nothing_unexpected(converted, arch):
    out, keys = converted
    model = build_model(arch, "tiny", **keys)
    result = model.load_checkpoint(str(out / PRETRAINED_FILE), "model.pretrained", partial=True)
    assert result.unexpected_keys == []
    vila_own = ("frame_prompter.", "distiller.", "Qformer_T.", "query_tokens_T", "t5_proj_T.")
    own = {"vila_uniform": (), "vila": vila_own, "vila_lora": vila_own,
           "sevila_baseline": ("Qformer_loc.", "query_tokens_loc", "t5_proj_loc.")}[arch]
    # missing: only the frozen backbones (loaded from vit_weights and t5_model) and the model's own new parts
    assert [k for k in result.missing_keys if not k.startswith(OWN_SOURCES + own)] == []
    if arch == "vila_uniform":
        assert [k for k in result.missing_keys if not k.startswith(OWN_SOURCES)] == []


@needs_instructblip
def test_converted_model_computes_what_the_hf_model_computes(hf_model_and_folder, converted):
    hf, _ = hf_model_and_folder
    out, keys = converted
    ours = build_model("vila_uniform", "tiny", **keys).eval()
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    instruction = ours.tokenize_instruction([QUESTION, QUESTION + " Option C: a card"])
    with torch.no_grad():
        # ViT (+ HF's post_layernorm = LAVIS's ln_vision): (2, 17, 64)
        hf_image = hf.vision_model(pixel_values=pixels).last_hidden_state
        frames = ours.encode_frames(pixels[:, None])  # (2, 1, 17, 64)
        torch.testing.assert_close(frames[:, 0], hf_image, rtol=1e-5, atol=1e-5)
        # Q-Former and projection: (2, 8, 64) LLM-space tokens
        hf_features = hf.get_image_features(pixel_values=pixels, qformer_input_ids=instruction.input_ids,
                                            qformer_attention_mask=instruction.attention_mask)
        tokens = ours.frame_tokens(frames, instruction, ours.Qformer, ours.query_tokens, ours.t5_proj)
        torch.testing.assert_close(tokens, hf_features.pooler_output, rtol=1e-5, atol=1e-5)
        # LLM: [visual tokens ; embedded prompt] -> the next-token logits after the answer prefix
        texts = [QUESTION] * 2
        prefix = ours.answer_prefix_ids
        logits = ours.next_token_logits(tokens, texts, prefix)  # (2, V)
        text = ours.t5_tokenizer(texts, return_tensors="pt", padding="longest")
        hf_embeds = torch.cat([hf_features.pooler_output, hf.language_model.get_input_embeddings()(text.input_ids)], 1)
        mask = torch.cat([torch.ones(2, tokens.shape[1], dtype=torch.long), text.attention_mask], 1)
        hf_logits = hf.language_model(inputs_embeds=hf_embeds, attention_mask=mask,
                                      decoder_input_ids=prefix.expand(2, -1)).logits[:, -1]
        torch.testing.assert_close(logits, hf_logits, rtol=1e-4, atol=1e-4)
    assert logits.std() > 0.1  # random weights give logits that differ: the comparison can fail
