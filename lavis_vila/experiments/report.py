"""What the demo and the ablation print while they run and write when they end."""
import json
import statistics
import time
from pathlib import Path

import numpy as np

from lavis_vila.comparison import difference_text, match, paired

SYNTHETIC = "These are synthetic results, not benchmark results."


class Progress:
    """``progress(message)``: one line, with the seconds since the experiment started."""

    def __init__(self, name: str):
        self.name, self.start = name, time.time()

    def __call__(self, message: str) -> None:
        print(f"\n[{self.name} {time.time() - self.start:6.0f}s] {message}", flush=True)


def mean_std(values) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def paired_figures(predictions: dict, pairs: list) -> list:
    """Each (A, B) of ``pairs`` on the same validation questions (``lavis_vila.comparison.paired``, bootstrap
    seed 0): one entry per seed of ``predictions`` ({seed: {system: per-question records}}), then one
    ``"pooled"`` over the questions of every seed."""
    figures = []
    for a, b in pairs:
        right = {seed: match(systems[a], systems[b])[1:3] for seed, systems in predictions.items()}
        right["pooled"] = tuple(np.concatenate([r[i] for r in right.values()]) for i in (0, 1))
        figures += [{"a": a, "b": b, "seed": seed, **paired(a_right, b_right)} for seed, (a_right, b_right) in right.items()]
    return figures


def paired_table(figures: list, labels: dict) -> list:
    """One row per pair: A - B in points [bootstrap 95% interval], exact McNemar p, pooled and per seed."""
    seeds = [seed for seed in dict.fromkeys(f["seed"] for f in figures) if seed != "pooled"]
    lines = ["Paired on the same validation questions: A - B in points [bootstrap 95% interval], exact McNemar p; "
             "* marks p < 0.05 (significant), no mark: not significant (how to read it: docs/compare.md).", "",
             "| A vs B | pooled over seeds | " + " | ".join(f"seed {seed}" for seed in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]
    for pair in dict.fromkeys((f["a"], f["b"]) for f in figures):
        cells = {f["seed"]: difference_text(f) for f in figures if (f["a"], f["b"]) == pair}
        lines.append(f"| {labels[pair[0]]} vs {labels[pair[1]]} | {cells['pooled']} | "
                     + " | ".join(cells[seed] for seed in seeds) + " |")
    return lines


def write_results(out: Path, table: str, machine: dict, rows: list, paired_rows: list = ()) -> None:
    """``results.md`` (the table) and ``results.json`` (the machine, every row and the paired figures) under ``out``."""
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({"machine": machine, "rows": rows, "paired": list(paired_rows)},
                                                 indent=2))
