"""What the demo and the ablation print while they run and write when they end."""
import json
import statistics
import time
from pathlib import Path

SYNTHETIC = "These are synthetic results, not benchmark results."


class Progress:
    """``progress(message)``: one line, with the seconds since the experiment started."""

    def __init__(self, name: str):
        self.name, self.start = name, time.time()

    def __call__(self, message: str) -> None:
        print(f"\n[{self.name} {time.time() - self.start:6.0f}s] {message}", flush=True)


def mean_std(values) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def write_results(out: Path, table: str, machine: dict, rows: list) -> None:
    """``results.md`` (the table) and ``results.json`` (the machine and every row) under ``out``."""
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
