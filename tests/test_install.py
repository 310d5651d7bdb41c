"""Installing lavis-vila keeps the torch a user already has, when it is in setup.py's tested range."""
import glob
import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TORCH_213 = sorted(glob.glob(f"/opt/wheels/torch-2.13.0*-cp{sys.version_info[0]}{sys.version_info[1]}-*.whl"))


@pytest.mark.slow
@pytest.mark.skipif(not TORCH_213, reason="needs a local torch 2.13.0 wheel for this Python (this machine has one "
                                          "for 3.11 in /opt/wheels; downloading one is several GB)")
def test_pip_install_keeps_an_installed_torch_and_torchvision_in_the_tested_range(tmp_path):
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", TORCH_213[0]], check=True)
    # The site's pair: torchvision 0.28 is the one built against torch 2.13 (installed without its deps,
    # so that pip does not swap the CPU build of torch for PyPI's).
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "torchvision==0.28.0"], check=True)
    report = tmp_path / "report.json"
    subprocess.run([*pip, "install", "--dry-run", "--quiet", "--report", str(report), "-e", str(REPO_ROOT)], check=True)
    would_install = {item["metadata"]["name"]: item["metadata"]["version"] for item in json.loads(report.read_text())["install"]}
    assert "lavis-vila" in would_install
    assert "torch" not in would_install and "torchvision" not in would_install, would_install
