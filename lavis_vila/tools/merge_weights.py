"""Build the stage-2 ViLA init from the two stage-1 ``vila_uniform`` checkpoints.

    python -m lavis_vila.tools.merge_weights --teacher T_CKPT --student S_CKPT --out MERGED

The student init (K frames) fills the student slots (``Qformer``, ``query_tokens``, ``t5_proj``,
``ln_vision``); the teacher (T frames) fills the teacher slots (``Qformer_T``,
``query_tokens_T``, ``t5_proj_T``), as the official ``re_weight.py`` does. LoRA adapters in the
student checkpoint (``*.lora_A/B.*``, from a ``vila_lora`` run) are carried too. The Frame-Prompter
and the distiller's decoder are not in either checkpoint: ViLA initialises them fresh, and the
merged file says so (``partial``), so loading it is not mistaken for a wrong checkpoint. Then set
``model.load_finetuned: True`` and ``model.finetuned: MERGED`` in the stage-2 config.

When both checkpoints record their training config (ours do), the teacher must have been trained
on more frames than the student; swapped roles are refused.
"""
import argparse
import os

import torch
from omegaconf import OmegaConf

from lavis_vila.checkpoints import CheckpointError, load_checkpoint_file, state_dict_of

PARTIAL = "stage-2 ViLA initialisation (tools.merge_weights): the Frame-Prompter and the distiller start fresh"
# student prefix -> teacher slot prefix
TEACHER_SLOTS = {"Qformer.": "Qformer_T.", "query_tokens": "query_tokens_T", "t5_proj.": "t5_proj_T."}
STUDENT_PREFIXES = tuple(TEACHER_SLOTS) + ("ln_vision.",)
LORA_MARKER = ".lora_"  # vila_lora's adapter weights (peft names), carried from the student


class MergeError(ValueError):
    pass


def slot_keys(state_dict: dict, prefixes, source: str) -> dict:
    teacher_slots = tuple(TEACHER_SLOTS.values())  # "query_tokens" must not pick "query_tokens_T"
    picked = {k: v for k, v in state_dict.items() if k.startswith(prefixes) and not k.startswith(teacher_slots)}
    for prefix in TEACHER_SLOTS:
        if not any(k.startswith(prefix) for k in picked):
            raise MergeError(f"{source} has no '{prefix}*' weights: is it a stage-1 vila_uniform checkpoint?")
    return picked


def merge(teacher: dict, student: dict, teacher_name: str = "teacher", student_name: str = "student") -> dict:
    """Merged state dict; refuses teacher/student pairs whose architectures differ."""
    student_part = slot_keys(student, STUDENT_PREFIXES, student_name)
    teacher_part = slot_keys(teacher, tuple(TEACHER_SLOTS), teacher_name)
    only_teacher = sorted(set(teacher_part) - set(student_part))
    only_student = sorted(k for k in set(student_part) - set(teacher_part) if not k.startswith("ln_vision."))
    mismatched = [f"{k}: {teacher_name} {tuple(teacher_part[k].shape)} vs {student_name} {tuple(student_part[k].shape)}"
                  for k in sorted(set(teacher_part) & set(student_part)) if teacher_part[k].shape != student_part[k].shape]
    if only_teacher or only_student or mismatched:
        problems = [f"only in {teacher_name}: {only_teacher[:5]}" if only_teacher else "",
                    f"only in {student_name}: {only_student[:5]}" if only_student else "",
                    f"shapes differ: {mismatched[:5]}" if mismatched else ""]
        raise MergeError("teacher and student architectures differ; " + "; ".join(p for p in problems if p))
    merged = {**student_part, **{k: v for k, v in student.items() if LORA_MARKER in k}}
    for key, value in teacher_part.items():
        prefix = next(p for p in TEACHER_SLOTS if key.startswith(p))
        merged[TEACHER_SLOTS[prefix] + key[len(prefix):]] = value
    return merged


def trained_frames(checkpoint: dict):
    """Frames per video the checkpoint was trained on (its training processor), if it records them."""
    config = OmegaConf.create(checkpoint.get("config") or {})  # resolves ${...} in configs saved unresolved
    frames = {d.get("vis_processor", {}).get("train", {}).get("num_frames") for d in (config.get("datasets") or {}).values()}
    return frames.pop() if len(frames) == 1 and isinstance(next(iter(frames)), int) else None


def check_roles(teacher: dict, student: dict, teacher_name: str, student_name: str) -> None:
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
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save({"model": merged, "merged_from": {"teacher": teacher_path, "student": student_path},
                "partial": PARTIAL}, out)
    return merged


def main(argv=None):
    parser = argparse.ArgumentParser(description="Merge stage-1 teacher and student checkpoints for ViLA.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--teacher", required=True, help="T-frame vila_uniform checkpoint")
    parser.add_argument("--student", required=True, help="K-frame vila_uniform checkpoint")
    parser.add_argument("--out", required=True, help="merged checkpoint to write")
    args = parser.parse_args(argv)
    try:
        merged = merge_files(args.teacher, args.student, args.out)
    except (MergeError, CheckpointError) as error:
        parser.exit(1, f"merge_weights: {error}\n")
    print(f"wrote {args.out}: {len(merged)} tensors (student and teacher slots)")


if __name__ == "__main__":
    main()
