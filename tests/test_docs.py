"""The documents say only what is true: every Python block in README.md and docs/ runs (the tiny
model, offline), every relative link and every repository path they name exists, every documented
``python -m lavis_vila.tools.X`` flag is one the tool takes, and the README stays a front door.

Each Python block is a test named after its file and first line. The blocks of one file run in
order in one namespace, in a working directory of their own that holds the repository's
``tests``, ``projects`` and ``docs`` (so the paths a reader types from the repository root exist)
and whatever the file's shell commands would have made there (``PREPARED``).
"""
import importlib
import inspect
import re
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCUMENTS = [README, *sorted((REPO_ROOT / "docs").rglob("*.md"))]
MAX_README_WORDS = 2000
USE_FROM_PYTHON = "## Use from Python"
FIRST_COMMANDS = ("bash run_scripts/vila/demo.sh", "bash run_scripts/test.sh")
LINKED_FROM_THE_WORKING_DIRECTORY = ("tests", "projects", "docs")

OPEN_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
REPOSITORY_PATH = re.compile(r"(?<![\w./-])((?:run_scripts|projects|tests|lavis_vila|docs)/[\w./-]*[\w/])")
TOOL_COMMAND = re.compile(r"(?:python\s+-m\s+|bash run_scripts/vila/)(lavis_vila\.tools\.[a-z_]+|[a-z_]+\.sh)([^\n]*)")
# Scripts that hand their arguments to a tool as they are.
SCRIPT_TOOLS = {"demo.sh": "lavis_vila.tools.demo", "ablation.sh": "lavis_vila.tools.ablation"}
INLINE_CODE = re.compile(r"`([^`]+)`")


def relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def code_blocks(path: Path) -> list:
    """(language, 1-based line of the block's first line of code, code) of each fenced block."""
    blocks, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        fence = OPEN_FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, language, start = len(fence.group(1)), fence.group(2), i + 1
        i = start
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        blocks.append((language, start + 1, "\n".join(line[indent:] for line in lines[start:i])))
        i += 1
    return blocks


def prose_with_inline_code(path: Path) -> str:
    """The document without its fenced blocks, fences included."""
    kept, in_block = [], False
    for line in path.read_text().splitlines():
        if OPEN_FENCE.match(line) or line.strip() == "```":
            in_block = not in_block
        elif not in_block:
            kept.append(line)
    return "\n".join(kept)


def prose(path: Path) -> str:
    """The document without its fenced blocks and inline code."""
    return INLINE_CODE.sub("", prose_with_inline_code(path))


def python_blocks(path: Path) -> list:
    return [(line, code) for language, line, code in code_blocks(path) if language == "python"]


PYTHON_CASES = [pytest.param(path, line, id=f"{relative(path)}:{line}")
                for path in DOCUMENTS for line, _ in python_blocks(path)]


# ---------------------------------------------------------------- what a page's shell commands make

def make_saved_model(workdir: Path) -> None:
    """``my_vila``, as ``python -m lavis_vila.tools.export CHECKPOINT --out my_vila`` writes it."""
    from omegaconf import OmegaConf

    from lavis_vila.models import build_model
    from lavis_vila.tools import export

    model = build_model("vila", "tiny")
    weights = {name: tensor.detach() for name, tensor in model.state_dict(keep_vars=True).items()
               if not (isinstance(tensor, torch.nn.Parameter) and not tensor.requires_grad)}  # as training saves
    config = OmegaConf.to_container(OmegaConf.load(type(model).default_config_path("tiny")), resolve=True)
    checkpoint = workdir / "checkpoint_best.pth"
    torch.save({"model": weights, "config": {"model": config["model"]}}, checkpoint)
    export.main([str(checkpoint), "--out", str(workdir / "my_vila")])


PREPARED = {"docs/weights.md": make_saved_model}


# ---------------------------------------------------------------- running the blocks

@pytest.fixture(scope="module")
def load_once():
    """``inference.load`` that builds each model once for all the blocks (they only read it)."""
    from lavis_vila import inference

    load, models = inference.load, {}
    signature = inspect.signature(load)

    def cached_load(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = repr(sorted(bound.arguments.items()))
        if key not in models:
            models[key] = load(*args, **kwargs)
        return models[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inference, "load", cached_load)
        yield


@pytest.fixture(scope="module")
def document_runs(tmp_path_factory):
    """Per document: its working directory, its namespace and how many of its blocks have run."""
    runs = {}

    def run_of(path: Path) -> dict:
        if path not in runs:
            workdir = tmp_path_factory.mktemp(path.stem)
            for name in LINKED_FROM_THE_WORKING_DIRECTORY:
                (workdir / name).symlink_to(REPO_ROOT / name, target_is_directory=True)
            prepare = PREPARED.get(relative(path))
            if prepare:
                prepare(workdir)
            runs[path] = {"workdir": workdir, "namespace": {"__name__": "__doc__"}, "done": 0}
        return runs[path]

    return run_of


@pytest.mark.parametrize("path, line", PYTHON_CASES)
def test_python_block_runs_with_the_tiny_model_offline(path, line, document_runs, load_once, monkeypatch):
    """The block at ``line`` runs after the blocks above it in the same document."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    blocks = python_blocks(path)
    run = document_runs(path)
    monkeypatch.chdir(run["workdir"])
    target = [start for start, _ in blocks].index(line)
    while run["done"] <= target:
        start, code = blocks[run["done"]]
        run["done"] += 1  # a failing block fails once; the blocks after it still run
        exec(compile(code, f"{relative(path)}:{start}", "exec"), run["namespace"])


# ---------------------------------------------------------------- links and named paths

def github_anchors(path: Path) -> set:
    """The anchors GitHub gives the document's headings (lines in fenced blocks are not headings)."""
    anchors, seen = set(), {}
    for line in prose_with_inline_code(path).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("path", DOCUMENTS, ids=relative)
def test_every_relative_link_points_to_an_existing_file_and_heading(path):
    broken = []
    for target in LINK.findall(prose(path)):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in github_anchors(linked):
            broken.append(f"{target}: no heading '#{anchor}' in {relative(linked)}")
    assert broken == []


@pytest.mark.parametrize("path", DOCUMENTS, ids=relative)
def test_every_repository_path_a_document_names_exists(path):
    named = set(REPOSITORY_PATH.findall(path.read_text()))
    missing = sorted(name for name in named if not (REPO_ROOT / name).exists())
    assert missing == []


def documented_tool_flags() -> dict:
    """{tool module: {flags the documents pass it}}, from every ``python -m lavis_vila.tools.X`` line."""
    flags = {}
    for path in DOCUMENTS:
        commands = [code.replace("\\\n", " ") for _, _, code in code_blocks(path)]
        commands += [" ".join(span.split()) for span in INLINE_CODE.findall(prose_with_inline_code(path))]
        for command, arguments in TOOL_COMMAND.findall("\n".join(commands)):
            module = SCRIPT_TOOLS.get(command, command)
            if module.endswith(".sh"):
                continue
            flags.setdefault(module, set()).update(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", arguments))
    return flags


TOOL_FLAGS = documented_tool_flags()


@pytest.mark.parametrize("module", sorted(TOOL_FLAGS))
def test_every_documented_tool_exists_and_takes_the_documented_flags(module, capsys):
    tool = importlib.import_module(module)
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    unknown = sorted(flag for flag in TOOL_FLAGS[module] if not re.search(rf"(?<![\w-]){flag}(?![\w-])", help_text))
    assert unknown == []


# ---------------------------------------------------------------- the README as a front door

def test_readme_starts_with_the_demo_and_the_test_commands():
    """Under the title, the first thing: the two commands that set up everything on a fresh machine."""
    lines = README.read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1:3] == ["", "```bash"]
    assert [line.split("#")[0].strip() for line in lines[3:5]] == list(FIRST_COMMANDS) and lines[5] == "```"


def test_readme_has_at_most_2000_words():
    assert len(README.read_text().split()) <= MAX_README_WORDS  # as wc -w counts


def test_readme_shows_use_from_python_within_its_first_150_lines():
    lines = README.read_text().splitlines()
    assert USE_FROM_PYTHON in lines[:150]


def test_readme_links_every_page_under_docs():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in LINK.findall(prose(README))}
    pages = {path.resolve() for path in DOCUMENTS if path != README}
    assert sorted(relative(page) for page in pages - linked) == []
