"""The whole ViLA recipe in miniature: keyframe_qa on a CPU with tiny random backbones.

For every seed: generate keyframe_qa; train the 8-frame uniform teacher and the 2-frame
uniform student init; merge them; train ViLA 8->2. Beside ViLA, SeViLA's recipe on the same
backbone: self-refine the localizer of ``sevila_baseline`` 8->2 on the frozen student's
pseudo-labels, then fine-tune its answerer on the localizer's keyframes. Evaluate ViLA,
``vila_uniform`` with 2 and 8 frames, and ``sevila_baseline`` untrained (answerer: the student,
localizer: a copy of it, as SeViLA starts) and trained. The trainings run ``jobs`` at a time,
one CPU thread each (``jobs``); then each model is timed per video, alone (``demo_timing``).
Finally the table (mean +- std and the worst seed, then every seed against the paper's claim, then
ViLA paired against uniform-K, the teacher and the trained SeViLA on the same questions: the
bootstrap interval of the difference and the exact McNemar p, per seed and pooled) and, under
``out``: ``results.md``, ``results.json`` (with the CPU and library versions and the paired
figures), ``accuracy_vs_latency.png`` and ``frame_strip.png`` (``demo_report``).

These are synthetic results, not benchmark results.
"""
from pathlib import Path
from typing import Tuple

from lavis_vila.datasets.synthetic import QUESTION_TYPES, ensure_generated
from lavis_vila.experiments.demo_report import draw_example, summarize
from lavis_vila.experiments.demo_timing import time_systems
from lavis_vila.experiments.jobs import Jobs
from lavis_vila.experiments.report import Progress
from lavis_vila.experiments.stages import (
    FROM_CHECKPOINT,
    K,
    SEVILA,
    SEVILA_UNTRAINED,
    SYSTEMS,
    TEACHER,
    UNIFORM_K,
    VILA,
    System,
    T,
    evaluate,
    merged_init,
    train,
    train_and_evaluate,
)
from lavis_vila.stage_weights import join_files

# The systems each run evaluates, in its order: its trained checkpoint is theirs (``System.stage``).
SYSTEMS_OF = {"teacher": [TEACHER], "student": [UNIFORM_K, SEVILA_UNTRAINED], "vila": [VILA], "sevila": [SEVILA]}


def sevila_recipe(out: Path, data_dir: str, seed: int, student: Path) -> tuple:
    """SeViLA's two steps from the student init: self-refine the localizer, then fine-tune the answerer
    on its keyframes; (the joined checkpoint, [its metrics])."""
    localizer = train("sevila_localizer", out, data_dir, seed, FROM_CHECKPOINT, f"model.finetuned={student}")
    refined = out / "sevila_init.pth"
    join_files(str(student), str(localizer), str(refined))
    answerer = train("sevila_answerer", out, data_dir, seed, FROM_CHECKPOINT, f"model.finetuned={refined}")
    trained = out / "sevila_trained.pth"
    join_files(str(answerer), str(localizer), str(trained))
    return trained, [evaluate(SEVILA, out, data_dir, seed, trained)]


def result_row(system: System, metrics: dict, seed: int) -> dict:
    return {"model": system.label, "candidate_frames": system.candidate_frames, "selected_frames": system.selected_frames,
            "accuracy": metrics["accuracy"], "event_frame_seen": metrics["event_frame_seen"], "seed": seed,
            **{f"accuracy_{t}": metrics[f"accuracy_{t}"] for t in QUESTION_TYPES}}


def run(seeds: list, out: Path, data_dir: Path, jobs: int, vila_options: list, generator: dict,
        progress: Progress) -> Tuple[list, dict, dict]:
    """Every seed's result rows (untimed), checkpoints and per-question results ({seed: {label: records}}). Stage 1 of every seed is queued first; each
    seed's ViLA and SeViLA recipes follow as soon as its teacher and student are trained."""
    data_dirs, outs = {}, {seed: out / f"seed{seed}" for seed in seeds}
    for seed in seeds:
        progress(f"seed {seed}: keyframe_qa")
        data_dirs[seed] = ensure_generated(str(data_dir / f"seed{seed}"), **generator, seed=seed)
    with Jobs(jobs) as pool:

        def submit(seed: int, name: str, log: Path, function, *function_args):
            progress(f"seed {seed}: queued {name} (log: {log})")
            job = pool.submit(log, function, *function_args)
            job.add_done_callback(lambda done: progress(f"seed {seed}: {name} " + (
                f"FAILED: {done.exception()}" if done.exception()
                else "done, " + ", ".join(f"{m['accuracy']:.1f}%" for m in done.result()[1]))))
            return job

        def stage(seed: int, name: str, stage_name: str, init=(), options=()):
            return submit(seed, name, outs[seed] / stage_name / "console.log", train_and_evaluate,
                          SYSTEMS_OF[stage_name], stage_name, outs[seed], data_dirs[seed], seed, list(init), list(options))

        stage1 = {seed: {"teacher": stage(seed, f"stage 1a, the {T}-frame uniform teacher", "teacher"),
                         "student": stage(seed, f"stage 1b, the {K}-frame uniform student init (and the untrained "
                                                f"SeViLA on it)", "student")}
                  for seed in seeds}
        stage2 = {}
        for seed in seeds:
            teacher, student = (stage1[seed][name].result()[0] for name in ("teacher", "student"))
            stage2[seed] = {
                "vila": stage(seed, f"stage 2, ViLA {T}->{K} with the Frame-Prompter and QFormer-Distiller", "vila",
                              merged_init(teacher, student, outs[seed]), vila_options),
                "sevila": submit(seed, f"SeViLA {T}->{K}: localizer self-refinement, then answerer fine-tuning",
                                 outs[seed] / "sevila_console.log", sevila_recipe, outs[seed], data_dirs[seed], seed,
                                 student),
            }
        rows, checkpoints, predictions = [], {}, {}
        for seed in seeds:
            results = {**{name: job.result() for name, job in stage1[seed].items()},
                       **{name: job.result() for name, job in stage2[seed].items()}}
            checkpoints[seed] = {name: checkpoint for name, (checkpoint, _) in results.items()}
            evaluated = [(system, metrics) for name, (_, all_metrics) in results.items()
                         for system, metrics in zip(SYSTEMS_OF[name], all_metrics)]
            rows += [result_row(system, metrics, seed) for system, metrics in evaluated]
            predictions[seed] = {system.label: metrics["predictions"] for system, metrics in evaluated}
    order = [s.label for s in SYSTEMS]
    return sorted(rows, key=lambda r: (seeds.index(r["seed"]), order.index(r["model"]))), checkpoints, predictions


def reproduce(out: Path, data_dir: Path, seeds: list, jobs: int, vila_options: list = (), generator: dict = None,
              progress: Progress = None) -> Tuple[str, Path]:
    """Run the demo into ``out``, data under ``data_dir/seed<N>`` (``generator``: keyframe_qa's
    generator arguments but the seed); (the table, the first seed's ViLA checkpoint)."""
    progress = progress or Progress("demo")
    out.mkdir(parents=True, exist_ok=True)
    rows, checkpoints, predictions = run(seeds, out, data_dir, jobs, list(vila_options), generator or {}, progress)
    time_systems(rows, checkpoints, seeds, data_dir, progress)
    first = checkpoints[seeds[0]]["vila"]
    draw_example(first, str(data_dir / f"seed{seeds[0]}"), out / "frame_strip.png")
    table = summarize(rows, out, predictions)
    progress(f"done; results in {out}")
    return table, first
