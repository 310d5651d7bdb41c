"""Convert one split of an official annotation release to SeViLA's annotation JSON (``lavis_vila.datasets.releases``).

    python -m lavis_vila.tools.prepare nextqa --input val.csv --video-map map_vid_vidorID.json --out val.json
    python -m lavis_vila.tools.prepare star   --input STAR_val.json --out val.json
    python -m lavis_vila.tools.prepare how2qa --input how2qa_val_release.jsonl --out val.json
    python -m lavis_vila.tools.prepare tvqa   --input tvqa_val.jsonl --out val.json
    python -m lavis_vila.tools.prepare vlep   --input vlep_dev_release.jsonl --out val.json

Malformed rows are reported (``file:line: reason``) and skipped; the summary gives both counts. A
file of which no row converts is one error naming the format expected; nothing is written.
"""
import argparse
import json
import sys

from lavis_vila.datasets.releases import FORMATS, ReleaseError, convert, read_video_map


def main(argv=None):
    parser = argparse.ArgumentParser(description="Convert an official annotation release to SeViLA's format.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("dataset", choices=sorted(FORMATS))
    parser.add_argument("--input", required=True, help="one split of the official release")
    parser.add_argument("--video-map", help="NExT-QA map_vid_vidorID.json")
    parser.add_argument("--out", required=True, help="annotation JSON to write")
    args = parser.parse_args(argv)
    if args.dataset == "nextqa" and not args.video_map:
        parser.error("nextqa needs --video-map map_vid_vidorID.json")
    try:
        records, errors = convert(args.dataset, args.input, read_video_map(args.video_map) if args.video_map else None)
    except ReleaseError as error:
        parser.exit(1, f"prepare: {error}\n")
    for error in errors:
        print(f"malformed row skipped: {error}", file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump(records, f, indent=1)
    print(f"{args.dataset}: wrote {len(records)} records to {args.out}; skipped {len(errors)} malformed rows")


if __name__ == "__main__":
    main()
