"""The official ViLA code's (xijun-cs/ViLA) parameter names, where they differ from ours.

Its ``vila`` and ``vila_lora`` call the Frame-Prompter ``fs`` (a ``FrameSelector``: ``conv_pool``,
``ln``, ``conv_gs``) and the distiller's decoder ``dist_fc_bn``. Every other name (Q-Formers,
queries, projections, ``ln_vision``, the ViT, T5 and peft's LoRA names) is the same here, so a
checkpoint it trained loads once these prefixes are renamed (``checkpoints.load_into`` does, and
logs it). The optimizer reads the official names too, for which parameters get weight decay
(``runners.weight_decay``).
"""
OFFICIAL_TO_OURS = {
    "fs.conv_pool.": "frame_prompter.pool.",
    "fs.ln.": "frame_prompter.norm.",
    "fs.conv_gs.": "frame_prompter.score.",
    "dist_fc_bn.": "distiller.decoder.",
}
OURS_TO_OFFICIAL = {ours: official for official, ours in OFFICIAL_TO_OURS.items()}


def _swap_prefix(name: str, prefixes: dict) -> str:
    for old, new in prefixes.items():
        if name.startswith(old):
            return new + name[len(old):]
    return name


def official_name(name: str) -> str:
    """The official code's name of our parameter ``name`` (itself where they agree)."""
    return _swap_prefix(name, OURS_TO_OFFICIAL)


def official_prefixes_in(state_dict: dict) -> list:
    """The official-only prefixes the keys of ``state_dict`` use."""
    return [prefix for prefix in OFFICIAL_TO_OURS if any(key.startswith(prefix) for key in state_dict)]


def with_our_names(state_dict: dict) -> dict:
    """``state_dict`` with official-only names renamed to ours; a tensor under both names is an error."""
    renamed = {}
    for key, value in state_dict.items():
        ours = _swap_prefix(key, OFFICIAL_TO_OURS)
        if ours in renamed:
            raise ValueError(f"it holds '{ours}' under both the official name and ours")
        renamed[ours] = value
    return renamed
