"""The web app's bounds on one request, so that no request takes more memory than they allow.

A question's prompt is never truncated at evaluation (``truncate_eval_prompt: False``, the
official code's choice), and the T5 encoder's attention is quadratic in its length: unbounded,
a 100,000-character question asked for 25.7 GB. Here every request is checked before the model
sees it: at most ``MAX_OPTIONS`` options, ``max_question_chars`` and ``max_option_chars``
characters, and ``max_prompt_tokens`` T5 tokens for the whole prompt (``prompts.mc_prompt``).
Characters are checked first, so an oversized text is never tokenised. Uploads are bounded by
Gradio's ``max_file_size`` and every other request's body by ``BodyLimit``, so an oversized
request is refused before it is read whole. decord decodes every frame at the video's own size
before scaling it (and the page shows the chosen frames at that size), so a video's frame size is
bounded too, ``max_video_pixels``: its width and height are the stream's parameters, read when
OpenCV opens the file, before decord decodes any frame.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2

from lavis_vila.inference import MAX_OPTIONS, MIN_OPTIONS, InputError
from lavis_vila.prompts import mc_prompt


@dataclass(frozen=True)
class RequestLimits:
    max_upload_mb: int = 200  # a video upload
    max_question_chars: int = 1_000
    max_option_chars: int = 500  # each option
    max_prompt_tokens: int = 512  # the whole T5 prompt: question, options, template
    max_body_kb: int = 1024  # any request but an upload: question and options travel in it
    max_queue: int = 32  # requests waiting for the one model; more are refused ("queue is full")
    max_video_pixels: int = 4096 * 2160  # a frame's width x height: DCI 4K (and 3840 x 2160, UHD) fit

    @property
    def options_text_chars(self) -> int:
        """The page's options box: every option at its longest, one per line."""
        return MAX_OPTIONS * (self.max_option_chars + 1)


def text_problems(question: str, options: Sequence[str], limits: RequestLimits) -> List[str]:
    """Too many options, a too long question or option: one sentence each."""
    problems = []
    if len(options) > MAX_OPTIONS:
        problems.append(f"Give {MIN_OPTIONS} to {MAX_OPTIONS} options (got {len(options)}).")  # inference's words
    if len(question) > limits.max_question_chars:
        problems.append(f"The question has {len(question):,} characters; at most {limits.max_question_chars:,}.")
    problems += [f"Option {number} has {len(option):,} characters; at most {limits.max_option_chars:,}."
                 for number, option in enumerate(options[:MAX_OPTIONS], 1) if len(option) > limits.max_option_chars]
    return problems


def check_request(tokenizer, question: str, options: Sequence[str], limits: RequestLimits) -> None:
    """Raise ``InputError`` for a request beyond ``limits``: its characters first, then the
    prompt's length in ``tokenizer``'s tokens (the model's T5 tokenizer)."""
    problems = text_problems(question, options, limits)
    if not problems and options:
        num_tokens = len(tokenizer(mc_prompt(question.strip(), list(options))).input_ids)
        if num_tokens > limits.max_prompt_tokens:
            problems.append(f"The question and options make a prompt of {num_tokens:,} tokens; at most "
                            f"{limits.max_prompt_tokens:,}: shorten them.")
    if problems:
        raise InputError(" ".join(problems))


def video_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) of the video's frames: its stream's parameters, as OpenCV's FFmpeg reads them on
    opening the file (no frame is read from it); None for a file it cannot open or a size it does not know."""
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            return None
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return (width, height) if width > 0 and height > 0 else None
    finally:
        capture.release()


def check_video(path: Optional[str], limits: RequestLimits) -> None:
    """Raise ``InputError`` for a video whose frame size is unknown (not a video OpenCV's FFmpeg can
    open: nothing bounds what decord would decode) or over ``limits.max_video_pixels`` pixels. No
    video passes: answering then asks for one."""
    if not path:
        return
    size = video_size(path)
    if size is None:
        raise InputError("Could not read the video's frame size: is it a video file (mp4, mkv, webm, avi)?")
    width, height = size
    if width * height > limits.max_video_pixels:
        raise InputError(f"The video's frames are {width:,} x {height:,} pixels; at most {limits.max_video_pixels:,} "
                         f"pixels a frame: scale it down.")


class BodyLimit:
    """ASGI middleware: refuses (413) a request body whose Content-Length is over ``max_bytes``; one
    streamed without a Content-Length is cut off once past ``max_bytes`` (the route then fails it,
    with FastAPI's own 400), so no body is read whole. ``/upload`` is left to Gradio's ``max_file_size``."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self.refuse(send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, counted_receive, send)

    async def refuse(self, send):
        text = f"Request body over {self.max_bytes // 1024} kB: shorten the question and the options.".encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(text)).encode())]})
        await send({"type": "http.response.body", "body": text})


class BodyTooLarge(Exception):
    """A request body without a Content-Length that streamed past the limit."""
