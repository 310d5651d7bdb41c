import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import PANCAKE, REPO_ROOT
from lavis_vila.experiments.bench_report import Row, format_table, summary
from lavis_vila.tools import bench, bench_data

ROW_KEYS = {"model", "mode", "candidate_frames", "selected_frames", "batch_size", "device", "dtype", "flops",
            "latency_ms_median", "latency_ms_min", "latency_ms_max", "peak_mem_mb", "compile", "videos_per_s",
            "aten_ops_per_video", "kernels_per_video", "graphs_per_video", "host_syncs_per_video"}
VARIANTS = {("vila", "efficient", 8, 4), ("vila", "efficient", 32, 4), ("vila_uniform", "efficient", 4, 4),
            ("vila_uniform", "efficient", 32, 32), ("sevila_baseline", "efficient", 32, 4),
            ("vila", "official_style", 8, 4), ("component:vit", "efficient", 8, 8), ("component:llm", "efficient", 4, 4),
            ("vila", "prompter_layer 1", 8, 4), ("vila", "prompter_layer 1", 32, 4),  # the tiny ViT's 2 blocks: the middle
            ("component:prompter segment", "efficient", 32, 4), ("component:prompter free_form", "efficient", 32, 4),
            ("component:prompter question_aware", "efficient", 32, 4)}
COMPILED = {("vila", "efficient", 8), ("vila", "prompter_layer 1", 8), ("sevila_baseline", "efficient", 32)}


@pytest.mark.slow
def test_bench_gpu_script_runs_tiny_on_cpu_and_writes_documented_json(tmp_path):
    # PYTHON: the interpreter under test, not one the caller's environment names (a PYTHON given to
    # test.sh, as .ci/run's Python 3.13 step does, is the base interpreter the venv was made from)
    env = {**os.environ, "MODEL_TYPE": "tiny", "OUT": str(tmp_path), "REPEATS": "3", "COMPILED_BATCHES": "1",
           "COMPILE_MODES": "default", "PYTHON": sys.executable}
    result = subprocess.run(["bash", "run_scripts/vila/bench_gpu.sh"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads((tmp_path / "latency_tiny_cpu.json").read_text())
    assert {(r["model"], r["mode"], r["candidate_frames"], r["selected_frames"]) for r in rows} == VARIANTS
    for row in rows:
        assert ROW_KEYS <= set(row) and row["weights"] == "random"
        assert row["latency_ms_min"] <= row["latency_ms_median"] <= row["latency_ms_max"]
        assert row["library_ms_per_video"] > 0 and row["device_ms_per_video"] is None  # --library-time, on a CPU
        reads_text = not row["model"].startswith(("component:vit", "component:prompter"))
        assert (row["tokenizer_ms_per_video"] > 0) == reads_text
    flops = {r["model"] + r["mode"] + str(r["candidate_frames"]): r["flops"]
             for r in json.loads((tmp_path / "flops_tiny.json").read_text())}
    assert flops["sevila_baselineefficient32"] > flops["vilaefficient32"] > flops["vilaefficient8"] > 0
    assert "RANDOM weights" in (tmp_path / "bench_tiny.md").read_text()
    compiled = [r for r in json.loads((tmp_path / "compiled_tiny_cpu_batch1.json").read_text()) if r["compile"] != "eager"]
    assert {(r["model"], r["mode"], r["candidate_frames"]) for r in compiled} == COMPILED
    for row in compiled:
        assert 0 < row["kernels_per_video"] and row["host_syncs_per_video"] == 1 and row["graphs_compiled_while_counting"] == 0
        assert row["graph_ms_per_video"] > 0 and row["graph_entry_ms_per_video"] > 0  # --library-time, compiled
    beside = [r for r in json.loads((tmp_path / "compiled_tiny_cpu_batch1.json").read_text()) if r["compile"] == "eager"]
    assert beside and all(r["graph_ms_per_video"] is None for r in beside)  # eager rows enter no graph, weights shared or not
    throughput = json.loads((tmp_path / "throughput_tiny_cpu.json").read_text())
    assert [(r["model"], r["batch_size"]) for r in throughput] == [(m, b) for m in ("vila", "sevila_baseline") for b in (1, 2, 4)]


def test_flops_on_meta_device_rank_sevila_above_vila(capsys):
    rows = bench.main(["--model-type", "tiny", "--flops"])
    by = {(r.model, r.mode, r.candidate_frames): r.flops for r in rows}
    assert by[("sevila_baseline", "efficient", 32)] > by[("vila", "efficient", 32)] > by[("vila", "efficient", 8)]
    assert by[("vila", "official_style", 8)] is None  # generate is data-dependent
    assert by[("component:prompter question_aware", "efficient", 32)] > by[("component:prompter segment", "efficient", 32)] > 0
    assert "fewer FLOPs" in capsys.readouterr().out
    ops = {(r.model, r.mode, r.candidate_frames): r.aten_ops_per_video for r in rows}
    assert ops[("sevila_baseline", "efficient", 32)] > ops[("vila", "efficient", 8)] > 0
    assert ops[("vila", "efficient", 32)] == ops[("vila", "efficient", 8)]  # ops do not grow with T


def test_data_path_measures_processor_and_raw_decord_frames_per_second():
    result = bench_data.main([str(PANCAKE), "--repeats", "3", "--num-frames", "8", "--image-size", "64"])
    assert result["vila_video_eval"] > 0 and result["decord_get_batch"] > 0


def test_summary_ratios_are_computed_from_the_rows():
    def row(model, mode, t, k, ms):
        return Row(model, mode, t, k, 1, "cpu", "fp32", latency_ms_median=ms, latency_ms_min=ms, latency_ms_max=ms)

    rows = [row("vila", "efficient", 8, 4, 10.0), row("vila", "efficient", 32, 4, 40.0),
            row("sevila_baseline", "efficient", 32, 4, 60.0), row("vila", "official_style", 8, 4, 25.0),
            row("component:vit", "efficient", 8, 8, 6.0), row("component:llm", "efficient", 4, 4, 2.0)]
    lines = summary(rows).splitlines()
    assert "  sevila_baseline(32->4) / vila(8->4)  = 6.00" in lines
    assert "  sevila_baseline(32->4) / vila(32->4) = 1.50" in lines
    assert "  vila(8->4) / (ViT on 8 frames + LLM encoder pass and decoder step) = 1.250" in lines
    assert "  vila(8->4) official_style / efficient = 2.50" in lines
    table = format_table(rows)
    assert "| vila | efficient | no | 8->4 | 10.0 (10.0-10.0) | 6.00x faster | - | - | - | - | - |" in table


def test_summary_compares_each_compiled_row_with_its_eager_row():
    def row(compile, ms, **counts):
        return Row("vila", "efficient", 8, 2, 1, "cpu", "fp32", latency_ms_median=ms, latency_ms_min=ms,
                   latency_ms_max=ms, compile=compile, **counts)

    rows = [row("eager", 12.0, aten_ops_per_video=900.0, host_syncs_per_video=1.0),
            row("default", 3.0, aten_ops_per_video=40.0, kernels_per_video=300.0, graphs_per_video=4.0,
                host_syncs_per_video=1.0),
            Row("sevila_baseline", "efficient", 32, 2, 1, "cpu", "fp32", latency_ms_median=60.0, latency_ms_min=60.0,
                latency_ms_max=60.0),
            Row("vila", "efficient", 32, 2, 1, "cpu", "fp32", latency_ms_median=30.0, latency_ms_min=30.0,
                latency_ms_max=30.0),
            Row("vila", "official_style", 8, 2, 1, "cpu", "fp32", latency_ms_median=30.0, latency_ms_min=30.0,
                latency_ms_max=30.0),
            Row("component:vit", "efficient", 8, 8, 1, "cpu", "fp32", latency_ms_median=6.0, latency_ms_min=6.0,
                latency_ms_max=6.0),
            Row("component:llm", "efficient", 2, 2, 1, "cpu", "fp32", latency_ms_median=2.0, latency_ms_min=2.0,
                latency_ms_max=2.0)]
    lines = summary(rows).splitlines()
    assert "  vila(8->2) efficient eager / compiled default = 4.00" in lines
    assert "  sevila_baseline(32->2) / vila(8->2)  = 5.00" in lines  # the rows' K, not a literal 4
    assert "  vila(8->2) efficient compiled default: 300 kernels a video in 4 graphs / 900 eager aten ops = 0.333" in lines
    assert "| vila | efficient | default | 8->2 | 3.0 (3.0-3.0) | 20.00x faster | - | - | 40 | 300 | 1 |" in format_table(rows)


def test_tiny_bench_with_compile_flag_parses_and_builds_the_compiled_twins():
    from lavis_vila.experiments.bench import build_models
    models = build_models("tiny", torch.device("cpu"), torch.float32, empty=False, selected=2,
                          compile_modes=("default",))
    assert models["vila_8@default"].compiled_mode == "default" and models["vila_8@default"].num_selected_frames == 2
    assert getattr(models["vila_8"], "compiled_mode", None) is None  # the eager row stays eager
    assert models["vila_8@default"].frame_prompter is not models["vila_8"].frame_prompter
    assert models["vila_8@default"].frame_prompter.pool.weight is models["vila_8"].frame_prompter.pool.weight
    from lavis_vila.experiments.bench import prompters
    assert {p.num_selected_frames for p in prompters(models["vila_8"], torch.device("cpu"), torch.float32).values()} == {2}


@pytest.mark.slow
def test_full_size_flops_with_the_prompter_on_block_6_are_at_most_040_of_the_default_at_32_to_4():
    rows = bench.main(["--model-type", "flant5xl", "--flops"])
    by = {(r.model, r.mode, r.candidate_frames): r.flops for r in rows}
    assert by[("vila", "prompter_layer 6", 32)] <= 0.40 * by[("vila", "efficient", 32)]
    assert by[("vila", "prompter_layer 12", 32)] < by[("vila", "efficient", 32)]
    assert by[("vila", "prompter_layer 6", 8)] < by[("vila", "efficient", 8)]
    # the question-reading prompter costs under a millionth of the 32 -> 4 model it selects for
    assert by[("component:prompter question_aware", "efficient", 32)] < 1e-6 * by[("vila", "efficient", 32)]


def test_library_time_counts_matmuls_and_attention_but_not_element_wise_work():
    from lavis_vila.experiments.library_time import TimeSplit, is_library_op, time_split
    x = torch.randn(64, 64)
    q = torch.randn(1, 2, 16, 8)
    assert time_split(lambda: (x * 2 + 1).relu().sum(), torch.device("cpu")) == TimeSplit(0.0, None, 0.0)
    library, on_device, tokenizers, graphs, graph_entry = time_split(lambda: [x @ x for _ in range(4)], torch.device("cpu"))
    assert library > 0 and tokenizers == 0 and on_device is None  # a CPU has no device time apart from the host's
    assert graphs is None and graph_entry is None  # no compiled part ran
    assert time_split(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q), torch.device("cpu")).library > 0
    assert all(map(is_library_op, ["aten::addmm", "aten::_scaled_dot_product_flash_attention_for_cpu",
                                   "aten::mkldnn_convolution", "mkldnn::_linear_pointwise", "aten::bmm",
                                   "aten::_flash_attention_forward", "aten::_efficient_attention_forward"]))
    assert not any(map(is_library_op, ["aten::add", "aten::_softmax", "aten::linear", "aten::matmul"]))


def test_library_time_times_each_tokenizer_call_and_leaves_tokenizers_unpatched_after():
    from transformers import PreTrainedTokenizerBase

    from lavis_vila.experiments.library_time import time_split, timed_tokenizers
    from lavis_vila.models.backbones import build_qformer_tokenizer, build_t5_tokenizer
    call = PreTrainedTokenizerBase.__call__
    tokenizers = [build_qformer_tokenizer("tiny"), build_t5_tokenizer("tiny")]
    split = time_split(lambda: tokenizers[0](["why did the boy sit down?"], return_tensors="pt"), torch.device("cpu"))
    assert split.library == 0 and split.tokenizers > 0
    with timed_tokenizers() as seconds:
        for tokenizer in tokenizers * 3:
            tokenizer(["why did the boy sit down?"], padding="longest", return_tensors="pt")
    assert len(seconds) == 6 and all(s > 0 for s in seconds)  # one time a call, none nested
    assert PreTrainedTokenizerBase.__call__ is call


def test_library_time_times_the_tokenizers_of_a_cuda_graph_row_but_does_not_profile_it():
    from lavis_vila.experiments.bench import Variant, measure_library_time
    from lavis_vila.models.backbones import build_qformer_tokenizer
    tokenizer = build_qformer_tokenizer("tiny")
    x = torch.randn(64, 64)
    rows = [Row("vila", "efficient", 8, 2, 1, "cuda", "bf16", compile=mode) for mode in ("reduce-overhead", "eager")]
    # run on the CPU, so the unprofiled path is all a CUDA-graph row can take without a GPU
    run = lambda: (tokenizer(["why did the boy sit down?"], return_tensors="pt"), x @ x)  # noqa: E731
    measure_library_time([Variant(rows[0], run)], torch.device("cuda"))
    assert rows[0].library_ms_per_video is None and rows[0].device_ms_per_video is None
    assert rows[0].tokenizer_ms_per_video > 0 and rows[0].graph_ms_per_video is None  # nothing compiled ran
    measure_library_time([Variant(rows[1], run)], torch.device("cpu"))
    assert rows[1].library_ms_per_video > 0 and rows[1].tokenizer_ms_per_video > 0


def test_summary_bounds_a_compiled_row_by_library_plus_tokenizer_ms_on_a_cpu_the_larger_on_a_gpu_and_the_table_shows_them():
    def row(model, t, compile="eager", ms=10.0, mode="efficient", **extra):
        return Row(model, mode, t, 2, 1, "cpu", "bf16", latency_ms_median=ms, latency_ms_min=ms,
                   latency_ms_max=ms, compile=compile, **extra)

    rows = [row("vila", 8, ms=12.0, library_ms_per_video=3.0, tokenizer_ms_per_video=1.0),
            row("vila", 8, "default", ms=6.0, library_ms_per_video=3.0, tokenizer_ms_per_video=1.0),
            row("vila", 32), row("sevila_baseline", 32, ms=60.0), row("vila", 8, mode="official_style"),
            row("component:vit", 8), row("component:llm", 2)]
    lines = summary(rows).splitlines()
    # on a CPU the host runs the library calls and the tokenizers one after the other: 12 / (3 + 1)
    assert ("  vila(8->2) efficient compiled default: 3 ms a video in library calls (matmul, attention, convolution) "
            "and 1 in the tokenizers, so eager / compiled cannot pass 3.00") in lines
    table = format_table(rows).splitlines()
    assert table[0].endswith("| host syncs/video | library ms/video | tokenizer ms/video |") and "device" not in table[0]
    assert table[3].endswith("| - | - | 3 | 1 |") and table[4].endswith("| - | - |")
    # on a GPU the host tokenizes while kernels run: the larger of the two bounds the latency, 12 / 4
    for r in rows:
        r.device = "cuda"
    rows[1].tokenizer_ms_per_video = 4.0
    assert "and 4 in the tokenizers, so eager / compiled cannot pass 3.00" in summary(rows)


def test_summary_bounds_a_cpu_compiled_row_by_its_graphs_plus_tokenizers_and_a_gpu_row_not():
    def row(model, t, compile="eager", ms=10.0, mode="efficient", **extra):
        return Row(model, mode, t, 2, 1, "cpu", "fp32", latency_ms_median=ms, latency_ms_min=ms,
                   latency_ms_max=ms, compile=compile, **extra)

    times = dict(library_ms_per_video=2.0, tokenizer_ms_per_video=1.0)
    rows = [row("vila", 8, ms=12.0, **times), row("vila", 8, "default", ms=8.0, graph_ms_per_video=5.0,
                                                   graph_entry_ms_per_video=0.5, **times),
            row("vila", 32), row("sevila_baseline", 32, ms=60.0), row("vila", 8, mode="official_style"),
            row("component:vit", 8), row("component:llm", 2)]
    # the graphs' time holds their arithmetic on a CPU: 12 / (5 + 1), tighter than 12 / (2 + 1)
    assert ("  vila(8->2) efficient compiled default: 5 ms a video inside its graphs, 0.5 entering them (guards, "
            "parameters as inputs); with the tokenizers, these graphs cannot pass eager / compiled 2.00"
            ) in summary(rows).splitlines()
    table = format_table(rows).splitlines()
    assert table[0].endswith("| graph ms/video | graph entry ms/video |") and table[3].endswith("| 5 | 0.5 |")
    for r in rows:  # on a GPU the graphs' host time is launching them: no bound from it
        r.device = "cuda"
    assert ("  vila(8->2) efficient compiled default: 5 ms a video launching its graphs, 0.5 entering them (guards, "
            "parameters as inputs)") in summary(rows).splitlines()


def test_throughput_times_vila_and_sevila_at_doubling_batches_up_to_the_bound(capsys):
    rows = bench.main(["--model-type", "tiny", "--throughput", "2", "--repeats", "3", "--warmup", "0", "--selected-frames", "2"])
    assert [(r.model, r.candidate_frames, r.selected_frames, r.batch_size) for r in rows] == [
        ("vila", 8, 2, 1), ("vila", 8, 2, 2), ("sevila_baseline", 32, 2, 1), ("sevila_baseline", 32, 2, 2)]
    assert all(r.videos_per_s > 0 and r.compile == "eager" for r in rows)
    out = capsys.readouterr().out
    assert "  vila(8->2): batch 2, " in out and "(none of batch 1 to 2 ran out of memory)" in out


def test_throughput_stops_at_the_first_batch_that_runs_out_of_memory(monkeypatch, capsys):
    from lavis_vila.experiments import bench as experiment
    timed = experiment.time_variants

    def out_of_memory(variant_list, *args):  # a GPU's allocator raises this; a CPU cannot show it
        row = variant_list[0].row
        if row.batch_size >= {"vila": 2, "sevila_baseline": 1}[row.model]:
            raise torch.OutOfMemoryError("CUDA out of memory")
        timed(variant_list, *args)

    monkeypatch.setattr(experiment, "time_variants", out_of_memory)
    rows = bench.main(["--model-type", "tiny", "--throughput", "8", "--repeats", "3", "--warmup", "0"])
    assert [(r.model, r.batch_size) for r in rows] == [("vila", 1)]
    out = capsys.readouterr().out
    assert "  vila(8->4): batch 1, " in out and "videos/s (batch 2 ran out of memory)" in out
    assert "  sevila_baseline: none (batch 1 ran out of memory)" in out


def test_throughput_refuses_the_options_it_does_not_run():
    with pytest.raises(SystemExit):
        bench.main(["--model-type", "tiny", "--throughput", "4", "--compile"])


def test_library_time_writes_the_timed_rows_before_the_profiler_runs(tmp_path, monkeypatch):
    from lavis_vila.experiments import bench as experiment

    def profiler_takes_the_process_down(*args):
        raise KeyboardInterrupt  # as a CUPTI crash would end the process: nothing after it runs

    monkeypatch.setattr(experiment, "measure_library_time", profiler_takes_the_process_down)
    out = tmp_path / "bench.json"
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--model-type", "tiny", "--repeats", "3", "--warmup", "0", "--library-time", "--out", str(out)])
    rows = json.loads(out.read_text())
    assert len(rows) == len(VARIANTS) and all(r["latency_ms_median"] > 0 and r["library_ms_per_video"] is None for r in rows)


def test_on_a_gpu_each_kernel_counts_once_and_attention_kernels_count_as_library_time():
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    from lavis_vila.experiments.library_time import split_ms

    def event(key, device_type, device_us, annotation=False):
        return SimpleNamespace(key=key, device_type=device_type, self_device_time_total=device_us,
                               self_cpu_time_total=1000.0, is_user_annotation=annotation)

    # A GPU profile as torch's key_averages gives it: each op credited with the kernels it launched,
    # and those kernels again as CUDA events; an annotation of a compiled region on the device.
    events = [event("aten::addmm", DeviceType.CPU, 300.0), event("sm90_gemm_bf16", DeviceType.CUDA, 300.0),
              event("aten::_scaled_dot_product_flash_attention", DeviceType.CPU, 0.0),
              event("aten::_flash_attention_forward", DeviceType.CPU, 200.0),
              event("flash_fwd_kernel", DeviceType.CUDA, 200.0),
              event("aten::add", DeviceType.CPU, 100.0), event("triton_poi_fused_add_0", DeviceType.CUDA, 100.0),
              event("## Call CompiledFxGraph ##", DeviceType.CUDA, 600.0, annotation=True)]
    assert split_ms(events, on_gpu=True) == (0.5, 0.6)  # library: addmm and flash; device: the three kernels once
    assert split_ms(events, on_gpu=False) == (3.0, None)  # on a CPU: the host time of the three library ops
