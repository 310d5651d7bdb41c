from pathlib import Path

import pytest
import torch

from conftest import PANCAKE
from lavis_vila.models import build_model
from lavis_vila import stage_weights
from lavis_vila.tools import explain, merge_weights


def stage1_checkpoint(tmp_path, name, model_type="tiny", **overrides):
    model = build_model("vila_uniform", model_type, **overrides)
    trainable = {k: v for k, v in model.state_dict().items() if k.startswith(stage_weights.STUDENT_PREFIXES)}
    path = tmp_path / f"{name}.pth"
    torch.save({"model": trainable}, path)
    return path, model


def test_merged_checkpoint_fills_every_student_and_teacher_slot_of_vila(tmp_path, capsys):
    teacher, teacher_model = stage1_checkpoint(tmp_path, "teacher")
    student, student_model = stage1_checkpoint(tmp_path, "student")
    out = tmp_path / "merged.pth"
    merge_weights.main(["--teacher", str(teacher), "--student", str(student), "--out", str(out)])
    vila = build_model("vila", "tiny")
    result = vila.load_state_dict(torch.load(out, weights_only=True)["model"], strict=False)
    slots = ("Qformer.", "query_tokens", "t5_proj.", "ln_vision.", "Qformer_T.", "query_tokens_T", "t5_proj_T.")
    assert [k for k in result.missing_keys if k.startswith(slots)] == []
    assert result.unexpected_keys == []
    assert {k.split(".")[0] for k in result.missing_keys} == {"visual_encoder", "t5_model", "frame_prompter", "distiller"}
    assert torch.equal(vila.query_tokens_T, teacher_model.query_tokens)
    assert torch.equal(vila.query_tokens, student_model.query_tokens)
    assert torch.equal(vila.t5_proj_T.weight, teacher_model.t5_proj.weight)


def test_mismatched_architectures_are_refused_naming_the_keys(tmp_path):
    teacher, _ = stage1_checkpoint(tmp_path, "teacher")
    student, _ = stage1_checkpoint(tmp_path, "student", num_query_token=4)
    with pytest.raises(stage_weights.MergeError, match=r"shapes differ: \['query_tokens: .* \(1, 8, 64\) vs .* \(1, 4, 64\)'"):
        stage_weights.merge_files(str(teacher), str(student), str(tmp_path / "m.pth"))


def test_a_checkpoint_without_qformer_weights_is_refused(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({"model": {"ln_vision.weight": torch.ones(3)}}, path)
    teacher, _ = stage1_checkpoint(tmp_path, "teacher")
    with pytest.raises(stage_weights.MergeError, match=r"empty.pth has no 'Qformer.\*' weights"):
        stage_weights.merge_files(str(teacher), str(path), str(tmp_path / "m.pth"))


def test_slot_renaming_moves_each_slot_and_leaves_entries_already_in_a_slot_out():
    state = {"query_tokens": 1, "query_tokens_T": 2, "Qformer.a": 3, "ln_vision.w": 4}
    assert stage_weights.renamed(state, stage_weights.TEACHER_SLOTS) == {"query_tokens_T": 1, "Qformer_T.a": 3}


def spy_on_draw_strip(monkeypatch) -> dict:
    drawn = {}
    original = explain.draw_strip

    def spy(answers, path):
        drawn.update(answers=answers)
        original(answers, path)

    monkeypatch.setattr(explain, "draw_strip", spy)
    return drawn


def test_explain_draws_all_candidate_frames_and_marks_the_chosen_ones(tmp_path, monkeypatch, capsys):
    drawn = spy_on_draw_strip(monkeypatch)
    out = tmp_path / "strip.png"
    explain.main(["--video", str(PANCAKE), "--question", "what is flipped?", "--options", "a pancake", "a coin",
                  "--out", str(out), "--model-type", "tiny"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (result,) = drawn["answers"]
    assert result.pixels.shape[0] == 16 and len(result.probabilities) == 4  # 16 candidates in 4 segments
    assert len(result.frame_idx) == 4 and result.frame_idx == sorted(result.frame_idx)
    assert [len(segment) for segment in result.probabilities] == [4] * 4
    printed = capsys.readouterr().out
    assert f"chosen frames (of 16 candidates): {result.frame_idx}" in printed and "answer: Option" in printed


def test_explain_draws_one_strip_per_question_on_the_same_video(tmp_path, monkeypatch, capsys):
    drawn = spy_on_draw_strip(monkeypatch)
    out = tmp_path / "strip.png"
    explain.main(["--video", str(PANCAKE), "--question", "what is flipped?", "--options", "a pancake", "a coin",
                  "--question", "what colour is the pan?", "--options", "black", "red", "silver",
                  "--out", str(out), "--model-type", "tiny"])
    first, second = drawn["answers"]
    assert (first.question, second.question) == ("what is flipped?", "what colour is the pan?")
    assert second.options == ["black", "red", "silver"]
    assert torch.equal(first.pixels, second.pixels)
    printed = capsys.readouterr().out
    assert printed.count("chosen frames (of 16 candidates)") == 2


def test_explain_wants_one_options_list_per_question(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        explain.main(["--video", str(PANCAKE), "--question", "a?", "--options", "x", "y", "--question", "b?",
                      "--out", str(tmp_path / "s.png")])
    assert exit_info.value.code == 2
    assert "give one --options list per --question (2 questions, 1 --options lists)" in capsys.readouterr().err


def test_merge_weights_on_a_mismatched_pair_exits_1_with_one_line_and_no_traceback(tmp_path):
    import subprocess
    import sys

    teacher, _ = stage1_checkpoint(tmp_path, "teacher")
    student, _ = stage1_checkpoint(tmp_path, "student", num_query_token=4)
    result = subprocess.run([sys.executable, "-m", "lavis_vila.tools.merge_weights", "--teacher", str(teacher),
                             "--student", str(student), "--out", str(tmp_path / "m.pth")], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("merge_weights: teacher and student architectures differ") and result.stderr.count("\n") == 1


def test_tools_print_no_third_party_warning_and_prepare_starts_without_torch_or_lavis():
    import subprocess
    import sys

    for tool in ("prepare", "explain", "merge_weights", "app"):  # JSON only; torch and LAVIS; LAVIS at parse time; gradio
        result = subprocess.run([sys.executable, "-m", f"lavis_vila.tools.{tool}", "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "Warning" not in result.stderr, (tool, result.stderr[-500:])
    imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "lavis_vila.tools.prepare", "--help"],
                             capture_output=True, text=True).stderr
    assert not [line for line in imports.splitlines() if line.rstrip().endswith(("| torch", "| lavis"))]


def test_make_tiny_tokenizers_reproduces_the_shipped_tokenizers_from_the_prompts_module(tmp_path):
    import sentencepiece as spm

    from lavis_vila.models.backbones import TOKENIZER_DIR
    from lavis_vila.tools import make_tiny_tokenizers

    make_tiny_tokenizers.main(["--out", str(tmp_path)])

    def pieces(path):
        model = spm.SentencePieceProcessor(model_file=str(path))
        return [(model.id_to_piece(i), model.get_score(i)) for i in range(model.get_piece_size())]

    shipped = Path(TOKENIZER_DIR)
    assert pieces(tmp_path / "tiny_t5" / "spiece.model") == pieces(shipped / "tiny_t5" / "spiece.model")
    assert (tmp_path / "tiny_bert" / "vocab.txt").read_text() == (shipped / "tiny_bert" / "vocab.txt").read_text()
