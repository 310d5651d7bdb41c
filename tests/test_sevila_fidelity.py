"""sevila_baseline in SeViLA's architecture (model types sevila_flant5xl, sevila_tiny): BLIP-2
Q-Formers without a text path, "Frame i:" prefixes, a separate ln_vision_loc, SeViLA's localizer
question, and SeViLA's checkpoint keys."""
import pytest
import torch
from lavis.models.blip2_models.Qformer import BertConfig, BertLMHeadModel
from torch import nn

from conftest import QUESTION, tiny_batch
from lavis_vila.datasets.mc_video_qa import MCVideoQADataset
from lavis_vila.models import build_model
from lavis_vila.models.backbones import load_architecture
from lavis_vila.models.sevila_objectives import LocalizerRefinement
from lavis_vila.prompts import vlep_localizer_prompt
from lavis_vila.stage_weights import ANSWERER_PREFIXES, LOCALIZER_PREFIXES, LOCALIZER_SLOTS, renamed

FROZEN_BACKBONES = ("visual_encoder.", "t5_model.")


def sevila_checkpoint_on_meta() -> dict:
    """The state dict SeViLA's model holds (research notes, A1), built from LAVIS's own Q-Former
    as BLIP-2's ``init_Qformer`` makes it, with SeViLA's removals, on the meta device."""
    arch = load_architecture("qformer_base")
    cross_attention_freq = arch.pop("cross_attention_freq")
    config = BertConfig(**arch, encoder_width=1408, add_cross_attention=True, cross_attention_freq=cross_attention_freq,
                        query_length=32)
    state = {}
    with torch.device("meta"):
        for prefix in ("Qformer.", "Qformer_loc."):
            qformer = BertLMHeadModel(config)
            qformer.cls = qformer.bert.embeddings.word_embeddings = qformer.bert.embeddings.position_embeddings = None
            for layer in qformer.bert.encoder.layer:
                layer.output = layer.intermediate = None
            state.update({prefix + k: v for k, v in qformer.state_dict().items()})
        for suffix in ("", "_loc"):
            state[f"query_tokens{suffix}"] = torch.empty(1, 32, 768)
            state.update({f"t5_proj{suffix}.{k}": v for k, v in nn.Linear(768, 2048).state_dict().items()})
            state.update({f"ln_vision{suffix}.{k}": v for k, v in nn.LayerNorm(1408).state_dict().items()})
    return state


def test_sevilas_checkpoint_keys_load_into_the_sevila_architecture_with_nothing_missing_but_the_frozen_backbones():
    model = build_model("sevila_baseline", "sevila_flant5xl", empty=True)
    sevila = sevila_checkpoint_on_meta()
    ours = model.state_dict()
    assert {k: tuple(v.shape) for k, v in sevila.items() if k in ours} == {k: tuple(ours[k].shape) for k in sevila if k in ours}
    result = model.load_state_dict(sevila, strict=False, assign=True)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(k.startswith(FROZEN_BACKBONES) for k in result.missing_keys)


def test_the_instructblip_variant_keeps_the_text_path_that_sevilas_checkpoint_lacks():
    model = build_model("sevila_baseline", "flant5xl", empty=True)
    result = model.load_state_dict(sevila_checkpoint_on_meta(), strict=False, assign=True)
    assert "Qformer.bert.embeddings.word_embeddings.weight" in result.missing_keys
    assert any(k.startswith("ln_vision_loc.") for k in result.unexpected_keys)


@pytest.fixture(scope="module")
def sevila():
    return build_model("sevila_baseline", "sevila_tiny", num_candidate_frames=4, num_selected_frames=2).eval()


def sevila_batch(num_frames: int = 4, batch_size: int = 2) -> dict:
    return {**tiny_batch(num_frames, batch_size), "loc_input": ["Question: what? Options: (a b c d ) Does it?"] * batch_size}


def test_qformer_without_text_path_gives_the_same_visual_tokens_whatever_the_instruction(sevila):
    assert sevila.Qformer.bert.embeddings.word_embeddings is None and sevila.Qformer_loc.bert.encoder.layer[0].output is None
    frames = sevila.encode_frames(torch.randn(1, 2, 3, 32, 32))
    tokens = [sevila.frame_tokens(frames, sevila.tokenize_instruction([text]), sevila.Qformer, sevila.query_tokens,
                                  sevila.t5_proj) for text in ("what colour?", "how many squares flash, and where?")]
    torch.testing.assert_close(tokens[0], tokens[1])


def test_frame_prefixes_put_the_embedded_frame_number_before_each_frames_tokens(sevila):
    frames = sevila.encode_frames(torch.randn(1, 2, 3, 32, 32))
    instruction = sevila.tokenize_instruction([QUESTION])
    plain = sevila.frame_tokens(frames, instruction, sevila.Qformer, sevila.query_tokens, sevila.t5_proj)  # (1, 2Q, D)
    prefixed = sevila.frame_tokens(frames, instruction, sevila.Qformer, sevila.query_tokens, sevila.t5_proj, "Frame {}: ")
    embed = lambda text: sevila.t5_model.encoder.embed_tokens(  # noqa: E731
        sevila.t5_tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids)
    first, second = embed("Frame 1: "), embed("Frame 2: ")
    q = sevila.query_tokens.shape[1]
    expected = torch.cat([first, plain[:, :q], second, plain[:, q:]], dim=1)
    torch.testing.assert_close(prefixed, expected)
    assert sevila.answer_frame_prefix == "Frame {}: " and sevila.single_frame_prefix == "Frame: "


def test_the_localizer_reads_its_own_ln_vision_loc_and_the_answerer_does_not(sevila):
    batch = sevila_batch()
    vit_tokens = sevila.vit_features(batch["video"])
    answer_before = sevila.vision_features(vit_tokens)
    before = sevila.frame_relevance(sevila.localizer_features(vit_tokens, answer_before), batch)
    with torch.no_grad():
        sevila.ln_vision_loc.weight.mul_(-3.0)
    try:
        assert not torch.allclose(sevila.frame_relevance(sevila.localizer_features(vit_tokens, answer_before), batch), before)
        torch.testing.assert_close(sevila.vision_features(vit_tokens), answer_before)
    finally:
        with torch.no_grad():
            sevila.ln_vision_loc.weight.div_(-3.0)


def test_the_sevila_localizer_question_is_sevilas_string_from_the_dataset(tmp_path):
    record = {"video": "v", "qid": "TC_1_0", "question": "what does the man do?", "num_option": 3,
              "a0": "sit.", "a1": "run.", "a2": "jump.", "answer": 1}
    dataset = MCVideoQADataset(None, None, str(tmp_path), [])
    assert dataset.prompts(record)[1] == ("Question: what does the man do? Options: (sit. run. jump. ) Does the "
                                          "information within the frame provide the necessary details to accurately "
                                          "answer the given question?")
    assert vlep_localizer_prompt("", ["a", "b"]).endswith(
        "Option B: b Does the information within the frame provide the necessary details to predict next event?")


def test_the_sevila_localizer_needs_the_datasets_loc_input(sevila):
    with pytest.raises(ValueError, match=r"localizer_prompt: sevila reads samples\['loc_input'\]"):
        sevila.predict_answers(tiny_batch(4))


def test_sevila_architecture_answers_end_to_end_and_self_refines(sevila):
    out = sevila.predict_answers(sevila_batch())
    assert all(p in range(4) for p in out["prediction"]) and all(len(f) == 2 for f in out["frame_idx"])
    refining = build_model("sevila_baseline", "sevila_tiny", num_candidate_frames=4, num_selected_frames=2,
                           train_localizer=True).train()
    refining(sevila_batch() | {"answer": [0, 1]})["loss"].backward()
    assert refining.ln_vision_loc.weight.grad is not None and refining.ln_vision.weight.grad is None


def test_a_checkpoint_without_localizer_fills_every_localizer_slot_ln_vision_loc_included_from_the_answerer(tmp_path):
    source = build_model("sevila_baseline", "sevila_tiny")
    with torch.no_grad():
        source.ln_vision.weight.mul_(2.0)  # unlike the fresh model's ln_vision_loc
    answerer = {k: v for k, v in source.state_dict().items()
                if k.startswith(ANSWERER_PREFIXES) and not k.startswith(LOCALIZER_PREFIXES)}
    torch.save({"model": answerer}, tmp_path / "answerer.pth")
    state = build_model("sevila_baseline", "sevila_tiny", load_finetuned=True,
                        finetuned=str(tmp_path / "answerer.pth")).state_dict()
    expected = renamed(answerer, LOCALIZER_SLOTS)
    assert set(expected) == {k for k in state if k.startswith(LOCALIZER_PREFIXES)}
    assert all(torch.equal(state[k], v) for k, v in expected.items())


# sevila_flant5xl's own settings on CPU-sized parts with random weights (nothing downloaded).
TINY_PARTS = dict(vit_model="eva_vit_tiny", vit_weights=None, image_size=32, vit_precision="fp32",
                  qformer_model="qformer_tiny", qformer_tokenizer="tiny", num_query_token=8, t5_model="tiny",
                  t5_tokenizer=None, llm_precision="fp32", pretrained=None, num_candidate_frames=4,
                  num_selected_frames=2)
LONG_PROMPT = " ".join([QUESTION] * 4)  # far past 77 T5 tokens


def t5_text_inputs(model, run) -> list:
    """The (B, L, D) inputs_embeds of every T5 encoder call that ``run()`` makes."""
    seen = []
    hook = model.t5_model.encoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["inputs_embeds"].detach()), with_kwargs=True)
    try:
        run()
    finally:
        hook.remove()
    return seen


def assert_prompt_is_its_first_77_tokens(model, calls):
    """Each call ends with the prompt's first 76 tokens and the end-of-text token: right-truncated at 77."""
    tokens = model.t5_tokenizer(LONG_PROMPT, add_special_tokens=False).input_ids
    assert len(tokens) > 77
    expected = model.t5_model.encoder.embed_tokens(torch.tensor(tokens[:76] + [model.t5_tokenizer.eos_token_id]))
    assert calls
    for inputs_embeds in calls:
        torch.testing.assert_close(inputs_embeds[:, -77:], expected.expand(inputs_embeds.shape[0], -1, -1))


@pytest.mark.parametrize("step", ["training", "evaluation", "pseudo-labelling"])
def test_the_sevila_flant5xl_t5_prompt_is_77_tokens_right_truncated_in_every_step(step):
    model = build_model("sevila_baseline", "sevila_flant5xl", **TINY_PARTS, train_localizer=step == "pseudo-labelling")
    assert (model.max_txt_len, model.t5_tokenizer.truncation_side) == (77, "right")
    batch = {**sevila_batch(), "qa_input": [LONG_PROMPT] * 2, "loc_input": [LONG_PROMPT] * 2, "answer": [0, 1]}
    runs = {"training": lambda: model.train()(batch),
            "evaluation": lambda: model.eval().predict_answers(batch),
            "pseudo-labelling": lambda: LocalizerRefinement().pseudo_labels(
                model, model.encode_frames(batch["video"]), batch)}
    assert_prompt_is_its_first_77_tokens(model, t5_text_inputs(model, runs[step]))


def trainable_state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(FROZEN_BACKBONES)}


@pytest.mark.parametrize("reset", [True, False])
def test_self_refinement_resets_the_localizer_qformer_to_the_pretrained_one_as_sevilas_load_qformer_loc(tmp_path, reset):
    released = trainable_state(build_model("sevila_baseline", "sevila_tiny"))  # answerer and pre-trained localizer
    blip2 = {k: v + 1 if v.is_floating_point() else v  # another Q-Former, queries and projection
             for k, v in released.items() if k.startswith(("Qformer.", "query_tokens", "t5_proj."))}
    torch.save({"model": blip2}, tmp_path / "blip2.pth")
    torch.save({"model": released}, tmp_path / "sevila_pretrained.pth")
    state = build_model("sevila_baseline", "sevila_tiny", train_localizer=True, reset_localizer_qformer=reset,
                        pretrained=str(tmp_path / "blip2.pth"), load_finetuned=True,
                        finetuned=str(tmp_path / "sevila_pretrained.pth")).state_dict()
    localizer_qformer = {k: v for k, v in state.items() if k.startswith("Qformer_loc.")}
    source = renamed(blip2, {"Qformer.": "Qformer_loc."}) if reset else released
    assert localizer_qformer and all(torch.equal(v, source[k]) for k, v in localizer_qformer.items())
    for kept in ("query_tokens_loc", "t5_proj_loc.weight", "ln_vision_loc.weight", "query_tokens", "Qformer.bert.encoder.layer.0.crossattention.self.query.weight"):
        assert torch.equal(state[kept], released[kept])


def test_a_reset_without_pretrained_weights_says_which_keys_to_set(tmp_path):
    torch.save({"model": trainable_state(build_model("sevila_baseline", "sevila_tiny"))}, tmp_path / "sevila.pth")
    with pytest.raises(ValueError, match="reset_localizer_qformer: True .* model.pretrained is not set"):
        build_model("sevila_baseline", "sevila_tiny", train_localizer=True, reset_localizer_qformer=True,
                    load_finetuned=True, finetuned=str(tmp_path / "sevila.pth"))
