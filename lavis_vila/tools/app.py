"""The web demo: upload a video, ask a question with 2 to 5 options, and see which frames ViLA chose.

    python -m lavis_vila.tools.app [--checkpoint CKPT] [--model-type tiny] [--host 127.0.0.1] [--port 7860] [--compile [MODE]]

The page shows the answer, the K chosen frames with their time in the video, every candidate
frame with its selection probability within its segment, and how long the model's stages took.
Scripts call the same model through Gradio's API:

    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860/").predict(handle_file("video.mp4"), "what is being flipped?",
                                             ["a pancake", "a coin"], api_name="/answer")
    # {"answer": "a pancake", "option": 0, "frame_idx": [...], "timestamps": [...], "latency_ms": {...}, ...}

One model serves every user: the page and the API share one Gradio queue that runs one request
at a time; the others wait their turn, up to ``--max-queue`` of them, and more are refused. Every
request is bounded (``app_limits``): the upload's size, the video's frame size, the options' count,
the question's and options' characters and the prompt's tokens. Uploads go to a folder of this app's own, removed
when it stops (Ctrl-C or SIGTERM).
"""
import argparse
import io
import json
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from typing import Iterator, Tuple

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo runs offline

import gradio as gr  # noqa: E402
from gradio import FileData  # noqa: E402
from PIL import Image  # noqa: E402

from lavis_vila.checkpoints import CheckpointError  # noqa: E402
from lavis_vila.datasets.synthetic import generate  # noqa: E402
from lavis_vila.models.compiled import MODES  # noqa: E402
from lavis_vila.models.paths import MODEL_TYPES  # noqa: E402
from lavis_vila.prompts import answer_text  # noqa: E402
from lavis_vila.frame_strip import draw_strip  # noqa: E402
from lavis_vila import inference  # noqa: E402
from lavis_vila.inference import STAGES, Answer, InputError, read_frames  # noqa: E402
from lavis_vila.tools.app_limits import BodyLimit, RequestLimits, check_request, check_video  # noqa: E402

MODEL_QUEUE = "model"  # the page's and the API's requests wait in one queue for the one model
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the page works offline


def example_clips(out_dir: str, count: int = 3) -> Tuple[list, list]:
    """``count`` keyframe_qa validation clips, seed 0 like the demo's data: the examples
    ([video, question, options]) and their labels."""
    generate(out_dir, seed=0, num_train=0, num_val=count)
    with open(os.path.join(out_dir, "val.json")) as f:
        records = json.load(f)
    examples = [[os.path.join(out_dir, "videos", f"{r['video']}.mp4"), r["question"],
                 "\n".join(r[f"a{i}"] for i in range(r["num_option"]))] for r in records]
    return examples, [f"keyframe_qa clip: {r['question']}" for r in records]


def strip_image(result: Answer) -> Image.Image:
    """The frame strip: every candidate frame, the chosen ones framed, probabilities under them."""
    buffer = io.BytesIO()
    draw_strip([result], buffer)
    return Image.open(buffer)


def latency_table(latency_ms: dict) -> str:
    other = latency_ms["total"] - sum(latency_ms[name] for name in STAGES)
    names = [*STAGES, "other (decoding, tokenizing)", "total"]
    values = [*(latency_ms[name] for name in STAGES), other, latency_ms["total"]]
    return "\n".join(["| " + " | ".join(names) + " |", "|" + "---|" * len(names),
                      "| " + " | ".join(f"{value:.1f} ms" for value in values) + " |"])


def describe_model(checkpoint, model_type: str) -> str:
    if checkpoint:
        return f"vila from `{checkpoint}`"
    if model_type == "tiny":
        return "vila `tiny` with random weights, so its answers and frame choices mean nothing (give --checkpoint)"
    return f"vila `{model_type}` with its configured weights"


def build_app(model, model_description: str, examples: list, example_labels: list,
              limits: RequestLimits = RequestLimits()) -> gr.Blocks:
    """The page and the ``/answer`` API, both answered by ``model`` (a ``vila``), each request
    within ``limits``."""
    num_frames, num_segments = model.num_candidate_frames, model.num_selected_frames

    def bounded_answer(video, question, options) -> Answer:
        check_request(model.t5_tokenizer, question or "", inference.clean_options(options), limits)
        check_video(video, limits)
        return inference.answer(model, video, question, options)

    def answer_in_page(video, question, options_text):
        try:
            result = bounded_answer(video, question, (options_text or "").splitlines())
        except InputError as error:
            return gr.Markdown(f"**Error:** {error}", visible=True), "", None, None, ""
        frames = read_frames(video, result.frame_numbers)
        captions = [f"{seconds:.2f} s (#{number})" for number, seconds in zip(result.frame_numbers, result.timestamps)]
        headline = (f"### {answer_text(result.option)}: {result.text}\n"
                    f"from candidates {result.frame_idx} of {num_frames}")
        return (gr.Markdown("", visible=False), headline, list(zip(frames, captions)),
                strip_image(result), latency_table(result.latency_ms))

    def answer_api(video: FileData, question: str, options: list[str]) -> dict:
        """Answer `question` about `video`, choosing among `options` (2 to 5). Returns the chosen
        option (`answer`, `option`), the chosen frames (`frame_idx` among the candidates,
        `frame_numbers` and `timestamps` in the video), each segment's selection `probabilities`
        and the stages' `latency_ms`."""
        try:
            return bounded_answer(FileData.model_validate(video).path, question, options or []).to_json()
        except InputError as error:
            raise gr.Error(str(error), print_exception=False) from None

    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=["ui-monospace", "monospace"])
    with gr.Blocks(title="ViLA web demo", theme=theme, analytics_enabled=False) as app:
        gr.Markdown(f"# ViLA: which {num_segments} of {num_frames} frames answer the question?\n"
                    f"Model: {model_description}. The Frame-Prompter cuts the video's {num_frames} candidate frames "
                    f"into {num_segments} segments and keeps one frame of each for the answer.")
        with gr.Row():
            with gr.Column(scale=2):
                video = gr.Video(label="Video", sources=["upload"], height=240, elem_id="video")
                question = gr.Textbox(label="Question", max_length=limits.max_question_chars, elem_id="question")
                options = gr.Textbox(label="Options, one per line (2 to 5)", lines=5, elem_id="options",
                                     max_length=limits.options_text_chars)
                submit = gr.Button("Ask", variant="primary", elem_id="ask")
            with gr.Column(scale=3):
                error = gr.Markdown(visible=False, elem_id="error")
                answer = gr.Markdown(elem_id="answer")
                frames = gr.Gallery(label="Chosen frames: time in the video (frame number)", columns=num_segments,
                                    rows=1, height=200, object_fit="contain", elem_id="chosen-frames")
                latency = gr.Markdown(elem_id="latency")
        gr.Markdown("Every candidate frame, the chosen ones framed in red, and under each its selection "
                    "probability within its segment:")
        strip = gr.Image(show_label=False, type="pil", elem_id="probabilities")
        gr.Examples(examples, [video, question, options], example_labels=example_labels, label="Examples")
        submit.click(answer_in_page, [video, question, options], [error, answer, frames, strip, latency],
                     api_name=False, concurrency_id=MODEL_QUEUE)
        gr.api(answer_api, api_name="answer", concurrency_id=MODEL_QUEUE)
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description="The ViLA web demo (Gradio): answer, chosen frames, probabilities.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", help="a vila checkpoint written by training, e.g. the demo's "
                                               "output/demo/seed0/vila/<job>/checkpoint_<n>.pth")
    parser.add_argument("--model-type", default="tiny", choices=MODEL_TYPES,
                        help="without --checkpoint: the vila model type (tiny: random weights, offline)")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-upload-mb", type=positive_int, default=RequestLimits.max_upload_mb,
                        help="the largest video upload, in MB; larger ones are refused")
    parser.add_argument("--max-queue", type=positive_int, default=RequestLimits.max_queue,
                        help="requests that may wait for the model; more are refused until the queue drains")
    parser.add_argument("--compile", nargs="?", const="default", choices=MODES, metavar="MODE",
                        help=f"compile the model's inference (torch.compile, inductor): {', '.join(MODES)}; "
                             f"the first request waits for the compilation")
    args = parser.parse_args(argv)
    limits = RequestLimits(max_upload_mb=args.max_upload_mb, max_queue=args.max_queue)
    try:
        model = inference.load("vila", args.model_type, args.checkpoint, config_key="--checkpoint",
                               compile=args.compile)
    except (CheckpointError, FileNotFoundError) as error:
        parser.exit(1, f"app: {error}\n")
    with own_upload_folder(), stop_on_sigterm(), tempfile.TemporaryDirectory(prefix="vila_app_examples_") as examples_dir:
        app = build_app(model, describe_model(args.checkpoint, args.model_type), *example_clips(examples_dir), limits)
        serve(app, args.host, args.port, limits)


def serve(app: gr.Blocks, host: str, port: int, limits: RequestLimits, block: bool = True) -> None:
    """Serve one request at a time, at most ``limits.max_queue`` waiting, bodies and uploads
    bounded; until stopped, or with ``block=False`` in the background until ``app.close()``."""
    from starlette.middleware import Middleware

    app.queue(max_size=limits.max_queue, default_concurrency_limit=1).launch(
        server_name=host, server_port=port, max_file_size=f"{limits.max_upload_mb}mb", prevent_thread_lock=not block,
        app_kwargs={"middleware": [Middleware(BodyLimit, max_bytes=1024 * limits.max_body_kb)]})


@contextmanager
def own_upload_folder() -> Iterator[str]:
    """A new folder for this app's uploads (Gradio's cache), inside ``GRADIO_TEMP_DIR`` when it is
    set, removed with all it holds when the app stops; nothing else in ``GRADIO_TEMP_DIR`` is touched."""
    parent = os.environ.get("GRADIO_TEMP_DIR")
    if parent:
        os.makedirs(parent, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="vila_app_uploads_", dir=parent)
    os.environ["GRADIO_TEMP_DIR"] = folder  # Gradio reads it when the app is built and launched
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if parent:
            os.environ["GRADIO_TEMP_DIR"] = parent
        else:
            del os.environ["GRADIO_TEMP_DIR"]


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl-C does (Gradio closes it), so the uploads are removed."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


if __name__ == "__main__":
    main()
