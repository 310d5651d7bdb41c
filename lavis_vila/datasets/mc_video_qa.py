"""Multiple-choice video QA over SeViLA's annotation format.

Each annotation file is a JSON list of records::

    {"video": str, "qid": str, "question": str, "a0": str, ..., "a{n-1}": str,
     "answer": int, "num_option": n, "start": seconds?, "end": seconds?}

The qid prefix before the first ``_`` is the question type (NExT-QA ``TC``, STAR
``Interaction``, ``HOW2QA``, ...). A bad record fails loading with the file and record named.
A video that cannot be read is either skipped and counted (``on_bad_video: skip``, the training
default) or stops the run with the file and qid named (``fail``, the evaluation default).
Nothing is ever swapped in for it.
"""
import json
import logging
import os
from typing import List, Optional

from torch.utils.data import Dataset, default_collate

from lavis_vila.prompts import PROMPTS, answer_text
from lavis_vila.processors.video import VideoDecodeError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
BAD_VIDEO_POLICIES = ("skip", "fail")
SAMPLE_KEYS = ("video", "qa_input", "qa_output", "qid", "question_type", "answer", "num_option")


class AnnotationError(ValueError):
    """A malformed annotation record; the message names the file and the record."""


def validate_record(record, path: str, index: int, needs_question: bool = True) -> dict:
    """Check one record against the format above and return it."""
    where = f"{path}: record {index}"
    if not isinstance(record, dict):
        raise AnnotationError(f"{where}: expected an object, got {type(record).__name__}")
    if "qid" in record:
        where += f" (qid {record['qid']})"
    required = ["video", "qid", "answer", "num_option"] + (["question"] if needs_question else [])
    missing = [key for key in required if key not in record]
    if missing:
        raise AnnotationError(f"{where}: missing key(s) {missing}")
    num_option = record["num_option"]
    if not isinstance(num_option, int) or not 2 <= num_option <= 5:
        raise AnnotationError(f"{where}: num_option must be an integer in 2..5, got {num_option!r}")
    missing = [f"a{i}" for i in range(num_option) if f"a{i}" not in record]
    if missing:
        raise AnnotationError(f"{where}: num_option is {num_option} but option(s) {missing} are missing")
    answer = record["answer"]
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < num_option:
        raise AnnotationError(f"{where}: answer must be an option index in 0..{num_option - 1}, got {answer!r}")
    window = {}
    for key in ("start", "end"):
        if record.get(key) is not None:
            try:
                window[key] = float(record[key])
            except (TypeError, ValueError):
                raise AnnotationError(f"{where}: {key} must be a number of seconds, got {record[key]!r}") from None
            if window[key] < 0:
                raise AnnotationError(f"{where}: {key} must not be negative, got {record[key]!r}")
    if len(window) == 2 and window["start"] >= window["end"]:
        raise AnnotationError(f"{where}: start ({record['start']}) must be before end ({record['end']})")
    return record


def load_annotations(path: str, needs_question: bool = True) -> List[dict]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        with open(path) as f:
            records = json.load(f)
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(records, list):
        raise AnnotationError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    if not records:
        raise AnnotationError(f"{path}: the annotation file holds no records")
    return [validate_record(r, path, i, needs_question) for i, r in enumerate(records)]


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
    ):
        if prompt not in PROMPTS:
            raise ValueError(f"unknown prompt style '{prompt}'; choose one of {sorted(PROMPTS)}")
        if on_bad_video not in BAD_VIDEO_POLICIES:
            raise ValueError(f"on_bad_video must be one of {BAD_VIDEO_POLICIES}, got '{on_bad_video}'")
        self.vis_processor = vis_processor
        self.text_processor = text_processor
        self.vis_root = vis_root
        self.prompt = PROMPTS[prompt]
        self.on_bad_video = on_bad_video
        self.video_ext = video_ext
        self.annotation = [r for path in ann_paths for r in load_annotations(path, needs_question=prompt != "vlep")]

    def __len__(self):
        return len(self.annotation)

    def video_path(self, record) -> str:
        video = str(record["video"])
        if not video.lower().endswith(VIDEO_EXTENSIONS):
            video += self.video_ext
        return os.path.join(self.vis_root, video)

    def qa_input(self, record) -> str:
        clean = self.text_processor or (lambda text: text)
        options = [clean(record[f"a{i}"]) for i in range(record["num_option"])]
        return self.prompt(clean(record.get("question", "")), options)

    def __getitem__(self, index):
        record = self.annotation[index]
        start, end = record.get("start"), record.get("end")
        try:
            frames, _ = self.vis_processor(self.video_path(record), start, end)
        except VideoDecodeError as error:
            message = f"{error} [qid {record['qid']}]"
            if self.on_bad_video == "fail":
                raise VideoDecodeError(message) from error
            logging.warning("skipping video: %s", message)
            # Same keys as a good sample: LAVIS's ConcatDataset keeps only the keys all samples share.
            return {**dict.fromkeys(SAMPLE_KEYS), "skipped": message}
        return {
            "video": frames,  # (T, 3, H, W)
            "qa_input": self.qa_input(record),
            "qa_output": answer_text(record["answer"]),
            "qid": str(record["qid"]),
            "question_type": str(record["qid"]).split("_")[0],
            "answer": record["answer"],
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
