"""vila_lora: ViLA plus LoRA on T5's q and v (rank 16, alpha 32, dropout 0.05), the rest of T5 frozen."""
import pytest
import torch

from conftest import tiny_batch, train_step
from lavis_vila.models import build_model
from lavis_vila import stage_weights

VILA_TRAINABLE = {"frame_prompter", "Qformer", "query_tokens", "t5_proj", "ln_vision", "distiller"}


@pytest.fixture(scope="module")
def lora():
    return build_model("vila_lora", "tiny")


def adapter_names(model) -> list:
    return [name for name, param in model.named_parameters() if param.requires_grad and name.startswith("t5_model.")]


def test_adapters_sit_on_every_t5_q_and_v_with_the_official_rank_alpha_and_dropout(lora):
    names = adapter_names(lora)
    assert names and all(".lora_A.default." in n or ".lora_B.default." in n for n in names)
    layers = {n.split(".lora_")[0] for n in names}
    t5 = lora.t5_model.config
    attentions = t5.num_layers + 2 * t5.num_decoder_layers  # encoder self; decoder self and cross
    assert {layer.rsplit(".", 1)[1] for layer in layers} == {"q", "v"} and len(layers) == 2 * attentions
    q = lora.t5_model.base_model.model.encoder.block[0].layer[0].SelfAttention.q
    assert q.r["default"] == 16 and q.scaling["default"] == 32 / 16 and q.lora_dropout["default"].p == 0.05
    assert q.lora_A["default"].weight.shape == (16, t5.d_model)
    assert torch.count_nonzero(q.lora_B["default"].weight) == 0  # a zero update at the start


def test_only_the_adapters_train_in_t5_besides_what_vila_trains(lora):
    trainable = {name.split(".")[0] for name, param in lora.named_parameters() if param.requires_grad}
    assert trainable == VILA_TRAINABLE | {"t5_model"}
    frozen_t5 = [n for n, p in lora.t5_model.named_parameters() if not p.requires_grad]
    assert frozen_t5 and not any(".lora_" in n for n in frozen_t5)


def test_the_adapters_get_a_gradient_and_change_the_answer_loss():
    model = build_model("vila_lora", "tiny").train()
    batch = tiny_batch(16)
    torch.manual_seed(0)
    model(batch)["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if ".lora_B." in n)


def test_full_size_trainable_count_is_vilas_plus_the_adapters():
    vila = build_model("vila", "flant5xl", empty=True)
    lora = build_model("vila_lora", "flant5xl", empty=True)
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    adapters = 24 * 3 * 2 * 16 * (2048 + 2048)  # 24 blocks x 3 attentions x (q, v) x r x (in + out)
    assert count(lora) == count(vila) + adapters == 196_850_336


@pytest.mark.slow
def test_tiny_vila_lora_overfits_eight_clips_with_only_its_trainable_parts_learning():
    torch.manual_seed(0)
    model = build_model("vila_lora", "tiny").train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = tiny_batch(16, batch_size=8)  # eight clips, answers A, B, C, D, A, ...
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(300):
        losses.append(train_step(model, optimizer, batch))
        if losses[-1] < 0.2 * losses[0]:
            break
    assert losses[-1] < 0.2 * losses[0], f"loss went from {losses[0]:.3f} to {losses[-1]:.3f} in 300 steps"
    changed = {n.split(".")[0] if ".lora_" not in n else "lora" for n, p in model.named_parameters()
               if not torch.equal(p, before[n])}
    assert changed <= VILA_TRAINABLE | {"lora"} and "lora" in changed


def test_merge_weights_carries_the_students_adapters(lora, tmp_path):
    student = {k: v for k, v in lora.state_dict().items() if k.startswith(stage_weights.STUDENT_PREFIXES) and "_T" not in k}
    adapters = {k: torch.randn_like(v) for k, v in lora.state_dict().items() if ".lora_" in k}
    teacher = {k: v for k, v in student.items() if not k.startswith("ln_vision.")}
    merged = stage_weights.merge(teacher, {**student, **adapters})
    assert adapters and all(torch.equal(merged[k], v) for k, v in adapters.items())
    result = build_model("vila_lora", "tiny").load_state_dict(merged, strict=False)
    assert not [k for k in result.missing_keys if ".lora_" in k] and not result.unexpected_keys


@pytest.mark.parametrize("weights_fp32, weight_dtype", [(True, torch.float32), (False, torch.bfloat16)])
def test_t5_weights_stay_fp32_as_the_official_lora_run_and_compute_in_bf16(weights_fp32, weight_dtype):
    model = build_model("vila_lora", "tiny", llm_precision="bf16", llm_weights_fp32=weights_fp32).eval()
    t5 = model.t5_model.base_model.model
    assert {p.dtype for n, p in t5.named_parameters() if ".lora_" not in n} == {weight_dtype}
    if weights_fp32:  # the weights as loaded, never rounded through bf16 on the way
        loaded = build_model("vila_lora", "tiny", llm_precision="fp32").t5_model.base_model.model.state_dict()
        assert all(torch.equal(tensor, loaded[name]) for name, tensor in t5.state_dict().items() if ".lora_" not in name)
    outputs = []
    hook = t5.encoder.block[0].layer[1].DenseReluDense.wo.register_forward_hook(lambda m, a, out: outputs.append(out))
    model.predict_answers(tiny_batch(16))
    hook.remove()
    assert outputs and outputs[0].dtype == torch.bfloat16  # T5's matmuls run in its bf16 autocast region
