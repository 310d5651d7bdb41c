"""The official annotation releases of NExT-QA, STAR, How2QA, TVQA and VLEP, and your own data
(``custom_format``), converted one split at a time to SeViLA's annotation format
(``datasets.annotations``). Plain Python: the command line ``python -m lavis_vila.tools.prepare``
starts without torch or LAVIS.

A malformed row is reported as ``file:line`` (``file:record N`` for STAR's JSON list) with the
reason, and skipped; the good rows are still converted. A file of which no row converts (or that
does not parse) is in the wrong format: one error naming it and the format expected. Two rows with
the same question id are one error naming the file and both rows. With ``labelled=False`` (``prepare
--split test``) a row without an answer is valid and its record has none. Field conventions follow
SeViLA's preprocessing notebook (research/sevila_lavis.md A2).
"""
import json
from typing import Callable, Dict

from lavis_vila.datasets.annotations import AnnotationError, check_labelled_throughout, duplicate_qids, validate_record
from lavis_vila.datasets.custom_format import custom_format
from lavis_vila.datasets.how2qa_hero import hero_how2qa, is_hero_csv
from lavis_vila.datasets.release_rows import (Context, ReleaseError, ReleaseFormat, RowError, answer_field, as_int,
                                               first_line, label, need, read_csv, read_csv_rows, read_json_records,
                                               read_jsonl, span)

__all__ = ["FORMATS", "ReleaseError", "RowError", "convert", "read_video_map"]


# ---------------------------------------------------------------- converters: row -> record


def nextqa(row: dict, index: int, context: Context) -> dict:
    video_id = str(need(row, "video"))
    if video_id not in context.video_map:
        raise RowError(f"video {video_id} is not in the --video-map file")
    options = [need(row, f"a{i}") for i in range(5)]
    question = need(row, "question")
    answer = label(row, "answer", context)
    return {
        "video": context.video_map[video_id],
        "num_option": 5,
        "qid": f"{need(row, 'type')}_{video_id}_{need(row, 'qid')}",
        **{f"a{i}": f"{o}." for i, o in enumerate(options)},
        **answer_field(None if answer is None else as_int(answer, "answer")),
        "question": question if question.endswith("?") else f"{question}?",
    }


def star(row: dict, index: int, context: Context) -> dict:
    choices = [need(c, "choice") for c in need(row, "choices")]
    answer = label(row, "answer", context)
    if answer is not None and answer not in choices:
        raise RowError(f"answer {answer!r} is not one of the choices")
    return {
        "video": need(row, "video_id"),
        "num_option": len(choices),
        "qid": need(row, "question_id"),
        **{f"a{i}": c for i, c in enumerate(choices)},
        **answer_field(None if answer is None else choices.index(answer)),
        "question": need(row, "question"),
        "start": float(need(row, "start")),
        "end": float(need(row, "end")),
    }


def how2qa_or_tvqa(prefix: str, num_option: int) -> Callable:
    """The release's own ``qid`` is kept as ``release_id`` (the row number where a row has none), and
    the record's qid is ``<prefix>_<release_id>``: the prefix is the question type the metrics read."""
    def convert(row: dict, index: int, context: Context) -> dict:
        release_id = row.get("qid", index)
        answer = label(row, "answer_idx", context)
        return {
            "video": need(row, "vid_name"),
            "num_option": num_option,
            "qid": f"{prefix}_{release_id}",
            "release_id": release_id,
            **{f"a{i}": need(row, f"a{i}") for i in range(num_option)},
            **answer_field(None if answer is None else as_int(answer, "answer_idx")),
            "question": need(row, "q"),
            **span(need(row, "ts")),
        }

    return convert


def vlep(row: dict, index: int, context: Context) -> dict:
    events = need(row, "events")
    if len(events) != 2:
        raise RowError(f"field 'events' must hold 2 events, got {len(events)}")
    answer = label(row, "answer", context)
    return {
        "video": need(row, "vid_name"),
        "num_option": 2,
        "qid": f"VLEP_{need(row, 'example_id')}",
        "release_id": need(row, "example_id"),
        "a0": events[0],
        "a1": events[1],
        **answer_field(None if answer is None else as_int(answer, "answer")),
        **span(need(row, "ts")),
    }


# ---------------------------------------------------------------- formats: file -> reader, converter

HOW2QA_EXPECTED = ("How2QA's JSON lines (how2qa_val_release.jsonl: vid_name, q, a0..a3, answer_idx, ts, qid) or "
                   "the HERO-era CSV (how2QA_val_release.csv: YouTube id, [start:end], 3 wrong answers, question, "
                   "correct answer)")
HOW2QA_JSONL = ReleaseFormat(read_jsonl, how2qa_or_tvqa("HOW2QA", 4), HOW2QA_EXPECTED)
HOW2QA_HERO = ReleaseFormat(read_csv_rows, hero_how2qa, HOW2QA_EXPECTED)


def fixed(release_format: ReleaseFormat) -> Callable[[str], ReleaseFormat]:
    return lambda path: release_format


FORMATS: Dict[str, Callable[[str], ReleaseFormat]] = {  # dataset: input file -> its format
    "nextqa": fixed(ReleaseFormat(read_csv, nextqa, "NExT-QA's CSV (val.csv: video, frame_count, width, height, "
                                                     "question, answer, qid, type, a0..a4)")),
    "star": fixed(ReleaseFormat(read_json_records, star, "STAR's JSON list (STAR_val.json: question_id, question, "
                                                         "video_id, start, end, answer, choices)")),
    "how2qa": lambda path: HOW2QA_HERO if is_hero_csv(first_line(path)) else HOW2QA_JSONL,
    "tvqa": fixed(ReleaseFormat(read_jsonl, how2qa_or_tvqa("TVQA", 5), "TVQA's JSON lines (tvqa_val.jsonl: vid_name, "
                                                                        "q, a0..a4, answer_idx, ts, qid)")),
    "vlep": fixed(ReleaseFormat(read_jsonl, vlep, "VLEP's JSON lines (vlep_dev_release.jsonl: example_id, vid_name, "
                                                  "ts, events, answer)")),
    "custom": custom_format,
}


def refuse_duplicate_ids(records: list, locations: list, input_path: str) -> None:
    duplicates = [f"{first} and {later} (qid {qid})" for qid, first, later in duplicate_qids(records, locations)]
    if duplicates:
        raise ReleaseError(f"{input_path}: {len(duplicates)} question id(s) used twice, so results could not be "
                           f"joined to the release: {'; '.join(duplicates[:5])}")


def convert(dataset: str, input_path: str, video_map: dict = None, labelled: bool = True):
    """Returns (records, errors) where errors are 'file:line: reason' strings; a ``ReleaseError``
    naming the file and the format expected where no row converts."""
    release_format = FORMATS[dataset](input_path)
    context = Context(video_map=video_map or {}, labelled=labelled)
    records, locations, errors = [], [], []
    try:
        for index, (location, row) in enumerate(release_format.reader(input_path)):
            try:
                if isinstance(row, Exception):
                    raise row
                if not isinstance(row, (dict, list)):
                    raise RowError(f"expected an object, got {type(row).__name__}")
                record = release_format.converter(row, index, context)
                validate_record(record, input_path, index, needs_question=dataset != "vlep", needs_answer=labelled)
                records.append(record)
                locations.append(location)
            except (RowError, ValueError, KeyError, TypeError) as error:
                reason = str(error).split(": ", 2)[-1] if input_path in str(error) else str(error)
                errors.append(f"{location}: {reason}")
    except (AnnotationError, UnicodeDecodeError) as error:
        raise ReleaseError(f"{error}; expected {release_format.expected}") from None
    if not errors and not records:
        raise ReleaseError(f"{input_path}: holds no rows; expected {release_format.expected}")
    if not records:
        raise ReleaseError(f"{input_path}: none of its {len(errors)} rows reads as {release_format.expected}; "
                           f"the first: {errors[0]}")
    refuse_duplicate_ids(records, locations, input_path)
    try:
        check_labelled_throughout(records, input_path)
    except AnnotationError as error:
        raise ReleaseError(str(error)) from None
    return records, errors


def read_video_map(path: str) -> dict:
    try:
        with open(path) as f:
            return {str(k): v for k, v in json.load(f).items()}
    except (json.JSONDecodeError, AttributeError) as error:
        raise ReleaseError(f"{path}: not a JSON object mapping video ids to folders ({error})") from None
