"""The demo's table, its accuracy-vs-latency plot and its frame strip."""
import statistics
from pathlib import Path

from lavis_vila.datasets.annotations import load_annotations
from lavis_vila.datasets.synthetic import QUESTION_TYPES
from lavis_vila.experiments.machine import describe as describe_machine
from lavis_vila.experiments.report import mean_std, paired_figures, paired_table, write_results
from lavis_vila.experiments.stages import K, SEVILA, SYSTEMS, TEACHER, UNIFORM_K, VILA, T
from lavis_vila.frame_strip import draw_strip
from lavis_vila.inference import answer, load


# ViLA against each, paired on the same questions (``report.paired_figures``).
PAIRS = [(VILA.label, other.label) for other in (UNIFORM_K, TEACHER, SEVILA)]


def per_seed_table(by_model: dict, seeds: list, significant: dict) -> list:
    """One row per seed: every system's accuracy and ViLA's margins against the paper's claim, * where
    ``significant[(seed, other label)]``."""
    accuracy = {label: {r["seed"]: r["accuracy"] for r in group} for label, group in by_model.items()}
    vila, uniform_k, teacher = (accuracy[s.label] for s in SYSTEMS[:3])

    def mark(seed, other):
        return "*" if significant[(seed, other.label)] else ""

    lines = ["| seed | " + " | ".join(s.label for s in SYSTEMS) + f" | ViLA - uniform {K} | ViLA - teacher {T} | claim |",
             "|---|" + "---|" * (len(SYSTEMS) + 3)]
    for seed in seeds:
        gain, gap = vila[seed] - uniform_k[seed], vila[seed] - teacher[seed]
        lines.append(f"| {seed} | " + " | ".join(f"{accuracy[s.label][seed]:.1f}" for s in SYSTEMS)
                     + f" | {gain:+.1f}{mark(seed, UNIFORM_K)} | {gap:+.1f}{mark(seed, TEACHER)} | "
                     f"{'met' if gain >= 15 and gap >= -5 else 'MISSED'} |")
    met = sum(vila[s] - uniform_k[s] >= 15 and vila[s] - teacher[s] >= -5 for s in seeds)
    lines += ["", f"The claim (ViLA >= uniform {K} + 15 and >= teacher {T} - 5 points) holds on {met} of {len(seeds)} seeds."
              " * : the seed's difference is significant (exact McNemar p < 0.05, below)."]
    return lines


def summarize(rows: list, out: Path, predictions: dict) -> str:
    """The table (mean ± std over seeds, the worst seed, per seed, then ViLA paired against uniform-K, the
    teacher and the trained SeViLA on each seed's questions, ``predictions``: {seed: {label: records}});
    written with the rows, the paired figures and the plot."""
    types = list(QUESTION_TYPES)
    by_model = {s.label: [r for r in rows if r["model"] == s.label] for s in SYSTEMS}
    baseline = statistics.mean(r["latency_ms"] for r in by_model[SYSTEMS[-1].label])
    seeds = sorted({r["seed"] for r in rows})
    machine = describe_machine()
    lines = [f"keyframe_qa (synthetic), tiny random backbones, CPU ({machine['cpu']}, torch {machine['torch']}); "
             f"mean ± std and worst over seeds {seeds}",
             "", "| model | frames | accuracy % | worst seed | event frame seen % | " + " | ".join(types)
             + " | ms / video | speed-up vs sevila_baseline |",
             "|---|---|---|---|---|" + "---|" * len(types) + "---|---|"]
    for system, group in zip(SYSTEMS, by_model.values()):
        latency = statistics.mean(r["latency_ms"] for r in group)
        t, k = system.candidate_frames, system.selected_frames
        frames = f"{t}->{k}" if t != k else str(t)
        worst = min(group, key=lambda r: r["accuracy"])
        lines.append(f"| {system.label} | {frames} | {mean_std([r['accuracy'] for r in group])} | "
                     f"{worst['accuracy']:.1f} (seed {worst['seed']}) | "
                     f"{mean_std([r['event_frame_seen'] for r in group])} | "
                     + " | ".join(mean_std([r[f"accuracy_{x}"] for r in group]) for x in types)
                     + f" | {latency:.1f} | {baseline / latency:.2f}x |")
    paired = paired_figures(predictions, PAIRS)
    significant = {(f["seed"], f["b"]): f["significant"] for f in paired}
    lines += ["", "Per seed:", "", *per_seed_table(by_model, seeds, significant),
              "", *paired_table(paired, {s.label: s.label for s in SYSTEMS})]
    table = "\n".join(lines)
    write_results(out, table, machine, rows, paired)
    plot(by_model, out / "accuracy_vs_latency.png")
    return table


def plot(by_model: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.6))
    for label, group in by_model.items():
        accuracy = [r["accuracy"] for r in group]
        latency = [r["latency_ms"] for r in group]
        axis.errorbar(statistics.mean(latency), statistics.mean(accuracy),
                      yerr=statistics.stdev(accuracy) if len(group) > 1 else 0,
                      xerr=statistics.stdev(latency) if len(group) > 1 else 0, fmt="o", capsize=4, label=label)
    axis.set_xlabel("latency per video (ms, CPU, tiny backbones)")
    axis.set_ylabel("accuracy (%)")
    axis.set_title("keyframe_qa: accuracy vs latency")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def draw_example(checkpoint: Path, data_dir: str, path: Path) -> None:
    """The frame strip of the first validation question: the frames ViLA chose, and its answer."""
    record = load_annotations(str(Path(data_dir) / "val.json"))[0]
    model = load("vila", checkpoint=str(checkpoint))
    result = answer(model, str(Path(data_dir) / "videos" / f"{record['video']}.mp4"), record["question"],
                    [record[f"a{i}"] for i in range(record["num_option"])])
    draw_strip([result], str(path))
    print(f"frame strip for {record['qid']} (key frames {record['key_frames']}): chose {result.frame_idx}, "
          f"answered {result.text!r} (truth {record['a' + str(record['answer'])]!r}) -> {path}")