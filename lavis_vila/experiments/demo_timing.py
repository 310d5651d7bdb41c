"""The demo's speed column: every row's model timed per video, the models interleaved, alone on the CPU."""
import statistics
import time
from pathlib import Path

from lavis_vila.datasets.mc_video_qa import MCVideoQADataset
from lavis_vila.experiments.report import Progress
from lavis_vila.experiments.stages import SYSTEMS, System
from lavis_vila.models import build_model, build_model_from_checkpoint
from lavis_vila.processors import VideoEvalProcessor


def load_system(system: System, checkpoint: Path):
    """The evaluation-mode model of one row: ViLA as its checkpoint records it was trained (with
    the demo's ``--vila-options``), the others from their tiny configs."""
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


def time_systems(rows: list, checkpoints: dict, seeds: list, data_dir: Path, progress: Progress) -> None:
    """Fill each row's ``latency_ms``: every seed's models timed together."""
    for seed in seeds:
        progress(f"seed {seed}: timing each model per video")
        latencies = time_per_video([(s, checkpoints[seed][s.stage]) for s in SYSTEMS], str(data_dir / f"seed{seed}"))
        for system, latency in zip(SYSTEMS, latencies):
            next(r for r in rows if r["seed"] == seed and r["model"] == system.label)["latency_ms"] = latency
