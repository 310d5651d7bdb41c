"""Generate the tiny tokenizers shipped for the ``tiny`` model type (a maintainer script:
``python -m lavis_vila.tools.make_tiny_tokenizers``).

Writes ``tiny_bert/vocab.txt`` (a BERT WordPiece vocab for the Q-Former: whole corpus words plus
single characters) and
``tiny_t5/spiece.model`` (a T5-style sentencepiece unigram model: pad=0, eos=1, unk=2).
Both are trained on a small built-in corpus made of prompts from ``lavis_vila.prompts`` (the QA
prompts, SeViLA-style localizer questions and the answer targets) plus everyday English, so the benchmark prompts tokenize into whole words while any other text still
tokenizes through sub-words. Training is deterministic.
"""
import itertools
import os
import re
import string

from lavis_vila.prompts import (
    LOCALIZER_INSTRUCTION,
    OPTION_LETTERS,
    VLEP_LOCALIZER_INSTRUCTION,
    answer_text,
    mc_prompt,
    vlep_prompt,
)

# The corpus the shipped tokenizers were trained on; changing it changes every tiny model. Its
# localizer question is SeViLA's without the space SeViLA leaves before ")" (written before
# prompts.options_hint_localizer_prompt had it), kept as it was.
PROMPTS = [
    lambda f: mc_prompt(f["q"], [f[k] for k in "abcde"]),
    lambda f: vlep_prompt("", [f["a"], f["b"]]),
    lambda f: f"Question: {f['q']} Options: ({' '.join(f[k] for k in 'abcd')}) {LOCALIZER_INSTRUCTION}",
    lambda f: VLEP_LOCALIZER_INSTRUCTION,
]

WORDS = """
red green blue yellow white black orange purple pink brown grey gray cyan magenta colour color
square circle triangle ball box shape dot line bar star cross flash light object thing
left right up down top bottom middle centre center corner side edge
first second third last before after during then while when where which what who why how
one two three four five six seven eight nine ten zero many few several none
moves move moving moved appears appear appearing disappears flashes flash flashing shows show
does did do is are was were be been has have had will would can could should may might
the a an of to in on at by for with from into onto over under between through about
man woman boy girl person people child dog cat car baby hand table door room kitchen
pancake pan cook cooking flips flip flipping eats eat drinks drink walks walk runs run
picks pick puts put opens open closes close holds hold looks look takes take gives give
yes no not correct answer options option select frame frames video clip event events
happen happens happened next probable subsequent observing provided considering
information presented necessary details accurately given predict question questions
interaction sequence prediction feasibility temporal causal descriptive count
""".split()


def corpus(repeats: int = 20):
    """Deterministic sentences: every template filled with rotating word choices."""
    cycle = itertools.cycle(WORDS)
    for _ in range(repeats):
        for prompt in PROMPTS:
            yield prompt({k: " ".join(next(cycle) for _ in range(3)) for k in "qabcde"})
        yield " ".join(next(cycle) for _ in range(12))
    for index in range(len(OPTION_LETTERS)):
        for _ in range(repeats):
            yield answer_text(index)
    for word in WORDS:
        yield " ".join([word] * repeats)


def make_bert_vocab(out_dir: str) -> None:
    """Special tokens, every corpus word, then single characters and their ``##`` forms."""
    words = sorted({w.lower() for line in corpus() for w in re.findall(r"[A-Za-z]+", line)})
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + chars + ["##" + c for c in chars]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(dict.fromkeys(vocab)) + "\n")


def make_t5_spiece(out_dir: str, vocab_size: int) -> None:
    import sentencepiece as spm

    os.makedirs(out_dir, exist_ok=True)
    text_file = os.path.join(out_dir, "corpus.txt")  # a fixed name: the model stores it
    with open(text_file, "w") as f:
        f.write("\n".join(corpus()) + "\n")
    try:
        spm.SentencePieceTrainer.train(
            input=text_file,
            model_prefix=os.path.join(out_dir, "spiece"),
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            num_threads=1,
            shuffle_input_sentence=False,
            hard_vocab_limit=False,
            minloglevel=2,
        )
    finally:
        os.remove(text_file)
    os.remove(os.path.join(out_dir, "spiece.vocab"))


def make_tiny_tokenizers(out_dir: str, t5_vocab_size: int = 512) -> None:
    """``out_dir/tiny_bert/vocab.txt`` and ``out_dir/tiny_t5/spiece.model``."""
    make_bert_vocab(os.path.join(out_dir, "tiny_bert"))
    make_t5_spiece(os.path.join(out_dir, "tiny_t5"), t5_vocab_size)
