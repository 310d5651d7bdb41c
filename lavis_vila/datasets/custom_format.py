"""Your own videos and questions (``prepare custom``), as CSV or JSON lines, one question a row.

JSON lines (``.jsonl``)::

    {"video": "kitchen/0001.mp4", "question": "what does she pour?", "options": ["milk", "water", "oil"],
     "answer": 1, "start": 2.5, "end": 9.0, "id": "q1", "type": "Pour"}

CSV (``.csv``), with a header: ``video,question,a0,a1,a2,a3,a4,answer,start,end,id,type``, the
options ``a0``.. as many as the question has (2 to 5; trailing ones empty).

- ``video``: the file under the dataset's video folder, with or without its extension.
- ``answer``: the index of the correct option, from 0; optional only with ``--split test``.
- ``start``, ``end`` (optional): the clip in seconds; either may be left out (the video's start or end).
- ``id`` (optional): your question id, kept as ``release_id`` (the row number where absent); ids must be unique.
- ``type`` (optional): a question type without ``_``; metrics are reported per type (``CUSTOM`` where absent).

The record's qid is ``<type>_<id>``. Plain Python.
"""
import json

from lavis_vila.datasets.release_rows import (Context, ReleaseError, ReleaseFormat, RowError, answer_field, as_int,
                                               label, need, read_csv, read_jsonl, window)

MAX_OPTIONS = 5
DEFAULT_TYPE = "CUSTOM"
FIELDS = "video, question, options (JSONL) or a0..a4 (CSV), answer, optional start, end, id, type"


def options_of(row: dict) -> list:
    if "options" in row:
        options = row["options"]
        if isinstance(options, str):  # a CSV cell holding a JSON list
            try:
                options = json.loads(options)
            except json.JSONDecodeError:
                raise RowError(f"field 'options' is not a list: {options!r}") from None
        if not isinstance(options, list):
            raise RowError(f"field 'options' is not a list: {options!r}")
    else:
        options = [row.get(f"a{i}") for i in range(MAX_OPTIONS)]
        while options and options[-1] in (None, ""):
            options.pop()
    if not 2 <= len(options) <= MAX_OPTIONS:
        raise RowError(f"a question needs 2 to {MAX_OPTIONS} options, got {len(options)}")
    if any(option in (None, "") or not isinstance(option, str) for option in options):
        raise RowError(f"every option must be text: {options!r}")
    return options


def custom(row: dict, index: int, context: Context) -> dict:
    options = options_of(row)
    answer = label(row, "answer", context)
    answer = None if answer is None else as_int(answer, "answer")  # its range: validate_record, as every release's
    qtype = str(row.get("type") or DEFAULT_TYPE)
    if "_" in qtype:
        raise RowError(f"field 'type' must not contain '_' (the qid's type prefix ends there): {qtype!r}")
    release_id = row.get("id")
    release_id = index if release_id in (None, "") else release_id
    bounds = {key: row.get(key) for key in ("start", "end") if row.get(key) not in (None, "")}
    return {
        "video": str(need(row, "video")),
        "num_option": len(options),
        "qid": f"{qtype}_{release_id}",
        "release_id": release_id,
        **{f"a{i}": option for i, option in enumerate(options)},
        **answer_field(answer),
        "question": need(row, "question"),
        **window(bounds.get("start"), bounds.get("end")),
    }


READERS = {".csv": read_csv, ".jsonl": read_jsonl}
EXPECTED = f"your own questions as CSV (.csv, with a header) or JSON lines (.jsonl): {FIELDS} (docs/own_data.md)"


def custom_format(path: str) -> ReleaseFormat:
    """The reader by the file's extension."""
    extension = next((e for e in READERS if str(path).lower().endswith(e)), None)
    if extension is None:
        raise ReleaseError(f"{path}: a custom file must end in .csv or .jsonl; expected {EXPECTED}")
    return ReleaseFormat(READERS[extension], custom, EXPECTED)
