"""Side-by-side speed of ViLA, uniform sampling and SeViLA-style selection on one backbone.

Rows: ``vila`` T->K for (8, 4) and (32, 4); ``vila_uniform`` with 4 and with 32 frames;
``sevila_baseline`` 32->4; ``vila`` 8->4 in ``official_style`` (per-frame Q-Former loop and
30-token ``generate``); ``vila`` 8->4 and 32->4 with the prompter on ViT block 6 and 12
(``prompter_layer``: the later blocks run on the 4 chosen frames only); and the parts no selector
can avoid, the ViT on 8 frames and the LLM's one encoder pass plus one decoder step on 4 frames' tokens.

All models share one set of backbone weights, random ones (timing does not depend on their
values). Variants run interleaved, after warm-up, and each row reports the median, min and max
of the timed runs. dtype ``auto`` picks bf16 on a GPU that supports it or a CPU that reports
AMX / AVX-512-BF16, else fp32.

With ``compile_modes`` (``--compile``), each of ``COMPILED_ROWS`` (or those ``--compile-rows`` names) is timed beside its eager row in
each mode, as a compiled twin sharing its weights (``models.compiled``). After the timing, one
counted run of each row gives what decides a GPU's speed besides FLOPs, per video: aten ops (in
a compiled row, those outside its graphs), kernels (a compiled row's graphs' kernels plus those
ops), graphs, and host syncs (``op_counts``); with ``library_time`` (``--library-time``), a few
runs more give the ms in the tokenizers, inside a compiled row's graphs and entering them, and,
profiled, in library calls: the floors under a compiled build's latency (``library_time``).
``flops`` counts FLOPs and aten ops on the meta device instead, with no weights and no timing.
"""
import copy
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lavis_vila.experiments.bench_report import Row
from lavis_vila.experiments.library_time import time_split
from lavis_vila.experiments.machine import cpu_info
from lavis_vila.experiments.op_counts import count_aten_ops, count_host_syncs
from lavis_vila.models import build_model
from lavis_vila.models.backbones import build_qformer_tokenizer, build_t5_tokenizer
from lavis_vila.models.compiled import STATS, compiled_twin
from lavis_vila.models.host_transfer import to_host
from lavis_vila.models.precision import DTYPES
from lavis_vila.models.prompters import PROMPTERS, build_prompter
from lavis_vila.models.inference_styles import official_style
from lavis_vila.prompts import mc_prompt

QUESTION = mc_prompt(
    "why did the boy pick up the cup after he sat down at the table?",
    ["to drink water.", "to give it to the girl.", "to wash it.", "to put it away.", "to throw it."],
)
SHARED_PARTS = ("visual_encoder", "ln_vision", "Qformer", "query_tokens", "t5_proj", "t5_model")
# The rows timed compiled too, by model key: ViLA T->K, with the prompter on an early block, and SeViLA.
COMPILED_ROWS = ("vila_8", "vila_8_early", "sevila_baseline")


@dataclass
class Variant:
    row: Row
    run: Callable[[], object]


def auto_dtype(device: torch.device) -> str:
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    flags = cpu_info()["flags"]
    return "bf16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "fp32"


def materialize(module: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Give every meta parameter real random storage (N(0, 0.02); norms 1/0), tied ones once."""
    done = {}
    for submodule in module.modules():
        for name, param in list(submodule._parameters.items()):
            if param is None or not param.is_meta:
                continue
            if id(param) not in done:
                data = torch.empty(param.shape, device=device, dtype=dtype)
                if isinstance(submodule, nn.LayerNorm) or "layer_norm" in type(submodule).__name__.lower():
                    data.fill_(1.0 if name == "weight" else 0.0)
                else:
                    data.normal_(0.0, 0.02)
                done[id(param)] = nn.Parameter(data, requires_grad=param.requires_grad)
            submodule._parameters[name] = done[id(param)]
    module.to(device=device, dtype=dtype)


def build_models(model_type: str, device: torch.device, dtype: torch.dtype, empty: bool, selected: int = 4,
                 compile_modes: tuple = (), compiled_rows: tuple = COMPILED_ROWS) -> dict:
    """Every variant's model, sharing one backbone; on the meta device when ``empty``. ``selected``:
    K. Each of ``compile_modes`` adds a compiled twin of each of ``compiled_rows`` (keys of
    ``COMPILED_ROWS``), key ``<key>@<mode>``."""
    # Inference never runs the distillation teacher: sharing the student's Q-Former saves its memory.
    no_teacher = dict(teacher_shares_student_qformer=True, num_selected_frames=selected)
    models = {
        "vila_8": build_model("vila", model_type, empty=True, num_candidate_frames=8, **no_teacher),
        "vila_32": build_model("vila", model_type, empty=True, num_candidate_frames=32, **no_teacher),
        "vila_uniform": build_model("vila_uniform", model_type, empty=True),
        "sevila_baseline": build_model("sevila_baseline", model_type, empty=True,
                                       num_candidate_frames=32, num_selected_frames=selected),
    }
    shared = models["vila_8"]
    if shared.t5_tokenizer is None or shared.qformer_tokenizer is None:
        print("note: the hub tokenizers are not available offline; prompts are tokenized with the "
              "shipped tiny tokenizers (sequence lengths differ slightly, equally for every variant)")
    for model in models.values():
        model.qformer_tokenizer = model.qformer_tokenizer or build_qformer_tokenizer("tiny")
        model.t5_tokenizer = model.t5_tokenizer or build_t5_tokenizer("tiny")
        if model is not shared:
            for part in SHARED_PARTS:
                setattr(model, part, getattr(shared, part))
    for model in models.values():
        if empty:
            model.to("meta")
        else:
            materialize(model, device, dtype)
        model.eval()
    models["vila_8_official"] = official_style(models["vila_8"])
    for layer in early_layers(shared):
        for frames in (8, 32):
            models[f"vila_{frames}_layer{layer}"] = copy.copy(models[f"vila_{frames}"])
            models[f"vila_{frames}_layer{layer}"].prompter_layer = layer
    models["vila_8_early"] = models[f"vila_8_layer{early_layers(shared)[0]}"]
    for mode in compile_modes:
        for key in compiled_rows:
            models[f"{key}@{mode}"] = compiled_twin(models[key], mode)
    return models


def early_layers(model) -> list:
    """The ``prompter_layer`` values benched: blocks 6 and 12 of ViT-g (39 blocks); the middle of a
    shallower ViT."""
    depth = len(model.visual_encoder.blocks)
    return [layer for layer in (6, 12) if layer < depth] or [depth // 2]


def answering(model, video: torch.Tensor, frames: int) -> Callable[[], object]:
    """``model`` answering QUESTION on the first ``frames`` frames of each of ``video``'s clips; the
    answer and the frames read back once (not on the meta device, which holds no values)."""
    batch_size = video.shape[0]
    text = {"qa_input": [QUESTION] * batch_size, "num_option": [5] * batch_size}

    def run():
        scores = model.answer_scores({"video": video[:, :frames], **text})
        return scores if video.is_meta else to_host(scores.scores.argmax(-1), scores.frame_idx)
    return run


def random_clips(model, batch_size: int, frames: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    size = model.visual_encoder.image_size
    return torch.randn(batch_size, frames, 3, size, size, device=device, dtype=dtype)


def variants(models: dict, batch_size: int, device: torch.device, dtype: torch.dtype, dtype_name: str,
             compile_modes: tuple = (), compiled_rows: tuple = COMPILED_ROWS) -> list:
    shared = models["vila_8"]
    k = shared.num_selected_frames
    video = random_clips(shared, batch_size, 32, device, dtype)
    text = {"qa_input": [QUESTION] * batch_size, "num_option": [5] * batch_size}
    tokens_per_frame = shared.query_tokens.shape[1]
    visual_tokens = torch.randn(batch_size, k * tokens_per_frame, shared.t5_model.config.d_model,
                                device=device, dtype=dtype)

    def row(model, mode, t, k, compile="eager"):
        return Row(model, mode, t, k, batch_size, str(device), dtype_name, compile=compile)

    def answer(model, frames):
        return answering(model, video, frames)

    early = early_layers(shared)[0]
    compiled = {"vila_8": ("vila", "efficient", 8, k), "vila_8_early": ("vila", f"prompter_layer {early}", 8, k),
                "sevila_baseline": ("sevila_baseline", "efficient", 32, k)}
    return [
        Variant(row("vila", "efficient", 8, k), answer(models["vila_8"], 8)),
        Variant(row("vila", "efficient", 32, k), answer(models["vila_32"], 32)),
        Variant(row("vila_uniform", "efficient", k, k), answer(models["vila_uniform"], k)),
        Variant(row("vila_uniform", "efficient", 32, 32), answer(models["vila_uniform"], 32)),
        Variant(row("sevila_baseline", "efficient", 32, k), answer(models["sevila_baseline"], 32)),
        Variant(row("vila", "official_style", 8, k), answer(models["vila_8_official"], 8)),
        *[Variant(row("vila", f"prompter_layer {layer}", frames, k), answer(models[f"vila_{frames}_layer{layer}"], frames))
          for layer in early_layers(shared) for frames in (8, 32)],
        *[Variant(row(*compiled[key], compile=mode), answer(models[f"{key}@{mode}"], compiled[key][2]))
          for mode in compile_modes for key in compiled_rows],
        Variant(row("component:vit", "efficient", 8, 8), lambda: shared.encode_frames(video[:, :8])),
        Variant(row("component:llm", "efficient", k, k),
                lambda: shared.option_scores(visual_tokens, text["qa_input"], text["num_option"])),
        *[Variant(row(f"component:prompter {name}", "efficient", 32, k), run_prompter(prompter, shared, batch_size))
          for name, prompter in prompters(shared, device, dtype).items()],
    ]


def prompters(model, device: torch.device, dtype: torch.dtype) -> dict:
    """Each Frame-Prompter for 32 -> K (``model``'s) at ``model``'s sizes, with random weights."""
    common = dict(num_tokens=model.visual_encoder.patch_embed.num_patches + 1,
                  vision_width=model.visual_encoder.num_features, num_candidate_frames=32,
                  num_selected_frames=model.num_selected_frames,
                  question_dim=model.Qformer.config.hidden_size)
    return {name: build_prompter(name, {}, **common).to(device=device, dtype=dtype).eval() for name in PROMPTERS}


def run_prompter(prompter, model, batch_size: int) -> Callable[[], object]:
    """The prompter alone on 32 frames' ViT features, with an instruction embedding."""
    like = model.query_tokens
    features = torch.randn(batch_size, 32, prompter.num_tokens, model.visual_encoder.num_features,
                           device=like.device, dtype=like.dtype)
    question = torch.randn(batch_size, prompter.question_dim, device=like.device, dtype=like.dtype)
    return lambda: prompter(features, question=question)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variants(variant_list: list, repeats: int, warmup: int, device: torch.device) -> None:
    """Interleaved: every round runs each variant once; the first ``warmup`` rounds are dropped."""
    times = {id(v): [] for v in variant_list}
    peaks = {id(v): 0.0 for v in variant_list}
    for round_index in range(warmup + repeats):
        for variant in variant_list:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            synchronize(device)
            start = time.perf_counter()
            with torch.inference_mode():
                variant.run()
            synchronize(device)
            elapsed_ms = (time.perf_counter() - start) * 1e3
            if round_index >= warmup:
                times[id(variant)].append(elapsed_ms)
            peaks[id(variant)] = max(peaks[id(variant)], peak_memory_mb(device))
        print(f"round {round_index + 1}/{warmup + repeats} ({'warm-up' if round_index < warmup else 'timed'}) done",
              flush=True)
    for variant in variant_list:
        samples = times[id(variant)]
        variant.row.latency_ms_median = statistics.median(samples)
        variant.row.latency_ms_min, variant.row.latency_ms_max = min(samples), max(samples)
        variant.row.peak_mem_mb = peaks[id(variant)]
        variant.row.videos_per_s = variant.row.batch_size * 1e3 / variant.row.latency_ms_median


def peak_memory_mb(device: torch.device) -> float:
    """GPU: peak allocated during the run. CPU: the process's peak resident set so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_launch_costs(variant_list: list) -> None:
    """One counted run of each variant: aten ops outside compiled graphs, the graphs' kernels and
    calls, and host syncs, each per video."""
    for variant in variant_list:
        per_video = 1 / variant.row.batch_size
        launches, calls, compiled = STATS.kernel_launches, STATS.graph_calls, STATS.graphs_compiled
        with count_host_syncs() as syncs, torch.inference_mode():
            variant.run()
        with torch.inference_mode():
            ops = count_aten_ops(variant.run)
        variant.row.aten_ops_per_video = ops * per_video
        variant.row.host_syncs_per_video = sum(syncs.values()) * per_video
        if variant.row.compile != "eager":
            variant.row.graphs_per_video = (STATS.graph_calls - calls) * per_video
            variant.row.kernels_per_video = (STATS.kernel_launches - launches) * per_video + variant.row.aten_ops_per_video
            variant.row.graphs_compiled_while_counting = STATS.graphs_compiled - compiled


def measure_library_time(variant_list: list, device: torch.device) -> None:
    """``library_time.TIMED_RUNS`` runs more of each variant: ms a video in the tokenizers (and, for a
    compiled row, inside its graphs and entering them), then one profiled: in library calls (and on
    a GPU, in any kernel). CUDA-graph rows (``reduce-overhead``) on a GPU are not profiled: CUPTI's
    view of a graph replay is unreliable (pytorch/kineto#1165), and profiling one has crashed
    processes before."""
    for variant in variant_list:
        cuda_graphs = device.type == "cuda" and variant.row.compile == "reduce-overhead"
        try:
            with torch.inference_mode():
                split = time_split(variant.run, device, profiled=not cuda_graphs)
        except RuntimeError as error:  # a GPU machine whose profiler (CUPTI) fails: the timed rows still count
            print(f"note: --library-time stopped at {variant.row.model} {variant.row.mode} ({error}); "
                  f"the rows keep their timings")
            return
        per_video = 1 / variant.row.batch_size
        if split.library is not None:
            variant.row.library_ms_per_video = split.library * per_video
        variant.row.tokenizer_ms_per_video = split.tokenizers * per_video
        if split.device is not None:
            variant.row.device_ms_per_video = split.device * per_video
        if split.graphs is not None:
            variant.row.graph_ms_per_video = split.graphs * per_video
            variant.row.graph_entry_ms_per_video = split.graph_entry * per_video


def largest_batches(model_type: str, device_name: str, dtype_name: str, up_to: int, repeats: int = 3,
                    warmup: int = 1, selected: int = 4) -> tuple:
    """Throughput: ViLA 8->K and SeViLA 32->K, eager, timed at batch 1, 2, 4, ... up to ``up_to``
    until a batch runs out of GPU memory. Returns (a ``Row`` per batch that fit, ``{row's model:
    the first batch that did not fit}``). A CPU swaps or is killed before it raises, so there
    ``up_to`` alone bounds the sweep."""
    device = torch.device(device_name)
    dtype_name = auto_dtype(device) if dtype_name == "auto" else dtype_name
    dtype = DTYPES[dtype_name]
    print(f"throughput: model type {model_type}, {device}, {dtype_name}, batch 1 to {up_to}; RANDOM weights", flush=True)
    models = build_models(model_type, device, dtype, empty=False, selected=selected)
    rows, too_big = [], {}
    for name, key, frames in (("vila", "vila_8", 8), ("sevila_baseline", "sevila_baseline", 32)):
        batch = 1
        while batch <= up_to:
            variant = Variant(Row(name, "efficient", frames, selected, batch, str(device), dtype_name), None)
            try:  # the clips are this row's alone: running out of memory for them is this batch not fitting
                variant.run = answering(models[key], random_clips(models[key], batch, frames, device, dtype), frames)
                time_variants([variant], repeats, warmup, device)
            except torch.OutOfMemoryError:
                variant.run = None  # frees the clips
                torch.cuda.empty_cache()
                too_big[name] = batch
                break
            rows.append(variant.row)
            batch *= 2
    return rows, too_big


def count_flops(variant_list: list) -> None:
    for variant in variant_list:
        if variant.row.mode == "official_style":
            print("note: official_style generates until an end token, which is data-dependent: "
                  "its FLOPs cannot be counted on the meta device")
            continue
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            variant.run()
        variant.row.flops = float(counter.get_total_flops())
        with torch.inference_mode():
            variant.row.aten_ops_per_video = count_aten_ops(variant.run) / variant.row.batch_size


def run(model_type: str, device_name: str, dtype_name: str, batch_size: int = 1, repeats: int = 3, warmup: int = 1,
        flops: bool = False, selected: int = 4, compile_modes: tuple = (), compiled_rows: tuple = COMPILED_ROWS,
        library_time: bool = False, save: Optional[Callable[[list], None]] = None) -> list:
    """Every variant's ``Row``: timed on ``device_name`` (``dtype_name`` ``auto``: see above) and
    counted, or with ``flops`` its FLOPs and aten ops counted on the meta device in fp32, with no
    weights and no timing (and no compiled rows: nothing compiles for the meta device)."""
    device = torch.device("meta" if flops else device_name)
    dtype_name = "fp32" if flops else (auto_dtype(device) if dtype_name == "auto" else dtype_name)
    dtype = DTYPES[dtype_name]
    compile_modes = () if flops else tuple(compile_modes)
    print(f"model type {model_type}, {'meta device (FLOPs only)' if flops else device}, {dtype_name}, "
          f"batch {batch_size}, compiled: {', '.join(compile_modes) or 'no'}; RANDOM weights (timing does not "
          f"depend on their values)", flush=True)
    models = build_models(model_type, device, dtype, empty=flops, selected=selected, compile_modes=compile_modes,
                          compiled_rows=compiled_rows)
    variant_list = variants(models, batch_size, device, dtype, dtype_name, compile_modes, compiled_rows)
    if flops:
        count_flops(variant_list)
    else:
        time_variants(variant_list, repeats, warmup, device)
        count_launch_costs(variant_list)
        if library_time:
            if save:  # the timed rows are kept before the profiler runs: CUPTI has crashed processes
                save([v.row for v in variant_list])
            measure_library_time(variant_list, device)
    return [v.row for v in variant_list]
