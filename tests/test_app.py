"""The web demo as its users meet it: one app server for the module, its API, and a real browser."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Tuple

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import CORRUPTED, PANCAKE, REPO_ROOT, write_solid_video

pytestmark = pytest.mark.slow

QUESTION = "what is being flipped?"
OPTIONS = ["a pancake", "a coin", "a card"]
CANDIDATES, CHOSEN = 16, 4  # vila tiny: T and K
SCREENSHOT = REPO_ROOT / "output" / "app" / "screenshot.png"
MAX_UPLOAD_MB = 1  # the shared app's --max-upload-mb: the pancake (436 kB) fits, 2 MB does not
MEMORY_BOUND_MB = 500  # docs/app.md: refused requests and one at every limit grow the app's peak by less
BROWSER_INSTALL = "apt-get install chromium chromium-driver (bash run_scripts/test.sh does it when run as root)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the app did not serve {url} within {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("app") / "app.log"


def start_app(log: Path, uploads: Path, *arguments: str) -> Tuple[subprocess.Popen, str]:
    """``python -m lavis_vila.tools.app`` (vila tiny) on a free local port, serving: the process and its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "lavis_vila.tools.app", "--port", str(port), *arguments],
            stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "GRADIO_TEMP_DIR": str(uploads), "PYTHONUNBUFFERED": "1"})
    try:
        wait_until_serving(url, process, log)
    except BaseException:
        stop(process)
        raise
    return process, url


def stop(process: subprocess.Popen) -> int:
    process.terminate()
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.fixture(scope="module")
def app_process(test_videos, app_log):
    """The app every test here shares, with ``--max-upload-mb 1``."""
    process, url = start_app(app_log, app_log.parent / "uploads", "--max-upload-mb", str(MAX_UPLOAD_MB))
    process.url = url
    yield process
    stop(process)


@pytest.fixture(scope="module")
def app_url(app_process):
    return app_process.url


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def ask_api(client, video=PANCAKE, question=QUESTION, options=OPTIONS):
    return client.predict(handle_file(str(video)), question, options, api_name="/answer")


def test_the_api_answers_with_one_of_the_options_and_k_frames_among_the_candidates(client):
    result = ask_api(client)
    assert result["answer"] in OPTIONS and result["answer"] == OPTIONS[result["option"]]
    assert len(result["frame_idx"]) == CHOSEN and all(0 <= i < CANDIDATES for i in result["frame_idx"])
    assert len(result["frame_numbers"]) == len(result["timestamps"]) == CHOSEN
    assert set(result["latency_ms"]) == {"ViT", "prompter", "Q-Former", "LLM", "total"}


def test_four_concurrent_api_requests_all_return_the_answer_and_frames_of_one_request_alone(client):
    alone = ask_api(client)
    jobs = [client.submit(handle_file(str(PANCAKE)), QUESTION, OPTIONS, api_name="/answer") for _ in range(4)]
    results = [job.result(timeout=300) for job in jobs]
    assert [(r["answer"], r["frame_idx"]) for r in results] == [(alone["answer"], alone["frame_idx"])] * 4


def test_a_corrupt_video_is_an_api_error_naming_the_file_and_the_next_request_succeeds(client):
    with pytest.raises(AppError, match=r"corrupted\.mp4: decoding frames .* failed"):
        ask_api(client, video=CORRUPTED)
    with pytest.raises(AppError, match=r"Give 2 to 5 options \(got 6\)"):
        ask_api(client, options=list("abcdef"))
    assert ask_api(client)["answer"] in OPTIONS


def test_the_app_answers_bad_input_without_a_traceback_or_a_warning_in_its_log(client, app_log):
    with pytest.raises(AppError):
        ask_api(client, video=CORRUPTED)
    assert ask_api(client)["answer"] in OPTIONS
    served = app_log.read_text()
    assert "Running on local URL" in served and "Traceback" not in served and "Warning" not in served


def peak_memory_mb(process: subprocess.Popen) -> float:
    """The process's peak resident memory so far (VmHWM): growth in it cannot be missed between samples."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def test_oversized_questions_options_option_counts_and_frames_are_refused_each_with_a_message_within_the_memory_bound(
        client, app_process, tmp_path):
    ask_api(client)  # the model's first answer allocates what every later one reuses
    before = peak_memory_mb(app_process)
    refusals = [
        (dict(video=write_solid_video(tmp_path / "huge.mp4", 4200, 2200)),  # small on disk: within the upload limit
         r"The video's frames are 4,200 x 2,200 pixels; at most 8,847,360 pixels a frame: scale it down"),
        (dict(question="x" * 100_000), r"The question has 100,000 characters; at most 1,000"),
        (dict(options=["y" * 20_000] * 2), r"Option 1 has 20,000 characters; at most 500\. Option 2 has 20,000"),
        (dict(options=[str(i) for i in range(50)]), r"Give 2 to 5 options \(got 50\)"),
        (dict(question="w" * 1_000, options=["o" * 500] * 5), r"a prompt of [\d,]+ tokens; at most 512"),
    ]
    for request, message in refusals:
        with pytest.raises(AppError, match=message):
            ask_api(client, **request)
    assert ask_api(client, question="w" * 400, options=["o"] * 5)["answer"] == "o"  # within every limit
    assert ask_api(client, video=write_solid_video(tmp_path / "4k.mp4", 4096, 2160))["answer"] in OPTIONS
    assert peak_memory_mb(app_process) - before < MEMORY_BOUND_MB
    assert ask_api(client)["answer"] in OPTIONS


def test_an_upload_over_max_upload_mb_is_refused_by_the_client_and_by_the_server_with_a_message(client, app_url, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * MAX_UPLOAD_MB * 2**20))
    with pytest.raises(ValueError, match="exceeds the maximum file size of 1048576 bytes"):
        ask_api(client, video=big)
    with open(big, "rb") as upload:  # a client that does not check first
        response = httpx.post(app_url + "gradio_api/upload", files={"files": upload}, timeout=60)
    assert response.status_code == 413 and "exceeded maximum allowed size of 1048576 bytes" in response.text
    assert ask_api(client)["answer"] in OPTIONS


def test_a_request_body_over_the_limit_is_refused_with_413_before_it_is_read_whole(client):
    with pytest.raises(httpx.HTTPStatusError, match="413"):
        ask_api(client, question="x" * 2_000_000)
    assert ask_api(client)["answer"] in OPTIONS


def test_eight_concurrent_requests_are_all_answered_none_refused_or_left_waiting(client):
    jobs = [client.submit(handle_file(str(PANCAKE)), QUESTION, OPTIONS, api_name="/answer") for _ in range(8)]
    assert all(job.result(timeout=120)["answer"] in OPTIONS for job in jobs)


def test_past_max_queue_waiting_requests_are_refused_queue_is_full_and_the_rest_answered(tmp_path, monkeypatch):
    from gradio_client.utils import QueueError

    from lavis_vila import inference
    from lavis_vila.tools import app
    from lavis_vila.tools.app_limits import RequestLimits

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    limits = RequestLimits(max_queue=1)
    with app.own_upload_folder():
        demo = app.build_app(inference.load("vila", "tiny"), "tiny", *app.example_clips(str(tmp_path / "examples")), limits)
        port = free_port()
        app.serve(demo, "127.0.0.1", port, limits, block=False)
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            jobs = [client.submit(handle_file(str(PANCAKE)), QUESTION, OPTIONS, api_name="/answer") for _ in range(6)]
            outcomes = []
            for job in jobs:
                try:
                    outcomes.append(job.result(timeout=120)["answer"] in OPTIONS)
                except QueueError as error:
                    outcomes.append(str(error))
        finally:
            demo.close()
    assert "Queue is full! Please try again." in outcomes and True in outcomes
    assert set(outcomes) <= {True, "Queue is full! Please try again."}


def test_the_app_removes_its_uploads_when_stopped_and_leaves_the_rest_of_gradio_temp_dir(tmp_path, test_videos):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "users_file.txt").write_text("not the app's")
    process, url = start_app(tmp_path / "app.log", uploads)
    try:
        assert ask_api(Client(url, verbose=False))["answer"] in OPTIONS
        assert any(path.name == PANCAKE.name for path in uploads.rglob("*"))
    finally:
        exit_code = stop(process)  # SIGTERM, as a service manager stops it
    assert exit_code == 0
    assert sorted(str(p.relative_to(uploads)) for p in uploads.rglob("*") if p.is_file()) == ["users_file.txt"]


def test_the_app_exits_1_with_one_line_for_a_checkpoint_that_is_not_there(tmp_path, capsys):
    from lavis_vila.tools import app

    with pytest.raises(SystemExit) as exit_info:
        app.main(["--checkpoint", str(tmp_path / "none.pth")])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1 and stderr.count("\n") == 1
    assert stderr.startswith("app: --checkpoint: ") and "none.pth" in stderr


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium through its chromedriver (Selenium)."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip(f"the browser test needs Debian's chromium and chromium-driver, not found on PATH: {BROWSER_INSTALL}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    yield driver
    driver.quit()


class Page:
    """The demo page in the browser, by its elements' ids."""

    def __init__(self, browser):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser, self.by, self.wait = browser, By, WebDriverWait(browser, 120)

    def find(self, css: str):
        return self.browser.find_element(self.by.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        return self.browser.find_elements(self.by.CSS_SELECTOR, css)

    def upload(self, video: Path) -> None:
        self.wait.until(lambda _: self.find_all("#video input[type=file]"))
        self.find("#video input[type=file]").send_keys(str(video))
        self.wait.until(lambda _: any(video.name in (v.get_attribute("src") or "") for v in self.find_all("#video video")))

    def ask_and_wait_for_frames(self) -> str:
        """Click Ask, wait for the K frames and the probability plot; return the chosen option's text."""
        self.find("#ask").click()
        self.wait.until(lambda _: len(self.find_all("#chosen-frames img")) == CHOSEN and self.find_all("#probabilities img"))
        return self.find("#answer").text.splitlines()[0].split(": ", 1)[1]  # "Option B: a coin"


def test_in_a_browser_the_page_shows_the_answer_and_k_frames_then_an_error_naming_a_corrupt_file(app_url, browser):
    browser.get(app_url)
    page = Page(browser)
    page.upload(PANCAKE)
    page.find("#question textarea").send_keys(QUESTION)
    page.find("#options textarea").send_keys("\n".join(OPTIONS))
    assert page.ask_and_wait_for_frames() in OPTIONS
    assert len(page.find_all("#chosen-frames img")) == CHOSEN
    browser.set_window_size(1400, browser.execute_script("return document.documentElement.scrollHeight") + 100)
    page.wait.until(lambda _: browser.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth)"))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))

    page.find("#video button[aria-label=Clear]").click()
    page.upload(CORRUPTED)
    page.find("#ask").click()
    page.wait.until(lambda _: page.find("#error").is_displayed() and "corrupted.mp4" in page.find("#error").text)
    assert page.find("#error").text.startswith("Error: corrupted.mp4: decoding frames")
    assert page.find_all("#chosen-frames img") == [] and page.find("#answer").text == ""


def test_in_a_browser_an_example_clip_fills_the_inputs_and_is_answered(app_url, browser):
    browser.get(app_url)
    page = Page(browser)
    page.wait.until(lambda _: [b for b in page.find_all("button") if "what colour is the square" in b.text])
    next(b for b in page.find_all("button") if "what colour is the square" in b.text).click()
    page.wait.until(lambda _: page.find_all("#video video"))
    assert page.find("#question textarea").get_attribute("value") == "what colour is the square that flashes?"
    assert page.ask_and_wait_for_frames() in ["red", "green", "blue", "yellow"]
