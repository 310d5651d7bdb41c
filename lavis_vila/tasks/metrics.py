"""Accuracy metrics of the paper's tables, from per-sample records (percent).

- overall accuracy (micro) and accuracy per fine question type (the qid prefix);
- NExT-QA: the Temporal / Causal / Descriptive groups (fine types by first letter T / C / D);
- STAR: the unweighted mean of its four types, the paper's "Avg".

``agg_metrics`` (what the runner selects checkpoints on) is STAR's Avg when all four STAR types
are present, otherwise the overall accuracy.

Accuracies count only labelled records (``answer`` not None); ``labelled`` says how many. A split
without labels (a test release whose answers are withheld) reports no accuracy at all: ``accuracy``
and ``agg_metrics`` are None and ``note`` says so; ``tools.submission`` writes its leaderboard file.
"""
from collections import defaultdict
from typing import Dict, Iterable, List, Optional

NEXTQA_TYPES = {"CW", "CH", "TN", "TC", "TP", "DL", "DC", "DO"}
NEXTQA_GROUPS = {"T": "Temporal", "C": "Causal", "D": "Descriptive"}
STAR_TYPES = ("Interaction", "Sequence", "Prediction", "Feasibility")


def question_type(qid) -> str:
    """A question's fine type: its qid up to the first ``_`` (NExT-QA's ``CW``, STAR's ``Interaction``,
    keyframe_qa's ``Colour``)."""
    return str(qid).split("_")[0]


def type_group(qtype: str) -> Optional[str]:
    """The NExT-QA group (Temporal, Causal, Descriptive) of a fine type; None for other datasets' types."""
    return NEXTQA_GROUPS[qtype[0]] if qtype in NEXTQA_TYPES else None


def percent(correct: int, total: int) -> float:
    return 100.0 * correct / total if total else 0.0


NO_LABELS = ("no labels: this split's answers are withheld, so there is no accuracy; submit the "
             "predictions (python -m lavis_vila.tools.submission)")


def unlabelled_metrics(records: List[dict]) -> dict:
    counts = defaultdict(int)
    for record in records:
        counts[record["question_type"]] += 1
    return {"accuracy": None, "agg_metrics": None, "total": len(records), "labelled": 0, "note": NO_LABELS,
            **{f"count_{t}": counts[t] for t in sorted(counts)}}


def accuracy_metrics(records: Iterable[dict]) -> Dict[str, float]:
    """``records``: dicts with ``prediction``, ``answer`` (None where unlabelled) and ``question_type``."""
    records = list(records)
    labelled = [r for r in records if r["answer"] is not None]
    if records and not labelled:
        return unlabelled_metrics(records)
    correct, total = defaultdict(int), defaultdict(int)
    for record in labelled:
        hit = int(record["prediction"] == record["answer"])
        qtype = record["question_type"]
        correct[qtype] += hit
        total[qtype] += 1
    num = sum(total.values())
    metrics = {"accuracy": percent(sum(correct.values()), num), "total": len(records), "labelled": num}
    metrics.update({f"accuracy_{t}": percent(correct[t], total[t]) for t in sorted(total)})
    metrics.update({f"count_{t}": total[t] for t in sorted(total)})

    for group in NEXTQA_GROUPS.values():
        members = [t for t in total if type_group(t) == group]
        if members:
            metrics[f"accuracy_{group}"] = percent(sum(correct[t] for t in members), sum(total[t] for t in members))

    metrics["agg_metrics"] = metrics["accuracy"]
    if all(t in total for t in STAR_TYPES):
        metrics["star_avg"] = sum(metrics[f"accuracy_{t}"] for t in STAR_TYPES) / len(STAR_TYPES)
        metrics["agg_metrics"] = metrics["star_avg"]
    return metrics
