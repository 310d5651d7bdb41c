import pytest
import torch

from lavis_vila.models.frame_prompter import FramePrompter

B, T, K, N, C = 3, 12, 4, 5, 6


def make_prompter(gradient="selected", scorer="segment"):
    return FramePrompter(num_tokens=N, num_candidate_frames=T, num_selected_frames=K, gradient=gradient, scorer=scorer)


def mask_gradient(gradient: str):
    """Gather with a mask that is a leaf tensor; returns (mask, its gradient, gathered frames)."""
    torch.manual_seed(1)
    prompter = make_prompter(gradient).train()
    features = torch.randn(B, T, N, C)
    selection = prompter(features, temperature=1.0)
    selection.mask = selection.mask.detach().requires_grad_(True)
    selected = prompter.gather(features, selection)
    (selected * torch.randn_like(selected)).sum().backward()
    return selection.mask, selection.mask.grad, selected


@pytest.mark.parametrize("scorer", ["segment", "frame"])
def test_training_selection_is_one_hot_per_segment(scorer):
    prompter = make_prompter(scorer=scorer).train()
    selection = prompter(torch.randn(B, T, N, C), temperature=0.5)
    assert selection.mask.shape == (B, K, T // K)
    assert torch.equal(selection.mask.sum(-1), torch.ones(B, K))
    assert set(selection.mask.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("scorer", ["segment", "frame"])
def test_frame_indices_are_increasing_and_one_per_segment(scorer):
    selection = make_prompter(scorer=scorer).eval()(torch.randn(B, T, N, C))
    indices = selection.frame_indices
    assert indices.shape == (B, K)
    assert torch.equal(indices // (T // K), torch.arange(K).expand(B, K))


def test_gather_returns_the_selected_frames_in_time_order():
    prompter = make_prompter().eval()
    features = torch.randn(B, T, N, C)
    selection = prompter(features)
    selected = prompter.gather(features, selection)
    expected = torch.stack([features[b, selection.frame_indices[b]] for b in range(B)])
    assert selected.shape == (B, K, N, C)
    assert torch.allclose(selected, expected)


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
        make_prompter("some")


@pytest.mark.parametrize("scorer", ["segment", "frame"])
@pytest.mark.parametrize("gradient", ["selected", "all"])
def test_straight_through_gradient_reaches_every_prompter_parameter(gradient, scorer):
    prompter = make_prompter(gradient, scorer).train()
    features = torch.randn(B, T, N, C)
    selected = prompter.gather(features, prompter(features, temperature=1.0))
    (selected * torch.randn_like(selected)).sum().backward()
    for name, param in prompter.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_an_unknown_prompter_scorer_is_an_error():
    with pytest.raises(ValueError, match="prompter_scorer must be 'segment' or 'frame', got 'clip'"):
        make_prompter(scorer="clip")


def logits_of_one_frame_placed_at_each_position(scorer: str) -> torch.Tensor:
    """(T,) the logit the prompter gives one fixed frame at position t, among fixed other frames."""
    torch.manual_seed(0)
    prompter = make_prompter(scorer=scorer).eval()
    frame, background = torch.randn(N, C), torch.randn(T, N, C)
    videos = background.repeat(T, 1, 1, 1)  # (T videos, T, N, C)
    videos[torch.arange(T), torch.arange(T)] = frame
    return prompter(videos).logits.flatten(1)[torch.arange(T), torch.arange(T)]


def test_frame_scorer_gives_a_frame_the_same_logit_at_every_position_whatever_its_neighbours():
    logits = logits_of_one_frame_placed_at_each_position("frame")
    torch.testing.assert_close(logits, logits[:1].expand(T))


def test_segment_scorer_weighs_each_position_on_its_own_like_the_official_code():
    logits = logits_of_one_frame_placed_at_each_position("segment")
    assert logits.unique().numel() == T
    prompter = make_prompter(scorer="segment")
    assert prompter.pool.weight.shape == (T // K, N * T // K)  # Linear(S*N -> S), shared by segments
    assert prompter.score.weight.shape == (T // K, T // K)


def test_evaluation_selection_is_deterministic_argmax():
    prompter = make_prompter().eval()
    features = torch.randn(B, T, N, C)
    first = prompter(features)
    assert torch.equal(first.mask, prompter(features).mask)
    assert torch.equal(first.mask.argmax(-1), first.logits.argmax(-1))


def test_sampled_evaluation_selection_varies_like_the_official_code():
    prompter = make_prompter().eval()
    features = torch.randn(64, T, N, C)
    draws = {tuple(prompter(features, temperature=1.0, sample=True).frame_indices.flatten().tolist()) for _ in range(5)}
    assert len(draws) > 1


def test_candidate_frames_must_split_evenly_into_segments():
    with pytest.raises(ValueError, match=r"num_candidate_frames \(10\) must be divisible by num_selected_frames \(4\)"):
        FramePrompter(num_tokens=N, num_candidate_frames=10, num_selected_frames=4)


def test_scores_and_choice_on_fixed_inputs_match_the_recorded_values():
    torch.manual_seed(0)
    prompter = FramePrompter(num_tokens=5, num_candidate_frames=6, num_selected_frames=2).eval()
    features = torch.linspace(-2, 2, 2 * 6 * 5 * 3).reshape(2, 6, 5, 3).sin()  # (B, T, N, C)
    selection = prompter(features)
    expected = torch.tensor([-0.07238, -0.21571, -0.1116, 0.06139, -0.29264, -0.14994,
                             -0.47355, -0.11493, -0.7214, -0.4766, -0.08147, -0.77104]).reshape(2, 2, 3)
    torch.testing.assert_close(selection.logits, expected, atol=1e-5, rtol=0)
    assert selection.frame_indices.tolist() == [[0, 3], [1, 4]]
