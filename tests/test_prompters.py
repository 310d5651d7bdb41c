"""The Frame-Prompters: segment (the paper's design (a)), free_form (design (b)), question_aware (ours)."""
import pytest
import torch

from lavis_vila.models.prompters import (
    PROMPTERS, FreeFormPrompter, QuestionAwarePrompter, SegmentPrompter, build_prompter)

B, T, K, N, C, D = 3, 12, 4, 5, 6, 7
ALL = [("segment", {}), ("segment", {"scorer": "frame"}), ("free_form", {}), ("question_aware", {}),
       ("question_aware", {"frame_feature": "channel_mean"})]
IDS = ["segment", "segment-frame-scorer", "free_form", "question_aware", "question_aware-channel-mean"]


def make(name="segment", gradient="selected", **options):
    return PROMPTERS[name](num_tokens=N, num_candidate_frames=T, num_selected_frames=K, vision_width=C, question_dim=D,
                           gradient=gradient, **options)


def select(prompter, features=None, **kwargs):
    features = torch.randn(B, T, N, C) if features is None else features
    return prompter(features, question=torch.randn(features.shape[0], D), **kwargs)


@pytest.mark.parametrize("name,options", ALL, ids=IDS)
@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
def test_each_prompter_selects_exactly_k_distinct_frames_in_temporal_order(name, options, training):
    prompter = make(name, **options).train(training)
    selection = select(prompter, temperature=0.5)
    assert selection.mask.shape == (B, K, T)
    assert torch.equal(selection.mask.sum(-1), torch.ones(B, K))  # one frame per row
    assert set(selection.mask.unique().tolist()) == {0.0, 1.0}
    indices = selection.frame_indices
    assert indices.shape == (B, K) and bool((indices[:, 1:] > indices[:, :-1]).all())
    assert selection.logits.shape == selection.probabilities.shape == (B, T)


@pytest.mark.parametrize("name,options", [a for a in ALL if a[0] != "free_form"], ids=[i for i in IDS if i != "free_form"])
def test_segment_wise_prompters_keep_one_frame_per_segment(name, options):
    indices = select(make(name, **options).train()).frame_indices
    assert torch.equal(indices // (T // K), torch.arange(K).expand(B, K))


def test_free_form_can_keep_several_frames_of_one_segment():
    prompter = make("free_form").eval()  # hidden width T/K = 3
    with torch.no_grad():
        for p in prompter.parameters():
            p.zero_()
        prompter.scorer.pool.weight[0, 0] = 1.0  # unit 0 reads token 0, against a threshold of 2
        prompter.scorer.pool.bias.copy_(torch.tensor([-2.0, 1.0, 1.0]))
        prompter.scorer.norm.weight.fill_(1.0)
        prompter.scorer.score.weight[0, 0] = 1.0
    features = torch.randn(1, T, N, C) * 0.1
    features[0, [0, 1, 6, 9], 0] += 5  # frames 0 and 1 (both in the first of the 4 segments), 6 and 9
    assert select(prompter, features).frame_indices.tolist() == [[0, 1, 6, 9]]


@pytest.mark.parametrize("name,options", ALL, ids=IDS)
@pytest.mark.parametrize("gradient", ["selected", "all"])
def test_straight_through_gradient_reaches_every_prompter_parameter_but_a_shift_of_all_scores(name, options, gradient):
    """The bias of a one-logit-per-frame scorer adds the same constant to every frame's score, and
    a softmax ignores a constant shift: its exact gradient is zero, what a CPU computes is rounding
    noise (about 1e-7), so it is pinned as zero within a tolerance. Every other parameter learns."""
    prompter = make(name, gradient, **options).train()
    features = torch.randn(B, T, N, C)
    selected = prompter.gather(features, select(prompter, features, temperature=1.0))
    (selected * torch.randn_like(selected)).sum().backward()
    shift_only = {f"{module_name}.bias" for module_name, module in prompter.named_modules()
                  if module_name.endswith("score") and module.out_features == 1}
    for parameter_name, param in prompter.named_parameters():
        assert param.grad is not None, parameter_name
        if parameter_name in shift_only:
            assert param.grad.abs().max() < 1e-4, parameter_name
        else:
            assert param.grad.abs().sum() > 1e-3, parameter_name


@pytest.mark.parametrize("name,options", ALL, ids=IDS)
def test_evaluation_selection_is_deterministic(name, options):
    prompter = make(name, **options).eval()
    features, question = torch.randn(B, T, N, C), torch.randn(B, D)
    first = prompter(features, question=question)
    assert torch.equal(first.mask, prompter(features, question=question).mask)


@pytest.mark.parametrize("name,options", ALL, ids=IDS)
def test_gather_returns_the_selected_frames_in_time_order(name, options):
    prompter = make(name, **options).eval()
    features = torch.randn(B, T, N, C)
    selection = select(prompter, features)
    expected = torch.stack([features[b, selection.frame_indices[b]] for b in range(B)])
    torch.testing.assert_close(prompter.gather(features, selection), expected)


def mask_gradient(gradient: str):
    """Gather with a mask that is a leaf tensor; returns (mask, its gradient, gathered frames)."""
    torch.manual_seed(1)
    prompter = make("segment", gradient).train()
    features = torch.randn(B, T, N, C)
    selection = prompter(features, temperature=1.0)
    selection.mask = selection.mask.detach().requires_grad_(True)
    selected = prompter.gather(features, selection)
    (selected * torch.randn_like(selected)).sum().backward()
    return selection.mask, selection.mask.grad, selected


def test_official_gradient_reaches_only_the_selected_mask_entries():
    mask, grad, _ = mask_gradient("selected")
    assert torch.equal(grad != 0, mask.detach() == 1)  # K of T entries per video


def test_all_gradient_reaches_every_mask_entry_with_the_same_forward_value():
    mask, grad, selected = mask_gradient("all")
    assert bool((grad != 0).all())
    _, _, selected_official = mask_gradient("selected")
    assert torch.equal(selected, selected_official)


def test_an_unknown_prompter_gradient_is_an_error():
    with pytest.raises(ValueError, match="prompter_gradient must be 'selected' or 'all', got 'some'"):
        make(gradient="some")


def test_an_unknown_prompter_scorer_is_an_error():
    with pytest.raises(ValueError, match="prompter_options.scorer must be 'segment' or 'frame', got 'clip'"):
        make(scorer="clip")


def logits_of_one_frame_placed_at_each_position(scorer: str) -> torch.Tensor:
    """(T,) the logit the prompter gives one fixed frame at position t, among fixed other frames."""
    torch.manual_seed(0)
    prompter = make(scorer=scorer).eval()
    frame, background = torch.randn(N, C), torch.randn(T, N, C)
    videos = background.repeat(T, 1, 1, 1)  # (T videos, T, N, C)
    videos[torch.arange(T), torch.arange(T)] = frame
    return prompter(videos).logits[torch.arange(T), torch.arange(T)]


def test_frame_scorer_gives_a_frame_the_same_logit_at_every_position_whatever_its_neighbours():
    logits = logits_of_one_frame_placed_at_each_position("frame")
    torch.testing.assert_close(logits, logits[:1].expand(T))


def test_segment_scorer_weighs_each_position_on_its_own_like_the_official_code():
    logits = logits_of_one_frame_placed_at_each_position("segment")
    assert logits.unique().numel() == T
    prompter = make(scorer="segment")
    assert prompter.pool.weight.shape == (T // K, N * T // K)  # Linear(S*N -> S), shared by segments
    assert prompter.score.weight.shape == (T // K, T // K)


def test_sampled_evaluation_selection_varies_like_the_official_code():
    prompter = make().eval()
    features = torch.randn(64, T, N, C)
    draws = {tuple(prompter(features, temperature=1.0, sample=True).frame_indices.flatten().tolist()) for _ in range(5)}
    assert len(draws) > 1


@pytest.mark.parametrize("prompter_class", [SegmentPrompter, QuestionAwarePrompter])
def test_candidate_frames_must_split_evenly_into_segments(prompter_class):
    with pytest.raises(ValueError, match=r"num_candidate_frames \(10\) must be divisible by num_selected_frames \(4\)"):
        prompter_class(num_tokens=N, num_candidate_frames=10, num_selected_frames=4, question_dim=D)


def test_scores_and_choice_on_fixed_inputs_match_the_recorded_values():
    torch.manual_seed(0)
    prompter = SegmentPrompter(num_tokens=5, num_candidate_frames=6, num_selected_frames=2).eval()
    features = torch.linspace(-2, 2, 2 * 6 * 5 * 3).reshape(2, 6, 5, 3).sin()  # (B, T, N, C)
    selection = prompter(features)
    expected = torch.tensor([-0.07238, -0.21571, -0.1116, 0.06139, -0.29264, -0.14994,
                             -0.47355, -0.11493, -0.7214, -0.4766, -0.08147, -0.77104]).reshape(2, 6)
    torch.testing.assert_close(selection.logits, expected, atol=1e-5, rtol=0)
    assert selection.frame_indices.tolist() == [[0, 3], [1, 4]]


def hand_set_question_aware() -> QuestionAwarePrompter:
    """Hidden unit 0 reads channel 0 of a frame's mean token, unit 1 channel 1; question dimension 0 switches
    unit 0 on, dimension 1 switches unit 1 on (FiLM: 1 + gamma; the questions (1, 0) and (0, 1)
    normalise to about (1, -1) and (-1, 1)), and the score sums the units."""
    prompter = QuestionAwarePrompter(num_tokens=3, vision_width=2, num_candidate_frames=4, num_selected_frames=1,
                                     question_dim=2, hidden=2).eval()
    with torch.no_grad():
        for p in prompter.parameters():
            p.zero_()
        prompter.pool.weight.copy_(torch.eye(2))
        prompter.norm.weight.fill_(1.0)
        prompter.question_norm.weight.fill_(1.0)
        prompter.film.weight[:2].copy_(torch.eye(2) * 0.5)  # gamma
        prompter.film.bias[:2].fill_(-0.5)  # 1 + gamma = 0 unless the question switches the unit on
        prompter.score.weight.fill_(1.0)
    return prompter


def test_question_aware_prompter_selects_different_frames_for_different_questions_on_the_same_frames():
    prompter = hand_set_question_aware()
    features = torch.zeros(1, 4, 3, 2)  # (B, T, N, C)
    features[0, 1, :, 0] = 1.0  # frame 1 shows what channel 0 detects
    features[0, 3, :, 1] = 1.0  # frame 3 shows what channel 1 detects
    asks_about_channel_0, asks_about_channel_1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert prompter(features, question=asks_about_channel_0).frame_indices.tolist() == [[1]]
    assert prompter(features, question=asks_about_channel_1).frame_indices.tolist() == [[3]]


def test_question_aware_prompter_refuses_to_run_without_the_question():
    with pytest.raises(ValueError, match="needs the question embedding"):
        make("question_aware")(torch.randn(B, T, N, C))


def test_only_the_question_aware_prompter_reads_the_question():
    assert {name for name, cls in PROMPTERS.items() if cls.reads_question} == {"question_aware"}
    assert FreeFormPrompter.reads_question is False


def test_options_of_another_prompter_are_an_error_naming_the_prompters_own():
    common = dict(num_tokens=N, num_candidate_frames=T, num_selected_frames=K, vision_width=C, question_dim=D, gradient="all")
    with pytest.raises(ValueError, match=r"prompter_options \['scorer'\] are not options of frame_prompter "
                                         r"'free_form' \(its options: \['hidden'\]\)"):
        build_prompter("free_form", {"scorer": "frame"}, **common)
    with pytest.raises(ValueError, match=r"frame_prompter must be one of \['free_form', 'question_aware', 'segment'\]"):
        build_prompter("learned", {}, **common)
    assert isinstance(build_prompter("segment", {"scorer": "frame"}, **common), SegmentPrompter)
