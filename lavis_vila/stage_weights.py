"""Weights carried between training stages: the slot maps, ``merge`` and ``join``.

A slot map pairs the key prefixes of one set of trainable parts with those of the copy that
another role keeps (``{"Qformer.": "Qformer_T.", ...}``). Each is written here once, and the
models that own the slots import it:
- ``TEACHER_SLOTS``: ``vila``'s student parts -> its frozen teacher's. ``merge`` builds the
  stage-2 ViLA initialisation from the two stage-1 ``vila_uniform`` checkpoints (the official
  ``re_weight.py`` does the same): the K-frame student fills the student slots (and
  ``ln_vision``), the T-frame teacher the teacher slots. LoRA adapters in the student checkpoint
  (``*.lora_A/B.*``, from a ``vila_lora`` run) are carried too. The Frame-Prompter and the
  distiller's decoder are in neither: the merged file says so (``partial``), so loading it is not
  mistaken for a wrong checkpoint.
- ``LOCALIZER_SLOTS``: ``sevila_baseline``'s answerer parts -> its localizer's (SeViLA's
  checkpoint names; ``ln_vision_loc`` only in SeViLA's architecture). Self-refinement freezes the
  answerer, so its checkpoints hold the localizer only; ``join`` puts them with the answerer
  the refinement started from, into one checkpoint that loads as SeViLA's released one does.

``python -m lavis_vila.tools.merge_weights`` and ``python -m lavis_vila.tools.sevila_weights``
are the command lines over ``merge_files`` and ``join_files``.
"""
import os

import torch
from omegaconf import OmegaConf

from lavis_vila.checkpoints import CheckpointError, load_checkpoint_file, load_state_dict_file, state_dict_of

TEACHER_SLOTS = {"Qformer.": "Qformer_T.", "query_tokens": "query_tokens_T", "t5_proj.": "t5_proj_T."}
STUDENT_PREFIXES = tuple(TEACHER_SLOTS) + ("ln_vision.",)
LORA_MARKER = ".lora_"  # vila_lora's adapter weights (peft names), carried from the student
PARTIAL = "stage-2 ViLA initialisation (tools.merge_weights): the Frame-Prompter and the distiller start fresh"

LOCALIZER_SLOTS = {"Qformer.": "Qformer_loc.", "query_tokens": "query_tokens_loc", "t5_proj.": "t5_proj_loc.",
                   "ln_vision.": "ln_vision_loc."}
ANSWERER_PREFIXES = tuple(LOCALIZER_SLOTS)
LOCALIZER_PREFIXES = tuple(LOCALIZER_SLOTS.values())
STAGE2_PREFIXES = tuple(TEACHER_SLOTS.values()) + ("frame_prompter.", "distiller.")  # in vila, not vila_uniform
REQUIRED_SLOTS = 3  # the first three of either side: Q-Former, queries, projection (ln_vision may be absent)


class MergeError(ValueError):
    pass


def under(state_dict: dict, prefixes: tuple, exclude: tuple = ()) -> dict:
    """The entries under ``prefixes`` and not under ``exclude`` ("query_tokens" vs "query_tokens_T")."""
    return {k: v for k, v in state_dict.items() if k.startswith(prefixes) and not k.startswith(exclude)}


def renamed(state_dict: dict, slots: dict) -> dict:
    """The entries under each prefix of ``slots``, moved to its slot: with ``TEACHER_SLOTS``,
    ``Qformer.x`` becomes ``Qformer_T.x``. Entries already in a slot are left out."""
    moved = {}
    for key, value in under(state_dict, tuple(slots), tuple(slots.values())).items():
        source = next(prefix for prefix in slots if key.startswith(prefix))
        moved[slots[source] + key[len(source):]] = value
    return moved


# ------------------------------------------------------------------ merge: teacher + student -> stage-2 ViLA


def stage1_part(state_dict: dict, prefixes: tuple, source: str) -> dict:
    picked = under(state_dict, prefixes, tuple(TEACHER_SLOTS.values()))
    for prefix in TEACHER_SLOTS:
        if not any(k.startswith(prefix) for k in picked):
            raise MergeError(f"{source} has no '{prefix}*' weights: is it a stage-1 vila_uniform checkpoint?")
    return picked


def refuse_stage2(state_dict: dict, source: str) -> None:
    """A stage-2 ``vila`` checkpoint (teacher slots, Frame-Prompter, distiller) is not a stage-1 teacher."""
    found = [prefix for prefix in STAGE2_PREFIXES if any(k.startswith(prefix) for k in state_dict)]
    if found:
        raise MergeError(f"{source} holds {', '.join(p.rstrip('.') + '*' for p in found)} weights: a stage-2 vila "
                         f"checkpoint; the teacher must be a stage-1 vila_uniform checkpoint trained on the T frames")


def merge(teacher: dict, student: dict, teacher_name: str = "teacher", student_name: str = "student") -> dict:
    """Merged state dict; refuses a stage-2 teacher and teacher/student pairs whose architectures differ."""
    refuse_stage2(teacher, teacher_name)
    student_part = stage1_part(student, STUDENT_PREFIXES, student_name)
    teacher_part = stage1_part(teacher, tuple(TEACHER_SLOTS), teacher_name)
    only_teacher = sorted(set(teacher_part) - set(student_part))
    only_student = sorted(k for k in set(student_part) - set(teacher_part) if not k.startswith("ln_vision."))
    mismatched = [f"{k}: {teacher_name} {tuple(teacher_part[k].shape)} vs {student_name} {tuple(student_part[k].shape)}"
                  for k in sorted(set(teacher_part) & set(student_part)) if teacher_part[k].shape != student_part[k].shape]
    if only_teacher or only_student or mismatched:
        problems = [f"only in {teacher_name}: {only_teacher[:5]}" if only_teacher else "",
                    f"only in {student_name}: {only_student[:5]}" if only_student else "",
                    f"shapes differ: {mismatched[:5]}" if mismatched else ""]
        raise MergeError("teacher and student architectures differ; " + "; ".join(p for p in problems if p))
    adapters = {k: v for k, v in student.items() if LORA_MARKER in k}
    return {**student_part, **adapters, **renamed(teacher_part, TEACHER_SLOTS)}


def trained_frames(checkpoint: dict):
    """Frames per video the checkpoint was trained on (its training processor), if it records them."""
    config = OmegaConf.create(checkpoint.get("config") or {})  # resolves ${...} in configs saved unresolved
    frames = {d.get("vis_processor", {}).get("train", {}).get("num_frames") for d in (config.get("datasets") or {}).values()}
    return frames.pop() if len(frames) == 1 and isinstance(next(iter(frames)), int) else None


def check_roles(teacher: dict, student: dict, teacher_name: str, student_name: str) -> None:
    """Refuses a teacher trained on no more frames than the student (when both record their frames)."""
    teacher_frames, student_frames = trained_frames(teacher), trained_frames(student)
    if teacher_frames is None or student_frames is None:
        print("note: a checkpoint does not record its training frames; teacher and student roles not checked")
    elif teacher_frames <= student_frames:
        raise MergeError(
            f"the teacher {teacher_name} was trained on {teacher_frames} frames and the student {student_name} on "
            f"{student_frames}: the teacher must see more frames than the student; are --teacher and --student swapped?")


def merge_files(teacher_path: str, student_path: str, out: str) -> dict:
    """Read both checkpoints safely, check their roles, write the merged stage-2 init to ``out``."""
    teacher = load_checkpoint_file(teacher_path, "--teacher")
    student = load_checkpoint_file(student_path, "--student")
    check_roles(teacher, student, teacher_path, student_path)
    merged = merge(state_dict_of(teacher, teacher_path, "--teacher"), state_dict_of(student, student_path, "--student"),
                   teacher_path, student_path)
    save(out, {"model": merged, "merged_from": {"teacher": teacher_path, "student": student_path}, "partial": PARTIAL})
    return merged


# ------------------------------------------------------------------ join: answerer + localizer -> sevila_baseline


def join(answerer: dict, localizer: dict, answerer_name: str = "answerer", localizer_name: str = "localizer") -> dict:
    answerer_part = under(answerer, ANSWERER_PREFIXES, LOCALIZER_PREFIXES)
    localizer_part = under(localizer, LOCALIZER_PREFIXES)
    for part, prefixes, name in ((answerer_part, ANSWERER_PREFIXES, answerer_name),
                                 (localizer_part, LOCALIZER_PREFIXES, localizer_name)):
        absent = [prefix for prefix in prefixes[:REQUIRED_SLOTS] if not any(k.startswith(prefix) for k in part)]
        if absent:
            raise CheckpointError(f"{name} has no {', '.join(p + '*' for p in absent)} weights")
    return {**answerer_part, **localizer_part}


def join_files(answerer_path: str, localizer_path: str, out: str) -> dict:
    joined = join(load_state_dict_file(answerer_path, "--answerer"), load_state_dict_file(localizer_path, "--localizer"),
                  answerer_path, localizer_path)
    save(out, {"model": joined, "joined_from": {"answerer": answerer_path, "localizer": localizer_path}})
    return joined


def save(out: str, checkpoint: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save(checkpoint, out)
