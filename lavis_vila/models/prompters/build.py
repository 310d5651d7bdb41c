"""Building the Frame-Prompter a model config names (``model.frame_prompter``)."""
import inspect

from lavis_vila.models.prompters.base import Prompter
from lavis_vila.models.prompters.free_form import FreeFormPrompter
from lavis_vila.models.prompters.question_aware import QuestionAwarePrompter
from lavis_vila.models.prompters.segment import SegmentPrompter

PROMPTERS = {"segment": SegmentPrompter, "free_form": FreeFormPrompter, "question_aware": QuestionAwarePrompter}


def build_prompter(name: str, options: dict, **common) -> Prompter:
    """``PROMPTERS[name](**common, **options)``: ``common`` are the arguments every prompter takes
    (``Prompter``), ``options`` the model config's ``prompter_options``, the prompter's own."""
    if name not in PROMPTERS:
        raise ValueError(f"frame_prompter must be one of {sorted(PROMPTERS)}, got {name!r}")
    own = set(inspect.signature(PROMPTERS[name].__init__).parameters) - set(common) - {"self"}
    unknown = sorted(set(options) - own)
    if unknown:
        raise ValueError(f"prompter_options {unknown} are not options of frame_prompter {name!r} "
                         f"(its options: {sorted(own) or 'none'})")
    return PROMPTERS[name](**common, **options)
