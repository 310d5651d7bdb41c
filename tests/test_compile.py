"""The compiled inference path (``model.compile``) and the host syncs of the inference path.

Compiling is slow on a shared CPU (tens of seconds a graph): each model is compiled once, by the
module-scoped ``compiled`` fixture, and shared by the tests that need it, which are ``slow``.
"""
import json

import pytest
import torch

from conftest import REPO_ROOT, launch_in_process, tiny_batch
from lavis_vila.datasets.synthetic import generate
from lavis_vila.experiments.library_time import time_split
from lavis_vila.experiments.op_counts import count_aten_ops, count_host_syncs
from lavis_vila.models import build_model
from lavis_vila.models.compiled import STATS, BucketPadding, bucket_length, compile_mode
from lavis_vila.models.host_transfer import to_host
from lavis_vila.prompts import mc_prompt

MODELS = {"vila": ("vila", {}), "vila_prompter_layer": ("vila", {"prompter_layer": 1}),
          "vila_uniform": ("vila_uniform", {}), "sevila_baseline": ("sevila_baseline", {})}
EVAL_CFG = REPO_ROOT / "projects" / "vila" / "eval" / "keyframe_qa_tiny_vila_eval.yaml"


def frames_of(model) -> int:
    return model.num_candidate_frames or 4


def twenty_clips(model) -> dict:
    """20 random clips, each with its own question (of 1 to 20 repeated words: several lengths)."""
    generator = torch.Generator().manual_seed(0)
    questions = [mc_prompt("what happens " + "then " * i + "in the video?", ["a cat", "a dog", "a cup", "a ball"][: 2 + i % 3])
                 for i in range(20)]
    return {"video": torch.randn(20, frames_of(model), 3, 32, 32, generator=generator), "qa_input": questions,
            "num_option": [2 + i % 3 for i in range(20)]}


# ---------------------------------------------------------------- without compiling

def test_compile_key_takes_false_default_or_reduce_overhead_and_refuses_other_values():
    assert [compile_mode(v) for v in (False, None, "false", True, "default", "reduce-overhead")] == \
        [None, None, None, "default", "default", "reduce-overhead"]
    with pytest.raises(ValueError, match="model.compile must be false, default or reduce-overhead, got 'fast'"):
        build_model("vila_uniform", "tiny", compile="fast")


def test_prompt_lengths_pad_to_powers_of_two_from_16():
    assert [bucket_length(n) for n in (1, 16, 17, 33, 100, 129)] == [16, 16, 32, 64, 128, 256]


def test_bucket_padding_appends_masked_pad_tokens_and_keeps_the_real_ones():
    tokenizer = build_model("vila_uniform", "tiny").t5_tokenizer
    texts = ["a short one", "a somewhat longer question about the video"]
    plain = tokenizer(texts, padding="longest", return_tensors="pt")
    owner = torch.nn.Linear(1, 1).eval()
    with torch.no_grad():
        padded = BucketPadding(tokenizer, owner)(texts, padding="longest", return_tensors="pt")
    length = plain.input_ids.shape[1]
    assert padded.input_ids.shape[1] == bucket_length(length) > length
    assert torch.equal(padded.input_ids[:, :length], plain.input_ids)
    assert torch.equal(padded.attention_mask[:, :length], plain.attention_mask)
    assert (padded.input_ids[:, length:] == tokenizer.pad_token_id).all() and not padded.attention_mask[:, length:].any()
    # calls without padding="longest" (the answer prefix, SeViLA's frame prefixes) are the tokenizer's own
    with torch.no_grad():
        assert BucketPadding(tokenizer, owner)("Frame 1: ", return_tensors="pt").input_ids.shape == \
            tokenizer("Frame 1: ", return_tensors="pt").input_ids.shape
    # training (the owner in train mode, gradients recorded) sees the tokenizer's own padding
    training = BucketPadding(tokenizer, owner.train())(texts, padding="longest", return_tensors="pt")
    assert torch.equal(training.input_ids, plain.input_ids)


def test_to_host_reads_several_tensors_back_with_one_sync():
    with count_host_syncs() as syncs:
        prediction, frames, probabilities = to_host(torch.tensor([3, 1]), torch.tensor([[0, 5], [2, 7]]),
                                                    torch.tensor([0.25, 0.75]))
    assert (prediction, frames, probabilities) == ([3, 1], [[0, 5], [2, 7]], [0.25, 0.75])
    assert sum(syncs.values()) == 1


@pytest.mark.parametrize("name", list(MODELS))
def test_eager_inference_path_makes_one_host_sync_at_the_end(name):
    arch, overrides = MODELS[name]
    model = build_model(arch, "tiny", **overrides).eval()
    batch = tiny_batch(frames_of(model))
    model.predict_answers(batch)  # the first call also reads the tokenizer's option letters once
    with count_host_syncs() as syncs:
        model.predict_answers(batch)
    assert dict(syncs) == {"tolist": 1}


def test_num_option_is_checked_when_it_comes_back_with_the_prediction_as_a_tensor():
    model = build_model("vila_uniform", "tiny").eval()
    batch = {**tiny_batch(4), "num_option": torch.tensor([4, 6])}
    with pytest.raises(ValueError, match=r"num_option must be 2 to 5 for every sample, got \[4, 6\]"):
        model.predict_answers(batch)


def test_training_with_compile_on_compiles_nothing_and_gives_the_loss_of_compile_off():
    losses = []
    for compile in (False, "default"):
        torch.manual_seed(0)
        model = build_model("vila", "tiny", compile=compile).train()
        graphs = STATS.graphs_compiled
        loss = model(tiny_batch(model.num_candidate_frames))["loss"]
        loss.backward()
        assert STATS.graphs_compiled == graphs  # nothing compiled for training
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)  # training runs eager, on unpadded prompts


# ---------------------------------------------------------------- compiled (slow)

@pytest.fixture(scope="module")
def compiled():
    """name -> (eager model, compiled twin with the same weights, the 20 clips, eager output), built on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            arch, overrides = MODELS[name]
            eager = build_model(arch, "tiny", **overrides).eval()
            twin = build_model(arch, "tiny", compile="default", **overrides).eval()
            twin.load_state_dict(eager.state_dict())
            clips = twenty_clips(eager)
            cache[name] = eager, twin, clips, eager.predict_answers(clips)
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_path_gives_the_eager_predictions_and_frames_on_20_clips(name, compiled):
    eager, twin, clips, expected = compiled(name)
    graphs = STATS.graphs_compiled
    assert twin.predict_answers(clips) == expected
    assert STATS.graphs_compiled > graphs  # it did run compiled


@pytest.mark.slow
def test_compiled_path_makes_one_host_sync_and_recompiles_nothing_once_warm(compiled):
    _, twin, clips, expected = compiled("vila")
    twin.predict_answers(clips)
    graphs, calls = STATS.graphs_compiled, STATS.graph_calls
    with count_host_syncs() as syncs:
        assert twin.predict_answers(clips) == expected
    assert dict(syncs) == {"tolist": 1}
    assert STATS.graphs_compiled == graphs and STATS.graph_calls - calls == 4  # ViT, prompter, Q-Former, LLM
    with torch.no_grad():
        outside_graphs, every_op = (count_aten_ops(lambda: model.answer_scores(clips)) for model in (twin, compiled("vila")[0]))
    assert 0 < outside_graphs < every_op / 4  # the Python between the graphs dispatches little
    assert STATS.graphs_compiled == graphs  # counting ran the parts eagerly, compiling nothing


@pytest.mark.slow
def test_compiled_parts_time_their_graphs_and_entering_them_and_eager_parts_nothing(compiled):
    eager, twin, clips, _ = compiled("vila")
    with torch.no_grad():
        twin.answer_scores(clips)  # warm: no compiling inside the timed call
        part, graph = STATS.part_seconds, STATS.graph_seconds
        twin.answer_scores(clips)
        inside, entering = STATS.graph_seconds - graph, (STATS.part_seconds - part) - (STATS.graph_seconds - graph)
        assert inside > 0 and entering > 0  # each part's call holds its graph's and dynamo's entry
        part, graph = STATS.part_seconds, STATS.graph_seconds
        eager.answer_scores(clips)
        assert (STATS.part_seconds, STATS.graph_seconds) == (part, graph)
        calls = STATS.graph_calls
        split = time_split(lambda: twin.answer_scores(clips), torch.device("cpu"))
        assert STATS.graph_calls - calls == 4 * 6  # every part compiled, in the 5 timed runs and the profiled one
        assert split.graphs > 0 and split.graph_entry > 0 and split.tokenizers > 0
        assert time_split(lambda: eager.answer_scores(clips), torch.device("cpu"))[3:] == (None, None)


@pytest.mark.slow
def test_evaluation_with_compile_on_writes_the_metrics_file_of_compile_off(tmp_path):
    data = generate(str(tmp_path / "keyframe_qa"), seed=3, num_train=0, num_val=20)
    metrics = {}
    for compile in ("false", "default"):
        out = tmp_path / compile
        result = launch_in_process("lavis_vila.evaluate", [
            "--cfg-path", EVAL_CFG, "--options", f"datasets.keyframe_qa.data_dir={data}", f"run.output_dir={out}",
            "model.load_finetuned=False", f"model.compile={compile}", "run.batch_size_eval=10"])
        assert result.returncode == 0, result.stderr[-3000:]
        reports = [line for line in (result.stdout + result.stderr).splitlines() if "compiled inference" in line]
        if compile == "default":  # 20 questions in 2 batches of 10: the graphs it compiled and the buckets it padded to
            assert len(reports) == 1 and "graphs compiled during this evaluation; prompts padded to Q-Former [" in reports[0]
            assert ", T5 [" in reports[0] and int(reports[0].split("): ")[1].split(" graphs")[0]) > 0
        else:
            assert reports == []
        (job,) = [p for p in out.iterdir() if p.is_dir()]
        metrics[compile] = json.loads((job / "result" / "val_epochbest_metrics.json").read_text())
        results = json.loads((job / "result" / "val_epochbest.json").read_text())
        metrics[compile]["frames"] = [r["frame_idx"] for r in results]
    assert metrics["default"] == metrics["false"]
