"""How2QA as HERO first released it (``how2QA_val_release.csv``, github.com/ych133/How2R-and-How2QA),
before VALUE's JSON lines: a CSV without a header, one question a row::

    <YouTube id>,[<start>:<end>],<wrong answer>,<wrong answer>,<wrong answer>,<question>,<correct answer>

The window is in seconds of the whole HowTo100M video, so a record reads ``videos/<YouTube id>.mp4``
with that window (VALUE's releases name 60-second clips instead; docs/recipe.md). The file holds no
question ids: a record's qid is ``HOW2QA_<row number>``. The correct answer, last in every row, is
put at option ``row number % 4`` (the wrong ones keep their order), so the answers are balanced and
the conversion is the same every time.
"""
import csv
import re

from lavis_vila.datasets.release_rows import Context, RowError, window

TIMESTAMPS = re.compile(r"^\s*\[\s*([^:\]]*?)\s*:\s*([^:\]]*?)\s*\]\s*$")
COLUMNS = ("YouTube id", "[start:end]", "wrong answer", "wrong answer", "wrong answer", "question", "correct answer")


def is_hero_csv(first_line: str) -> bool:
    """Whether a file's first line reads as a HERO-era row: its second cell is ``[start:end]``."""
    cells = next(csv.reader([first_line]), [])
    return len(cells) > 2 and bool(TIMESTAMPS.match(cells[1]))


def hero_how2qa(cells: list, index: int, context: Context) -> dict:
    if len(cells) != len(COLUMNS):
        raise RowError(f"expected {len(COLUMNS)} cells ({', '.join(COLUMNS)}), got {len(cells)}")
    video, timestamps, *wrong, question, correct = (cell.strip() for cell in cells)
    for name, cell in (("YouTube id", video), ("question", question), ("correct answer", correct)):
        if not cell:
            raise RowError(f"empty {name}")
    if not all(wrong):
        raise RowError("an empty wrong answer")
    match = TIMESTAMPS.match(timestamps)
    if not match:
        raise RowError(f"timestamps are not '[start:end]': {timestamps!r}")
    answer = index % 4
    options = wrong[:answer] + [correct] + wrong[answer:]
    return {
        "video": video,
        "num_option": 4,
        "qid": f"HOW2QA_{index}",
        "release_id": index,
        **{f"a{i}": option for i, option in enumerate(options)},
        "answer": answer,
        "question": question,
        **window(*match.groups(), what=f"timestamps {timestamps!r}"),
    }
