"""The official annotation releases of NExT-QA, STAR, How2QA, TVQA and VLEP, converted one split
at a time to SeViLA's annotation format (``datasets.annotations``). Plain Python: the command
line ``python -m lavis_vila.tools.prepare`` starts without torch or LAVIS.

A malformed row is reported as ``file:line`` (``file:record N`` for STAR's JSON list) with the
reason, and skipped; the good rows are still converted. A file of which no row converts (or that
does not parse) is in the wrong format: one error naming it and the format expected. Field conventions follow SeViLA's
preprocessing notebook (research/sevila_lavis.md A2).
"""
import csv
import json
from typing import Callable, Iterator, Tuple

from lavis_vila.datasets.annotations import (AnnotationError, WindowError, clip_window, read_json_list,
                                             validate_record)


class ReleaseError(ValueError):
    """A whole input file that cannot be read; the message names it."""


class RowError(ValueError):
    """One malformed row: reported with its location and skipped."""


def need(row: dict, key: str):
    if key not in row or row[key] in (None, ""):
        raise RowError(f"missing field '{key}'")
    return row[key]


def as_int(value, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RowError(f"field '{key}' is not an integer: {value!r}") from None


def span(ts, key: str = "ts") -> dict:
    """'12.3-45.6' or [12.3, 45.6] -> {"start", "end"}, read by ``annotations.clip_window``:
    '61.14-61.14' is one instant and NaN bounds mean the whole video ({})."""
    parts = ts.split("-") if isinstance(ts, str) else ts
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise RowError(f"field '{key}' is not a 'start-end' span: {ts!r}")
    try:
        start, end = clip_window(*parts)
    except WindowError as error:
        raise RowError(f"field '{key}' {ts!r}: {error}") from None
    return {name: seconds for name, seconds in (("start", start), ("end", end)) if seconds is not None}


# ---------------------------------------------------------------- readers: (location, row)


def read_csv(path: str) -> Iterator[Tuple[str, dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            yield f"{path}:{reader.line_num}", row


def read_jsonl(path: str) -> Iterator[Tuple[str, dict]]:
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError as error:
                yield f"{path}:{number}", RowError(f"invalid JSON ({error.msg})")


def read_json_records(path: str) -> Iterator[Tuple[str, dict]]:
    for index, row in enumerate(read_json_list(path)):
        yield f"{path}:record {index}", row


# ---------------------------------------------------------------- converters: row -> record


def nextqa(row: dict, index: int, video_map: dict) -> dict:
    video_id = str(need(row, "video"))
    if video_id not in video_map:
        raise RowError(f"video {video_id} is not in the --video-map file")
    options = [need(row, f"a{i}") for i in range(5)]
    question = need(row, "question")
    return {
        "video": video_map[video_id],
        "num_option": 5,
        "qid": f"{need(row, 'type')}_{video_id}_{need(row, 'qid')}",
        **{f"a{i}": f"{o}." for i, o in enumerate(options)},
        "answer": as_int(need(row, "answer"), "answer"),
        "question": question if question.endswith("?") else f"{question}?",
    }


def star(row: dict, index: int, video_map: dict) -> dict:
    choices = [need(c, "choice") for c in need(row, "choices")]
    answer = need(row, "answer")
    if answer not in choices:
        raise RowError(f"answer {answer!r} is not one of the choices")
    return {
        "video": need(row, "video_id"),
        "num_option": len(choices),
        "qid": need(row, "question_id"),
        **{f"a{i}": c for i, c in enumerate(choices)},
        "answer": choices.index(answer),
        "question": need(row, "question"),
        "start": float(need(row, "start")),
        "end": float(need(row, "end")),
    }


def how2qa_or_tvqa(prefix: str, num_option: int) -> Callable:
    """The release's own ``qid`` is kept as ``release_id`` (the row number where a row has none), and
    the record's qid is ``<prefix>_<release_id>``: the prefix is the question type the metrics read."""
    def convert(row: dict, index: int, video_map: dict) -> dict:
        release_id = row.get("qid", index)
        return {
            "video": need(row, "vid_name"),
            "num_option": num_option,
            "qid": f"{prefix}_{release_id}",
            "release_id": release_id,
            **{f"a{i}": need(row, f"a{i}") for i in range(num_option)},
            "answer": as_int(need(row, "answer_idx"), "answer_idx"),
            "question": need(row, "q"),
            **span(need(row, "ts")),
        }

    return convert


def vlep(row: dict, index: int, video_map: dict) -> dict:
    events = need(row, "events")
    if len(events) != 2:
        raise RowError(f"field 'events' must hold 2 events, got {len(events)}")
    return {
        "video": need(row, "vid_name"),
        "num_option": 2,
        "qid": f"VLEP_{need(row, 'example_id')}",
        "a0": events[0],
        "a1": events[1],
        "answer": as_int(need(row, "answer"), "answer"),
        **span(need(row, "ts")),
    }


FORMATS = {
    "nextqa": (read_csv, nextqa),
    "star": (read_json_records, star),
    "how2qa": (read_jsonl, how2qa_or_tvqa("HOW2QA", 4)),
    "tvqa": (read_jsonl, how2qa_or_tvqa("TVQA", 5)),
    "vlep": (read_jsonl, vlep),
}


EXPECTED = {
    "nextqa": "NExT-QA's CSV (val.csv: video, frame_count, width, height, question, answer, qid, type, a0..a4)",
    "star": "STAR's JSON list (STAR_val.json: question_id, question, video_id, start, end, answer, choices)",
    "how2qa": "How2QA's JSON lines (how2qa_val_release.jsonl: vid_name, q, a0..a3, answer_idx, ts)",
    "tvqa": "TVQA's JSON lines (tvqa_val.jsonl: vid_name, q, a0..a4, answer_idx, ts)",
    "vlep": "VLEP's JSON lines (vlep_dev_release.jsonl: example_id, vid_name, ts, events, answer)",
}


def convert(dataset: str, input_path: str, video_map: dict = None):
    """Returns (records, errors) where errors are 'file:line: reason' strings; a ``ReleaseError``
    naming the file and the format expected where no row converts."""
    reader, converter = FORMATS[dataset]
    records, errors = [], []
    try:
        for index, (location, row) in enumerate(reader(input_path)):
            try:
                if isinstance(row, Exception):
                    raise row
                if not isinstance(row, dict):
                    raise RowError(f"expected an object, got {type(row).__name__}")
                record = converter(row, index, video_map or {})
                validate_record(record, input_path, index, needs_question=dataset != "vlep")
                records.append(record)
            except (RowError, ValueError, KeyError, TypeError) as error:
                reason = str(error).split(": ", 2)[-1] if input_path in str(error) else str(error)
                errors.append(f"{location}: {reason}")
    except (AnnotationError, UnicodeDecodeError) as error:
        raise ReleaseError(f"{error}; expected {EXPECTED[dataset]}") from None
    if not errors and not records:
        raise ReleaseError(f"{input_path}: holds no rows; expected {EXPECTED[dataset]}")
    if not records:
        raise ReleaseError(f"{input_path}: none of its {len(errors)} rows reads as {EXPECTED[dataset]}; "
                           f"the first: {errors[0]}")
    return records, errors


def read_video_map(path: str) -> dict:
    try:
        with open(path) as f:
            return {str(k): v for k, v in json.load(f).items()}
    except (json.JSONDecodeError, AttributeError) as error:
        raise ReleaseError(f"{path}: not a JSON object mapping video ids to folders ({error})") from None
