"""Regenerate the tiny tokenizers shipped for the ``tiny`` model type (``lavis_vila.experiments.make_tiny_tokenizers``).

    python -m lavis_vila.tools.make_tiny_tokenizers [--out lavis_vila/configs/tokenizers]
"""
import argparse
import os

from lavis_vila.experiments.make_tiny_tokenizers import make_tiny_tokenizers

SHIPPED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "configs", "tokenizers"))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the tiny tokenizers shipped for the tiny model type.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=SHIPPED)
    parser.add_argument("--t5-vocab-size", type=int, default=512)
    args = parser.parse_args(argv)
    make_tiny_tokenizers(args.out, args.t5_vocab_size)
    print(f"wrote tiny tokenizers under {args.out}")


if __name__ == "__main__":
    main()
