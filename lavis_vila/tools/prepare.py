"""Convert one split of an official annotation release, or your own questions, to SeViLA's annotation
JSON (``lavis_vila.datasets.releases``).

    python -m lavis_vila.tools.prepare nextqa --input val.csv --video-map map_vid_vidorID.json --out val.json
    python -m lavis_vila.tools.prepare star   --input STAR_val.json --out val.json
    python -m lavis_vila.tools.prepare how2qa --input how2qa_val_release.jsonl --out val.json   # or HERO's how2QA_val_release.csv
    python -m lavis_vila.tools.prepare tvqa   --input tvqa_test_public.jsonl --split test --out test.json
    python -m lavis_vila.tools.prepare vlep   --input vlep_dev_release.jsonl --out val.json
    python -m lavis_vila.tools.prepare custom --input my_questions.jsonl --out val.json          # docs/own_data.md

Malformed rows are reported (``file:line: reason``) and skipped; the summary gives both counts. A
file of which no row converts, or with a question id used twice, is one error; nothing is written.
``--split test`` accepts rows without an answer (test releases withhold them). The output appears
whole or not at all: an interrupted run leaves an existing file as it was.
"""
import argparse
import sys

from lavis_vila.atomic_files import write_json
from lavis_vila.datasets.releases import FORMATS, ReleaseError, convert, read_video_map

SPLITS = ("train", "val", "test")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Convert an official annotation release to SeViLA's format.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("dataset", choices=sorted(FORMATS))
    parser.add_argument("--input", required=True, help="one split of the official release, or your own CSV/JSONL")
    parser.add_argument("--video-map", help="NExT-QA map_vid_vidorID.json")
    parser.add_argument("--split", choices=SPLITS, default="val",
                        help="test: rows without an answer are valid (an unlabelled test release)")
    parser.add_argument("--out", required=True, help="annotation JSON to write")
    args = parser.parse_args(argv)
    if args.dataset == "nextqa" and not args.video_map:
        parser.error("nextqa needs --video-map map_vid_vidorID.json")
    try:
        video_map = read_video_map(args.video_map) if args.video_map else None
        records, errors = convert(args.dataset, args.input, video_map, labelled=args.split != "test")
    except ReleaseError as error:
        parser.exit(1, f"prepare: {error}\n")
    for error in errors:
        print(f"malformed row skipped: {error}", file=sys.stderr)
    write_json(args.out, records, indent=1)
    unlabelled = sum("answer" not in record for record in records)
    labels = f" ({unlabelled} without an answer: an unlabelled split)" if unlabelled else ""
    print(f"{args.dataset}: wrote {len(records)} records to {args.out}{labels}; skipped {len(errors)} malformed rows")


if __name__ == "__main__":
    main()
