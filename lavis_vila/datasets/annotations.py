"""SeViLA's annotation format: one JSON list of records per split, checked record by record.

Each record::

    {"video": str, "qid": str, "question": str, "a0": str, ..., "a{n-1}": str,
     "answer": int, "num_option": n, "start": seconds?, "end": seconds?}

A bad record is an error naming the file and the record. Plain Python: ``datasets.releases`` uses
it without importing torch or LAVIS.
"""
import json
import os
from typing import List


class AnnotationError(ValueError):
    """A malformed annotation record; the message names the file and the record."""


def validate_record(record, path: str, index: int, needs_question: bool = True) -> dict:
    """Check one record against the format above and return it."""
    where = f"{path}: record {index}"
    if not isinstance(record, dict):
        raise AnnotationError(f"{where}: expected an object, got {type(record).__name__}")
    if "qid" in record:
        where += f" (qid {record['qid']})"
    required = ["video", "qid", "answer", "num_option"] + (["question"] if needs_question else [])
    missing = [key for key in required if key not in record]
    if missing:
        raise AnnotationError(f"{where}: missing key(s) {missing}")
    num_option = record["num_option"]
    if not isinstance(num_option, int) or not 2 <= num_option <= 5:
        raise AnnotationError(f"{where}: num_option must be an integer in 2..5, got {num_option!r}")
    missing = [f"a{i}" for i in range(num_option) if f"a{i}" not in record]
    if missing:
        raise AnnotationError(f"{where}: num_option is {num_option} but option(s) {missing} are missing")
    answer = record["answer"]
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < num_option:
        raise AnnotationError(f"{where}: answer must be an option index in 0..{num_option - 1}, got {answer!r}")
    window = {}
    for key in ("start", "end"):
        if record.get(key) is not None:
            try:
                window[key] = float(record[key])
            except (TypeError, ValueError):
                raise AnnotationError(f"{where}: {key} must be a number of seconds, got {record[key]!r}") from None
            if window[key] < 0:
                raise AnnotationError(f"{where}: {key} must not be negative, got {record[key]!r}")
    if len(window) == 2 and window["start"] >= window["end"]:
        raise AnnotationError(f"{where}: start ({record['start']}) must be before end ({record['end']})")
    return record


def read_json_list(path: str) -> list:
    """The JSON list in ``path``; an ``AnnotationError`` naming the file if it holds anything else."""
    try:
        with open(path) as f:
            records = json.load(f)
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}: not valid JSON (truncated?): {error}") from None
    if not isinstance(records, list):
        raise AnnotationError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    return records


def load_annotations(path: str, needs_question: bool = True) -> List[dict]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    records = read_json_list(path)
    if not records:
        raise AnnotationError(f"{path}: the annotation file holds no records")
    return [validate_record(r, path, i, needs_question) for i, r in enumerate(records)]
