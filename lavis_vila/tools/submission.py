"""Write a leaderboard submission file from an evaluation's results (``lavis_vila.submission``).

    python -m lavis_vila.tools.submission output/tvqa/vila_32to4_eval/<job>/result/test_epochbest.json \
        --benchmark tvqa --out tvqa_test_public_predictions.json

RESULT is a per-question result file or the evaluation folder holding one. The file is written in
the format of the benchmark's evaluation server (``--server``: VALUE's for How2QA and TVQA; VLEP's
own CodaLab or VALUE's for VLEP), keyed by the release's own question ids; the expected file name
is printed. Servers and formats: docs/recipe.md, "Test splits and leaderboards".
"""
import argparse

from lavis_vila.result_files import ResultFileError, read_results
from lavis_vila.submission import SERVERS, SubmissionError, write_submission


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a leaderboard submission file from evaluation results.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("results", help="per-question result file (result/<split>_epoch<N>.json) or evaluation folder")
    parser.add_argument("--benchmark", required=True, choices=sorted(SERVERS))
    parser.add_argument("--server", help="the evaluation server, where a benchmark has several "
                                         "(vlep: vlep or value); default: the benchmark's own")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="for the file name to use")
    parser.add_argument("--out", required=True, help="submission file to write")
    args = parser.parse_args(argv)
    try:
        source, records = read_results(args.results, labels_required=False)
        server = write_submission(records, str(source), args.benchmark, args.out, args.server)
    except (ResultFileError, SubmissionError) as error:
        parser.exit(1, f"submission: {error}\n")
    print(f"{args.benchmark}: wrote {len(records)} predictions to {args.out} for the {server.name} server; "
          f"it expects the file named {server.file_names[args.split]}")


if __name__ == "__main__":
    main()
