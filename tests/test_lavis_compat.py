"""lavis_vila.lavis_compat: stock LAVIS 1.0.2 on a current transformers, and nothing changed on the pinned one.

Every test here runs on both stacks and asserts what must hold on each: the behaviour LAVIS was
written for (transformers 4.26), which on the current stack the shims restore.
"""
import json
import os

import pytest
import torch
import transformers
from lavis.models.blip2_models import modeling_t5
from packaging.version import Version

from lavis_vila import lavis_compat
from lavis_vila.models.backbones import BACKBONE_DIR, TOKENIZER_DIR, build_llm, build_t5_tokenizer

PINNED = Version(transformers.__version__) < Version("4.27")
CURRENT_STACK_SHIMS = {
    "transformers.modeling_utils.apply_chunking_to_forward",
    "transformers.modeling_utils.prune_linear_layer",
    "GenerationMixin for lavis...modeling_t5.T5ForConditionalGeneration",
}


def tiny_t5():
    tokenizer = build_t5_tokenizer("tiny")
    return build_llm("tiny", vocab_size=len(tokenizer), random_init_seed=0).eval(), tokenizer


def test_shims_are_inert_on_the_pinned_stack_and_applied_on_a_current_one():
    from transformers import modeling_utils, pytorch_utils

    if PINNED:
        assert lavis_compat.applied() == []
        assert modeling_utils.apply_chunking_to_forward is pytorch_utils.apply_chunking_to_forward
        assert modeling_utils.find_pruneable_heads_and_indices is not lavis_compat.find_pruneable_heads_and_indices
    else:
        assert CURRENT_STACK_SHIMS <= set(lavis_compat.applied())
        assert hasattr(modeling_t5.T5ForConditionalGeneration, "generate")


def test_tiny_t5_tokenizer_has_the_whole_sentencepiece_vocabulary():
    import sentencepiece

    model = sentencepiece.SentencePieceProcessor(model_file=os.path.join(TOKENIZER_DIR, "tiny_t5", "spiece.model"))
    tokenizer = build_t5_tokenizer("tiny")
    assert len(tokenizer) == model.get_piece_size() > 100
    assert tokenizer("Option A: a pancake").input_ids == model.encode("Option A: a pancake") + [tokenizer.eos_token_id]


def test_a_tokenizer_folder_without_vocabulary_is_an_error_not_a_four_token_tokenizer(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor spiece.model"):
        build_t5_tokenizer(str(tmp_path))


def test_lavis_t5_random_init_follows_t5s_rule_not_pytorchs_default():
    model, _ = tiny_t5()
    arch = json.load(open(os.path.join(BACKBONE_DIR, "t5_tiny.json")))
    d_model, d_kv, heads = arch["d_model"], arch["d_kv"], arch["num_heads"]
    attention = model.encoder.block[0].layer[0].SelfAttention
    # T5's rule (initializer_factor 1): q ~ N(0, (d_model * d_kv)^-1/2); PyTorch's default Linear
    # init would give std 1/sqrt(3 * d_model) = 0.072 here, more than twice as much.
    assert attention.q.weight.std().item() == pytest.approx((d_model * d_kv) ** -0.5, rel=0.15)
    assert attention.o.weight.std().item() == pytest.approx((heads * d_kv) ** -0.5, rel=0.15)
    assert model.lm_head.weight.std().item() == pytest.approx(1.0, rel=0.15)  # untied lm_head: N(0, 1)


def test_flan_t5_logits_are_not_scaled_by_the_tied_embedding_rule():
    model, tokenizer = tiny_t5()
    assert model.config.tie_word_embeddings is False  # as the shipped config (and Flan-T5's) says
    ids = tokenizer(["Option A: a pancake"], return_tensors="pt").input_ids
    with torch.no_grad():
        out = model(input_ids=ids, decoder_input_ids=ids[:, :3], output_hidden_states=True)
    torch.testing.assert_close(out.logits, model.lm_head(out.decoder_hidden_states[-1]))


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_generate_is_greedy_decoding_step_by_step(use_cache):
    model, tokenizer = tiny_t5()
    ids = tokenizer(["Option A: a pancake Option B: a coin"], return_tensors="pt").input_ids
    with torch.no_grad():
        generated = model.generate(input_ids=ids, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                                   num_beams=1, use_cache=use_cache)
        decoded = torch.tensor([[model.config.decoder_start_token_id]])
        for _ in range(4):
            logits = model(input_ids=ids, decoder_input_ids=decoded).logits[:, -1]
            decoded = torch.cat([decoded, logits.argmax(-1, keepdim=True)], dim=1)
    assert generated.tolist() == decoded.tolist()


def test_lavis_t5_save_and_load_round_trip_is_bit_exact(tmp_path):
    model, _ = tiny_t5()
    model.save_pretrained(tmp_path)
    loaded = modeling_t5.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    expected, got = model.state_dict(), loaded.state_dict()
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert loaded.config.tie_word_embeddings is False


def test_find_pruneable_heads_and_indices_keeps_the_rows_of_the_other_heads():
    # Of 4 heads, head 0 is gone: the 3 left (1, 2, 3) sit at rows 0-1, 2-3, 4-5. Pruning 1 and 3
    # keeps head 2's rows.
    heads, index = lavis_compat.find_pruneable_heads_and_indices([1, 3], n_heads=3, head_size=2,
                                                                 already_pruned_heads={0})
    assert heads == {1, 3}
    assert index.tolist() == [2, 3]
    if PINNED:  # transformers 4.26's own helper agrees
        from transformers.pytorch_utils import find_pruneable_heads_and_indices

        theirs = find_pruneable_heads_and_indices([1, 3], 3, 2, {0})
        assert theirs[0] == heads and torch.equal(theirs[1], index)


def test_device_map_spreads_blocks_and_checks_each_is_placed_once():
    device_map = lavis_compat.get_device_map(5, [0, 1])
    assert device_map == {0: [0, 1, 2], 1: [3, 4]}
    lavis_compat.assert_device_map(device_map, 5)
    with pytest.raises(ValueError, match="on none \\[4\\]"):
        lavis_compat.assert_device_map({0: [0, 1, 2], 1: [3]}, 5)
