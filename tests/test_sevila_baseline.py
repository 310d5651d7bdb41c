import pytest
import torch
import torch.nn.functional as F
from lavis.models import load_model_and_preprocess

from conftest import QUESTION, tiny_batch
from lavis_vila.prompts import localizer_prompt
from lavis_vila.models import build_model
from lavis_vila.models.inference_styles import BatchedInference, OfficialStyleInference, official_style
from lavis_vila.tools import sevila_weights


@pytest.fixture(scope="module")
def sevila():
    return build_model("sevila_baseline", "tiny").eval()


def test_selects_the_top_scoring_frames_in_time_order(sevila):
    batch = tiny_batch(16, batch_size=3)
    frames = sevila.encode_frames(batch["video"])
    relevance = sevila.frame_relevance(frames, batch)
    assert relevance.shape == (3, 16)
    frame_idx = sevila.predict_answers(batch)["frame_idx"]
    for scores, chosen in zip(relevance, frame_idx):
        assert chosen == sorted(chosen) and len(chosen) == 4
        assert set(chosen) == set(scores.topk(4).indices.tolist())


def test_selection_follows_the_localizer_scores(sevila, monkeypatch):
    fixed = torch.tensor([[0.0] * 16, [0.0] * 16])
    fixed[0, [15, 2, 9, 4]] = torch.tensor([4.0, 3.0, 2.0, 1.0])
    fixed[1, [0, 1, 14, 7]] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    monkeypatch.setattr(sevila, "frame_relevance", lambda frames, samples: fixed)
    assert sevila.predict_answers(tiny_batch(16))["frame_idx"] == [[2, 4, 9, 15], [0, 1, 7, 14]]


def test_localizer_scores_frames_with_the_llm_yes_logit_and_sevilas_question(sevila):
    assert sevila.t5_tokenizer.convert_ids_to_tokens([sevila.yes_token_id]) == ["▁yes"]
    prompt = localizer_prompt(QUESTION)
    assert prompt.endswith("Does the information within the frame provide the necessary details to "
                           "accurately answer the given question?")
    assert "Considering the information" not in prompt and "Option D: a page" in prompt


def test_the_localizer_tokenizes_each_videos_question_once_and_scores_as_if_tokenized_once_per_frame(sevila, monkeypatch):
    batch = tiny_batch(16)
    batch["qa_input"] = [QUESTION, QUESTION.replace("?", " first?")]
    frames = sevila.encode_frames(batch["video"])
    sevila.answer_prefix_ids, sevila.yes_token_id  # cached on first use: tokenized before the spy
    tokenizer, texts_tokenized = sevila.t5_tokenizer, []

    class Spy:
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def __call__(self, texts, **kwargs):
            texts_tokenized.append(len(texts))
            return tokenizer(texts, **kwargs)

    with torch.no_grad():
        monkeypatch.setattr(sevila, "t5_tokenizer", Spy())
        relevance = sevila.frame_relevance(frames, batch)
        assert texts_tokenized == [2]  # 2 videos x 16 frames, one question each
        monkeypatch.setattr(sevila, "_t5_tokenize", lambda texts, max_length, device: tokenizer(
            list(texts), padding="longest", truncation=max_length is not None, max_length=max_length, return_tensors="pt"))
        assert torch.equal(relevance, sevila.frame_relevance(frames, batch))


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("max_length", [None, 4, 12])
def test_t5_tokenizing_repeated_texts_once_gives_the_ids_and_mask_of_tokenizing_each(sevila, monkeypatch, side, max_length):
    monkeypatch.setattr(sevila.t5_tokenizer, "truncation_side", side)
    texts = ["Option A", QUESTION, "Option A", "why?", QUESTION, "Option A"]  # repeats apart, lengths apart
    each = sevila.t5_tokenizer(texts, padding="longest", truncation=max_length is not None, max_length=max_length,
                               return_tensors="pt")
    once = sevila._t5_tokenize(texts, max_length, "cpu")
    assert set(once.keys()) == {"input_ids", "attention_mask"}
    assert torch.equal(once.input_ids, each.input_ids) and torch.equal(once.attention_mask, each.attention_mask)


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


def test_load_model_and_preprocess_gives_a_valid_answer_on_a_real_video(test_videos):
    model, vis, _ = load_model_and_preprocess("sevila_baseline", "tiny", is_eval=True)
    frames, _ = vis["eval"](str(test_videos / "flipping_a_pancake.mkv"))
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


def test_the_official_style_twin_shares_every_weight_and_leaves_the_model_batched():
    model = build_model("vila_uniform", "tiny").eval()
    twin = official_style(model)
    assert isinstance(twin.inference, OfficialStyleInference) and isinstance(model.inference, BatchedInference)
    assert all(mine is its for mine, its in zip(model.parameters(), twin.parameters()))
    assert twin.predict_answers(tiny_batch(4))["prediction"][0] in range(4)


def test_pseudo_labels_are_exactly_the_frames_the_answerer_gets_right_alone(monkeypatch):
    model = build_model("sevila_baseline", "tiny", num_candidate_frames=6, num_selected_frames=2, train_localizer=True)
    # Hand-built frame features: frame (b, t) shows the option a stand-in answerer reads from it.
    option_in_frame = torch.tensor([[2, 0, 2, 1, 3, 2], [0, 1, 1, 1, 0, 3]])
    frames = option_in_frame[..., None, None].float().expand(2, 6, 3, 4)  # (B, T, N, C)
    seen_frames, seen_questions = [], []

    def frame_tokens(frames, instruction, qformer, query_tokens, proj, prefix=None):
        seen_frames.append(tuple(frames.shape))
        assert qformer is model.Qformer  # the answerer's, not the localizer's
        return frames[:, :, 0, :1].reshape(frames.shape[0], -1, 1)  # one token per frame

    def option_scores(tokens, qa_input, num_option):
        seen_questions.extend(qa_input)
        return F.one_hot(tokens[:, 0, 0].long(), 5).float()

    monkeypatch.setattr(model, "frame_tokens", frame_tokens)
    monkeypatch.setattr(model, "option_scores", option_scores)
    labels = model.objective.pseudo_labels(model, frames, {"qa_input": ["q0", "q1"], "answer": [2, 1], "num_option": [4, 4]})
    assert labels.tolist() == [[True, False, True, False, False, True], [False, True, True, True, False, False]]
    assert seen_frames == [(12, 1, 3, 4)]  # every frame on its own
    assert seen_questions == ["q0"] * 6 + ["q1"] * 6


def test_self_refinement_trains_the_localizer_only_on_yes_no_targets(tmp_path):
    student = build_model("vila_uniform", "tiny")
    path = tmp_path / "student.pth"
    torch.save({"model": {k: v for k, v in student.state_dict().items() if not k.startswith(("visual_encoder.", "t5_model."))}}, path)
    model = build_model("sevila_baseline", "tiny", num_candidate_frames=4, num_selected_frames=2, train_localizer=True,
                        load_finetuned=True, finetuned=str(path))
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"Qformer_loc", "query_tokens_loc", "t5_proj_loc"}
    batch = {**tiny_batch(4), "answer": [0, 1]}
    output = model.train()(batch)
    assert 0 <= output["keyframe_fraction"] <= 1
    output["loss"].backward()
    assert model.Qformer_loc.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith(("Qformer_loc", "query_tokens_loc", "t5_proj_loc")))
    assert model.Qformer.training  # the frozen answerer labels in train mode, as in SeViLA's code


@pytest.mark.parametrize("train_localizer", [True, False])
def test_the_frozen_branch_follows_train_mode_as_sevila_unless_frozen_branch_dropout_is_off(train_localizer):
    """SeViLA's runner puts its whole model in train mode: the frozen Q-Former's dropout stays on."""
    models = {dropout: build_model("sevila_baseline", "sevila_tiny", train_localizer=train_localizer,
                                   frozen_branch_dropout=dropout).train() for dropout in (True, False)}
    frozen = "Qformer" if train_localizer else "Qformer_loc"  # the answerer in refinement, else the localizer
    assert all(m.training for m in getattr(models[True], frozen).modules())
    assert not any(m.training for m in getattr(models[False], frozen).modules())
    assert not models[True].visual_encoder.training  # the ViT stays in eval mode either way


def test_sevila_weights_joins_answerer_and_refined_localizer(tmp_path):
    answerer, localizer = build_model("vila_uniform", "tiny"), build_model("sevila_baseline", "tiny", train_localizer=True)
    torch.save({"model": answerer.state_dict()}, tmp_path / "answerer.pth")
    torch.save({"model": {k: v for k, v in localizer.state_dict().items() if "_loc" in k}}, tmp_path / "localizer.pth")
    sevila_weights.main(["--answerer", str(tmp_path / "answerer.pth"), "--localizer", str(tmp_path / "localizer.pth"),
                         "--out", str(tmp_path / "joined.pth")])
    model = build_model("sevila_baseline", "tiny", load_finetuned=True, finetuned=str(tmp_path / "joined.pth"))
    assert torch.equal(model.query_tokens, answerer.query_tokens) and torch.equal(model.query_tokens_loc, localizer.query_tokens_loc)
    with pytest.raises(SystemExit) as error:
        sevila_weights.main(["--answerer", str(tmp_path / "answerer.pth"), "--localizer", str(tmp_path / "answerer.pth"),
                             "--out", str(tmp_path / "bad.pth")])
    assert error.value.code == 1
