"""Answer one question on one video with ViLA and draw which frames it chose.

    python -m lavis_vila.tools.explain --video V --question Q --options A B C ... --out strip.png \\
        [--question Q2 --options D E F ...] [--checkpoint CKPT] [--model-type tiny] [--compile [MODE]]

Prints the chosen answer and frame indices, and draws the T candidate frames in a strip, one
column group per segment, with the K chosen frames framed in red and, under each frame, its
selection probability within its segment (``lavis_vila.frame_strip``). With several questions,
one strip per question: a question-aware prompter can choose different frames of the same video.
"""
import argparse

from lavis_vila.checkpoints import CheckpointError
from lavis_vila.frame_strip import draw_strip
from lavis_vila.inference import InputError, answer, load
from lavis_vila.models.compiled import MODES
from lavis_vila.models.paths import MODEL_TYPES
from lavis_vila.prompts import answer_text


def main(argv=None):
    parser = argparse.ArgumentParser(description="Answer a question on a video and draw ViLA's frame choice.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--video", required=True)
    parser.add_argument("--question", action="append", required=True,
                        help="give it more than once, each followed by its --options, to compare questions on one video")
    parser.add_argument("--options", nargs="+", action="append", required=True, help="2 to 5 answer options")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--checkpoint", help="a vila checkpoint written by training (the model is built from the "
                                               "config it records) or a saved-model folder (default: --model-type's own weights)")
    parser.add_argument("--model-type", default="tiny", choices=MODEL_TYPES, help="without --checkpoint: the vila model type")
    parser.add_argument("--start", type=float, help="clip start in seconds")
    parser.add_argument("--end", type=float, help="clip end in seconds")
    parser.add_argument("--compile", nargs="?", const="default", choices=MODES, metavar="MODE",
                        help=f"compile the model's inference (torch.compile, inductor): {', '.join(MODES)}; "
                             f"the first answer waits for the compilation")
    args = parser.parse_args(argv)
    if len(args.options) != len(args.question):
        parser.error(f"give one --options list per --question ({len(args.question)} questions, "
                     f"{len(args.options)} --options lists)")
    try:  # bad input: exit 1 with the message; bad usage: argparse's exit 2
        model = load("vila", args.model_type, args.checkpoint, config_key="--checkpoint", compile=args.compile)
        answers = [answer(model, args.video, question, options, args.start, args.end)
                   for question, options in zip(args.question, args.options)]
    except (CheckpointError, FileNotFoundError, InputError) as error:
        parser.exit(1, f"explain: {error}\n")
    draw_strip(answers, args.out)
    for result in answers:
        print(f"Q: {result.question}")
        print(f"  answer: {answer_text(result.option)} ({result.text})")
        print(f"  chosen frames (of {model.num_candidate_frames} candidates): {result.frame_idx} "
              f"(video frame numbers {result.frame_numbers})")
    print(f"wrote {args.out}")
    return answers


if __name__ == "__main__":
    main()
