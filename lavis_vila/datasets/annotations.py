"""SeViLA's annotation format: one JSON list of records per split, checked record by record.

Each record::

    {"video": str, "qid": str, "question": str, "a0": str, ..., "a{n-1}": str,
     "answer": int?, "num_option": n, "start": seconds?, "end": seconds?, "release_id": any?}

``answer`` may be absent only in an unlabelled split (a test release whose answers are withheld:
TVQA, VLEP, STAR, How2QA test); a file is labelled throughout or not at all. Training splits need it.
``release_id`` (How2QA, TVQA) is the release's own question id; result rows carry it (the qid
otherwise) so they join the official scoring files.

``clip_window`` is the one reading of a window that every entry path shares (this check, the
release conversion in ``datasets.releases``, the video decoder): start == end is one instant
(How2QA's ``61.14-61.14``, TVQA's ``0-0``) and a ``NaN`` window (both bounds) means the whole clip. A bad record is an error naming the file and the record. Plain Python: ``datasets.releases`` uses
it without importing torch or LAVIS.
"""
import json
import math
import os
from typing import List, Optional, Tuple


class AnnotationError(ValueError):
    """A malformed annotation record; the message names the file and the record."""


class WindowError(ValueError):
    """A clip window that cannot be read; the message says why, the caller says where."""


def clip_window(start=None, end=None) -> Tuple[Optional[float], Optional[float]]:
    """A record's clip [start, end] as seconds, ``None`` for an open end (the video's start or end).

    A zero-length window (start == end) is one instant: its frame is decoded T times, as the
    official code effectively does. ``NaN`` for both bounds (the number, or the string SeViLA-format
    TVQA files hold) means the whole clip: ``(None, None)``. One ``NaN`` bound beside a number
    (``NaN-4``) is half a window, a ``WindowError``, as is a bound that is not a number or is
    negative, or an end before the start.
    """
    given = {key: value for key, value in (("start", start), ("end", end)) if value is not None}
    bounds = {}
    for key, value in given.items():
        try:
            bounds[key] = float(value)
        except (TypeError, ValueError):
            raise WindowError(f"{key} must be a number of seconds, got {value!r}") from None
    nan = [key for key, seconds in bounds.items() if math.isnan(seconds)]
    if nan and len(nan) == len(bounds) == 2:
        return None, None
    if nan:
        raise WindowError(f"{nan[0]} is NaN but the other bound is not (start {start!r}, end {end!r}); only a "
                          f"NaN start and end together mean the whole clip")
    for key, seconds in bounds.items():
        if seconds < 0:
            raise WindowError(f"{key} must not be negative, got {given[key]!r}")
    if len(bounds) == 2 and bounds["end"] < bounds["start"]:
        raise WindowError(f"the window ends before it starts (start {start!r}, end {end!r})")
    return bounds.get("start"), bounds.get("end")


def is_labelled(record: dict) -> bool:
    return "answer" in record


def validate_record(record, path: str, index: int, needs_question: bool = True, needs_answer: bool = True) -> dict:
    """Check one record against the format above and return it; ``needs_answer=False`` lets an
    unlabelled record (no ``answer``) through."""
    where = f"{path}: record {index}"
    if not isinstance(record, dict):
        raise AnnotationError(f"{where}: expected an object, got {type(record).__name__}")
    if "qid" in record:
        where += f" (qid {record['qid']})"
    required = ["video", "qid", "num_option"] + (["answer"] if needs_answer else []) + (["question"] if needs_question else [])
    missing = [key for key in required if key not in record]
    if missing:
        raise AnnotationError(f"{where}: missing key(s) {missing}")
    num_option = record["num_option"]
    if not isinstance(num_option, int) or not 2 <= num_option <= 5:
        raise AnnotationError(f"{where}: num_option must be an integer in 2..5, got {num_option!r}")
    missing = [f"a{i}" for i in range(num_option) if f"a{i}" not in record]
    if missing:
        raise AnnotationError(f"{where}: num_option is {num_option} but option(s) {missing} are missing")
    answer = record.get("answer", 0)
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < num_option:
        raise AnnotationError(f"{where}: answer must be an option index in 0..{num_option - 1}, got {answer!r}")
    try:
        clip_window(record.get("start"), record.get("end"))
    except WindowError as error:
        raise AnnotationError(f"{where}: {error}") from None
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


def check_labelled_throughout(records: List[dict], path: str) -> None:
    """A split is labelled or not: records with and without ``answer`` in one file is an error."""
    unlabelled = [i for i, record in enumerate(records) if not is_labelled(record)]
    if unlabelled and len(unlabelled) < len(records):
        labelled = next(i for i, record in enumerate(records) if is_labelled(record))
        raise AnnotationError(f"{path}: record {unlabelled[0]} has no answer but record {labelled} has one "
                              f"({len(unlabelled)} of {len(records)} unlabelled); a split is labelled throughout "
                              f"or not at all")


def load_annotations(path: str, needs_question: bool = True, needs_answer: bool = True) -> List[dict]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    records = read_json_list(path)
    if not records:
        raise AnnotationError(f"{path}: the annotation file holds no records")
    records = [validate_record(r, path, i, needs_question, needs_answer) for i, r in enumerate(records)]
    check_labelled_throughout(records, path)
    return records


def duplicate_qids(records: list, locations: list) -> List[tuple]:
    """(qid, first location, later location) for every record whose qid (as text: ``1`` and ``"1"``
    are one qid) an earlier one holds; results and metrics are keyed by it."""
    first_seen, duplicates = {}, []
    for record, location in zip(records, locations):
        qid = str(record["qid"])
        if qid in first_seen:
            duplicates.append((qid, first_seen[qid], location))
        first_seen.setdefault(qid, location)
    return duplicates


def load_all_annotations(paths: List[str], needs_question: bool = True, needs_answer: bool = True) -> List[dict]:
    """The records of every file in ``paths``, in order; a qid met twice (in one file or two) is an
    ``AnnotationError`` naming both places: results and metrics are keyed by qid, so one of the
    two would be dropped from them without a word."""
    records, locations = [], []
    for path in paths:
        loaded = load_annotations(path, needs_question, needs_answer)
        records += loaded
        locations += [(path, index) for index in range(len(loaded))]
    duplicates = duplicate_qids(records, locations)
    if duplicates:
        qid, (first_path, first_index), (path, index) = duplicates[0]
        raise AnnotationError(f"{path}: record {index} has qid {qid}, as record {first_index} of {first_path} "
                              f"does; qids must be unique (results and metrics are keyed by them)")
    return records
