"""What stock LAVIS 1.0.2 needs from transformers that transformers 4.27 and later took away.

LAVIS 1.0.2 was written against transformers 4.26 and pins ``transformers<4.27``. On a current
stack (LAVIS installed without its dependencies, transformers 4.57 or 5.x) ``import lavis`` fails,
and once it imports, transformers 5 changes what some of LAVIS's calls do, silently. The autoload hook
(``lavis_vila_autoload``) calls ``before_lavis()`` just before LAVIS's own ``__init__`` runs and
``after_lavis()`` just after; LAVIS's files stay unchanged on disk. Each shim checks first and
changes nothing where transformers still has what LAVIS expects, so on the pinned stack
(transformers 4.26) both calls are no-ops (``tests/test_lavis_compat.py``).

Before LAVIS imports (names it imports that moved or went):

=========================================================== ==========================================
``transformers.modeling_utils.apply_chunking_to_forward``   from ``transformers.pytorch_utils`` (4.27)
``transformers.modeling_utils.prune_linear_layer``          from ``transformers.pytorch_utils`` (4.27)
``...modeling_utils/pytorch_utils.find_pruneable_heads_and_indices``  removed (5.0); ours, below
``transformers.utils.model_parallel_utils``                 removed (5.0); ours, below (LAVIS's T5
                                                            ``parallelize()`` only)
=========================================================== ==========================================

After LAVIS imports (its vendored T5 and BERTs):

- ``generate``: from 4.50 ``PreTrainedModel`` no longer inherits ``GenerationMixin``, so LAVIS's
  T5 loses ``generate``; ``GenerationMixin`` is added to its bases. Its own
  ``prepare_inputs_for_generation`` and ``_reorder_cache`` keep reading the legacy tuple cache,
  which ``generate`` hands it when the model declares no cache class.
- ``invert_attention_mask``, ``get_extended_attention_mask``, ``get_head_mask``: removed from
  ``PreTrainedModel`` in transformers 5; ours, below, with 4.26's arithmetic.
- ``init_weights``: LAVIS's BERT, Q-Former and T5 call ``init_weights()`` in their constructors;
  transformers 4.5x and 5 run their ``_init_weights`` rule on some modules only, so most weights
  kept PyTorch's defaults. They get 4.26's meaning back (the seeded init is then identical).
- shared embeddings: transformers 5 saves with safetensors and must be told which parameters are
  one tensor (LAVIS's T5 shares ``shared`` with both stacks' ``embed_tokens``).
- ``tie_word_embeddings``: transformers 5's ``T5Config`` forces it to True, which LAVIS's T5 reads as
  "scale the logits by 1/sqrt(d_model)"; it gets the value saved with the weights (False for Flan-T5).
"""
import sys
import types

_applied = []  # the names of the shims applied in this process (``applied()``)


def before_lavis() -> None:
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils

    for name in ("apply_chunking_to_forward", "prune_linear_layer"):
        if not hasattr(modeling_utils, name):
            setattr(modeling_utils, name, getattr(pytorch_utils, name))
            _applied.append(f"transformers.modeling_utils.{name}")
    for module in (pytorch_utils, modeling_utils):
        if not hasattr(module, "find_pruneable_heads_and_indices"):
            module.find_pruneable_heads_and_indices = find_pruneable_heads_and_indices
            _applied.append(f"{module.__name__}.find_pruneable_heads_and_indices")
    try:
        import transformers.utils.model_parallel_utils  # noqa: F401
    except ModuleNotFoundError:
        module = types.ModuleType("transformers.utils.model_parallel_utils")
        module.assert_device_map, module.get_device_map = assert_device_map, get_device_map
        sys.modules[module.__name__] = module
        import transformers.utils

        transformers.utils.model_parallel_utils = module
        _applied.append(module.__name__)


def after_lavis() -> None:
    from lavis.models import med
    from lavis.models.blip2_models import Qformer, modeling_t5
    from transformers import GenerationMixin, PreTrainedModel

    lavis_bases = (modeling_t5.T5PreTrainedModel, Qformer.BertPreTrainedModel, med.BertPreTrainedModel)
    t5 = modeling_t5.T5ForConditionalGeneration
    if not hasattr(t5, "generate"):
        t5.__bases__ = (*t5.__bases__, GenerationMixin)
        _applied.append("GenerationMixin for lavis...modeling_t5.T5ForConditionalGeneration")
    if hasattr(PreTrainedModel, "initialize_weights"):
        for base in lavis_bases:
            if "init_weights" not in vars(base):
                base.init_weights = _init_weights_as_lavis_expects
                _applied.append(f"init_weights of {base.__module__}.{base.__qualname__}")
    if not hasattr(PreTrainedModel, "invert_attention_mask"):
        for base in lavis_bases:
            base.__bases__ = (*base.__bases__, AttentionMaskHelpers)
            _applied.append(f"attention-mask helpers for {base.__module__}.{base.__qualname__}")
    if hasattr(PreTrainedModel, "get_expanded_tied_weights_keys"):  # transformers 5
        for model in (modeling_t5.T5ForConditionalGeneration, modeling_t5.T5Model, modeling_t5.T5EncoderModel):
            if "_tied_weights_keys" not in vars(model):
                model._tied_weights_keys = _t5_shared_embeddings(model)
                _applied.append(f"shared-embedding keys for lavis...modeling_t5.{model.__name__}")
    if "tie_word_embeddings" in _t5_config_forced_fields():
        base = modeling_t5.T5PreTrainedModel
        if "__init__" not in vars(base):
            base.__init__ = _t5_init_reading_the_saved_tie_flag
            _applied.append("tie_word_embeddings as saved, for lavis...modeling_t5")


def applied() -> list:
    """The shims applied in this process (empty on the pinned stack)."""
    return list(_applied)


def _init_weights_as_lavis_expects(self):
    """What LAVIS's constructors meant by ``self.init_weights()`` (transformers 4.26): ``_init_weights``
    on every module, then tie. transformers 4.5x/5 run ``_init_weights`` on the leaves only and, for
    code outside transformers, skip modules without parameters of their own (LAVIS's
    ``T5Attention``, whose rule initialises q, k, v and o), so those kept PyTorch's defaults. Here
    every module gets LAVIS's rule, in 4.26's order, then ``post_init()`` does this version's
    bookkeeping and tying with nothing left to initialise."""
    import torch
    from transformers import PreTrainedModel

    if self.__dict__.get("_lavis_compat_in_post_init"):
        if not any(p.is_meta for p in self.parameters()):
            with torch.no_grad():
                self.apply(self._init_weights)
        for module in self.modules():
            module._is_hf_initialized = True
        return PreTrainedModel.init_weights(self)
    self.__dict__["_lavis_compat_in_post_init"] = True
    try:
        self.post_init()  # ends with self.init_weights(), the branch above
    finally:
        del self.__dict__["_lavis_compat_in_post_init"]


def _t5_shared_embeddings(model_class) -> dict:
    """The parameters LAVIS's T5 shares by construction: both stacks' ``embed_tokens`` are ``shared``.
    transformers 5 saves with safetensors, which stores each tensor once, and reads which names are
    one tensor from ``_tied_weights_keys``; ``lm_head`` stays separate (Flan-T5 does not tie it)."""
    stacks = ("encoder", "decoder") if model_class.__name__ != "T5EncoderModel" else ("encoder",)
    return {f"{stack}.embed_tokens.weight": "shared.weight" for stack in stacks}


def _t5_config_forced_fields() -> set:
    """transformers 5's ``T5Config`` sets ``tie_word_embeddings=True`` whatever the file says and keeps
    the saved value as ``scale_decoder_outputs``; 4.x keeps it as saved."""
    from transformers import T5Config

    config = T5Config(tie_word_embeddings=False)
    return {"tie_word_embeddings"} if config.tie_word_embeddings else set()


def _t5_init_reading_the_saved_tie_flag(self, config, *args, **kwargs):
    """LAVIS's T5 reads ``tie_word_embeddings`` to decide whether to scale the logits by
    1/sqrt(d_model) and how to initialise ``lm_head``: give it the value saved with the weights
    (False for Flan-T5), which transformers 5 keeps as ``scale_decoder_outputs``."""
    from transformers import PreTrainedModel

    saved = getattr(config, "scale_decoder_outputs", None)
    if saved is not None:
        config.tie_word_embeddings = saved
    PreTrainedModel.__init__(self, config, *args, **kwargs)


# ------------------------------------------------------------------ our own versions of removed helpers


class AttentionMaskHelpers:
    """The mask helpers LAVIS's models call on themselves, as transformers 4.26 computed them:
    additive masks of 0 (attend) and the dtype's minimum (do not)."""

    def invert_attention_mask(self, encoder_attention_mask):
        """(B, S) or (B, S, S) 1/0 mask -> (B, 1, 1|S, S) additive mask."""
        mask = encoder_attention_mask[:, None] if encoder_attention_mask.dim() == 3 else \
            encoder_attention_mask[:, None, None, :]
        mask = mask.to(dtype=self.dtype)
        return (1.0 - mask) * _finfo_min(self.dtype)

    def get_extended_attention_mask(self, attention_mask, input_shape, device=None, dtype=None):
        """(B, S) or (B, S, S) -> (B, 1, 1|S, S) additive; causal when the config is a decoder's."""
        import torch

        dtype = self.dtype if dtype is None else dtype
        if attention_mask.dim() == 3:
            mask = attention_mask[:, None]
        elif attention_mask.dim() == 2 and self.config.is_decoder:
            batch_size, length = input_shape
            positions = torch.arange(length, device=attention_mask.device)
            causal = (positions[None, None, :] <= positions[None, :, None]).expand(batch_size, -1, -1)
            causal = causal.to(attention_mask.dtype)
            prefix = attention_mask.shape[1] - length  # cached keys before the new queries
            if prefix > 0:
                causal = torch.cat([causal.new_ones(batch_size, length, prefix), causal], dim=-1)
            mask = causal[:, None] * attention_mask[:, None, None, :]
        elif attention_mask.dim() == 2:
            mask = attention_mask[:, None, None, :]
        else:
            raise ValueError(f"attention_mask of shape {tuple(attention_mask.shape)}: expected 2 or 3 dimensions")
        mask = mask.to(dtype=dtype)
        return (1.0 - mask) * _finfo_min(dtype)

    def get_head_mask(self, head_mask, num_hidden_layers, is_attention_chunked=False):
        """None -> [None] * layers; a (H,) or (layers, H) mask -> (layers, B=1, H, 1, 1)."""
        if head_mask is None:
            return [None] * num_hidden_layers
        if head_mask.dim() == 1:
            head_mask = head_mask[None, None, :, None, None].expand(num_hidden_layers, -1, -1, -1, -1)
        elif head_mask.dim() == 2:
            head_mask = head_mask[:, None, :, None, None]
        head_mask = head_mask.to(dtype=self.dtype)
        return head_mask.unsqueeze(-1) if is_attention_chunked else head_mask


def _finfo_min(dtype):
    import torch

    return torch.finfo(dtype).min


def find_pruneable_heads_and_indices(heads, n_heads: int, head_size: int, already_pruned_heads):
    """The heads still to prune and the indices of the rows to keep: (set of heads, LongTensor).

    Heads are numbered as originally; ``already_pruned_heads`` shifts the later ones down.
    """
    import torch

    heads = set(heads) - set(already_pruned_heads)
    mask = torch.ones(n_heads, head_size)
    for head in heads:
        head -= sum(1 for pruned in already_pruned_heads if pruned < head)
        mask[head] = 0
    keep = mask.view(-1).eq(1)
    return heads, torch.arange(len(keep))[keep].long()


def get_device_map(n_layers: int, devices: list) -> dict:
    """Spread ``n_layers`` blocks over ``devices`` in contiguous runs of equal size (the last shorter)."""
    per_device = -(-n_layers // len(devices))
    layers = list(range(n_layers))
    return {device: layers[i * per_device:(i + 1) * per_device] for i, device in enumerate(devices)}


def assert_device_map(device_map: dict, num_blocks: int) -> None:
    """Every block on exactly one device."""
    assigned = [block for blocks in device_map.values() for block in blocks]
    duplicated = sorted({b for b in assigned if assigned.count(b) > 1})
    missing = sorted(set(range(num_blocks)) - set(assigned))
    extra = sorted(set(assigned) - set(range(num_blocks)))
    if duplicated or missing or extra:
        raise ValueError(f"device_map: blocks on several devices {duplicated}, on none {missing}, "
                         f"beyond the model's {num_blocks} blocks {extra}")
