"""Answer one question on one video with ViLA and draw which frames it chose.

    python -m lavis_vila.tools.explain --video V --question Q --options A B C ... --out strip.png \\
        [--question Q2 --options D E F ...] [--checkpoint CKPT] [--model-type tiny]

Prints the chosen answer and frame indices, and draws the T candidate frames in a strip, one
column group per segment, with the K chosen frames framed in red and, under each frame, its
selection probability within its segment (the prompter's softmax), whichever prompter the
checkpoint holds. With several questions, one strip per question: a question-aware prompter
can choose different frames of the same video for each.
"""
import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from lavis_vila.prompts import answer_text, mc_prompt  # noqa: E402
from lavis_vila.checkpoints import CheckpointError  # noqa: E402
from lavis_vila.models import build_model, build_model_from_checkpoint  # noqa: E402
from lavis_vila.models.paths import MODEL_TYPES  # noqa: E402
from lavis_vila.processors import VideoDecodeError, VideoEvalProcessor  # noqa: E402


def load_vila(checkpoint=None, model_type: str = "tiny"):
    """The ``vila`` model to explain, in eval mode: a training checkpoint's (built from the config it
    records) or ``model_type``'s own weights. Raises ``CheckpointError`` for a checkpoint of another model."""
    model = (build_model_from_checkpoint(checkpoint, "--checkpoint") if checkpoint
             else build_model("vila", model_type)).eval()
    if not hasattr(model, "frame_prompter"):
        raise CheckpointError(f"--checkpoint: '{checkpoint}' is a {type(model).__name__} checkpoint; "
                              f"only a vila model chooses frames")
    return model


@torch.inference_mode()
def explain(model, video: str, question: str, options, start=None, end=None) -> dict:
    """Run ``model`` (a ``vila``) on one video: answer, chosen frames, probabilities, raw frames."""
    processor = VideoEvalProcessor(image_size=model.visual_encoder.image_size, num_frames=model.num_candidate_frames)
    frames, indices = processor(video, start, end)
    pixels, _ = processor.decode(video, start, end)  # (T, 3, S, S) uint8, for drawing
    qa_input = mc_prompt(question, options)
    scores = model.answer_scores({"video": frames[None], "qa_input": [qa_input], "num_option": [len(options)]})
    answer = int(scores.scores.argmax(-1))
    frame_idx = scores.frame_idx[0].tolist()
    return {
        "answer": answer,
        "answer_text": options[answer],
        "frame_idx": frame_idx,
        "video_frame_numbers": [indices[i] for i in frame_idx],
        "probabilities": scores.selection.probabilities[0].flatten().tolist(),  # (T,) within-segment softmax
        "pixels": pixels,
        "question": question,
        "options": list(options),
    }


def draw_strip(results: list, path, num_segments: int) -> None:
    """Draw ``explain``'s results on one video, one per question, as a PNG to ``path`` (a file name
    or a binary file): for each question, the T candidate frames with the chosen ones framed in
    red, and under each frame its selection probability within its segment."""
    num_frames = results[0]["pixels"].shape[0]
    segment_len = num_frames // num_segments
    figure = plt.figure(figsize=(max(8, 0.9 * num_frames), 3.2 * len(results)), layout="constrained")
    for result, panel in zip(results, figure.subfigures(len(results), 1, squeeze=False)[:, 0]):
        chosen, probabilities = set(result["frame_idx"]), result["probabilities"]
        axes = panel.subplots(2, num_frames, gridspec_kw={"height_ratios": [3, 1.3]}, squeeze=False)
        for t in range(num_frames):
            image_axis, bar_axis = axes[0, t], axes[1, t]
            image_axis.imshow(result["pixels"][t].permute(1, 2, 0).numpy())
            image_axis.set_xticks([])
            image_axis.set_yticks([])
            picked = t in chosen
            for spine in image_axis.spines.values():
                spine.set_edgecolor("red" if picked else "lightgrey")
                spine.set_linewidth(4 if picked else 1)
            image_axis.set_title(f"{t}", fontsize=8, color="red" if picked else "black")
            bar_axis.bar([0], [probabilities[t]], color="red" if picked else "grey", width=0.6)
            bar_axis.set_ylim(0, 1)
            bar_axis.set_xticks([])
            bar_axis.set_yticks([0, 1] if t == 0 else [])
            bar_axis.tick_params(labelsize=7)
            if t % segment_len == 0:
                bar_axis.set_xlabel(f"segment {t // segment_len + 1}", fontsize=7, loc="left")
        axes[1, 0].set_ylabel("p(select)", fontsize=7)
        panel.suptitle(f"Q: {result['question']}  ->  {answer_text(result['answer'])}: {result['answer_text']}   "
                       f"(chosen frames {result['frame_idx']})", fontsize=9)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Answer a question on a video and draw ViLA's frame choice.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--video", required=True)
    parser.add_argument("--question", action="append", required=True,
                        help="give it more than once, each followed by its --options, to compare questions on one video")
    parser.add_argument("--options", nargs="+", action="append", required=True, help="2 to 5 answer options")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--checkpoint", help="a vila checkpoint written by training; the model is built from the "
                                               "config it records (default: --model-type's own weights)")
    parser.add_argument("--model-type", default="tiny", choices=MODEL_TYPES, help="without --checkpoint: the vila model type")
    parser.add_argument("--start", type=float, help="clip start in seconds")
    parser.add_argument("--end", type=float, help="clip end in seconds")
    args = parser.parse_args(argv)
    if len(args.options) != len(args.question):
        parser.error(f"give one --options list per --question ({len(args.question)} questions, "
                     f"{len(args.options)} --options lists)")
    if not all(2 <= len(options) <= 5 for options in args.options):
        parser.error("give 2 to 5 --options")
    try:  # bad input: exit 1 with the message; bad usage: argparse's exit 2
        model = load_vila(args.checkpoint, args.model_type)
        results = [explain(model, args.video, question, options, args.start, args.end)
                   for question, options in zip(args.question, args.options)]
    except (CheckpointError, FileNotFoundError, VideoDecodeError) as error:
        parser.exit(1, f"explain: {error}\n")
    draw_strip(results, args.out, model.num_selected_frames)
    for result in results:
        print(f"Q: {result['question']}")
        print(f"  answer: {answer_text(result['answer'])} ({result['answer_text']})")
        print(f"  chosen frames (of {model.num_candidate_frames} candidates): {result['frame_idx']} "
              f"(video frame numbers {result['video_frame_numbers']})")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
