"""The keyframe_qa stages the demo and the ablation share: train one project config, evaluate a
checkpoint as one row of a table, merge the two stage-1 models into ViLA's stage-2 init.

Every stage runs the project configs under ``projects/vila/`` through the same code as
``python -m lavis_vila.train`` / ``evaluate`` (``lavis_vila.launch``).
"""
import json
from pathlib import Path
from typing import NamedTuple

from lavis_vila import launch
from lavis_vila.datasets.synthetic import event_frame_seen
from lavis_vila.stage_weights import merge_files

PROJECT = Path(__file__).resolve().parents[2] / "projects" / "vila"
TRAIN = {stage: PROJECT / "train" / f"keyframe_qa_tiny_{stage}.yaml"
         for stage in ("teacher", "student", "vila", "sevila_localizer", "sevila_answerer")}
EVAL = {name: PROJECT / "eval" / f"keyframe_qa_tiny_{name}_eval.yaml" for name in ("vila", "uniform", "sevila")}
T, K = 8, 2
FROM_CHECKPOINT = "model.load_finetuned=True"  # with model.finetuned=<path>: a stage's initial weights


class System(NamedTuple):
    """One evaluated model: a row of the demo's table."""

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


def last_checkpoint(output_dir: Path) -> Path:
    return max(output_dir.glob("checkpoint_[0-9]*.pth"), key=lambda p: int(p.stem.split("_")[1]))


def train(stage: str, out: Path, data_dir: str, seed: int, *extra) -> Path:
    """Train ``TRAIN[stage]`` into ``out/stage`` with ``extra`` --options; its last checkpoint."""
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
    """The ``model.*`` entries of a stage's --options: ViLA is evaluated, timed and drawn with them too."""
    return [option for option in options if option.startswith("model.")]


def train_and_evaluate(systems, stage: str, out: Path, data_dir: str, seed: int, init: list, options: list) -> tuple:
    """Train ``stage`` from ``init`` (its ``--options`` for the initial weights) with ``options``, and
    evaluate the trained checkpoint as each of ``systems`` with the ``model.*`` ones: (checkpoint, [metrics])."""
    checkpoint = train(stage, out, data_dir, seed, *init, *options)
    return checkpoint, [evaluate(system, out, data_dir, seed, checkpoint, *model_options(options)) for system in systems]


def merged_init(teacher: Path, student: Path, out: Path) -> list:
    """Merge the stage-1 teacher and student into ``out/vila_init.pth``: the stage-2 --options that start from it."""
    merged = out / "vila_init.pth"
    merge_files(str(teacher), str(student), str(merged))
    return [FROM_CHECKPOINT, f"model.finetuned={merged}"]
