"""Time ViLA, uniform sampling and SeViLA-style selection on one backbone (``lavis_vila.experiments.bench``).

    python -m lavis_vila.tools.bench --model-type tiny --repeats 3 --out bench.json
    python -m lavis_vila.tools.bench --model-type flant5xl --flops          # meta device, no timing
    python -m lavis_vila.tools.bench --model-type tiny --selected-frames 2 --compile --threads 1   # + compiled rows
    python -m lavis_vila.tools.bench --model-type tiny --compile --library-time     # + ms in matmul/attention/conv calls and tokenizers
    python -m lavis_vila.tools.bench --model-type flant5xl --device cuda --throughput 256   # videos/s up to the largest batch
    python -m lavis_vila.tools.bench --model-type flant5xl --device cuda --compile default reduce-overhead
"""
import argparse

import torch

from lavis_vila.experiments.bench import COMPILED_ROWS, largest_batches, run
from lavis_vila.models.compiled import MODES
from lavis_vila.experiments.bench_report import format_table, format_throughput, summary, write_json
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
    parser.add_argument("--flops", action="store_true",
                        help="count FLOPs and aten ops on the meta device; no weights, no timing")
    parser.add_argument("--selected-frames", type=int, default=4, choices=[1, 2, 4, 8], help="K of every selecting row")
    parser.add_argument("--compile", nargs="*", choices=MODES, metavar="MODE",
                        help=f"also time vila T=8, vila T=8 with an early prompter_layer and sevila_baseline compiled "
                             f"(torch.compile, inductor) in each MODE ({', '.join(MODES)}; none given: default)")
    parser.add_argument("--compile-rows", nargs="+", choices=COMPILED_ROWS, default=list(COMPILED_ROWS),
                        help="which rows --compile compiles: vila 8->K, with the early prompter_layer, sevila_baseline 32->K")
    parser.add_argument("--library-time", action="store_true",
                        help="a few runs more per row: ms a video in library calls (matmul, attention, "
                             "convolution, profiled), in the tokenizers and, for compiled rows, inside the graphs "
                             "and entering them, which bound what compiling can gain; on a GPU also ms in any "
                             "kernel, and no CUDA-graph row profiled")
    parser.add_argument("--throughput", type=int, metavar="N",
                        help="instead of the rows: ViLA 8->K and SeViLA 32->K eager at batch 1, 2, 4, ... up to N, "
                             "until one runs out of GPU memory (a CPU does not: N bounds it); videos/s at each")
    parser.add_argument("--threads", type=int, help="torch threads (1: the single-threaded launch-overhead comparison)")
    parser.add_argument("--out", metavar="JSON", help="write the rows as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 3 and not args.flops:
        parser.error("--repeats must be at least 3")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.throughput and (args.flops or args.compile is not None or args.library_time):
        parser.error("--throughput times the eager rows alone: drop --flops, --compile and --library-time")
    if args.throughput:
        rows, too_big = largest_batches(args.model_type, args.device, args.dtype, args.throughput, args.repeats,
                                        args.warmup, args.selected_frames)
        print(format_throughput(rows, too_big, args.throughput))
        if args.out:
            write_json(rows, args.out)
        return rows
    compile_modes = [] if args.compile is None else args.compile or ["default"]
    rows = run(args.model_type, args.device, args.dtype, args.batch_size, args.repeats, args.warmup, args.flops,
               args.selected_frames, compile_modes, tuple(args.compile_rows), args.library_time,
               save=(lambda timed: write_json(timed, args.out)) if args.out else None)
    print(format_table(rows))
    print(summary(rows))
    if args.out:
        write_json(rows, args.out)
    return rows


if __name__ == "__main__":
    main()
