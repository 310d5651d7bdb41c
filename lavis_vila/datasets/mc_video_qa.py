"""Multiple-choice video QA over SeViLA's annotation format (``lavis_vila.datasets.annotations``).

The qid prefix before the first ``_`` is the question type (NExT-QA ``TC``, STAR
``Interaction``, ``HOW2QA``, ...). A bad record fails loading with the file and record named.
A video that cannot be read is either skipped and counted (``on_bad_video: skip``, the training
default) or stops the run with the file and qid named (``fail``, the evaluation default).
Nothing is ever swapped in for it. A record of an unlabelled split (no ``answer``; allowed where
``needs_answer`` is False) gives ``answer`` ``NO_ANSWER`` and an empty ``qa_output``.
"""
import logging
import os
from typing import List, Optional

from torch.utils.data import Dataset, default_collate

from lavis_vila.datasets.annotations import load_all_annotations
from lavis_vila.processors.video import VideoDecodeError
from lavis_vila.prompts import PROMPTS, SEVILA_LOCALIZER_PROMPTS, answer_text
from lavis_vila.tasks.metrics import question_type

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
BAD_VIDEO_POLICIES = ("skip", "fail")
NO_ANSWER = -1  # a sample's answer in an unlabelled split; result rows write null
SAMPLE_KEYS = ("video", "qa_input", "loc_input", "qa_output", "qid", "release_id", "question_type", "answer", "num_option")


class MCVideoQADataset(Dataset):
    def __init__(
        self,
        vis_processor,
        text_processor,
        vis_root: str,
        ann_paths: List[str],
        prompt: str = "mc",
        on_bad_video: str = "fail",
        video_ext: str = ".mp4",
        needs_answer: bool = True,
    ):
        if prompt not in PROMPTS:
            raise ValueError(f"unknown prompt style '{prompt}'; choose one of {sorted(PROMPTS)}")
        if on_bad_video not in BAD_VIDEO_POLICIES:
            raise ValueError(f"on_bad_video must be one of {BAD_VIDEO_POLICIES}, got '{on_bad_video}'")
        self.vis_processor = vis_processor
        self.text_processor = text_processor
        self.vis_root = vis_root
        self.prompt = PROMPTS[prompt]
        self.localizer_prompt = SEVILA_LOCALIZER_PROMPTS[prompt]
        self.on_bad_video = on_bad_video
        self.video_ext = video_ext
        self.annotation = load_all_annotations(ann_paths, needs_question=prompt != "vlep", needs_answer=needs_answer)

    def __len__(self):
        return len(self.annotation)

    def video_path(self, record) -> str:
        video = str(record["video"])
        if not video.lower().endswith(VIDEO_EXTENSIONS):
            video += self.video_ext
        return os.path.join(self.vis_root, video)

    def read_video(self, record):
        """The record's sampled frames, normalised (T, 3, H, W); a ``VideoDecodeError`` names the file."""
        frames, _ = self.vis_processor(self.video_path(record), record.get("start"), record.get("end"))
        return frames

    def prompts(self, record) -> tuple:
        """The QA prompt and SeViLA's localizer question of a record."""
        clean = self.text_processor or (lambda text: text)
        question, options = clean(record.get("question", "")), [clean(record[f"a{i}"]) for i in range(record["num_option"])]
        return self.prompt(question, options), self.localizer_prompt(question, options)

    def __getitem__(self, index):
        record = self.annotation[index]
        try:
            frames = self.read_video(record)
        except VideoDecodeError as error:
            message = f"{error} [qid {record['qid']}]"
            if self.on_bad_video == "fail":
                raise VideoDecodeError(message) from error
            logging.warning("skipping video: %s", message)
            # Same keys as a good sample: LAVIS's ConcatDataset keeps only the keys all samples share.
            return {**dict.fromkeys(SAMPLE_KEYS), "skipped": message}
        qa_input, loc_input = self.prompts(record)
        answer = record.get("answer", NO_ANSWER)
        return {
            "video": frames,  # (T, 3, H, W)
            "qa_input": qa_input,
            "loc_input": loc_input,  # read by sevila_baseline with localizer_prompt: sevila
            "qa_output": answer_text(answer) if answer != NO_ANSWER else "",
            "qid": str(record["qid"]),
            "release_id": str(record.get("release_id", record["qid"])),  # the release's own id, to join its scoring files
            "question_type": question_type(record["qid"]),
            "answer": answer,
            "num_option": record["num_option"],
            "skipped": None,
        }

    @staticmethod
    def collater(samples) -> dict:
        """Batch the readable samples; ``skipped`` lists the messages of the others."""
        good = [{k: v for k, v in s.items() if k != "skipped"} for s in samples if s["skipped"] is None]
        batch = default_collate(good) if good else {"qid": []}
        batch["skipped"] = [s["skipped"] for s in samples if s["skipped"] is not None]
        return batch


def resolve_path(path: str, root: Optional[str]) -> str:
    """Absolute paths stay; relative ones resolve against ``root`` (itself relative to the CWD)."""
    path = os.path.expanduser(str(path))
    if os.path.isabs(path):
        return path
    return os.path.abspath(os.path.join(os.path.expanduser(str(root or ".")), path))
