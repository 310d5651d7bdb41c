"""Trace a ViLA run's frame choice over its checkpoints (``lavis_vila.experiments.selection_trace``).

    python -m lavis_vila.tools.selection_trace --run-dir output/demo/seed1/vila/<run id> \\
        --data-dir data/keyframe_qa/seed1
"""
import argparse
from pathlib import Path

from lavis_vila.experiments.selection_trace import NoFrameChoice, markdown, trace


def main(argv=None):
    parser = argparse.ArgumentParser(description="Trace a ViLA run's frame choice over its checkpoints.")
    parser.add_argument("--run-dir", required=True, type=Path, help="a training run's output folder")
    parser.add_argument("--data-dir", required=True, type=Path, help="the keyframe_qa folder it trained on")
    args = parser.parse_args(argv)
    try:
        rows = trace(args.run_dir, args.data_dir)
    except NoFrameChoice as error:
        parser.exit(1, f"selection_trace: {error}\n")
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
