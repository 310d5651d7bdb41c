"""What each process prints under torchrun (``lavis_vila.run_setup``): LAVIS's quiet stdout on
every rank but the main one, and every rank's errors and crashes on stderr."""
import os
import subprocess
import sys

from conftest import REPO_ROOT

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
RANK_PROCESS = """
import io, sys, traceback
from lavis_vila.run_setup import print_to_stdout_on_main_rank_only
print_to_stdout_on_main_rank_only({is_main})
print("a progress line")
print("a line to file=None", file=None)
print("a forced line", force=True)
print("an error line", file=sys.stderr)
buffer = io.StringIO()
print("a line to a buffer", file=buffer)
sys.stderr.write("buffer: " + buffer.getvalue())
try:
    raise ValueError("a caught error")
except ValueError:
    traceback.print_exc()  # through print(..., file=sys.stderr) on every Python
raise RuntimeError("this rank failed here")
"""


def run_rank(is_main: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RANK_PROCESS.format(is_main=is_main)], cwd=REPO_ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_another_rank_prints_only_forced_lines_to_stdout_and_its_errors_and_traceback_to_stderr():
    """Python 3.13 prints a traceback with ``print(..., file=sys.stderr)``: LAVIS's own
    ``setup_for_distributed`` silenced it, so a rank other than 0 crashed without a word."""
    result = run_rank(is_main=False)
    assert result.returncode == 1
    assert result.stdout == "a forced line\n"
    assert "an error line" in result.stderr
    assert "buffer: a line to a buffer" in result.stderr
    assert "ValueError: a caught error" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: this rank failed here" in result.stderr


def test_the_main_rank_prints_every_line():
    result = run_rank(is_main=True)
    assert result.stdout == "a progress line\na line to file=None\na forced line\n"
    assert "an error line" in result.stderr and "RuntimeError: this rank failed here" in result.stderr
