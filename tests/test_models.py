import importlib

import pytest
import torch
from lavis.models import load_model_and_preprocess
from lavis.models.blip2_models.modeling_t5 import T5ForConditionalGeneration
from lavis.models.blip2_models.Qformer import BertLMHeadModel
from lavis.models.eva_vit import VisionTransformer

from conftest import QUESTION, tiny_batch
from lavis_vila.models import build_model


@pytest.fixture(scope="module")
def vila():
    return build_model("vila", "tiny")


@pytest.mark.parametrize("arch", ["vila", "vila_uniform"])
def test_load_model_and_preprocess_answers_a_real_video_offline(arch, test_videos):
    model, vis_processors, _ = load_model_and_preprocess(arch, "tiny", is_eval=True)
    frames, _ = vis_processors["eval"](str(test_videos / "flipping_a_pancake.mkv"))
    output = model.predict_answers({"video": frames[None], "qa_input": [QUESTION], "num_option": [4]})
    assert output["prediction"][0] in range(4)
    indices = output["frame_idx"][0]
    num_frames = frames.shape[0]
    if arch == "vila":
        k = model.num_selected_frames
        segment = num_frames // k
        assert len(indices) == k
        assert [i // segment for i in indices] == list(range(k))  # one per segment, increasing
    else:
        assert indices == list(range(num_frames))


def test_component_parameter_names_match_lavis_classes(vila):
    qformer_reference = BertLMHeadModel(vila.Qformer.config)
    qformer_reference.cls = None  # BLIP-2 / InstructBLIP drop the unused MLM head, and so do we
    assert [n for n, _ in vila.Qformer.named_parameters()] == [n for n, _ in qformer_reference.named_parameters()]
    vit = vila.visual_encoder
    vit_reference = VisionTransformer(
        img_size=vit.image_size, patch_size=vit.patch_embed.patch_size[0], embed_dim=vit.embed_dim,
        depth=len(vit.blocks), num_heads=vit.blocks[0].attn.num_heads, mlp_ratio=2.0, qkv_bias=True,
        use_mean_pooling=False,
    )
    assert [n for n, _ in vit.named_parameters()] == [n for n, _ in vit_reference.named_parameters()]
    t5_reference = T5ForConditionalGeneration(vila.t5_model.config)
    assert [n for n, _ in vila.t5_model.named_parameters()] == [n for n, _ in t5_reference.named_parameters()]


def test_checkpoint_keys_follow_lavis_instructblip_names(vila):
    keys = vila.state_dict().keys()
    for name in ["query_tokens", "t5_proj.weight", "ln_vision.weight", "Qformer.bert.embeddings.word_embeddings.weight",
                 "visual_encoder.cls_token", "t5_model.shared.weight", "Qformer_T.bert.embeddings.word_embeddings.weight",
                 "query_tokens_T", "t5_proj_T.weight"]:
        assert name in keys, name


def test_only_prompter_student_projection_ln_vision_and_distiller_train(vila):
    trainable = {n.split(".")[0] for n, p in vila.named_parameters() if p.requires_grad}
    assert trainable == {"frame_prompter", "Qformer", "query_tokens", "t5_proj", "ln_vision", "distiller"}


def test_frozen_parts_get_no_gradient_and_stay_bit_identical_after_a_step():
    model = build_model("vila", "tiny").train()
    frozen_prefixes = ("visual_encoder.", "t5_model.", "Qformer_T.", "query_tokens_T", "t5_proj_T.")
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith(frozen_prefixes)}
    student_before = model.t5_proj.weight.detach().clone()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(tiny_batch(16))["loss"].backward()
    for name, param in model.named_parameters():
        if name.startswith(frozen_prefixes):
            assert param.grad is None, name
    optimizer.step()
    for name, param in model.named_parameters():
        if name in before:
            assert torch.equal(param, before[name]), name
    assert not torch.equal(model.t5_proj.weight, student_before)


@pytest.mark.parametrize("prompter", ["segment", "free_form", "question_aware"])
def test_answer_gradient_reaches_the_frame_prompter_and_evaluation_keeps_k_frames(prompter):
    model = build_model("vila", "tiny", distill_weight=0.0, frame_prompter=prompter).train()
    model(tiny_batch(16))["loss"].backward()
    grads = [p.grad for p in model.frame_prompter.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    frame_idx = model.eval().predict_answers(tiny_batch(16))["frame_idx"]
    assert all(len(f) == 4 and f == sorted(set(f)) for f in frame_idx)  # the tiny config's 16 -> 4


def test_question_aware_prompter_reads_the_mean_qformer_word_embedding_of_each_instruction(monkeypatch):
    model = build_model("vila", "tiny", frame_prompter="question_aware").eval()
    seen = []
    forward = model.frame_prompter.forward
    monkeypatch.setattr(model.frame_prompter, "forward", lambda *a, **k: seen.append(k["question"]) or forward(*a, **k))
    batch = tiny_batch(16)
    batch["qa_input"] = ["Question: what colour? Options: (A) red (B) blue", "Question: how many? Options: (A) one"]
    model.predict_answers(batch)
    instruction = model.tokenize_instruction(batch["qa_input"])
    first = model.Qformer.bert.embeddings.word_embeddings(instruction.input_ids[0, : int(instruction.attention_mask[0].sum())])
    torch.testing.assert_close(seen[0][0], first.mean(0))
    assert not torch.allclose(seen[0][0], seen[0][1])


def test_distillation_loss_is_present_only_in_training(vila):
    batch = tiny_batch(16)
    train_out = vila.train()(batch)
    assert set(train_out) == {"loss", "loss_vqa", "loss_distill"}
    assert torch.allclose(train_out["loss"], train_out["loss_vqa"] + 0.01 * train_out["loss_distill"])
    eval_out = vila.eval()(batch)
    assert set(eval_out) == {"loss", "loss_vqa"}


def test_teacher_runs_on_all_frames_through_its_own_frozen_qformer(vila):
    frames_seen = []
    hook = vila.Qformer_T.bert.register_forward_hook(
        lambda m, args, kwargs, out: frames_seen.append(kwargs["encoder_hidden_states"].shape[0]), with_kwargs=True
    )
    vila.train()(tiny_batch(16, batch_size=2))
    hook.remove()
    assert frames_seen == [2 * 16]


def test_official_code_flag_shares_the_student_qformer_for_the_teacher():
    model = build_model("vila", "tiny", teacher_shares_student_qformer=True).train()
    assert not hasattr(model, "Qformer_T")
    assert model.teacher_qformer is model.Qformer
    assert "loss_distill" in model(tiny_batch(16))


def test_evaluation_selection_is_repeatable(vila):
    batch = tiny_batch(16, batch_size=4)
    vila.eval()
    assert vila.predict_answers(batch)["frame_idx"] == vila.predict_answers(batch)["frame_idx"]


def test_official_sampled_evaluation_selection_flag_changes_selection():
    model = build_model("vila", "tiny", eval_gumbel_noise=True, eval_temperature=1.0).eval()
    batch = tiny_batch(16, batch_size=8)
    draws = {str(model.predict_answers(batch)["frame_idx"]) for _ in range(4)}
    assert len(draws) > 1


def test_invalid_options_are_never_predicted(vila):
    vila.eval()
    batch = tiny_batch(16, batch_size=16, num_option=2)
    for _ in range(3):
        batch["video"] = torch.randn_like(batch["video"])
        assert set(vila.predict_answers(batch)["prediction"]) <= {0, 1}
    scores = vila.option_scores(torch.randn(2, 8, vila.t5_model.config.d_model), [QUESTION] * 2, [2, 5])
    assert torch.isinf(scores[0, 2:]).all() and torch.isfinite(scores[1]).all()


def test_option_letter_ids_come_from_the_tokenizer(vila):
    tokens = vila.t5_tokenizer.convert_ids_to_tokens(vila.option_letter_ids.tolist())
    assert tokens == ["▁A", "▁B", "▁C", "▁D", "▁E"]


def test_one_step_letter_scores_equal_a_teacher_forced_full_decoder_pass(vila):
    vila.eval()
    visual = torch.randn(2, 8, vila.t5_model.config.d_model)
    qa = [QUESTION, QUESTION.replace("pancake", "coin")]
    scores = vila.option_scores(visual, qa, [5, 5])
    embeds, mask = vila._llm_encoder_inputs(visual, qa, max_length=None)
    labels = vila.t5_tokenizer(["Option A"] * 2, return_tensors="pt").input_ids
    logits = vila.t5_model(inputs_embeds=embeds, attention_mask=mask, labels=labels).logits
    position = len(vila.answer_prefix_ids) - 1  # the step that predicts the letter after "Option"
    assert torch.allclose(scores, logits[:, position, vila.option_letter_ids], atol=1e-5)


@pytest.mark.parametrize("dropout_in_training", [True, False])
def test_t5_dropout_is_active_in_training_only_under_the_official_default(dropout_in_training):
    model = build_model("vila_uniform", "tiny", llm_dropout_in_training=dropout_in_training)
    for module in model.t5_model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.5  # the tiny T5 is configured without dropout; Flan-T5-XL has 0.1
    model.train()
    assert model.t5_model.training is dropout_in_training and not model.visual_encoder.training
    batch = tiny_batch(4)
    losses = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        losses.append(model(batch)["loss"].item())
    assert (losses[0] != losses[1]) is dropout_in_training
    assert not model.eval().t5_model.training


@pytest.mark.parametrize("truncate", [False, True])
def test_the_t5_prompt_is_cut_to_max_txt_len_in_training_and_at_evaluation_only_under_the_flag(truncate):
    model = build_model("vila_uniform", "tiny", truncate_eval_prompt=truncate, max_txt_len=8)
    text_lengths = []
    visual_tokens = 4 * model.query_tokens.shape[1]  # tiny_batch(4): 4 frames of Q tokens each
    hook = model.t5_model.encoder.register_forward_pre_hook(
        lambda m, args, kwargs: text_lengths.append(kwargs["attention_mask"].shape[1] - visual_tokens),
        with_kwargs=True)
    model.train()(tiny_batch(4))
    model.eval().predict_answers(tiny_batch(4))
    hook.remove()
    prompt_tokens = len(model.t5_tokenizer(QUESTION).input_ids)
    assert prompt_tokens > 8
    assert text_lengths == [8, 8 if truncate else prompt_tokens]


def test_wrong_number_of_candidate_frames_is_a_clear_error(vila):
    with pytest.raises(ValueError, match="ViLA expects 16 candidate frames per video, got 8"):
        vila.eval().predict_answers(tiny_batch(8))


def test_importing_twice_or_reloading_is_harmless():
    import lavis_vila
    from lavis.common.registry import registry

    importlib.reload(importlib.import_module("lavis_vila.models.vila"))
    importlib.reload(lavis_vila)
    assert registry.get_model_class("vila").__name__ == "ViLA"


def test_tiny_frozen_backbones_are_the_same_whatever_the_global_seed():
    """Checkpoints hold only trainable parts, so every stage must see the same random ViT and LLM."""
    torch.manual_seed(1)
    first = build_model("vila_uniform", "tiny")
    torch.manual_seed(2)
    second = build_model("vila", "tiny")
    assert torch.equal(first.visual_encoder.blocks[0].mlp.fc1.weight, second.visual_encoder.blocks[0].mlp.fc1.weight)
    assert torch.equal(first.t5_model.shared.weight, second.t5_model.shared.weight)
    assert not torch.equal(first.query_tokens, second.query_tokens)  # trainable parts follow the global seed


def test_fresh_ln_vision_hides_every_frame_from_the_prompter_and_tiny_gains_do_not():
    """The prompter reads mean_c(ln_vision(x)); a gain-1 LayerNorm makes it the same for all tokens."""
    video = torch.randn(2, 16, 3, 32, 32)
    fresh = build_model("vila", "tiny", ln_vision_gain_std=0.0).eval()
    assert fresh.encode_frames(video).mean(-1).std() < 1e-5
    tiny = build_model("vila", "tiny").eval()  # ln_vision_gain_std: 1.0
    assert tiny.encode_frames(video).mean(-1).std() > 0.05
