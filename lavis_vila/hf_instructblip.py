"""InstructBLIP weights in the Hugging Face Hub's layout, rewritten into the sources our models read.

The Hub's InstructBLIP checkpoints (``Salesforce/instructblip-flan-t5-xl`` and ``-xxl``, the
layout of transformers' ``InstructBlipForConditionalGeneration`` and ``InstructBlipVideo``) hold
one model in safetensors under HF names. Our models (``vila``, ``vila_uniform``, ``vila_lora``,
``sevila_baseline``) read each part from its own source (``lavis_vila.models.backbones``), so one
HF folder becomes four, each written by ``convert``:

=================================== ================================ ===================
HF names                            written as (LAVIS names)         model config key
=================================== ================================ ===================
``vision_model.*`` but its final    ``eva_vit.safetensors``          ``vit_weights``
LayerNorm                           (``blocks.*``, ``pos_embed``...)
``vision_model.post_layernorm``,    ``instructblip.safetensors``     ``pretrained``
``qformer.*``, ``query_tokens``,    (``ln_vision``, ``Qformer.bert.*``,
``language_projection``             ``query_tokens``, ``t5_proj``)
``language_model.*``                ``t5/``: a T5 folder (config,    ``t5_model``
                                    weights, tokenizer)
``qformer_tokenizer/``              ``qformer_tokenizer/``           ``qformer_tokenizer``
=================================== ================================ ===================

Two rewrites are not renames. HF's fused ``qkv.bias`` of each ViT block is LAVIS's ``q_bias``
and ``v_bias``; its key third is dropped, which changes nothing (a bias on every key shifts all of
a query's attention logits equally, and softmax ignores the shift). The Q-Former's
``position_ids`` (0, 1, 2, ...) are written when the HF file leaves that buffer out, and T5's
``lm_head`` is written as a copy of its input embeddings when the HF file ties the two and holds
no ``lm_head`` (Flan-T5's own files hold one).

LAVIS runs T5's feed-forward with exact GELU (``backbones.t5_config``), as InstructBLIP was
trained; transformers' InstructBLIP runs Flan-T5's ``gelu_new``. The converted model follows LAVIS.
"""
import json
import os
import re
import shutil

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lavis_vila.checkpoints import CheckpointError

VIT_FILE, PRETRAINED_FILE, T5_DIR, QFORMER_TOKENIZER_DIR = (
    "eva_vit.safetensors", "instructblip.safetensors", "t5", "qformer_tokenizer")
OVERRIDES_FILE = "model_overrides.yaml"
T5_TOKENIZER_FILES = ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                      "added_tokens.json")

# (HF pattern, LAVIS replacement), tried in order; the first that matches renames the key.
VIT_RENAMES = [
    (r"vision_model\.embeddings\.class_embedding$", "cls_token"),
    (r"vision_model\.embeddings\.position_embedding$", "pos_embed"),
    (r"vision_model\.embeddings\.patch_embedding\.", "patch_embed.proj."),
    (r"vision_model\.encoder\.layers\.(\d+)\.layer_norm1\.", r"blocks.\1.norm1."),
    (r"vision_model\.encoder\.layers\.(\d+)\.layer_norm2\.", r"blocks.\1.norm2."),
    (r"vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.weight$", r"blocks.\1.attn.qkv.weight"),
    (r"vision_model\.encoder\.layers\.(\d+)\.self_attn\.(q_bias|v_bias)$", r"blocks.\1.attn.\2"),
    (r"vision_model\.encoder\.layers\.(\d+)\.self_attn\.projection\.", r"blocks.\1.attn.proj."),
    (r"vision_model\.encoder\.layers\.(\d+)\.mlp\.", r"blocks.\1.mlp."),
]
FUSED_QKV_BIAS = re.compile(r"vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.bias$")
PRETRAINED_RENAMES = [
    (r"vision_model\.post_layernorm\.", "ln_vision."),
    (r"qformer\.embeddings\.layernorm\.", "Qformer.bert.embeddings.LayerNorm."),
    (r"qformer\.encoder\.layer\.(\d+)\.(attention|crossattention)\.attention\.", r"Qformer.bert.encoder.layer.\1.\2.self."),
    (r"qformer\.", "Qformer.bert."),
    (r"query_tokens$", "query_tokens"),
    (r"language_projection\.", "t5_proj."),
]
LANGUAGE_MODEL = "language_model."


def rename(key: str, renames) -> str:
    for pattern, replacement in renames:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key, count=1)
    return None


def split_fused_qkv_bias(layer: str, bias: torch.Tensor) -> dict:
    """HF's (3C,) ``qkv.bias`` -> LAVIS's ``q_bias`` and ``v_bias`` (C,) each; the key third is dropped."""
    q_bias, _, v_bias = bias.chunk(3)
    return {f"blocks.{layer}.attn.q_bias": q_bias.clone(), f"blocks.{layer}.attn.v_bias": v_bias.clone()}


def vit_and_pretrained(tensors: dict) -> tuple:
    """HF ``vision_model.*``, ``qformer.*``, ``query_tokens`` and ``language_projection.*`` tensors ->
    (ViT state dict, pretrained state dict) under LAVIS names. Unknown names are an error."""
    vit, pretrained, unknown = {}, {}, []
    for key, tensor in tensors.items():
        fused = FUSED_QKV_BIAS.match(key)
        if fused:
            vit.update(split_fused_qkv_bias(fused.group(1), tensor))
        elif rename(key, VIT_RENAMES):
            vit[rename(key, VIT_RENAMES)] = tensor
        elif rename(key, PRETRAINED_RENAMES):
            pretrained[rename(key, PRETRAINED_RENAMES)] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{len(unknown)} tensors of no InstructBLIP part this converter knows: {unknown[:8]}")
    return vit, pretrained


def add_position_ids(pretrained: dict, qformer_config: dict) -> dict:
    key = "Qformer.bert.embeddings.position_ids"
    if key not in pretrained:
        pretrained[key] = torch.arange(qformer_config["max_position_embeddings"]).expand(1, -1).clone()
    return pretrained


# --------------------------------------------------------------------------- reading the HF folder


def read_config(hf_dir: str) -> dict:
    path = os.path.join(hf_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"'{hf_dir}' holds no config.json: is it a Hugging Face InstructBLIP folder?")
    with open(path) as f:
        config = json.load(f)
    missing = [key for key in ("vision_config", "qformer_config", "text_config") if key not in config]
    if missing:
        raise CheckpointError(f"{path} has no {missing}: it is not an InstructBLIP config")
    if config["text_config"].get("model_type") != "t5":
        raise CheckpointError(f"{path}: the language model is {config['text_config'].get('model_type')!r}; this project "
                              f"runs InstructBLIP with Flan-T5 only")
    return config


def weight_files(hf_dir: str) -> list:
    """The folder's safetensors files: those its index names, or the single ``model.safetensors``."""
    index = os.path.join(hf_dir, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index) as f:
            return sorted({os.path.join(hf_dir, name) for name in json.load(f)["weight_map"].values()})
    single = os.path.join(hf_dir, "model.safetensors")
    if os.path.isfile(single):
        return [single]
    raise FileNotFoundError(f"'{hf_dir}' holds neither model.safetensors nor model.safetensors.index.json (only the "
                            f"Hub's safetensors layout is read)")


# --------------------------------------------------------------------------- writing


def names(path: str) -> set:
    with safe_open(path, framework="pt") as f:
        return set(f.keys())


def write_t5(hf_dir: str, config: dict, files: list, out_dir: str, on_shard=print) -> None:
    """The language model as a T5 folder: one output shard per input shard, so memory holds one at a time."""
    t5_dir = os.path.join(out_dir, T5_DIR)
    os.makedirs(t5_dir, exist_ok=True)
    text_config = {**config["text_config"], "architectures": ["T5ForConditionalGeneration"]}
    with open(os.path.join(t5_dir, "config.json"), "w") as f:
        json.dump(text_config, f, indent=2)
    weight_map = {}
    shards = [f"model-{i + 1:05d}-of-{len(files):05d}.safetensors" for i in range(len(files))]
    untied_head = any(LANGUAGE_MODEL + "lm_head.weight" in names(path) for path in files)
    for path, shard in zip(files, shards):
        with safe_open(path, framework="pt") as f:
            tensors = {k[len(LANGUAGE_MODEL):]: f.get_tensor(k) for k in f.keys() if k.startswith(LANGUAGE_MODEL)}
        if not untied_head and "shared.weight" in tensors:
            # An HF file without lm_head ties it to the input embeddings; LAVIS's T5 keeps its own lm_head.
            tensors["lm_head.weight"] = tensors["shared.weight"].clone()
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(t5_dir, shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, shard))
        on_shard(f"t5: {len(tensors)} tensors from {os.path.basename(path)}")
    if not weight_map:
        raise CheckpointError(f"'{hf_dir}' holds no {LANGUAGE_MODEL}* tensors")
    with open(os.path.join(t5_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)
    for name in T5_TOKENIZER_FILES:
        if os.path.isfile(os.path.join(hf_dir, name)):
            shutil.copy(os.path.join(hf_dir, name), t5_dir)


def copy_qformer_tokenizer(hf_dir: str, out_dir: str) -> bool:
    source = os.path.join(hf_dir, QFORMER_TOKENIZER_DIR)
    if not os.path.isdir(source):
        return False
    shutil.copytree(source, os.path.join(out_dir, QFORMER_TOKENIZER_DIR), dirs_exist_ok=True)
    return True


def overrides(out_dir: str, config: dict, has_qformer_tokenizer: bool) -> dict:
    """The model config keys that read the converted folder."""
    out_dir = os.path.abspath(out_dir)
    return {
        "vit_weights": os.path.join(out_dir, VIT_FILE),
        "image_size": config["vision_config"].get("image_size", 224),
        "num_query_token": config.get("num_query_tokens", 32),
        "pretrained": os.path.join(out_dir, PRETRAINED_FILE),
        "t5_model": os.path.join(out_dir, T5_DIR),
        **({"qformer_tokenizer": os.path.join(out_dir, QFORMER_TOKENIZER_DIR)} if has_qformer_tokenizer else {}),
    }


def convert(hf_dir: str, out_dir: str, log=print) -> dict:
    """Convert an HF InstructBLIP (Flan-T5) folder into ``out_dir``; returns the model config keys to set."""
    config = read_config(hf_dir)
    files = weight_files(hf_dir)
    os.makedirs(out_dir, exist_ok=True)
    parts = {}
    for path in files:  # the ViT and the small parts; the language model is streamed by write_t5
        with safe_open(path, framework="pt") as f:
            parts.update({k: f.get_tensor(k) for k in f.keys() if not k.startswith(LANGUAGE_MODEL)})
    vit, pretrained = vit_and_pretrained(parts)
    del parts
    add_position_ids(pretrained, config["qformer_config"])
    for name, tensors in ((VIT_FILE, vit), (PRETRAINED_FILE, pretrained)):
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, name),
                  metadata={"format": "pt", "converted_from": json.dumps(os.path.abspath(hf_dir))})
        log(f"{name}: {len(tensors)} tensors")
    write_t5(hf_dir, config, files, out_dir, log)
    keys = overrides(out_dir, config, copy_qformer_tokenizer(hf_dir, out_dir))
    with open(os.path.join(out_dir, OVERRIDES_FILE), "w") as f:
        f.write("# model config keys that read this folder (lavis_vila.tools.convert_hf_instructblip)\nmodel:\n")
        f.writelines(f"  {key}: {value}\n" for key, value in keys.items())
    return keys
