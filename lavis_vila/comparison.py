"""Paired comparison of two evaluations on the same questions, and of one run with a published number.

An evaluation writes one record per question (``result/<split>_epoch<N>.json``: ``qid``,
``prediction``, ``answer``; ``label`` is read where ``answer`` is absent; ``lavis_vila.result_files``
reads them). Two runs are matched by
qid; a question counts once, as right or wrong in each run. The statistics are SciPy's (a LAVIS
dependency):

- the exact McNemar test: ``scipy.stats.binomtest(only_a, only_a + only_b, 0.5)``, two-sided, on the
  discordant questions (those exactly one run got right); 1 when there are none;
- the 95% interval of the difference of accuracies: ``scipy.stats.bootstrap`` of the mean per-question
  difference (-1, 0 or 1), percentile method, questions resampled with a seeded generator (the same
  input and seed give the same interval);
- one run's accuracy against a published number: the exact binomial (Clopper-Pearson) interval,
  ``binomtest(correct, n).proportion_ci(method="exact")``, and the binomial test of ``correct`` of ``n``
  at the published rate.

Everything is given overall and per question type (``tasks.metrics.question_type``: the qid prefix),
with NExT-QA's Temporal / Causal / Descriptive groups too.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.stats import binomtest, bootstrap

from lavis_vila.tasks.metrics import NEXTQA_GROUPS, percent, question_type, type_group

RESAMPLES = 10000
CONFIDENCE = 0.95
SIGNIFICANCE = 0.05


class ComparisonError(ValueError):
    """Runs that cannot be compared, or a published accuracy that cannot be read: the message says which."""


def outcomes(records: List[dict]) -> Dict[str, Tuple[str, bool]]:
    """qid -> (question type, answered right)."""
    return {str(r["qid"]): (r.get("question_type") or question_type(r["qid"]),
                            r["prediction"] == r.get("answer", r.get("label"))) for r in records}


def match(a: List[dict], b: List[dict], intersection: bool = False) -> Tuple[List[str], np.ndarray, np.ndarray, dict]:
    """(question types, A right, B right, how many qids were only in A / only in B), the shared qids in
    order. Different qid sets are an error unless ``intersection``: then only the shared qids count."""
    a, b = outcomes(a), outcomes(b)
    only_a, only_b = len(a.keys() - b.keys()), len(b.keys() - a.keys())
    if (only_a or only_b) and not intersection:
        raise ComparisonError(f"the two runs answer different questions: {only_a} qids only in A, {only_b} only in B "
                              "(compare the shared ones with --intersection)")
    qids = sorted(a.keys() & b.keys())
    if not qids:
        raise ComparisonError("the two runs share no qid")
    a_right, b_right = np.array([a[q][1] for q in qids]), np.array([b[q][1] for q in qids])
    return [a[q][0] for q in qids], a_right, b_right, {"only_a": only_a, "only_b": only_b}


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts (1 when there are none)."""
    n = only_a + only_b
    return float(binomtest(only_a, n, 0.5).pvalue) if n else 1.0


def difference_interval(a_right: np.ndarray, b_right: np.ndarray, seed: int = 0,
                        resamples: int = RESAMPLES) -> Tuple[float, float]:
    """The bootstrap 95% interval of accuracy(A) - accuracy(B), in points."""
    difference = a_right.astype(float) - b_right.astype(float)
    if len(difference) < 2:  # nothing to resample
        return 100 * float(difference.mean()), 100 * float(difference.mean())
    result = bootstrap((difference,), np.mean, n_resamples=resamples, confidence_level=CONFIDENCE,
                       method="percentile", batch=max(1, 2_000_000 // len(difference)),
                       random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return 100 * float(low), 100 * float(high)


def paired(a_right, b_right, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """Accuracies, difference, its interval, McNemar's p and the 2x2 counts of two aligned runs."""
    a_right, b_right = np.asarray(a_right, dtype=bool), np.asarray(b_right, dtype=bool)
    only_a, only_b = int(np.sum(a_right & ~b_right)), int(np.sum(~a_right & b_right))
    low, high = difference_interval(a_right, b_right, seed, resamples)
    p_value = mcnemar_p(only_a, only_b)
    n, a_correct, b_correct = len(a_right), int(a_right.sum()), int(b_right.sum())
    return {"questions": n, "accuracy_a": percent(a_correct, n), "accuracy_b": percent(b_correct, n),
            "difference": percent(a_correct - b_correct, n),
            "interval": [low, high], "p_value": p_value, "significant": p_value < SIGNIFICANCE,
            "only_a": only_a, "only_b": only_b, "both": int(np.sum(a_right & b_right)),
            "neither": int(np.sum(~a_right & ~b_right))}


def breakdown(types: List[str], figures, *columns) -> Dict[str, dict]:
    """``figures(*columns restricted to a set of questions)`` for each question type, then each NExT-QA group."""
    types = np.array(types)
    subsets = {t: types == t for t in sorted(set(types))}
    groups = {type_group(t) for t in subsets} - {None}
    subsets.update({g: np.isin(types, [t for t in subsets if type_group(t) == g]) for g in sorted(groups)})
    return {name: figures(*(column[subset] for column in columns)) for name, subset in subsets.items()}


def compare(a: List[dict], b: List[dict], intersection: bool = False, seed: int = 0,
            resamples: int = RESAMPLES) -> dict:
    """Run A against run B over their questions: ``overall`` and ``by_type`` figures (``paired``), and
    ``left_out``: how many qids only one run has (nonzero only with ``intersection``)."""
    types, a_right, b_right, left_out = match(a, b, intersection)
    return {"overall": paired(a_right, b_right, seed, resamples), "intersection": intersection, "left_out": left_out,
            "by_type": breakdown(types, lambda x, y: paired(x, y, seed, resamples), a_right, b_right),
            "seed": seed, "resamples": resamples}


def accuracy_figures(right: np.ndarray, reference: Optional[float] = None) -> dict:
    """Accuracy and its exact binomial 95% interval; with ``reference`` (percent), whether it is inside,
    and the binomial test of the run's count at that rate."""
    correct, n = int(np.sum(right)), len(right)
    test = binomtest(correct, n, reference / 100 if reference is not None else 0.5)
    interval = test.proportion_ci(confidence_level=CONFIDENCE, method="exact")
    figures = {"questions": n, "correct": correct, "accuracy": percent(correct, n),
               "interval": [100 * interval.low, 100 * interval.high]}
    if reference is not None:
        figures.update(reference=reference, inside=figures["interval"][0] <= reference <= figures["interval"][1],
                       p_value=float(test.pvalue))
    return figures


def against_reference(records: List[dict], reference: float) -> dict:
    """One run against a published accuracy (percent): ``overall`` (with the test) and ``by_type``."""
    if not 0 <= reference <= 100:
        raise ComparisonError(f"a published accuracy is a percentage in [0, 100], not {reference}")
    if not records:
        raise ComparisonError("the run has no questions")
    results = outcomes(records)
    types, right = [t for t, _ in results.values()], np.array([r for _, r in results.values()])
    return {"overall": accuracy_figures(right, reference), "by_type": breakdown(types, accuracy_figures, right)}


def reference_accuracy(value: str) -> Tuple[float, str]:
    """A published accuracy: a number, or a metrics JSON whose ``accuracy`` it is; (value, where from)."""
    try:
        return float(value), "the number given"
    except ValueError:
        pass
    try:
        return float(json.loads(Path(value).read_text())["accuracy"]), f"the accuracy in {value}"
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ComparisonError(f"--reference {value}: neither a number nor a metrics JSON with an accuracy "
                              f"({type(error).__name__}: {error})") from None


# ---------------------------------------------------------------- the reports (Markdown)

def p_text(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def row_name(name: str) -> str:
    """A row of a report: ``all``, a question type, or a NExT-QA group (marked, as it repeats its types)."""
    return f"{name} (group)" if name in NEXTQA_GROUPS.values() else name


def difference_text(figures: dict) -> str:
    """``+12.0 [+4.0, +20.0], p = 0.004*``: the difference in points, its interval, McNemar's p; * if significant."""
    low, high = figures["interval"]
    return (f"{figures['difference']:+.1f} [{low:+.1f}, {high:+.1f}], p = {p_text(figures['p_value'])}"
            + ("*" if figures["significant"] else ""))


def comparison_report(result: dict, a: str, b: str) -> str:
    """The Markdown report of ``compare``: what was compared, how, and one row per set of questions."""
    left_out, overall = result["left_out"], result["overall"]
    lines = ["# A vs B", "", f"- A: `{a}`", f"- B: `{b}`",
             f"- {overall['questions']} questions matched by qid"
             + (f"; restricted to the shared qids (--intersection): {left_out['only_a']} only in A and "
                f"{left_out['only_b']} only in B left out" if result["intersection"] else ""),
             f"- A - B in accuracy points; 95% interval: bootstrap of the questions ({result['resamples']} resamples, "
             f"seed {result['seed']}, percentile; scipy.stats.bootstrap); p: exact two-sided McNemar test on the "
             "questions only one run got right (scipy.stats.binomtest); * marks p < 0.05", "",
             "| questions | n | A % | B % | A - B [95% interval], McNemar p | only A right | only B right "
             "| both right | neither |", "|---|---|---|---|---|---|---|---|---|"]
    for name, figures in [("all", overall), *result["by_type"].items()]:
        lines.append(f"| {row_name(name)} | {figures['questions']} | {figures['accuracy_a']:.1f} | {figures['accuracy_b']:.1f} | "
                     f"{difference_text(figures)} | {figures['only_a']} | {figures['only_b']} | {figures['both']} | "
                     f"{figures['neither']} |")
    verdict = "significant" if overall["significant"] else "not significant (p >= 0.05)"
    lines += ["", f"Overall: A - B = {overall['difference']:+.1f} points, {verdict}."]
    return "\n".join(lines) + "\n"


def reference_report(result: dict, run: str, source: str) -> str:
    """The Markdown report of ``against_reference``."""
    overall = result["overall"]
    low, high = overall["interval"]
    lines = ["# Run vs a published accuracy", "", f"- run: `{run}`",
             f"- published accuracy: {overall['reference']:g} ({source})",
             "- 95% interval: exact binomial (Clopper-Pearson; scipy.stats.binomtest(...).proportion_ci); p: two-sided "
             "binomial test of the run's count at the published rate", "",
             "| questions | n | correct | accuracy % | 95% interval |", "|---|---|---|---|---|"]
    for name, figures in [("all", overall), *result["by_type"].items()]:
        lines.append(f"| {row_name(name)} | {figures['questions']} | {figures['correct']} | {figures['accuracy']:.1f} | "
                     f"[{figures['interval'][0]:.1f}, {figures['interval'][1]:.1f}] |")
    where = "inside" if overall["inside"] else "outside"
    lines += ["", f"The published {overall['reference']:g} is {where} the run's interval [{low:.1f}, {high:.1f}] "
                  f"(p = {p_text(overall['p_value'])})."]
    return "\n".join(lines) + "\n"
