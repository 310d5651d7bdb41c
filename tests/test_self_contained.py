"""A fresh clone runs on its own: nothing in the repository reaches outside it."""
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BESIDE_THE_CLONE = "/".join(("..", "shared")).encode()  # spelt so that this file does not hold it


def test_no_tracked_file_reads_a_folder_beside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert files, "git ls-files listed nothing"
    offenders = [name for name in files if (REPO_ROOT / name).is_file() and BESIDE_THE_CLONE in (REPO_ROOT / name).read_bytes()]
    assert offenders == []


def test_the_test_videos_ship_with_their_licence():
    videos = REPO_ROOT / "tests" / "data" / "videos"
    assert {"flipping_a_pancake.mkv", "corrupted.mp4", "rotated_90.mov", "LICENSE.decord"} <= {p.name for p in videos.iterdir()}
