"""The folder a training run writes into, and (``run.resume: auto``) the checkpoint it continues from.

Two kinds, chosen by ``run.resume``:
- ``off`` (LAVIS's layout, the default): ``<run.output_dir>/<job id>``, a new folder for every start;
- ``auto``: ``<run.output_dir>`` itself, the same folder at every start, so a run started again by
  a person or by ``torchrun --max-restarts`` continues from the newest complete checkpoint there.

A resumable folder is held by one run at a time (an exclusive POSIX lock on ``run.lock``, released
when the process ends, a kill included). A checkpoint is trusted only when it loads completely, is a
training checkpoint of its own epoch, and records the same model section as the run's config: a
file that does not load is reported and the previous epoch's is taken; a checkpoint of another
model config is an error, since the run would mix its files with another run's.
"""
import fcntl
import logging
import os
import re
from pathlib import Path

from lavis_vila.atomic_files import is_temporary
from lavis_vila.checkpoints import CheckpointError, load_checkpoint_file

CHECKPOINT_NAME = re.compile(r"checkpoint_(\d+)\.pth")
TRAINING_CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "config")


class RunFolderError(RuntimeError):
    """A run folder that this run cannot use; the message names the folder."""


def differing_keys(ours: dict, theirs: dict, prefix: str = "model") -> list:
    """``model.key: ours vs theirs`` for every key whose value differs, nested keys dotted."""
    lines = []
    for key in sorted(set(ours) | set(theirs), key=str):
        mine, other = ours.get(key, "<absent>"), theirs.get(key, "<absent>")
        if isinstance(mine, dict) and isinstance(other, dict):
            lines += differing_keys(mine, other, f"{prefix}.{key}")
        elif mine != other:
            lines.append(f"{prefix}.{key}: {mine!r} here, {other!r} in the checkpoint")
    return lines


class FreshFolder:
    """``<output_dir>/<job id>``, created by this run; there is never anything to resume in it."""

    def __init__(self, output_dir: Path, job_id: str):
        self.path = output_dir / job_id

    def claim(self) -> None:
        self.path.mkdir(parents=True, exist_ok=False)  # never share a folder with another run

    def release(self) -> None:
        pass

    def checkpoint_to_resume(self, model_config: dict):
        return None


class ResumableFolder:
    """``<output_dir>`` itself: every start of the same run trains there and resumes what it holds."""

    LOCK_NAME = "run.lock"

    def __init__(self, output_dir: Path, job_id: str):
        self.path = output_dir
        self._lock = None

    def claim(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        lock = open(self.path / self.LOCK_NAME, "a+")
        try:  # a POSIX lock belongs to this process alone: forked DataLoader workers do not hold it on
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise RunFolderError(f"run.output_dir: another run is training in '{self.path}' (it holds "
                                 f"{self.LOCK_NAME}); two runs never share a folder. Give this one another "
                                 f"run.output_dir, or stop the other.") from None
        self._lock = lock
        for partial in self.partial_files():
            logging.warning("removing %s, a partial file a stopped run left", partial)
            partial.unlink()

    def partial_files(self) -> list:
        """What a run's writer killed before its rename leaves (``atomic_files``: ``PATH.tmp.<pid>``):
        checkpoints, ``config.json`` and the result files; nothing else in the folder is touched."""
        candidates = [*self.path.glob("checkpoint_*.pth.tmp.*"), *self.path.glob("*.json.tmp.*"),
                      *(self.path / "result").glob("*.json.tmp.*")]
        return sorted(path for path in candidates if is_temporary(path.name))

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def checkpoints(self) -> list:
        """(epoch, path) of every ``checkpoint_<epoch>.pth``, newest first."""
        found = [(int(match.group(1)), path) for path in self.path.iterdir()
                 if (match := CHECKPOINT_NAME.fullmatch(path.name))]
        return sorted(found, reverse=True)

    def checkpoint_to_resume(self, model_config: dict):
        """The newest complete checkpoint of this model config, or ``None`` (said in the log)."""
        for epoch, path in self.checkpoints():
            problem = self.incompleteness(path, epoch, model_config)
            if problem is None:
                logging.info("run.resume: auto: resuming from %s, the newest complete checkpoint in %s",
                             path.name, self.path)
                return str(path)
            logging.warning("run.resume: auto: not resuming from %s: %s; trying the previous epoch's", path, problem)
        logging.info("run.resume: auto: no complete checkpoint in %s to resume: starting fresh", self.path)
        return None

    @staticmethod
    def incompleteness(path: Path, epoch: int, model_config: dict):
        """Why ``path`` cannot be resumed (``None`` when it can); a foreign checkpoint is an error."""
        try:
            # Memory-mapped: the zip's structure is checked (a truncated file fails) without reading
            # the weights, which the runner then loads once, onto its device.
            checkpoint = load_checkpoint_file(str(path), "run.resume: auto", mmap=True)
        except CheckpointError as error:
            return f"it does not load completely ({error})"
        if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in TRAINING_CHECKPOINT_KEYS):
            return f"it is not a training checkpoint of this runner (it lacks one of {list(TRAINING_CHECKPOINT_KEYS)})"
        if checkpoint["epoch"] != epoch:
            return f"it holds epoch {checkpoint['epoch']}, not {epoch}"
        theirs = (checkpoint["config"] or {}).get("model") or {}
        if theirs != model_config:
            differences = differing_keys(model_config, theirs)
            raise RunFolderError(
                f"run.output_dir: '{path}' is a checkpoint of another model config ({'; '.join(differences[:5])}); "
                f"run.resume: auto never mixes two runs' files. Give this run another run.output_dir, or move "
                f"that run's files away.")
        return None


RUN_FOLDERS = {"off": FreshFolder, "auto": ResumableFolder}


def run_folder(resume, output_dir: str, job_id: str):
    """The run folder for ``run.resume`` (``off`` or ``auto``) under ``run.output_dir``. YAML reads a
    bare ``off`` as ``False``, which is taken as ``off``."""
    resume = "off" if resume is False or resume is None else resume
    if resume not in RUN_FOLDERS:
        raise RunFolderError(f"run.resume must be one of {sorted(RUN_FOLDERS)}, got {resume!r}")
    return RUN_FOLDERS[resume](Path(os.path.expanduser(output_dir)).resolve(), job_id)
