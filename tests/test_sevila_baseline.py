import pytest
import torch
from lavis.models import load_model_and_preprocess

from conftest import QUESTION, tiny_batch
from lavis_vila.prompts import localizer_prompt
from lavis_vila.models import build_model


@pytest.fixture(scope="module")
def sevila():
    return build_model("sevila_baseline", "tiny").eval()


def test_selects_the_top_scoring_frames_in_time_order(sevila):
    batch = tiny_batch(16, batch_size=3)
    frames = sevila.encode_frames(batch["video"])
    relevance = sevila.frame_relevance(frames, batch["qa_input"])
    assert relevance.shape == (3, 16)
    frame_idx = sevila.predict_answers(batch)["frame_idx"]
    for scores, chosen in zip(relevance, frame_idx):
        assert chosen == sorted(chosen) and len(chosen) == 4
        assert set(chosen) == set(scores.topk(4).indices.tolist())


def test_selection_follows_the_localizer_scores(sevila, monkeypatch):
    fixed = torch.tensor([[0.0] * 16, [0.0] * 16])
    fixed[0, [15, 2, 9, 4]] = torch.tensor([4.0, 3.0, 2.0, 1.0])
    fixed[1, [0, 1, 14, 7]] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    monkeypatch.setattr(sevila, "frame_relevance", lambda frames, qa_input: fixed)
    assert sevila.predict_answers(tiny_batch(16))["frame_idx"] == [[2, 4, 9, 15], [0, 1, 7, 14]]


def test_localizer_scores_frames_with_the_llm_yes_logit_and_sevilas_question(sevila):
    assert sevila.t5_tokenizer.convert_ids_to_tokens([sevila.yes_token_id]) == ["▁yes"]
    prompt = localizer_prompt(QUESTION)
    assert prompt.endswith("Does the information within the frame provide the necessary details to "
                           "accurately answer the given question?")
    assert "Considering the information" not in prompt and "Option D: a page" in prompt


def test_sevila_checkpoint_key_names_are_top_level(sevila):
    keys = sevila.state_dict().keys()
    for name in ["Qformer_loc.bert.embeddings.word_embeddings.weight", "query_tokens_loc", "t5_proj_loc.weight",
                 "Qformer.bert.embeddings.word_embeddings.weight", "query_tokens", "t5_proj.weight"]:
        assert name in keys


def test_a_checkpoint_without_localizer_initialises_it_from_the_answerer(sevila, tmp_path):
    source = build_model("vila_uniform", "tiny")
    path = tmp_path / "uniform.pth"
    torch.save({"model": {k: v for k, v in source.state_dict().items() if k.startswith(("Qformer.", "query_tokens", "t5_proj", "ln_vision"))}}, path)
    model = build_model("sevila_baseline", "tiny", load_finetuned=True, finetuned=str(path))
    assert torch.equal(model.Qformer_loc.bert.encoder.layer[0].attention.self.query.weight,
                       source.Qformer.bert.encoder.layer[0].attention.self.query.weight)
    assert torch.equal(model.query_tokens_loc, source.query_tokens)


def test_load_model_and_preprocess_gives_a_valid_answer_on_a_real_video(shared_videos):
    model, vis, _ = load_model_and_preprocess("sevila_baseline", "tiny", is_eval=True)
    frames, _ = vis["eval"](str(shared_videos / "flipping_a_pancake.mkv"))
    out = model.predict_answers({"video": frames[None], "qa_input": [QUESTION], "num_option": [4]})
    assert out["prediction"][0] in range(4) and len(out["frame_idx"][0]) == 4


def test_official_style_qformer_loop_gives_the_batched_visual_tokens():
    efficient = build_model("vila_uniform", "tiny").eval()
    official = build_model("vila_uniform", "tiny", official_style=True).eval()
    official.load_state_dict(efficient.state_dict())
    frames = efficient.encode_frames(torch.randn(2, 4, 3, 32, 32))
    instruction = efficient.tokenize_instruction([QUESTION] * 2)
    args = (frames, instruction, efficient.Qformer, efficient.query_tokens, efficient.t5_proj)
    torch.testing.assert_close(official.frame_tokens(*args), efficient.frame_tokens(*args))


def test_official_style_scores_are_the_second_generated_steps_logits():
    official = build_model("vila_uniform", "tiny", official_style=True).eval()
    visual = torch.randn(2, 8, official.t5_model.config.d_model)
    qa = [QUESTION] * 2
    scores = official.next_token_logits(visual, qa, official.answer_prefix_ids)
    embeds, mask = official._llm_encoder_inputs(visual, qa, max_length=None)
    generated = official.t5_model.generate(inputs_embeds=embeds, attention_mask=mask, num_beams=1, max_new_tokens=2)
    forced = official.t5_model(inputs_embeds=embeds, attention_mask=mask, decoder_input_ids=generated[:, :2]).logits
    torch.testing.assert_close(scores, forced[:, -1].float(), rtol=1e-4, atol=1e-4)
