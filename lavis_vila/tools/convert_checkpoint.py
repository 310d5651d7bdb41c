"""Write a copy of a checkpoint you trust that loads without running code.

    python -m lavis_vila.tools.convert_checkpoint --trust IN.pth --out OUT.pth

This project reads every ``.pth`` with ``torch.load(weights_only=True)`` and refuses files that
hold anything but tensors, numbers, strings and plain containers (``lavis_vila.checkpoints``).
This tool is the one explicit way past that: it unpickles ``IN`` fully, which runs whatever code
the file carries, so it insists on ``--trust`` and warns. It keeps the weights (the ``model``
entry, or the whole file if that is a state dict) and writes ``{"model": state_dict}``.
"""
import argparse
import logging

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("source", help="the checkpoint to convert")
    parser.add_argument("--out", required=True, help="where to write the weights-only copy")
    parser.add_argument("--trust", action="store_true",
                        help="required: unpickling SOURCE runs any code it carries; only for files you trust")
    args = parser.parse_args(argv)
    if not args.trust:
        parser.error("refusing to unpickle without --trust: loading the file runs any code it carries")
    logging.warning("unpickling %s with weights_only=False: any code in it runs now", args.source)
    checkpoint = torch.load(args.source, map_location="cpu", weights_only=False)
    state_dict = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    weights = {k: v for k, v in state_dict.items() if torch.is_tensor(v)}
    dropped = sorted(set(state_dict) - set(weights))
    torch.save({"model": weights}, args.out)
    print(f"wrote {args.out}: {len(weights)} tensors" + (f"; dropped non-tensor entries {dropped}" if dropped else ""))


if __name__ == "__main__":
    main()
