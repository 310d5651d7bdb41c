"""The process pool that runs the demo's and the ablation's training jobs side by side
(``lavis_vila.experiments.jobs``)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT

POOL_SCRIPT = '''
import os, sys, time
from pathlib import Path
from lavis_vila.experiments.jobs import Jobs


def a_long_job(pid_file):
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    with Jobs(2) as pool:
        jobs = [pool.submit(out / f"job{i}.log", a_long_job, out / f"worker{i}.pid") for i in range(2)]
        jobs[0].result()
'''


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (an unreaped zombie is not: its parent, init here, may never reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from Linux's /proc")
def test_the_workers_end_when_the_process_that_started_them_is_killed(tmp_path):
    """Without it each worker finished its job, then waited for another forever, holding its memory."""
    (tmp_path / "pool.py").write_text(POOL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    parent = subprocess.Popen([sys.executable, str(tmp_path / "pool.py"), str(tmp_path)], env=env)
    pid_files = [tmp_path / f"worker{i}.pid" for i in range(2)]
    workers = []
    try:
        assert wait_until(lambda: all(f.exists() and f.read_text() for f in pid_files), 240), "the jobs never started"
        workers = [int(f.read_text()) for f in pid_files]
        assert len(set(workers)) == 2 and all(map(running, workers))
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == -signal.SIGTERM
        assert wait_until(lambda: not any(map(running, workers)), 30), "workers outlived their parent"
    finally:
        parent.kill()
        for pid in filter(running, workers):
            os.kill(pid, signal.SIGKILL)
