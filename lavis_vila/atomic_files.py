"""Files that appear whole or not at all: a kill at any moment leaves the old file or the new one.

Each writer writes ``PATH.tmp.<pid>`` beside the target, flushes it to disk and renames it over the
target (``os.replace`` is atomic within one file system). A stray ``*.tmp.*`` file is what a killed
writer leaves; nothing reads it.
"""
import contextlib
import json
import os


def _temporary_name(path: str) -> str:
    return f"{path}.tmp.{os.getpid()}"


@contextlib.contextmanager
def replacing(path: str, mode: str = "w", **open_kwargs):
    """``with replacing(path) as f: f.write(...)``: ``path`` is replaced only when the block completes."""
    path = os.fspath(path)
    tmp = _temporary_name(path)
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str, obj, **dump_kwargs) -> None:
    with replacing(path) as f:
        json.dump(obj, f, **dump_kwargs)


def write_text(path: str, text: str) -> None:
    with replacing(path) as f:
        f.write(text)


def save_with(save_fn, path: str) -> None:
    """Atomic form of a library writer that takes a path: ``save_with(lambda p: torch.save(obj, p), path)``."""
    path = os.fspath(path)
    tmp = _temporary_name(path)
    try:
        save_fn(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
