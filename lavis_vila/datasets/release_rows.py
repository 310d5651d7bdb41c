"""Reading release rows: the readers (``file:line`` and the row), the field helpers every release
converter shares, and what a conversion knows besides the row (``Context``). Plain Python."""
import csv
import json
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Tuple

from lavis_vila.datasets.annotations import WindowError, clip_window, read_json_list

INTEGER = re.compile(r"^\s*-?\d+\s*$")


class ReleaseError(ValueError):
    """A whole input file that cannot be read; the message names it."""


class RowError(ValueError):
    """One malformed row: reported with its location and skipped."""


@dataclass(frozen=True)
class Context:
    """``video_map``: NExT-QA's video id -> folder/id. ``labelled``: False for ``--split test``, where a
    row without an answer is valid (the release withholds it) and becomes a record without one."""
    video_map: dict = field(default_factory=dict)
    labelled: bool = True


@dataclass(frozen=True)
class ReleaseFormat:
    reader: Callable[[str], Iterator[Tuple[str, object]]]
    converter: Callable[[object, int, Context], dict]
    expected: str  # said when no row of a file reads: which file of which release, and its fields


def need(row: dict, key: str):
    if key not in row or row[key] in (None, ""):
        raise RowError(f"missing field '{key}'")
    return row[key]


def as_int(value, key: str) -> int:
    """An integer or a string of digits (CSV cells); ``1.7``, ``"1.7"`` and ``true`` are errors, never 1."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and INTEGER.match(value):
        return int(value)
    raise RowError(f"field '{key}' is not an integer: {value!r}")


def label(row: dict, key: str, context: Context) -> Optional[object]:
    """The row's answer field; None where an unlabelled split (``context.labelled`` False) has none."""
    if not context.labelled and row.get(key) in (None, ""):
        return None
    if key not in row or row[key] in (None, ""):
        raise RowError(f"missing field '{key}' (an unlabelled test release: prepare --split test)")
    return row[key]


def answer_field(answer: Optional[int]) -> dict:
    """``{"answer": i}``, or nothing for an unlabelled record."""
    return {} if answer is None else {"answer": answer}


def span(ts, key: str = "ts") -> dict:
    """'12.3-45.6' or [12.3, 45.6] -> {"start", "end"}, read by ``annotations.clip_window``:
    '61.14-61.14' is one instant and NaN-NaN means the whole video ({})."""
    parts = ts.split("-") if isinstance(ts, str) else ts
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise RowError(f"field '{key}' is not a 'start-end' span: {ts!r}")
    return window(*parts, what=f"field '{key}' {ts!r}")


def window(start, end, what: str = "fields 'start', 'end'") -> dict:
    """{"start", "end"} in seconds, the open ends left out; a bad window is a ``RowError`` naming ``what``."""
    try:
        start, end = clip_window(start, end)
    except WindowError as error:
        raise RowError(f"{what}: {error}") from None
    return {name: seconds for name, seconds in (("start", start), ("end", end)) if seconds is not None}


# ---------------------------------------------------------------- readers: (location, row)


def read_csv(path: str) -> Iterator[Tuple[str, dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            yield f"{path}:{reader.line_num}", row


def read_csv_rows(path: str) -> Iterator[Tuple[str, list]]:
    """A CSV without a header: each row as its list of cells."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        for row in reader:
            if any(cell.strip() for cell in row):
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


def first_line(path: str) -> str:
    """The first non-blank line, to tell a file's format; '' for an empty or undecodable file."""
    try:
        with open(path) as f:
            return next((line.strip() for line in f if line.strip()), "")
    except UnicodeDecodeError:
        return ""
