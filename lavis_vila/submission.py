"""Leaderboard submission files from an evaluation's per-question results (``tools.submission``).

Which evaluation servers exist (checked against their published scoring code and samples):

- **VALUE** (value-leaderboard.github.io; scoring code github.com/VALUE-Leaderboard/EvaluationTools)
  scores How2QA, TVQA and VLEP. Each split is one JSON object ``{"<question id>": <option index>}``:
  How2QA's and TVQA's ``qid``, VLEP's ``example_id``. Files: ``how2qa_test_public_predictions.json``,
  ``tvqa_test_public_predictions.json``, ``vlep_test_predictions.json`` (``..._val_...``/``vlep_dev_...``
  for the labelled split); the server takes a zip of ``<task>/<file>`` with val and test.
- **VLEP's own** CodaLab server (github.com/jayleicn/VideoLanguageFuturePred, standalone_eval):
  JSON lines ``{"example_id": int, "pred_ans": int}``, files ``vlep_test_submission.jsonl`` and
  ``vlep_dev_submission.jsonl``, zipped together without a folder.
- TVQA's own leaderboard (tvqa.cs.unc.edu): its format is not confirmed here; VALUE's scorer for
  TVQA, by TVQA's author, reads the ``{qid: index}`` object above.
- Not written: STAR's test server (EvalAI; format not confirmed here). NExT-QA's test labels are
  public, so it has no server: evaluate ``test`` like ``val``.

A result row carries ``release_id`` (the release's own id); a row without one cannot be submitted.
"""
import json
from dataclasses import dataclass
from typing import Callable, Dict, List

from lavis_vila.atomic_files import write_text


class SubmissionError(ValueError):
    """Results that cannot make a submission file; the message names the file and the record."""


@dataclass(frozen=True)
class Server:
    name: str
    file_names: Dict[str, str]  # split -> the file name the server expects
    render: Callable[[Dict[int, int]], str]  # release id -> predicted option index, as the file's text


def id_to_option_object(predictions: Dict[int, int]) -> str:
    return json.dumps({str(release_id): option for release_id, option in predictions.items()})


def vlep_lines(predictions: Dict[int, int]) -> str:
    return "".join(json.dumps({"example_id": release_id, "pred_ans": option}) + "\n"
                   for release_id, option in predictions.items())


SERVERS: Dict[str, Dict[str, Server]] = {  # benchmark -> server name -> server; the first is the default
    "tvqa": {"value": Server("value", {"test": "tvqa_test_public_predictions.json",
                                       "val": "tvqa_val_predictions.json"}, id_to_option_object)},
    "how2qa": {"value": Server("value", {"test": "how2qa_test_public_predictions.json",
                                         "val": "how2qa_val_predictions.json"}, id_to_option_object)},
    "vlep": {"vlep": Server("vlep", {"test": "vlep_test_submission.jsonl", "val": "vlep_dev_submission.jsonl"},
                            vlep_lines),
             "value": Server("value", {"test": "vlep_test_predictions.json", "val": "vlep_dev_predictions.json"},
                             id_to_option_object)},
}


def predictions_by_release_id(records: List[dict], source: str) -> Dict[int, int]:
    """release id (an integer, as every server reads it) -> predicted option index, in the results' order."""
    predictions = {}
    for index, record in enumerate(records):
        where = f"{source}: record {index} (qid {record.get('qid')})"
        if "prediction" not in record:
            raise SubmissionError(f"{where}: no prediction")
        release_id = record.get("release_id")
        try:
            release_id = int(release_id)
        except (TypeError, ValueError):
            raise SubmissionError(f"{where}: release_id {release_id!r} is not the release's integer question id; "
                                  f"prepare the split from the release that the server scores") from None
        if release_id in predictions:
            raise SubmissionError(f"{where}: release id {release_id} appears twice")
        predictions[release_id] = int(record["prediction"])
    if not predictions:
        raise SubmissionError(f"{source}: holds no results")
    return predictions


def server_of(benchmark: str, server: str = None) -> Server:
    if benchmark not in SERVERS:
        raise SubmissionError(f"no submission format for '{benchmark}': one of {sorted(SERVERS)}")
    servers = SERVERS[benchmark]
    if server is None:
        return next(iter(servers.values()))
    if server not in servers:
        raise SubmissionError(f"{benchmark} is scored by {sorted(servers)}, not '{server}'")
    return servers[server]


def write_submission(records: List[dict], source: str, benchmark: str, out: str, server: str = None) -> Server:
    """Write ``out`` (whole or not at all) in the server's format; returns the server."""
    chosen = server_of(benchmark, server)
    write_text(out, chosen.render(predictions_by_release_id(records, source)))
    return chosen
