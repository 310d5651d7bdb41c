"""Time ViLA, uniform sampling and SeViLA-style selection on one backbone (``lavis_vila.experiments.bench``).

    python -m lavis_vila.tools.bench --model-type tiny --repeats 3 --out bench.json
    python -m lavis_vila.tools.bench --model-type flant5xl --flops          # meta device, no timing
"""
import argparse

import torch

from lavis_vila.experiments.bench import run
from lavis_vila.experiments.bench_report import format_table, summary, write_json
from lavis_vila.models.paths import MODEL_TYPES
from lavis_vila.models.precision import DTYPES


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time ViLA, uniform sampling and SeViLA-style selection on one "
                                                 "backbone, with random weights.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model-type", default="tiny", choices=MODEL_TYPES)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", choices=["auto", *DTYPES],
                        help="auto: bf16 on a GPU that supports it or a CPU with AMX / AVX-512-BF16, else fp32")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant (at least 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--flops", action="store_true", help="count FLOPs on the meta device; no weights, no timing")
    parser.add_argument("--out", metavar="JSON", help="write the rows as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 3 and not args.flops:
        parser.error("--repeats must be at least 3")
    rows = run(args.model_type, args.device, args.dtype, args.batch_size, args.repeats, args.warmup, args.flops)
    print(format_table(rows))
    print(summary(rows))
    if args.out:
        write_json(rows, args.out)
    return rows


if __name__ == "__main__":
    main()
