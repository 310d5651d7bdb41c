"""How a ViLA training run's frame choice evolved on keyframe_qa, one line per checkpoint.

For every ``checkpoint_<epoch>.pth`` in the run: validation accuracy; the % of clips where a
chosen frame is an event (key) frame, over all clips and over the clips whose event straddles
two segments; and the frame pairs chosen most often. A prompter that has learned nothing sees
an event in about half the clips; one that avoids events, far fewer.
"""
import json
from collections import Counter
from pathlib import Path

import torch

from lavis_vila.datasets.mc_video_qa import MCVideoQADataset
from lavis_vila.datasets.synthetic import event_frame_seen, straddles_segments
from lavis_vila.models import build_model_from_checkpoint
from lavis_vila.processors import VideoEvalProcessor


class NoFrameChoice(ValueError):
    """The run's model answers from every frame it gets: there is no choice to trace."""


def validation_batch(data_dir: Path, num_frames: int, image_size: int) -> dict:
    dataset = MCVideoQADataset(VideoEvalProcessor(image_size=image_size, num_frames=num_frames), None,
                               str(data_dir / "videos"), [str(data_dir / "val.json")])
    return dataset.collater([dataset[i] for i in range(len(dataset))])


@torch.inference_mode()
def trace(run_dir: Path, data_dir: Path) -> list:
    checkpoints = sorted(run_dir.glob("checkpoint_[0-9]*.pth"), key=lambda p: int(p.stem.split("_")[1]))
    if not checkpoints:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint_<epoch>.pth")
    records = {r["qid"]: r for r in json.loads((data_dir / "val.json").read_text())}
    clip_frames = json.loads((data_dir / "meta.json").read_text())["frames"]
    batch, rows = None, []
    for checkpoint in checkpoints:
        model = build_model_from_checkpoint(str(checkpoint)).eval()
        if model.num_candidate_frames is None:
            raise NoFrameChoice(f"{checkpoint} is a {type(model).__name__} checkpoint: that model selects no frames "
                                f"(it answers from every frame it is given, uniformly sampled), so there is no frame "
                                f"choice to trace; give a run of a model that selects (vila, vila_lora, sevila_baseline)")
        if batch is None:
            batch = validation_batch(data_dir, model.num_candidate_frames, model.visual_encoder.image_size)
        output = model.predict_answers(batch)
        predictions = [{"qid": q, "frame_idx": f} for q, f in zip(batch["qid"], output["frame_idx"])]
        seen = event_frame_seen(predictions, str(data_dir), model.num_candidate_frames)
        straddling = [q for q in seen if straddles_segments(records[q]["key_frames"], clip_frames,
                                                            model.num_selected_frames)]
        correct = [p == records[q]["answer"] for p, q in zip(output["prediction"], batch["qid"])]
        rows.append({
            "checkpoint": checkpoint.name,
            "accuracy": 100 * sum(correct) / len(correct),
            "event_frame_seen": 100 * sum(seen.values()) / len(seen),
            "straddling_seen": sum(seen[q] for q in straddling),
            "straddling": len(straddling),
            "most_chosen": Counter(map(tuple, output["frame_idx"])).most_common(3),
        })
    return rows


def markdown(rows: list) -> str:
    """The rows of ``trace`` as a markdown table."""
    lines = ["| checkpoint | accuracy % | event frame seen % | straddling events seen | most chosen frames |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['checkpoint']} | {row['accuracy']:.1f} | {row['event_frame_seen']:.1f} | "
                     f"{row['straddling_seen']}/{row['straddling']} | "
                     + ", ".join(f"{list(pair)} x{count}" for pair, count in row["most_chosen"]) + " |")
    return "\n".join(lines)
