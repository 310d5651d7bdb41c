"""Which trainable parameters get weight decay: LAVIS's rule, read on the official code's names.

LAVIS's optimizer, which the official ViLA code keeps, exempts 1-d parameters and every one whose
name contains "bias", "ln" or "bn". The official distiller is called ``dist_fc_bn``, so its
Linear gets no decay there. ``run.weight_decay_names`` says whose names the rule reads:
``official`` (default) each parameter's name in the official code (``lavis_vila.official_names``),
``ours`` our own (the distiller's Linear, ``distiller.decoder.0``, then decays).
"""
from torch import nn

from lavis_vila.official_names import official_name

NAMINGS = {"official": official_name, "ours": lambda name: name}
NO_DECAY_MARKS = ("bias", "ln", "bn")


def gets_weight_decay(name: str, param: nn.Parameter, naming: str = "official") -> bool:
    """Whether the parameter ``name`` (ours, without DDP's ``module.``) gets the run's weight decay."""
    if naming not in NAMINGS:
        raise ValueError(f"run.weight_decay_names must be one of {', '.join(NAMINGS)}, got {naming!r}")
    read = NAMINGS[naming](name)
    return param.ndim >= 2 and not any(mark in read for mark in NO_DECAY_MARKS)
