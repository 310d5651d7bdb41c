import importlib
import subprocess
import sys
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
    teacher, _ = stage1_checkpoint(tmp_path, "teacher")
    student, _ = stage1_checkpoint(tmp_path, "student", num_query_token=4)
    result = subprocess.run([sys.executable, "-m", "lavis_vila.tools.merge_weights", "--teacher", str(teacher),
                             "--student", str(student), "--out", str(tmp_path / "m.pth")], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("merge_weights: teacher and student architectures differ") and result.stderr.count("\n") == 1


# Every documented command line; the ones that write files take the path with --out.
TOOLS = ["ablation", "bench", "bench_data", "compare", "convert_checkpoint", "convert_hf_instructblip", "demo", "explain", "export",
         "gpu_check", "make_synthetic", "make_tiny_tokenizers", "merge_weights", "prepare", "selection_trace",
         "sevila_weights"]
WRITERS = set(TOOLS) - {"selection_trace"}


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_answers_help_and_a_tool_that_writes_takes_out(tool, capsys):
    module = importlib.import_module(f"lavis_vila.tools.{tool}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    usage = capsys.readouterr().out
    assert exit_info.value.code == 0 and usage.startswith("usage:")
    assert ("--out" in usage) == (tool in WRITERS) and "--json" not in usage


def test_tools_print_no_third_party_warning_through_python_m():
    """One fresh interpreter runs each tool's ``--help`` as ``python -m`` would (the imports, and their
    warnings, happen once): JSON only; torch and LAVIS; LAVIS at parse time; gradio."""
    script = ("import runpy, sys\n"
              "for tool in ('prepare', 'explain', 'merge_weights', 'app'):\n"
              "    sys.argv = [tool, '--help']\n"
              "    try:\n"
              "        runpy.run_module(f'lavis_vila.tools.{tool}', run_name='__main__', alter_sys=True)\n"
              "    except SystemExit as exit:\n"
              "        assert exit.code == 0, (tool, exit.code)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr[-2000:]
    assert result.stdout.count("usage:") == 4


def test_prepare_starts_without_torch_or_lavis():
    imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "lavis_vila.tools.prepare", "--help"],
                             capture_output=True, text=True).stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines() if line.startswith("import time:")}
    assert "lavis_vila.datasets.releases" in imported and not imported & {"torch", "lavis"}


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


def test_experiments_share_stages_and_reports_but_import_no_other_experiments_internals():
    import ast

    import lavis_vila.experiments as experiments

    shared = {"stages", "report", "jobs", "machine", "bench_report", "op_counts", "library_time"}
    folder = Path(experiments.__file__).parent
    for path in folder.glob("*.py"):
        owner = path.stem.split("_report")[0].split("_timing")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "lavis_vila.experiments":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lavis_vila.experiments."):
                imported.add(node.module.rsplit(".", 1)[-1])
        foreign = {name for name in imported - shared if name.split("_report")[0].split("_timing")[0] != owner}
        assert not foreign, f"{path.name} imports {foreign}"
