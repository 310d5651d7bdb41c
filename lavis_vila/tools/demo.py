"""The whole ViLA recipe in miniature: keyframe_qa on a CPU with tiny random backbones.

    python -m lavis_vila.tools.demo --out output/demo --data-dir data/keyframe_qa --seed 0 1 2

For every seed: generate keyframe_qa; train the 8-frame uniform teacher and the 2-frame
uniform student init; merge them; train ViLA 8->2. Beside ViLA, SeViLA's recipe on the same
backbone: self-refine the localizer of ``sevila_baseline`` 8->2 on the frozen student's
pseudo-labels, then fine-tune its answerer on the localizer's keyframes. Evaluate ViLA,
``vila_uniform`` with 2 and 8 frames, and ``sevila_baseline`` untrained (answerer: the student,
localizer: a copy of it, as SeViLA starts) and trained. The trainings run ``--jobs`` at a time,
one CPU thread each (``tools.jobs``); then each model is timed per video, alone. Finally print the
table (mean +- std and the worst seed, then every seed against the paper's claim) and write
under --out: ``results.md``, ``results.json`` (with the CPU and library versions),
``accuracy_vs_latency.png`` and ``frame_strip.png``.

Every stage runs the project configs under ``projects/vila/`` through the same code as
``python -m lavis_vila.train`` / ``evaluate``; these are synthetic results, not benchmark results.
"""
import argparse
import json
import statistics
import time
from pathlib import Path
from typing import NamedTuple, Tuple

from lavis_vila import launch
from lavis_vila.annotations import load_annotations
from lavis_vila.datasets.mc_video_qa import MCVideoQADataset
from lavis_vila.datasets.synthetic import QUESTION_TYPES, ensure_generated, event_frame_seen
from lavis_vila.models import build_model, build_model_from_checkpoint
from lavis_vila.processors import VideoEvalProcessor
from lavis_vila.tools.jobs import Jobs, default_workers
from lavis_vila.tools.machine import describe as describe_machine
from lavis_vila.tools.make_synthetic import add_generator_arguments, generator_kwargs
from lavis_vila.tools.merge_weights import merge_files
from lavis_vila.tools.sevila_weights import join_files

PROJECT = Path(__file__).resolve().parents[2] / "projects" / "vila"
TRAIN = {stage: PROJECT / "train" / f"keyframe_qa_tiny_{stage}.yaml"
         for stage in ("teacher", "student", "vila", "sevila_localizer", "sevila_answerer")}
EVAL = {name: PROJECT / "eval" / f"keyframe_qa_tiny_{name}_eval.yaml" for name in ("vila", "uniform", "sevila")}
T, K = 8, 2


class System(NamedTuple):
    """One row of the demo table."""

    label: str
    arch: str
    candidate_frames: int
    selected_frames: int
    eval_config: str  # key of EVAL
    stage: str  # whose trained checkpoint it evaluates


SYSTEMS = [
    System(f"ViLA {T}->{K}", "vila", T, K, "vila", "vila"),
    System(f"vila_uniform {K} (student init)", "vila_uniform", K, K, "uniform", "student"),
    System(f"vila_uniform {T} (teacher)", "vila_uniform", T, T, "uniform", "teacher"),
    System(f"sevila_baseline {T}->{K} (localizer untrained)", "sevila_baseline", T, K, "sevila", "student"),
    System(f"sevila_baseline {T}->{K} (self-refined)", "sevila_baseline", T, K, "sevila", "sevila"),
]
VILA, UNIFORM_K, TEACHER, SEVILA_UNTRAINED, SEVILA = SYSTEMS
# The systems each run evaluates, in its order: its trained checkpoint is theirs (``System.stage``).
SYSTEMS_OF = {"teacher": [TEACHER], "student": [UNIFORM_K, SEVILA_UNTRAINED], "vila": [VILA], "sevila": [SEVILA]}


class Progress:
    def __init__(self, name: str = "demo"):
        self.name, self.start = name, time.time()

    def __call__(self, message: str) -> None:
        print(f"\n[{self.name} {time.time() - self.start:6.0f}s] {message}", flush=True)


def last_checkpoint(output_dir: Path) -> Path:
    return max(output_dir.glob("checkpoint_[0-9]*.pth"), key=lambda p: int(p.stem.split("_")[1]))


def train(stage: str, out: Path, data_dir: str, seed: int, *extra) -> Path:
    runner = launch.main(["--cfg-path", str(TRAIN[stage]), "--options", f"datasets.keyframe_qa.data_dir={data_dir}",
                          f"run.output_dir={out / stage}", f"run.seed={seed}", "run.valid_splits=[]", *extra])
    return last_checkpoint(Path(runner.output_dir))


def evaluate(system: System, out: Path, data_dir: str, seed: int, checkpoint: Path, *extra) -> dict:
    """The system's validation metrics, with ``event_frame_seen``: the % of clips where at least one
    frame it answered from is an event (key) frame, and ``predictions``, one record per question."""
    config, frames = system.eval_config, system.candidate_frames
    runner = launch.main(["--cfg-path", str(EVAL[config]), "--options", f"datasets.keyframe_qa.data_dir={data_dir}",
                          f"run.output_dir={out / f'eval_{system.stage}_{config}{frames}'}", f"run.seed={seed}",
                          f"model.finetuned={checkpoint}",
                          f"datasets.keyframe_qa.vis_processor.eval.num_frames={frames}", *extra], evaluate=True)
    (metrics_file,) = Path(runner.output_dir).glob("result/val_epoch*_metrics.json")
    predictions = json.loads(metrics_file.with_name(metrics_file.name.replace("_metrics", "")).read_text())
    seen = event_frame_seen(predictions, data_dir, frames)
    return {**json.loads(metrics_file.read_text()), "event_frame_seen": 100 * sum(seen.values()) / len(seen),
            "predictions": predictions}


def model_options(options) -> list:
    """The ``model.*`` entries of ``--vila-options``: ViLA is evaluated, timed and drawn with them too."""
    return [option for option in options if option.startswith("model.")]


def load_system(system: System, checkpoint: Path):
    """The evaluation-mode model of one row: ViLA as its checkpoint records it was trained (with
    ``--vila-options``), the others from their tiny configs."""
    if system.stage == "vila":
        return build_model_from_checkpoint(str(checkpoint)).eval()
    arch, frames, selected = system.arch, system.candidate_frames, system.selected_frames
    extra = {"num_candidate_frames": frames, "num_selected_frames": selected} if arch != "vila_uniform" else {}
    return build_model(arch, "tiny", load_finetuned=True, finetuned=str(checkpoint), **extra).eval()


def time_per_video(systems_and_checkpoints, data_dir: str, videos: int = 12, warmup: int = 2) -> list:
    """Median ms per video (batch 1, frames already decoded), the models interleaved."""
    models, samples = [], []
    for system, checkpoint in systems_and_checkpoints:
        frames = system.candidate_frames
        models.append(load_system(system, checkpoint))
        dataset = MCVideoQADataset(VideoEvalProcessor(image_size=32, num_frames=frames), None,
                                   str(Path(data_dir) / "videos"), [str(Path(data_dir) / "val.json")])
        samples.append([dataset.collater([dataset[i]]) for i in range(warmup + videos)])
    times = [[] for _ in models]
    for i in range(warmup + videos):
        for m, model in enumerate(models):
            start = time.perf_counter()
            model.predict_answers(samples[m][i])
            if i >= warmup:
                times[m].append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def train_and_evaluate(systems, stage: str, out: Path, data_dir: str, seed: int, init: list, options: list) -> tuple:
    """Train ``stage`` from ``init`` (its ``--options`` for the initial weights) with ``options``, and
    evaluate the trained checkpoint as each of ``systems`` with the ``model.*`` ones: (checkpoint, [metrics])."""
    checkpoint = train(stage, out, data_dir, seed, *init, *options)
    return checkpoint, [evaluate(system, out, data_dir, seed, checkpoint, *model_options(options)) for system in systems]


def sevila_recipe(out: Path, data_dir: str, seed: int, student: Path) -> tuple:
    """SeViLA's two steps from the student init: self-refine the localizer, then fine-tune the answerer
    on its keyframes; (the joined checkpoint, [its metrics])."""
    initial = ["model.load_finetuned=True"]
    localizer = train("sevila_localizer", out, data_dir, seed, *initial, f"model.finetuned={student}")
    refined = out / "sevila_init.pth"
    join_files(str(student), str(localizer), str(refined))
    answerer = train("sevila_answerer", out, data_dir, seed, *initial, f"model.finetuned={refined}")
    trained = out / "sevila_trained.pth"
    join_files(str(answerer), str(localizer), str(trained))
    return trained, [evaluate(SEVILA, out, data_dir, seed, trained)]


def run(args, progress: Progress) -> Tuple[list, dict]:
    """Every seed's result rows (untimed) and checkpoints. Stage 1 of every seed is queued first; each
    seed's ViLA and SeViLA recipes follow as soon as its teacher and student are trained."""
    data_dirs, out = {}, {seed: Path(args.out) / f"seed{seed}" for seed in args.seed}
    for seed in args.seed:
        progress(f"seed {seed}: keyframe_qa")
        data_dirs[seed] = ensure_generated(str(Path(args.data_dir) / f"seed{seed}"), **generator_kwargs(args, seed=seed))
    with Jobs(args.jobs) as jobs:

        def submit(seed: int, name: str, log: Path, function, *function_args):
            progress(f"seed {seed}: queued {name} (log: {log})")
            job = jobs.submit(log, function, *function_args)
            job.add_done_callback(lambda done: progress(f"seed {seed}: {name} " + (
                f"FAILED: {done.exception()}" if done.exception()
                else "done, " + ", ".join(f"{m['accuracy']:.1f}%" for m in done.result()[1]))))
            return job

        def stage(seed: int, name: str, stage_name: str, init=(), options=()):
            return submit(seed, name, out[seed] / stage_name / "console.log", train_and_evaluate,
                          SYSTEMS_OF[stage_name], stage_name, out[seed], data_dirs[seed], seed, list(init), list(options))

        stage1 = {seed: {"teacher": stage(seed, f"stage 1a, the {T}-frame uniform teacher", "teacher"),
                         "student": stage(seed, f"stage 1b, the {K}-frame uniform student init (and the untrained "
                                                f"SeViLA on it)", "student")}
                  for seed in args.seed}
        stage2 = {}
        for seed in args.seed:
            teacher, student = (stage1[seed][name].result()[0] for name in ("teacher", "student"))
            merged = out[seed] / "vila_init.pth"
            merge_files(str(teacher), str(student), str(merged))
            stage2[seed] = {
                "vila": stage(seed, f"stage 2, ViLA {T}->{K} with the Frame-Prompter and QFormer-Distiller", "vila",
                              ["model.load_finetuned=True", f"model.finetuned={merged}"], args.vila_options),
                "sevila": submit(seed, f"SeViLA {T}->{K}: localizer self-refinement, then answerer fine-tuning",
                                 out[seed] / "sevila_console.log", sevila_recipe, out[seed], data_dirs[seed], seed, student),
            }
        rows, checkpoints = [], {}
        for seed in args.seed:
            results = {**{name: job.result() for name, job in stage1[seed].items()},
                       **{name: job.result() for name, job in stage2[seed].items()}}
            checkpoints[seed] = {name: checkpoint for name, (checkpoint, _) in results.items()}
            rows += [result_row(system, metrics, seed) for name, (_, all_metrics) in results.items()
                     for system, metrics in zip(SYSTEMS_OF[name], all_metrics)]
    return sorted(rows, key=lambda r: (args.seed.index(r["seed"]), [s.label for s in SYSTEMS].index(r["model"]))), checkpoints


def result_row(system: System, metrics: dict, seed: int) -> dict:
    return {"model": system.label, "candidate_frames": system.candidate_frames, "selected_frames": system.selected_frames,
            "accuracy": metrics["accuracy"], "event_frame_seen": metrics["event_frame_seen"], "seed": seed,
            **{f"accuracy_{t}": metrics[f"accuracy_{t}"] for t in QUESTION_TYPES}}


def time_systems(rows: list, checkpoints: dict, args, progress: Progress) -> None:
    """Fill each row's ``latency_ms``: every seed's models timed together, alone on the CPU."""
    for seed in args.seed:
        progress(f"seed {seed}: timing each model per video")
        latencies = time_per_video([(s, checkpoints[seed][s.stage]) for s in SYSTEMS],
                                   str(Path(args.data_dir) / f"seed{seed}"))
        for system, latency in zip(SYSTEMS, latencies):
            next(r for r in rows if r["seed"] == seed and r["model"] == system.label)["latency_ms"] = latency


def draw_example(checkpoint: Path, data_dir: str, path: Path) -> None:
    from lavis_vila.frame_strip import draw_strip
    from lavis_vila.inference import answer, load

    record = load_annotations(str(Path(data_dir) / "val.json"))[0]
    model = load("vila", checkpoint=str(checkpoint))
    result = answer(model, str(Path(data_dir) / "videos" / f"{record['video']}.mp4"), record["question"],
                    [record[f"a{i}"] for i in range(record["num_option"])])
    draw_strip([result], str(path))
    print(f"frame strip for {record['qid']} (key frames {record['key_frames']}): chose {result.frame_idx}, "
          f"answered {result.text!r} (truth {record['a' + str(record['answer'])]!r}) -> {path}")


def mean_std(values) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def per_seed_table(by_model: dict, seeds: list) -> list:
    """One row per seed: every system's accuracy and ViLA's margins against the paper's claim."""
    accuracy = {label: {r["seed"]: r["accuracy"] for r in group} for label, group in by_model.items()}
    vila, uniform_k, teacher = (accuracy[s.label] for s in SYSTEMS[:3])
    lines = ["| seed | " + " | ".join(s.label for s in SYSTEMS) + f" | ViLA - uniform {K} | ViLA - teacher {T} | claim |",
             "|---|" + "---|" * (len(SYSTEMS) + 3)]
    for seed in seeds:
        gain, gap = vila[seed] - uniform_k[seed], vila[seed] - teacher[seed]
        lines.append(f"| {seed} | " + " | ".join(f"{accuracy[s.label][seed]:.1f}" for s in SYSTEMS)
                     + f" | {gain:+.1f} | {gap:+.1f} | {'met' if gain >= 15 and gap >= -5 else 'MISSED'} |")
    met = sum(vila[s] - uniform_k[s] >= 15 and vila[s] - teacher[s] >= -5 for s in seeds)
    lines += ["", f"The claim (ViLA >= uniform {K} + 15 and >= teacher {T} - 5 points) holds on {met} of {len(seeds)} seeds."]
    return lines


def summarize(rows: list, out: Path) -> str:
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
    lines += ["", "Per seed:", "", *per_seed_table(by_model, seeds)]
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
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


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the ViLA recipe on the synthetic keyframe_qa benchmark.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="output/demo")
    parser.add_argument("--data-dir", default="data/keyframe_qa", help="one sub-directory per seed")
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of data and training (3 fit in 15 minutes on a 2-core Xeon; the README also "
                             "reports --seed 0 1 2 3 4)")
    parser.add_argument("--vila-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="extra --options for stage 2 (ViLA), e.g. model.prompter_gradient=selected; "
                             "the model.* ones also apply where ViLA is evaluated, timed and drawn")
    parser.add_argument("--jobs", type=int, default=default_workers(),
                        help="trainings at once, one CPU thread each (the results do not depend on it)")
    add_generator_arguments(parser, seed=False)
    args = parser.parse_args(argv)
    progress = Progress()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rows, checkpoints = run(args, progress)
    time_systems(rows, checkpoints, args, progress)
    first = checkpoints[args.seed[0]]["vila"]
    draw_example(first, str(Path(args.data_dir) / f"seed{args.seed[0]}"), Path(args.out) / "frame_strip.png")
    table = summarize(rows, Path(args.out))
    progress(f"done; results in {args.out}")
    print("\nThese are synthetic results, not benchmark results.\n")
    print(table)
    print(f"\nAsk seed {args.seed[0]}'s ViLA about a video in the web demo:\n"
          f"  python -m lavis_vila.tools.app --checkpoint {first}")


if __name__ == "__main__":
    main()
