"""The compiled inference path: ``torch.compile`` (inductor) of a model's tensor work at inference.

One key switches it, ``model.compile`` (``--compile`` on ``tools.bench``, ``tools.explain`` and
``tools.app``): ``false`` (default, eager), ``default`` (inductor) or ``reduce-overhead``
(inductor with CUDA graphs on a GPU; the same as ``default`` on a CPU). It stays off by default
until it has run on a GPU.

What is compiled, each a graph of its own, the Python between them (tokenizing, the stage
timers, a LayerNorm, a gather, a concatenation) left eager:

- ``vit_blocks``: the ViT, from pixels to a block (and on from that block for ``prompter_layer``);
- the Frame-Prompter's ``forward``, where the model has one;
- ``_batched_frame_tokens``: a Q-Former and its projection over the frames (the answerer's, and
  the localizer's for ``sevila_baseline``);
- the LLM's one encoder pass and decoder step (``BatchedInference.next_token_logits``);
  ``official_style``'s ``generate`` stays eager.

Each part runs compiled only at inference, the model in eval mode without gradient
(``predict_answers``, ``inference.answer``, the bench). Training runs the same parts eagerly, so it
works compiled or not; compiling it is left out: it needs the backward compiled too, the Gumbel
temperature changes every step (a recompilation each time, or a tensor temperature in every
prompter), and a training step is long enough that launch overhead matters little.

Static shapes: the model's two tokenizers pad to a length bucket, the next power of two from 16
(``bucket_length``), so a graph sees a handful of prompt lengths, not one per question; the
prompters' choice is K indices gathered into a fixed (B, K, N, C). Graphs compile with
``dynamic=False``: one graph per bucket and batch size, which CUDA graphs need.
``CompileStats`` counts the graphs compiled and the kernels each call launches, and the host
time of the compiled parts: inside their graphs, and entering them (dynamo's guards, gathering
every parameter as a graph input), which no graph removes.
"""
import copy
import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import torch
from transformers import BatchEncoding

from lavis_vila.models.inference_styles import BatchedInference

MODES = ("default", "reduce-overhead")
FIRST_BUCKET = 16
# One cache entry per graph shape and model instance: a bench holds a dozen models and two batch sizes.
RECOMPILE_LIMIT = 64
# Calls that inductor leaves to a library kernel (BLAS, oneDNN, cuBLAS) rather than generating one.
LIBRARY_CALLS = {torch.nn.functional.linear, torch.matmul, torch.bmm, torch.mm, torch.addmm, torch.baddbmm,
                 torch.einsum, torch.nn.functional.conv2d, torch.nn.functional.scaled_dot_product_attention,
                 torch._C._nn.linear, torch.conv2d, "matmul", "bmm", "mm"}


def compile_mode(value) -> Optional[str]:
    """``model.compile``'s value: None (off: false, null, "false", "off") or an inductor mode."""
    if value in (None, False, "false", "off", "none"):
        return None
    if value is True:
        return "default"
    if value not in MODES:
        raise ValueError(f"model.compile must be false, {' or '.join(MODES)}, got {value!r}")
    return value


def bucket_length(length: int) -> int:
    """The padded length of a prompt of ``length`` tokens: the next power of two from 16."""
    bucket = FIRST_BUCKET
    while bucket < length:
        bucket *= 2
    return bucket


def runs_inference(model: torch.nn.Module) -> bool:
    """Whether ``model`` runs inference: in eval mode, no gradient recorded (the compiled path's gate)."""
    return not model.training and not torch.is_grad_enabled()


class BucketPadding:
    """A tokenizer whose ``padding="longest"`` batches are padded on to ``bucket_length`` at
    inference (``owner`` in eval mode, no gradient recorded), when the compiled graphs read them;
    every other call and attribute is the tokenizer's own. Pad positions are masked, so the model's
    outputs at the real positions do not change."""

    def __init__(self, tokenizer, owner: torch.nn.Module, name: str = "prompt"):
        self.tokenizer = tokenizer
        self.owner = owner
        self.name = name  # in ``STATS.prompt_buckets``

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __len__(self):
        return len(self.tokenizer)

    def __call__(self, *args, **kwargs):
        encoding = self.tokenizer(*args, **kwargs)
        if kwargs.get("padding") != "longest" or kwargs.get("return_tensors") != "pt" or not runs_inference(self.owner):
            return encoding
        length = encoding["input_ids"].shape[1]
        STATS.prompt_buckets.setdefault(self.name, set()).add(bucket_length(length))
        extra = bucket_length(length) - length
        pads = {"input_ids": self.tokenizer.pad_token_id}
        side = (0, extra) if self.tokenizer.padding_side == "right" else (extra, 0)
        return BatchEncoding({key: torch.nn.functional.pad(value, side, value=pads.get(key, 0))
                              for key, value in encoding.items()})


@dataclass
class CompileStats:
    """Graphs compiled so far, and per graph call the kernels it launches: the fused kernels
    inductor generated for it plus the library calls it makes (matmuls, convolutions); the
    prompt-length buckets each tokenizer has padded to, by its name; the host seconds spent in
    compiled parts (``part_seconds``: from the call to its return) and, of those, inside their
    graphs (``graph_seconds``; on a GPU, launching their kernels or replaying their CUDA graphs)."""

    graphs_compiled: int = 0
    graph_calls: int = 0
    kernel_launches: int = 0
    kernels_per_graph: list = field(default_factory=list)
    prompt_buckets: dict = field(default_factory=dict)
    part_seconds: float = 0.0
    graph_seconds: float = 0.0


STATS = CompileStats()


def count_library_calls(graph: torch.fx.GraphModule) -> int:
    return sum(node.op in ("call_function", "call_method") and node.target in LIBRARY_CALLS for node in graph.graph.nodes)


def counting_inductor(mode: str) -> Callable:
    """A dynamo backend: inductor in ``mode``, recording every graph it compiles and call it serves in ``STATS``."""
    from torch._inductor import list_mode_options, metrics
    from torch._inductor.compile_fx import compile_fx

    options = list_mode_options(mode)

    def backend(graph: torch.fx.GraphModule, example_inputs):
        generated_before = metrics.generated_kernel_count
        compiled = compile_fx(graph, example_inputs, config_patches=options)
        kernels = metrics.generated_kernel_count - generated_before + count_library_calls(graph)
        STATS.graphs_compiled += 1
        STATS.kernels_per_graph.append(kernels)

        def run(*args):
            STATS.graph_calls += 1
            STATS.kernel_launches += kernels
            start = time.perf_counter()
            try:
                return compiled(*args)
            finally:
                STATS.graph_seconds += time.perf_counter() - start

        run._boxed_call = getattr(compiled, "_boxed_call", False)
        return run

    return backend


_inside_compiled_part: ContextVar[bool] = ContextVar("inside_compiled_part", default=False)


def inside_compiled_part() -> bool:
    """True while a compiled part runs: an op counter skips its ops, which its kernels replace."""
    return _inside_compiled_part.get()


@contextmanager
def _marked_compiled() -> Iterator[None]:
    token = _inside_compiled_part.set(True)
    try:
        yield
    finally:
        _inside_compiled_part.reset(token)


class InferenceOnly:
    """``function`` compiled, called compiled at inference (``owner`` in eval mode, no gradient
    recorded), else as it is."""

    def __init__(self, function: Callable, mode: str, owner: torch.nn.Module):
        self.eager = function
        self.owner = owner
        self.compiled = torch.compile(function, backend=counting_inductor(mode), dynamic=False)

    def __call__(self, *args, **kwargs):
        if not runs_inference(self.owner):
            return self.eager(*args, **kwargs)
        start = time.perf_counter()
        try:
            with _marked_compiled():
                return self.compiled(*args, **kwargs)
        finally:
            STATS.part_seconds += time.perf_counter() - start


@contextmanager
def reporting_compilation(model, what: str) -> Iterator[None]:
    """Log, after the block, the graphs ``model`` compiled in it and the prompt-length buckets each
    tokenizer padded to in it, when it is compiled: a real evaluation's prompt lengths decide how
    many graphs it compiles (at most one per part, bucket and batch size; past ``RECOMPILE_LIMIT``
    versions of a part, dynamo runs it eagerly)."""
    mode = getattr(model, "compiled_mode", None)
    graphs = STATS.graphs_compiled
    STATS.prompt_buckets.clear()
    yield
    if mode is not None:
        buckets = ", ".join(f"{name} {sorted(lengths)}" for name, lengths in STATS.prompt_buckets.items())
        logging.info("compiled inference (%s): %d graphs compiled during this %s; prompts padded to %s tokens",
                     mode, STATS.graphs_compiled - graphs, what, buckets or "no")


def compile_inference(model, mode):
    """``model`` with its inference compiled in ``mode`` (``compile_mode``'s values); None or
    false leaves it as it is. The weights, ``state_dict`` and training are untouched."""
    mode = compile_mode(mode)
    if mode is None or getattr(model, "compiled_mode", None) is not None:
        return model
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    model.qformer_tokenizer = BucketPadding(model.qformer_tokenizer, model, "Q-Former")
    model.t5_tokenizer = BucketPadding(model.t5_tokenizer, model, "T5")
    model.vit_blocks = InferenceOnly(model.vit_blocks, mode, model)
    model._batched_frame_tokens = InferenceOnly(model._batched_frame_tokens, mode, model)
    if hasattr(model, "frame_prompter"):
        model.frame_prompter.forward = InferenceOnly(model.frame_prompter.forward, mode, model)
    if isinstance(model.inference, BatchedInference):
        model.inference = copy.copy(model.inference)  # its own: another model may share the original
        model.inference.next_token_logits = InferenceOnly(model.inference.next_token_logits, mode, model)
    model.compiled_mode = mode
    return model


def compiled_twin(model, mode: str):
    """A shallow copy of ``model`` whose inference is compiled, sharing every weight with it; the
    original stays eager (the bench times both)."""
    twin = copy.copy(model)
    twin._modules = dict(model._modules)  # a module set on the twin is not set on the original
    if hasattr(model, "frame_prompter"):
        twin.frame_prompter = copy.copy(model.frame_prompter)  # its own forward, the same parameters
    return compile_inference(twin, mode)
