"""Mixed precision as LAVIS runs it: fp16 autocast around the step, an fp16 ViT, a bf16 T5."""
import json

import pytest
import torch
from torch import nn

from conftest import tiny_batch
from lavis_vila.models import build_model

HALF_BACKBONES = dict(vit_precision="fp16", llm_precision="bf16")
SELECTION = dict(num_candidate_frames=8, num_selected_frames=2)
FRAMES_IN = {"vila": 8, "vila_uniform": 2, "sevila_baseline": 8}
TRAINED_PARTS = {
    "vila": ["frame_prompter", "Qformer", "distiller"],
    "vila_uniform": ["Qformer"],
    "sevila_baseline": ["Qformer"],
}


def loss_of(model, arch, batch):
    return model(batch, temperature=1.0)["loss"] if arch == "vila" else model(batch)["loss"]


@pytest.fixture(scope="module", params=list(FRAMES_IN))
def half_model(request):
    selection = {} if request.param == "vila_uniform" else SELECTION
    return request.param, build_model(request.param, "tiny", **HALF_BACKBONES, **selection)


def test_fp16_vit_keeps_layernorms_in_fp32_as_lavis_converts_it(half_model):
    _, model = half_model
    vit = model.visual_encoder
    assert vit.patch_embed.proj.weight.dtype == torch.float16
    assert all(m.weight.dtype == torch.float16 for m in vit.modules() if isinstance(m, nn.Linear))
    assert all(m.weight.dtype == torch.float32 for m in vit.modules() if isinstance(m, nn.LayerNorm))
    assert model.t5_model.shared.weight.dtype == torch.bfloat16
    assert model.ln_vision.weight.dtype == torch.float32 and model.t5_proj.weight.dtype == torch.float32


@pytest.mark.parametrize("autocast_dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_training_step_under_cpu_autocast_gives_finite_loss_and_gradients_to_trained_parts(half_model, autocast_dtype):
    arch, model = half_model
    model.train()
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=autocast_dtype):
        loss = loss_of(model, arch, tiny_batch(FRAMES_IN[arch]))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    for part in TRAINED_PARTS[arch]:
        grads = [p.grad for p in getattr(model, part).parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), part
        assert any(g.abs().sum() > 0 for g in grads), part
    assert all(p.grad is None for p in model.visual_encoder.parameters())
    assert all(p.grad is None for p in model.t5_model.parameters())


@pytest.mark.parametrize("autocast_dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_evaluation_under_cpu_autocast_predicts_valid_options(half_model, autocast_dtype):
    arch, model = half_model
    model.eval()
    with torch.autocast("cpu", dtype=autocast_dtype):
        output = model.predict_answers(tiny_batch(FRAMES_IN[arch], num_option=3))
    assert all(p in range(3) for p in output["prediction"])
    assert all(len(f) == 2 for f in output["frame_idx"])


class EncoderDtypes:
    """While open, records per T5 encoder call its input's dtype, the residual stream's after the
    first block, and a matmul's (the first self-attention's query projection)."""

    def __init__(self, t5_model):
        self.encoder = t5_model.encoder
        self.inputs, self.residual, self.matmul = [], [], []

    def __enter__(self):
        block = self.encoder.block[0]
        self.hooks = [
            self.encoder.register_forward_pre_hook(
                lambda m, args, kwargs: self.inputs.append(kwargs["inputs_embeds"].dtype), with_kwargs=True),
            block.register_forward_hook(lambda m, args, out: self.residual.append(out[0].dtype)),
            block.layer[0].SelfAttention.q.register_forward_hook(lambda m, args, out: self.matmul.append(out.dtype)),
        ]
        return self

    def __exit__(self, *exc):
        for hook in self.hooks:
            hook.remove()


@pytest.mark.parametrize("autocast_dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_the_t5_encoder_input_and_residual_are_fp32_with_bf16_matmuls_under_cpu_autocast(half_model, autocast_dtype):
    arch, model = half_model
    with EncoderDtypes(model.t5_model) as seen, torch.autocast("cpu", dtype=autocast_dtype):
        loss_of(model.train(), arch, tiny_batch(FRAMES_IN[arch]))
        model.eval().predict_answers(tiny_batch(FRAMES_IN[arch], num_option=3))
    assert seen.inputs and set(seen.inputs) == {torch.float32}
    assert set(seen.residual) == {torch.float32} and set(seen.matmul) == {torch.bfloat16}


def test_llm_input_precision_bf16_runs_the_whole_encoder_in_bf16():
    model = build_model("vila_uniform", "tiny", **HALF_BACKBONES, llm_input_precision="bf16").eval()
    with EncoderDtypes(model.t5_model) as seen, torch.autocast("cpu", dtype=torch.float16):
        model.predict_answers(tiny_batch(2))
    assert set(seen.inputs) == set(seen.residual) == {torch.bfloat16}


def test_an_unknown_llm_input_precision_is_an_error_naming_the_key():
    with pytest.raises(ValueError, match="llm_input_precision must be one of fp32, fp16, bf16, got 'fp64'"):
        build_model("vila_uniform", "tiny", llm_input_precision="fp64")


def test_frame_prefixes_join_fp16_visual_tokens_in_fp32():
    model = build_model("sevila_baseline", "sevila_tiny", **HALF_BACKBONES, num_candidate_frames=8,
                        num_selected_frames=2)
    tokens = torch.randn(2, 2 * 4, model.t5_model.config.d_model, dtype=torch.float16)  # (B, F*Q, D), 2 frames
    with torch.autocast("cpu", dtype=torch.float16):
        joined = model.prefix_frames(tokens, 2, "Frame {}: ")
    assert joined.dtype == torch.float32
    assert torch.equal(joined[:, -4:], tokens[:, -4:].float())  # the last frame's tokens, unchanged


def test_distillation_loss_and_gumbel_choice_stay_fp32_under_fp16_autocast():
    model = build_model("vila", "tiny", **HALF_BACKBONES, **SELECTION).train()
    frames = model.encode_frames(tiny_batch(8)["video"])
    with torch.autocast("cpu", dtype=torch.float16):
        selection = model.frame_prompter(frames, temperature=0.5, sample=True)
        loss = model.distiller(torch.randn(2, 16, 64), torch.randn(2, 64, 64))
    assert selection.logits.dtype == torch.float32 and selection.mask.dtype == torch.float32
    assert loss.dtype == torch.float32


def test_prompter_picks_the_same_frames_with_and_without_fp16_autocast():
    model = build_model("vila", "tiny", num_candidate_frames=8, num_selected_frames=2).eval()
    frames = model.encode_frames(torch.randn(4, 8, 3, 32, 32))
    plain = model.frame_prompter(frames)
    with torch.autocast("cpu", dtype=torch.float16):
        autocast = model.frame_prompter(frames)
    assert torch.equal(plain.frame_indices, autocast.frame_indices)
    assert torch.equal(plain.logits, autocast.logits)


@pytest.mark.slow
def test_tiny_vila_trains_one_epoch_with_run_amp_on_cpu(tmp_path):
    from test_pipeline import TRAIN_CFG, job_dir, launch
    from lavis_vila.datasets.synthetic import generate

    data = generate(str(tmp_path / "keyframe_qa"), seed=3, num_train=16, num_val=4)
    out = tmp_path / "out"
    launch("lavis_vila.train", TRAIN_CFG, "--options", f"datasets.keyframe_qa.data_dir={data}",
           f"run.output_dir={out}", "run.max_epoch=1", "run.batch_size_train=8", "run.batch_size_eval=4",
           "run.warmup_steps=1", "run.amp=True", "model.vit_precision=fp16", "model.llm_precision=bf16")
    job = job_dir(out)
    stats = [json.loads(line) for line in (job / "log.txt").read_text().splitlines() if line.startswith("{\"")]
    train_loss = [float(s["train_loss"]) for s in stats if "train_loss" in s]
    assert train_loss and all(torch.isfinite(torch.tensor(train_loss)))
    checkpoint = torch.load(job / "checkpoint_0.pth", map_location="cpu", weights_only=True)
    assert checkpoint["scaler"] is not None and checkpoint["scaler"]["scale"] > 0  # the GradScaler ran
