"""Backbone construction: architecture from a shipped config, weights from wherever the user says.

Every part has an architecture name (a JSON file in ``lavis_vila/configs/backbones``) and a weight
source, kept apart as open_clip keeps model configs apart from pretrained tags:

=========== =================== =============================================================
part        architecture key    weights / tokenizer key
=========== =================== =============================================================
ViT         ``vit_model``       ``vit_weights``: URL, local ``.pth``, or null (random init)
Q-Former    ``qformer_model``   ``qformer_tokenizer``: hub name, local dir, or ``tiny``
LLM (T5)    ``t5_model``        ``t5_model`` itself: hub name or local dir (config, weights,
                                tokenizer); ``tiny`` (shipped config and tokenizer, random init);
                                or a shipped T5 architecture such as ``flan_t5_xl`` (random init).
                                ``t5_tokenizer`` (default: from ``t5_model``) may name another.
=========== =================== =============================================================

The Q-Former's and projection's trained weights come from the model checkpoint
(``pretrained`` / ``finetuned``), as in LAVIS. With ``empty=True`` every module is built on the
meta device: nothing is read, downloaded or allocated.
"""
import contextlib
import json
import logging
import os
from functools import partial
from typing import Optional

import torch
from lavis.models.blip2_models.modeling_t5 import T5Config, T5ForConditionalGeneration
from lavis.models.blip2_models.Qformer import BertConfig, BertLMHeadModel
from lavis.models.eva_vit import VisionTransformer, interpolate_pos_embed
from torch import nn
from transformers import BertTokenizer, BertTokenizerFast, T5Tokenizer, T5TokenizerFast

from lavis_vila.checkpoints import load_state_dict_file

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs")
BACKBONE_DIR = os.path.join(CONFIG_DIR, "backbones")
TOKENIZER_DIR = os.path.join(CONFIG_DIR, "tokenizers")
TINY = "tiny"

# Hub names whose architecture ships with the package, so `empty=True` needs no network.
KNOWN_T5_ARCHITECTURES = {
    "google/flan-t5-xl": "flan_t5_xl",
    "google/flan-t5-xxl": "flan_t5_xxl",
    TINY: "t5_tiny",
}


def is_offline_source(source: str) -> bool:
    """``tiny``, a shipped architecture or a local path: usable without the network."""
    return source == TINY or is_shipped_architecture(source) or os.path.exists(os.path.expanduser(str(source)))


def is_shipped_architecture(name: str) -> bool:
    return os.path.isfile(os.path.join(BACKBONE_DIR, f"{name}.json"))


def load_architecture(name: str) -> dict:
    """Read ``configs/backbones/<name>.json``; list the shipped names when it is unknown."""
    path = os.path.join(BACKBONE_DIR, f"{name}.json")
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(BACKBONE_DIR) if f.endswith(".json"))
        raise ValueError(f"Unknown backbone architecture '{name}'. Shipped: {known}")
    with open(path) as f:
        arch = json.load(f)
    arch.pop("_comment", None)
    return arch


@contextlib.contextmanager
def meta_parameters():
    """Move every parameter to the meta device as it is registered.

    Unlike ``with torch.device("meta")`` this lets constructors run host-side code such as
    ``torch.linspace(...).item()`` (EVA's drop-path rule); only one parameter at a time is ever
    materialised, then dropped.
    """
    original = nn.Module.register_parameter

    def register_on_meta(module, name, param):
        if param is not None and not param.is_meta:  # meta already: a tied weight, keep it shared
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = original


@contextlib.contextmanager
def seeded(seed: Optional[int]):
    """Draw random init from ``seed`` without touching the global RNG (no-op for None)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def device_context(empty: bool):
    """Build with parameters on the meta device when `empty`: nothing is allocated."""
    return meta_parameters() if empty else contextlib.nullcontext()


# --------------------------------------------------------------------------- vision encoder


def build_vision_encoder(
    arch_name: str,
    weights: Optional[str],
    image_size: int,
    drop_path_rate: float = 0.0,
    use_grad_checkpoint: bool = False,
    empty: bool = False,
    random_init_seed: int = 0,
) -> VisionTransformer:
    """LAVIS's EVA ``VisionTransformer``; its output is (B, 1 + (image_size/patch)^2, width).

    Without ``weights`` the random init is drawn from ``random_init_seed``, so every process and
    every training stage gets the same frozen random ViT (checkpoints hold only trainable parts).
    """
    arch = load_architecture(arch_name)
    with device_context(empty), seeded(None if weights else random_init_seed):
        vit = VisionTransformer(
            img_size=image_size,
            use_mean_pooling=False,
            drop_path_rate=drop_path_rate,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            use_checkpoint=use_grad_checkpoint,
            **arch,
        )
    if weights and not empty:
        state_dict = load_state_dict_file(weights, "vit_weights")
        interpolate_pos_embed(vit, state_dict)
        result = vit.load_state_dict(state_dict, strict=False)
        if result.missing_keys:
            raise KeyError(f"vit_weights '{weights}' lacks ViT parameters: {result.missing_keys[:8]}")
        logging.info("ViT weights from %s (unused keys: %d)", weights, len(result.unexpected_keys))
    return vit


# --------------------------------------------------------------------------- Q-Former


def build_qformer_tokenizer(source: str) -> BertTokenizer:
    """BERT tokenizer with InstructBLIP's ``[DEC]`` bos token and left truncation."""
    if source == TINY:
        tokenizer = BertTokenizer(
            os.path.join(TOKENIZER_DIR, "tiny_bert", "vocab.txt"), truncation_side="left"
        )
    elif os.path.isdir(source) and not os.path.isfile(os.path.join(source, "vocab.txt")):
        # A folder saved by transformers 5 holds tokenizer.json only; the slow tokenizer needs vocab.txt.
        if not os.path.isfile(os.path.join(source, "tokenizer.json")):
            raise FileNotFoundError(f"qformer_tokenizer folder '{source}' holds neither vocab.txt nor tokenizer.json")
        tokenizer = BertTokenizerFast.from_pretrained(source, truncation_side="left")
    else:
        tokenizer = BertTokenizer.from_pretrained(source, truncation_side="left")
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    return tokenizer


def build_qformer(
    arch_name: str,
    num_query_token: int,
    vision_width: int,
    vocab_size: Optional[int],
    empty: bool = False,
    text_input: bool = True,
):
    """LAVIS's ``BertLMHeadModel`` with cross-attention to the frames, plus its query tokens.

    Its language-model head (``cls``) is removed, as BLIP-2 and InstructBLIP do: it is never used,
    and their checkpoints do not hold it. ``text_input=False`` also removes the text path, as
    SeViLA does (BLIP-2's Q-Former reads no instruction): the word and position embeddings and
    every layer's text feed-forward (``intermediate``, ``output``); the queries' own feed-forward
    (``intermediate_query``, ``output_query``) stays. Returns ``(qformer, query_tokens)`` with
    ``query_tokens`` of shape (1, num_query_token, hidden).
    """
    arch = load_architecture(arch_name)
    cross_attention_freq = arch.pop("cross_attention_freq")
    if vocab_size is not None:
        arch["vocab_size"] = vocab_size
    if arch["vocab_size"] is None:
        raise ValueError(f"Q-Former '{arch_name}' takes its vocab size from its tokenizer; pass one")
    config = BertConfig(
        **arch,
        encoder_width=vision_width,
        add_cross_attention=True,
        cross_attention_freq=cross_attention_freq,
        query_length=num_query_token,
    )
    with device_context(empty):
        qformer = BertLMHeadModel(config)
        qformer.cls = None
        if not text_input:
            qformer.bert.embeddings.word_embeddings = qformer.bert.embeddings.position_embeddings = None
            for layer in qformer.bert.encoder.layer:
                layer.intermediate = layer.output = None
        query_tokens = nn.Parameter(
            torch.empty(1, num_query_token, config.hidden_size, device="meta" if empty else None)
        )
    nn.init.normal_(query_tokens, mean=0.0, std=config.initializer_range)
    return qformer, query_tokens


# --------------------------------------------------------------------------- LLM


def build_t5_tokenizer(source: str):
    if is_shipped_architecture(source):
        raise ValueError(f"t5_model '{source}' is an architecture with random weights and no tokenizer; "
                         f"set model.t5_tokenizer (for example to 'tiny')")
    if source == TINY:
        # from_pretrained on the folder, not T5Tokenizer(path): transformers 5 reads a positional
        # path as a vocabulary list and builds a 4-token tokenizer.
        return T5Tokenizer.from_pretrained(os.path.join(TOKENIZER_DIR, "tiny_t5"), extra_ids=0, truncation_side="left")
    directory = os.path.expanduser(source)
    if os.path.isdir(directory):
        files = {name for name in ("tokenizer.json", "spiece.model") if os.path.isfile(os.path.join(directory, name))}
        if not files:
            # transformers 5 would build a tokenizer of its 4 special tokens from such a folder.
            raise FileNotFoundError(f"t5 tokenizer folder '{source}' holds neither tokenizer.json nor spiece.model")
        if "tokenizer.json" not in files:
            # No fast-tokenizer file (a slow tokenizer's save_pretrained): converting spiece.model
            # would need a protobuf that transformers 4.26's generated module rejects. The slow
            # tokenizer reads spiece.model itself and gives the same ids (tests/test_real_weights.py).
            return T5Tokenizer.from_pretrained(directory, truncation_side="left")
    return T5TokenizerFast.from_pretrained(source, truncation_side="left")


def t5_config(source: str, vocab_size: Optional[int] = None) -> T5Config:
    """The T5 config for a hub name, local dir, shipped architecture or ``tiny``, with LAVIS's
    ``gelu`` override."""
    if source in KNOWN_T5_ARCHITECTURES or is_shipped_architecture(source):
        arch = load_architecture(KNOWN_T5_ARCHITECTURES.get(source, source))
        if arch["vocab_size"] is None:  # from the tokenizer; transformers 5's config refuses None
            arch["vocab_size"] = vocab_size
        config = T5Config(**arch)
    else:
        config = T5Config.from_pretrained(source)
    config.dense_act_fn = "gelu"
    return config


class T5WithOwnHead(T5ForConditionalGeneration):
    """LAVIS's T5, whose ``from_pretrained`` reports a checkpoint without ``lm_head``. LAVIS's own
    ignores that absence (original T5 ties the head to the embeddings), and the head then keeps
    uninitialised memory (transformers 5) or a random init (4.26); Flan-T5 has a head of its own.
    The encoder's and decoder's ``embed_tokens`` are ``shared`` by construction and may be absent."""

    _keys_to_ignore_on_load_missing = [r"encoder.embed_tokens.weight", r"decoder.embed_tokens.weight"]


def build_llm(source: str, vocab_size: Optional[int] = None, empty: bool = False, random_init_seed: int = 0):
    """LAVIS's vendored ``T5ForConditionalGeneration``: random init for ``tiny`` and shipped
    architectures (drawn from ``random_init_seed``, the same in every process, like the ViT's)
    and for `empty`."""
    config = t5_config(source, vocab_size)
    if empty or source == TINY or is_shipped_architecture(source):
        with device_context(empty), seeded(random_init_seed):
            return T5ForConditionalGeneration(config)
    model, info = T5WithOwnHead.from_pretrained(source, config=config, output_loading_info=True)
    missing = sorted(info["missing_keys"])
    if missing:
        raise KeyError(f"t5_model '{source}' lacks {len(missing)} T5 weights, which would keep no trained value: "
                       f"{missing[:8]}")
    return model
