"""The bench's rows, their table and the ratios the README quotes; plain Python."""
import json
import os
from dataclasses import asdict, dataclass
from typing import Optional


@dataclass
class Row:
    model: str
    mode: str
    candidate_frames: int
    selected_frames: int
    batch_size: int
    device: str
    dtype: str
    flops: Optional[float] = None
    latency_ms_median: Optional[float] = None
    latency_ms_min: Optional[float] = None
    latency_ms_max: Optional[float] = None
    peak_mem_mb: Optional[float] = None
    weights: str = "random"
    compile: str = "eager"  # or the torch.compile mode of a compiled row
    videos_per_s: Optional[float] = None
    aten_ops_per_video: Optional[float] = None  # compiled rows: the ops outside the compiled graphs
    kernels_per_video: Optional[float] = None  # compiled rows: the graphs' kernels plus those ops
    graphs_per_video: Optional[float] = None
    host_syncs_per_video: Optional[float] = None
    graphs_compiled_while_counting: Optional[int] = None  # 0 once warm: no recompilation per call
    library_ms_per_video: Optional[float] = None  # --library-time: in matmul, attention, convolution calls
    tokenizer_ms_per_video: Optional[float] = None  # --library-time: in the tokenizers
    device_ms_per_video: Optional[float] = None  # --library-time on a GPU: in any kernel
    graph_ms_per_video: Optional[float] = None  # --library-time, compiled rows: host time inside the graphs
    graph_entry_ms_per_video: Optional[float] = None  # --library-time, compiled rows: entering them


def count(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def milliseconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3g}"


def format_table(rows: list) -> str:
    baseline = next((r for r in rows if r.model == "sevila_baseline" and r.compile == "eager"), None)
    # --library-time's columns, where the rows have them.
    extra = [(name, key) for name, key in (("library ms/video", "library_ms_per_video"),
                                           ("tokenizer ms/video", "tokenizer_ms_per_video"),
                                           ("device ms/video", "device_ms_per_video"),
                                           ("graph ms/video", "graph_ms_per_video"),
                                           ("graph entry ms/video", "graph_entry_ms_per_video"))
             if any(getattr(r, key) is not None for r in rows)]
    lines = ["| model | mode | compiled | frames | latency ms (median, min-max) | vs sevila_baseline | videos/s | GFLOPs "
             "| aten ops/video | kernels/video | host syncs/video |" + "".join(f" {name} |" for name, _ in extra),
             "|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(extra)]
    for r in rows:
        latency = (f"{r.latency_ms_median:.1f} ({r.latency_ms_min:.1f}-{r.latency_ms_max:.1f})"
                   if r.latency_ms_median is not None else "-")
        if baseline and r.latency_ms_median is not None:
            speedup = f"{baseline.latency_ms_median / r.latency_ms_median:.2f}x faster"
        elif baseline and r.flops:
            speedup = f"{baseline.flops / r.flops:.2f}x fewer FLOPs"
        else:
            speedup = "-"
        flops = "-" if not r.flops else f"{r.flops / 1e9:.1f}" if r.flops >= 1e8 else f"{r.flops / 1e9:.2g}"
        frames = f"{r.candidate_frames}->{r.selected_frames}" if r.candidate_frames != r.selected_frames else str(r.candidate_frames)
        videos = "-" if r.videos_per_s is None else f"{r.videos_per_s:.3g}"
        lines.append(f"| {r.model} | {r.mode} | {'no' if r.compile == 'eager' else r.compile} | {frames} | {latency} "
                     f"| {speedup} | {videos} | {flops} | {count(r.aten_ops_per_video)} | {count(r.kernels_per_video)} "
                     f"| {count(r.host_syncs_per_video)} |" + "".join(f" {milliseconds(getattr(r, key))} |" for _, key in extra))
    return "\n".join(lines)


def latency_floor_ms(row: Row) -> float:
    """A compiled row's ms a video that compiling cannot remove: on a CPU the host runs the library
    calls and the tokenizers one after the other, so their sum; on a GPU the library kernels run
    while the host tokenizes the next part, so the larger of the two."""
    if row.device.startswith("cuda"):
        return max(row.library_ms_per_video, row.tokenizer_ms_per_video)
    return row.library_ms_per_video + row.tokenizer_ms_per_video


def graph_floor_ms(row: Row) -> Optional[float]:
    """On a CPU, a compiled row's ms a video inside its graphs plus in the tokenizers: the graphs'
    time holds their arithmetic, so no build of these graphs goes below it. None on a GPU, where
    the graphs' host time is launching them, not their arithmetic."""
    if row.graph_ms_per_video is None or row.device.startswith("cuda"):
        return None
    return row.graph_ms_per_video + row.tokenizer_ms_per_video


def compiled_summary(rows: list, metric: str) -> list:
    """Per compiled row: eager / compiled latency, and its kernels a video against the eager row's aten ops."""
    lines = []
    for r in rows:
        if r.compile == "eager":
            continue
        eager = next(e for e in rows if (e.model, e.mode, e.candidate_frames, e.compile) ==
                     (r.model, r.mode, r.candidate_frames, "eager"))
        name = f"{r.model}({r.candidate_frames}->{r.selected_frames}) {r.mode}"
        if metric == "latency_ms_median":
            lines.append(f"  {name} eager / compiled {r.compile} = {eager.latency_ms_median / r.latency_ms_median:.2f}")
        if r.kernels_per_video is not None and eager.aten_ops_per_video:
            lines.append(f"  {name} compiled {r.compile}: {r.kernels_per_video:.0f} kernels a video in "
                         f"{r.graphs_per_video:.3g} graphs / {eager.aten_ops_per_video:.0f} eager aten ops = "
                         f"{r.kernels_per_video / eager.aten_ops_per_video:.3f}")
        if r.library_ms_per_video and metric == "latency_ms_median":
            lines.append(f"  {name} compiled {r.compile}: {r.library_ms_per_video:.3g} ms a video in library calls "
                         f"(matmul, attention, convolution) and {r.tokenizer_ms_per_video:.3g} in the tokenizers, "
                         f"so eager / compiled cannot pass {eager.latency_ms_median / latency_floor_ms(r):.2f}")
        if r.graph_ms_per_video is not None and metric == "latency_ms_median":
            inside = "inside" if graph_floor_ms(r) is not None else "launching"
            line = (f"  {name} compiled {r.compile}: {r.graph_ms_per_video:.3g} ms a video {inside} its graphs, "
                    f"{r.graph_entry_ms_per_video:.3g} entering them (guards, parameters as inputs)")
            if graph_floor_ms(r) is not None:
                line += (f"; with the tokenizers, these graphs cannot pass eager / compiled "
                         f"{eager.latency_ms_median / graph_floor_ms(r):.2f}")
            lines.append(line)
    return lines


def summary(rows: list) -> str:
    """The acceptance ratios: speed-ups, distance from the unavoidable cost, official-style cost."""
    find = lambda model, mode, t: next(r for r in rows if (r.model, r.mode, r.candidate_frames, r.compile) ==  # noqa: E731
                                       (model, mode, t, "eager"))
    metric = "latency_ms_median" if rows[0].latency_ms_median is not None else "flops"
    value = lambda r: getattr(r, metric)  # noqa: E731
    sevila, vila8, vila32 = find("sevila_baseline", "efficient", 32), find("vila", "efficient", 8), find("vila", "efficient", 32)
    k = vila8.selected_frames
    parts = value(find("component:vit", "efficient", 8)) + value(find("component:llm", "efficient", k))
    return "\n".join([
        f"by {metric}:",
        f"  sevila_baseline(32->{k}) / vila(8->{k})  = {value(sevila) / value(vila8):.2f}",
        f"  sevila_baseline(32->{k}) / vila(32->{k}) = {value(sevila) / value(vila32):.2f}",
        f"  vila(8->{k}) / (ViT on 8 frames + LLM encoder pass and decoder step) = {value(vila8) / parts:.3f}",
    ] + ([f"  vila(8->{k}) official_style / efficient = {value(official) / value(vila8):.2f}"]
         if value(official := find("vila", "official_style", 8)) else [])
      + [f"  vila(32->{k}) {r.mode} / vila(32->{k}) = {value(r) / value(vila32):.2f}; "
         f"sevila_baseline(32->{k}) / vila(8->{k}) {r.mode} = {value(sevila) / value(find('vila', r.mode, 8)):.2f}"
         for r in rows if r.mode.startswith("prompter_layer") and r.candidate_frames == 32]
      + compiled_summary(rows, metric))


def format_throughput(rows: list, too_big: dict, up_to: int) -> str:
    """The batch sweep's table, then per model the largest batch that fit and its videos/s."""
    lines = ["| model | frames | batch | latency ms (median, min-max) | videos/s | peak mem MB |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.model} | {r.candidate_frames}->{r.selected_frames} | {r.batch_size} | {r.latency_ms_median:.1f} "
              f"({r.latency_ms_min:.1f}-{r.latency_ms_max:.1f}) | {r.videos_per_s:.3g} | {r.peak_mem_mb:.0f} |" for r in rows]
    lines.append("largest batch that fit:")
    for model in dict.fromkeys([*(r.model for r in rows), *too_big]):
        limit = (f"batch {too_big[model]} ran out of memory" if model in too_big
                 else f"none of batch 1 to {up_to} ran out of memory")
        fitted = [r for r in rows if r.model == model]
        if not fitted:
            lines.append(f"  {model}: none ({limit})")
            continue
        largest = max(fitted, key=lambda r: r.batch_size)
        lines.append(f"  {model}({largest.candidate_frames}->{largest.selected_frames}): batch {largest.batch_size}, "
                     f"{largest.videos_per_s:.3g} videos/s ({limit})")
    return "\n".join(lines)


def write_json(rows: list, path: str) -> None:
    """The rows as a JSON list of objects, the folder made if need be."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump([asdict(r) for r in rows], f, indent=2)
