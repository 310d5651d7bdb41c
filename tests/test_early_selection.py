"""prompter_layer: the prompter reads an early ViT block, and at inference only the K chosen
frames run the rest of the ViT."""
import pytest
import torch

from conftest import tiny_batch
from lavis_vila.models import build_model

LAYER = 1  # the tiny ViT has 2 blocks


@pytest.fixture(scope="module")
def early():
    return build_model("vila", "tiny", prompter_layer=LAYER).eval()


def test_the_vit_in_two_stages_equals_one_full_pass(early):
    video = tiny_batch(16)["video"]
    full = early.visual_encoder(video.flatten(0, 1)).reshape(*video.shape[:2], -1, 64)
    staged = early.vit_features(early.vit_features(video, 0, LAYER), LAYER)
    torch.testing.assert_close(staged, full, rtol=0, atol=1e-5)


def test_the_chosen_frames_continued_from_block_l_equal_a_full_pass_on_them(early):
    batch = tiny_batch(16)
    frames, choice = early.encode_and_select(batch, temperature=1.0)
    assert frames is None and choice.frames.shape == (2, 4, 17, 64)
    full = early.encode_frames(batch["video"])  # (B, T, N, C), every frame to the end
    expected = torch.stack([full[b, choice.frame_idx[b]] for b in range(2)])
    torch.testing.assert_close(choice.frames, expected, rtol=0, atol=1e-5)


def test_the_prompter_scores_ln_vision_of_block_l(early):
    batch = tiny_batch(16)
    _, choice = early.encode_and_select(batch, temperature=1.0)
    block_l = early.vision_features(early.vit_features(batch["video"], 0, LAYER))
    torch.testing.assert_close(choice.selection.logits, early.frame_prompter(block_l).logits)


@pytest.mark.parametrize("layer, later_block_frames", [(None, 2 * 16), (LAYER, 2 * 4)])
def test_at_inference_the_later_blocks_run_on_the_chosen_frames_only(layer, later_block_frames):
    model = build_model("vila", "tiny", prompter_layer=layer).eval()
    seen = []
    hook = model.visual_encoder.blocks[LAYER].register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
    model.predict_answers(tiny_batch(16))
    hook.remove()
    assert seen == [later_block_frames]


@pytest.mark.parametrize("gradient", ["selected", "all"])
def test_training_with_an_early_layer_distils_from_every_frame_and_trains_the_prompter(gradient):
    model = build_model("vila", "tiny", prompter_layer=LAYER, prompter_gradient=gradient).train()
    teacher_frames = []
    hook = model.Qformer_T.bert.register_forward_hook(
        lambda m, args, kwargs, out: teacher_frames.append(kwargs["encoder_hidden_states"].shape[0]), with_kwargs=True)
    losses = model(tiny_batch(16))
    hook.remove()
    assert teacher_frames == [2 * 16] and "loss_distill" in losses
    losses["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.frame_prompter.parameters())


def test_a_prompter_layer_outside_the_vit_is_an_error():
    with pytest.raises(ValueError, match="prompter_layer must be 1 to 1 for a 2-block ViT"):
        build_model("vila", "tiny", prompter_layer=2)


@pytest.mark.parametrize("autocast_dtype", [None, torch.float16, torch.bfloat16], ids=["no_autocast", "fp16", "bf16"])
def test_at_an_fp16_vit_the_chosen_frames_continued_from_block_l_equal_a_full_pass_on_them(autocast_dtype):
    model = build_model("vila", "tiny", prompter_layer=LAYER, vit_precision="fp16").eval()
    batch = tiny_batch(16)
    with torch.autocast("cpu", dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        _, choice = model.encode_and_select(batch, temperature=1.0)
        chosen_pixels = torch.stack([batch["video"][b, choice.frame_idx[b]] for b in range(2)])  # (B, K, 3, H, W)
        full, full_again = model.encode_frames(chosen_pixels), model.encode_frames(chosen_pixels)
    tolerance = (full - full_again).abs().max()
    assert choice.frames.dtype == full.dtype == torch.float32
    assert (choice.frames - full).abs().max() <= tolerance
