"""Which Frame-Prompter, when the right frame depends on the question: keyframe_qa's two-event variant.

Every clip holds two two-frame events of different types that fill one segment of the 8 -> 2
split, and the question asks about one of them. For every seed: generate the variant; train the
8-frame uniform teacher and the 2-frame uniform student init (6 epochs each, the demo's configs
otherwise); merge them; train ViLA 8 -> 2 (at lr 3e-3, the demo's config otherwise) from the
merged checkpoint once per prompter (``segment``, the demo's; ``free_form``; ``question_aware``);
evaluate each model. The runs go ``jobs`` at a time, one CPU thread each (``jobs``), each with
its own ``console.log``. The table gives accuracy, accuracy on questions about the first and the
second event in time, and how often the asked event was among the frames answered from; then each
prompter paired with uniform-K, the teacher and ``segment`` on the same questions (the bootstrap
interval of the difference and the exact McNemar p, per seed and pooled). Writes ``results.md``,
``results.json`` (the rows and the paired figures) and ``ablation.png`` under ``out``. Synthetic
results on tiny random backbones.
"""
import json
import statistics
from pathlib import Path

from lavis_vila.datasets.synthetic import ensure_generated
from lavis_vila.experiments.jobs import Jobs
from lavis_vila.experiments.machine import describe as describe_machine
from lavis_vila.experiments.report import Progress, mean_std, paired_figures, paired_table, write_results
from lavis_vila.experiments.stages import K, T, TEACHER, UNIFORM_K, VILA, merged_init, train_and_evaluate

DATA = dict(num_train=1200, num_val=300, frames=T, size=32, event_frames=2, events=2, segments=K)
PROMPTER_OPTIONS = {  # stage-2 --options per prompter; segment keeps the demo's {scorer: frame}
    "segment": [],
    "free_form": ["model.frame_prompter=free_form", "model.prompter_options=null"],
    "question_aware": ["model.frame_prompter=question_aware", "model.prompter_options=null"],
}
# The binding of question to event takes the uniform models longer to learn than one event does:
# the teacher is near chance after the demo's 3 epochs and above 95% after 6.
STAGE1_OPTIONS = ["run.max_epoch=6"]
# Stage 2 at lr 3e-3, not the demo's 1e-2: on two events the prompter's choice is a finer one, and at
# 1e-2 question_aware swung between seeds (93.0, 83.3, 71.7) and collapsed over 10 epochs (32.3 on seed 2).
STAGE2_OPTIONS = ["run.init_lr=3e-3"]
LABELS = {"uniform": f"uniform {K} (student init)", "teacher": f"teacher {T} (uniform)",
          **{name: f"ViLA {T}->{K} {name}" for name in PROMPTER_OPTIONS}}


def accuracy_by_asked_event(predictions: list, data_dir: str) -> dict:
    """% correct on questions about the first and about the second event in time."""
    asked = {r["qid"]: r["asked"] for r in json.loads((Path(data_dir) / "val.json").read_text())}
    result = {}
    for which in ("first", "second"):
        group = [p for p in predictions if asked[p["qid"]] == which]
        result[f"accuracy_{which}"] = 100 * sum(p["prediction"] == p["answer"] for p in group) / len(group)
    return result


def row(system: str, seed: int, metrics: dict, data_dir: str) -> dict:
    return {"system": system, "seed": seed, "accuracy": metrics["accuracy"],
            "asked_event_seen": metrics["event_frame_seen"], **accuracy_by_asked_event(metrics["predictions"], data_dir)}


def run(seeds: list, out: Path, data_dir: Path, prompters: list, jobs: int, num_train: int, num_val: int,
        progress: Progress) -> tuple:
    """Every seed's rows, and the per-question results ({seed: {system: records}}). Stage 1 of every seed
    is queued first, then each seed's ViLA runs as soon as its teacher and student are trained; ``jobs``
    of them run at once."""
    data_dirs = {}
    for seed in seeds:
        progress(f"seed {seed}: keyframe_qa, two events per clip")
        data_dirs[seed] = ensure_generated(str(data_dir / f"seed{seed}"), seed=seed,
                                           **dict(DATA, num_train=num_train, num_val=num_val))
    with Jobs(jobs) as pool:

        def submit(seed: int, name: str, system, stage: str, out: Path, init: list, options: list):
            progress(f"seed {seed}: queued {LABELS[name]} (log: {out / stage / 'console.log'})")
            job = pool.submit(out / stage / "console.log", train_and_evaluate, [system], stage, out, data_dirs[seed],
                              seed, init, options)
            job.add_done_callback(lambda done: progress(
                f"seed {seed}: {LABELS[name]} " + (f"FAILED: {done.exception()}" if done.exception()
                                                   else f"done, {done.result()[1][0]['accuracy']:.1f}%")))
            return name, job

        outs = {seed: out / f"seed{seed}" for seed in seeds}
        stage1 = {seed: [submit(seed, "teacher", TEACHER, "teacher", outs[seed], [], STAGE1_OPTIONS),
                         submit(seed, "uniform", UNIFORM_K, "student", outs[seed], [], STAGE1_OPTIONS)]
                  for seed in seeds}
        stage2 = {}
        for seed in seeds:
            (_, teacher), (_, student) = stage1[seed]
            init = merged_init(teacher.result()[0], student.result()[0], outs[seed])
            stage2[seed] = [submit(seed, name, VILA, "vila", outs[seed] / name, init,
                                   STAGE2_OPTIONS + PROMPTER_OPTIONS[name]) for name in prompters]
        metrics = {seed: {name: job.result()[1][0] for name, job in stage1[seed] + stage2[seed]} for seed in seeds}
    rows = [row(name, seed, m, data_dirs[seed]) for seed in seeds for name, m in metrics[seed].items()]
    order = list(LABELS)
    predictions = {seed: {name: m["predictions"] for name, m in metrics[seed].items()} for seed in seeds}
    return sorted(rows, key=lambda r: (seeds.index(r["seed"]), order.index(r["system"]))), predictions


def pairs(prompters: list) -> list:
    """What the paired table compares: each prompter against uniform-K and the teacher, and against ``segment``."""
    return ([(name, baseline) for name in prompters for baseline in ("uniform", "teacher")]
            + [(name, "segment") for name in prompters if name != "segment" and "segment" in prompters])


def summarize(rows: list, out: Path, predictions: dict) -> str:
    """The table, then the paired comparisons (``pairs``) per seed and pooled; written with the rows,
    the paired figures and the plot."""
    seeds = sorted({r["seed"] for r in rows})
    labels = {system: label for system, label in LABELS.items() if any(r["system"] == system for r in rows)}
    machine = describe_machine()
    lines = [f"keyframe_qa two-event variant (synthetic), tiny random backbones, CPU ({machine['cpu']}, "
             f"torch {machine['torch']}); mean ± std over seeds {seeds}", "",
             "| system | accuracy % | worst seed | asked first | asked second | asked event seen % |",
             "|---|---|---|---|---|---|"]
    for system, label in labels.items():
        group = [r for r in rows if r["system"] == system]
        worst = min(group, key=lambda r: r["accuracy"])
        lines.append(f"| {label} | {mean_std([r['accuracy'] for r in group])} | {worst['accuracy']:.1f} "
                     f"(seed {worst['seed']}) | {mean_std([r['accuracy_first'] for r in group])} | "
                     f"{mean_std([r['accuracy_second'] for r in group])} | "
                     f"{mean_std([r['asked_event_seen'] for r in group])} |")
    lines += ["", "| seed | " + " | ".join(labels.values()) + " |", "|---|" + "---|" * len(labels)]
    for seed in seeds:
        by_system = {r["system"]: r["accuracy"] for r in rows if r["seed"] == seed}
        lines.append(f"| {seed} | " + " | ".join(f"{by_system[s]:.1f}" for s in labels) + " |")
    paired = paired_figures(predictions, pairs([s for s in labels if s not in ("uniform", "teacher")]))
    lines += ["", *paired_table(paired, labels)]
    table = "\n".join(lines)
    write_results(out, table, machine, rows, paired)
    plot(rows, labels, out / "ablation.png")
    return table


def plot(rows: list, labels: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 4))
    keys = [("accuracy", "all questions"), ("accuracy_first", "asked: first event"),
            ("accuracy_second", "asked: second event")]
    width = 0.26
    for offset, (key, name) in enumerate(keys):
        values = [[r[key] for r in rows if r["system"] == system] for system in labels]
        axis.bar([i + (offset - 1) * width for i in range(len(labels))], [statistics.mean(v) for v in values],
                 width, yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in values], capsize=3, label=name)
    axis.set_xticks(range(len(labels)))
    axis.set_xticklabels([label.replace(" (", "\n(").replace("ViLA 8->2 ", "ViLA 8->2\n") for label in labels.values()],
                         fontsize=7)
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 105)
    axis.set_title("keyframe_qa, two events in one segment: which prompter finds the asked one")
    axis.title.set_fontsize(9)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def reproduce(out: Path, data_dir: Path, seeds: list, prompters: list = tuple(PROMPTER_OPTIONS), jobs: int = 1,
              num_train: int = DATA["num_train"], num_val: int = DATA["num_val"]) -> tuple:
    """Run the ablation into ``out``, data under ``data_dir/seed<N>``; (the table, the rows)."""
    out.mkdir(parents=True, exist_ok=True)
    rows, predictions = run(seeds, out, data_dir, list(prompters), jobs, num_train, num_val, Progress("ablation"))
    return summarize(rows, out, predictions), rows
