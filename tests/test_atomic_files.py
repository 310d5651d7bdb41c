import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lavis_vila import atomic_files


def test_replacing_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"old": 1}')
    with pytest.raises(RuntimeError):
        with atomic_files.replacing(path) as f:
            f.write('{"new": ')
            raise RuntimeError("interrupted")
    assert json.loads(path.read_text()) == {"old": 1}
    assert os.listdir(tmp_path) == ["results.json"]


def test_write_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("[]")
    atomic_files.write_json(path, {"rows": list(range(5))})
    assert json.loads(path.read_text()) == {"rows": [0, 1, 2, 3, 4]}
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_writer_killed_mid_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "big.json"
    path.write_text('{"old": true}')
    started = tmp_path / "started"
    writer = (
        "import sys, time\nfrom lavis_vila import atomic_files\n"
        f"with atomic_files.replacing({str(path)!r}) as f:\n"
        "    f.write('{\"new\": [' + '1,' * 100000); f.flush()\n"
        f"    open({str(started)!r}, 'w').close()\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer])
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the writer never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(path.read_text()) == {"old": True}


def test_save_with_writes_through_a_library_writer(tmp_path):
    import torch

    path = tmp_path / "checkpoint.pth"
    atomic_files.save_with(lambda p: torch.save({"w": torch.ones(2)}, p), path)
    assert torch.equal(torch.load(path)["w"], torch.ones(2))
    assert os.listdir(tmp_path) == ["checkpoint.pth"]
