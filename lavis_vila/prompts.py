"""Prompt templates of SeViLA / ViLA (paper §3.4), word for word, and the option letters.

The only place these strings are spelled. The same ``qa_input`` goes to the Q-Former (as its
instruction) and to the LLM (after the visual tokens); the target is ``"Option X"``, which the
models score by the letter after ``ANSWER_PREFIX``.
"""
from typing import Sequence

OPTION_LETTERS = "ABCDE"
ANSWER_PREFIX = "Option"
MC_INSTRUCTION = "Considering the information presented in the frame, select the correct answer from the options."
VLEP_QUESTION = "Upon observing the provided frames, what is the most probable subsequent event?"


def format_options(options: Sequence[str]) -> str:
    return "".join(f" {ANSWER_PREFIX} {OPTION_LETTERS[i]}: {option}" for i, option in enumerate(options))


def mc_prompt(question: str, options: Sequence[str]) -> str:
    """NExT-QA, STAR, How2QA, TVQA and keyframe_qa."""
    return f"Question: {question}{format_options(options)} {MC_INSTRUCTION}"


def vlep_prompt(question: str, options: Sequence[str]) -> str:
    """VLEP has no question: which of two events comes next."""
    return f"{VLEP_QUESTION}{format_options(options)}"


PROMPTS = {"mc": mc_prompt, "vlep": vlep_prompt}


def answer_text(answer: int) -> str:
    """The target text of option index ``answer``: ``"Option B"`` for 1."""
    return f"{ANSWER_PREFIX} {OPTION_LETTERS[answer]}"


LOCALIZER_INSTRUCTION = (
    "Does the information within the frame provide the necessary details to accurately answer the given question?"
)
VLEP_LOCALIZER_INSTRUCTION = "Does the information within the frame provide the necessary details to predict next event?"


def options_hint_localizer_prompt(question: str, options: Sequence[str]) -> str:
    """SeViLA's localizer question (NExT-QA, STAR, How2QA, TVQA) with its options as one hint,
    "Options: (a b c d )": SeViLA ends every option with a space, the last one too."""
    return f"Question: {question} {ANSWER_PREFIX}s: ({''.join(option + ' ' for option in options)}) {LOCALIZER_INSTRUCTION}"


def vlep_localizer_prompt(question: str, options: Sequence[str]) -> str:
    """SeViLA's VLEP localizer question: the QA prompt, then its own instruction."""
    return f"{vlep_prompt(question, options)} {VLEP_LOCALIZER_INSTRUCTION}"


SEVILA_LOCALIZER_PROMPTS = {"mc": options_hint_localizer_prompt, "vlep": vlep_localizer_prompt}


def localizer_prompt(qa_input: str) -> str:
    """SeViLA's keyframe-localizer question, built from a QA prompt of this module."""
    if qa_input.startswith(VLEP_QUESTION):
        return f"{qa_input} {VLEP_LOCALIZER_INSTRUCTION}"
    return f"{qa_input.removesuffix(' ' + MC_INSTRUCTION)} {LOCALIZER_INSTRUCTION}"
