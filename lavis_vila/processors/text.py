"""``vila_question``: whitespace cleanup and an optional word limit, case and punctuation kept.

LAVIS's ``blip_question`` lower-cases and strips punctuation, which would garble the
multiple-choice prompts ("Option A: ...") this project feeds to the Q-Former and the LLM.
"""
from lavis.processors.base_processor import BaseProcessor
from omegaconf import OmegaConf

from lavis_vila.registry import register_processor


@register_processor("vila_question")
class QuestionProcessor(BaseProcessor):
    def __init__(self, max_words: int = None):
        super().__init__()
        self.max_words = max_words

    def __call__(self, text: str) -> str:
        words = str(text).split()
        if self.max_words:
            words = words[: self.max_words]
        return " ".join(words)

    @classmethod
    def from_config(cls, cfg=None):
        cfg = OmegaConf.create() if cfg is None else cfg
        return cls(max_words=cfg.get("max_words", None))
