"""Compare two evaluations on the same questions, or one with a published accuracy (``lavis_vila.comparison``).

    python -m lavis_vila.tools.compare output/vila_eval output/uniform_eval --out report.md
    python -m lavis_vila.tools.compare output/vila_eval --reference 74.4

A and B are per-question result files (``result/val_epochbest.json``) or the evaluation folders that
hold one. The report (Markdown) is printed, and written to ``--out``.
"""
import argparse

from lavis_vila.comparison import (
    RESAMPLES,
    ComparisonError,
    against_reference,
    compare,
    comparison_report,
    reference_accuracy,
    reference_report,
)
from lavis_vila.result_files import ResultFileError, read_results


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description="Paired comparison of two evaluations (accuracies, bootstrap interval "
                                                 "of the difference, exact McNemar p), or of one with a published "
                                                 "accuracy.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("a", help="result file or evaluation folder of run A")
    parser.add_argument("b", nargs="?", help="result file or evaluation folder of run B (not with --reference)")
    parser.add_argument("--reference", help="a published accuracy in percent (74.4), or a metrics JSON whose accuracy it is")
    parser.add_argument("--intersection", action="store_true", help="compare only the qids both runs have")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--out", help="Markdown report to write")
    args = parser.parse_args(argv)
    if (args.b is None) == (args.reference is None):
        parser.error("give two runs, or one run and --reference")
    try:
        file_a, a = read_results(args.a)
        if args.reference is not None:
            reference, source = reference_accuracy(args.reference)
            report = reference_report(against_reference(a, reference), str(file_a), source)
        else:
            file_b, b = read_results(args.b)
            report = comparison_report(compare(a, b, args.intersection, args.seed, args.resamples), str(file_a), str(file_b))
    except (ResultFileError, ComparisonError) as error:
        parser.exit(1, f"compare: {error}\n")
    print(report, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    return report


if __name__ == "__main__":
    main()
