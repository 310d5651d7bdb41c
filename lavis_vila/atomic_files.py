"""Files that appear whole or not at all: a kill at any moment leaves the old file or the new one.

Each writer writes ``PATH.tmp.<pid>`` beside the target, flushes it to disk and renames it over the
target (``os.replace`` is atomic within one file system). A stray ``*.tmp.<pid>`` file is what a
killed writer leaves (``is_temporary``); nothing reads it.
"""
import contextlib
import json
import os
import re

TEMPORARY_NAME = re.compile(r".+\.tmp\.\d+")


def is_temporary(name: str) -> bool:
    """Whether a file name is a writer's temporary file (``PATH.tmp.<pid>``)."""
    return bool(TEMPORARY_NAME.fullmatch(name))


@contextlib.contextmanager
def _temporary(path):
    """Yields the temporary path to write; when the block completes, the file is flushed to disk and
    renamed over ``path``; whatever happens, no temporary file is left."""
    path = os.fspath(path)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def replacing(path, mode: str = "w", **open_kwargs):
    """``with replacing(path) as f: f.write(...)``: ``path`` is replaced only when the block completes."""
    with _temporary(path) as tmp:
        with open(tmp, mode, **open_kwargs) as f:
            yield f


def save_with(save_fn, path) -> None:
    """Atomic form of a writer that takes a path: ``save_with(lambda p: torch.save(obj, p), path)``."""
    with _temporary(path) as tmp:
        save_fn(tmp)


def write_json(path, obj, **dump_kwargs) -> None:
    with replacing(path) as f:
        json.dump(obj, f, **dump_kwargs)


def write_text(path, text: str) -> None:
    with replacing(path) as f:
        f.write(text)
