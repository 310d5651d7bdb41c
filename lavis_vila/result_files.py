"""An evaluation's per-question result file (``result/<split>_epoch<N>.json``: ``qid``, ``prediction``,
``answer``, or ``label`` where ``answer`` is absent), found and read for ``tools.compare`` and
``tools.submission``. It imports neither NumPy nor SciPy, so reading results is quick.
"""
import json
from pathlib import Path
from typing import List, Tuple


class ResultFileError(ValueError):
    """A result file that cannot be found or read: the message names the file or folder, and the record."""


def result_file(path) -> Path:
    """The per-question result file at ``path``: the file itself, or the one in an evaluation folder
    (the folder, its ``result/`` or ``*/result/``). Among several, the one ``*_epochbest.json`` (what
    ``lavis_vila.evaluate`` writes; a training run's best epoch); otherwise an error lists them."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ResultFileError(f"{path}: no such file or folder")
    found = sorted({f for pattern in ("*_epoch*.json", "result/*_epoch*.json", "*/result/*_epoch*.json")
                    for f in path.glob(pattern) if not f.name.endswith("_metrics.json")})
    best = [f for f in found if f.name.endswith("_epochbest.json")]
    if len(found) == 1 or len(best) == 1:
        return (best or found)[0]
    if not found:
        raise ResultFileError(f"{path}: no per-question result file (result/<split>_epoch<N>.json) in this folder")
    raise ResultFileError(f"{path}: {len(found)} result files, {len(best)} of them *_epochbest.json: "
                          + ", ".join(str(f.relative_to(path)) for f in found) + "; pass one of them")


def read_results(path, labels_required: bool = True) -> Tuple[Path, List[dict]]:
    """(the result file, its records), each checked for ``qid``, ``prediction`` and ``answer`` (or ``label``);
    an unlabelled split's rows (``answer`` null) are refused unless ``labels_required`` is False."""
    file = result_file(path)
    try:
        records = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultFileError(f"{file}: not a JSON result file ({error})") from None
    if not isinstance(records, list):
        raise ResultFileError(f"{file}: a result file is a JSON list of per-question records")
    seen = set()
    for index, record in enumerate(records):
        if not isinstance(record, dict) or "qid" not in record or "prediction" not in record:
            raise ResultFileError(f"{file}: record {index} needs a qid and a prediction: {str(record)[:200]}")
        if "answer" not in record and "label" not in record:
            raise ResultFileError(f"{file}: record {index} (qid {record['qid']}) has no answer (or label)")
        if labels_required and record.get("answer", record.get("label")) is None:
            raise ResultFileError(f"{file}: record {index} (qid {record['qid']}) is unlabelled (answer null): "
                                  f"there are no labels to compare against")
        if record["qid"] in seen:
            raise ResultFileError(f"{file}: record {index}: qid {record['qid']} appears twice")
        seen.add(record["qid"])
    return file, records
