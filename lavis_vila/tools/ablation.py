"""Ablate the Frame-Prompter on keyframe_qa's two-event variant (``lavis_vila.experiments.ablation``).

    python -m lavis_vila.tools.ablation --out output/ablation --seed 0 1 2
"""
import argparse
from pathlib import Path

from lavis_vila.experiments.ablation import DATA, PROMPTER_OPTIONS, reproduce
from lavis_vila.experiments.jobs import default_workers
from lavis_vila.experiments.report import SYNTHETIC


def main(argv=None):
    parser = argparse.ArgumentParser(description="Ablate the Frame-Prompter on keyframe_qa's two-event variant.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="output/ablation")
    parser.add_argument("--data-dir", default="data/keyframe_qa_two_events", help="one sub-directory per seed")
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--prompters", nargs="+", default=list(PROMPTER_OPTIONS), choices=list(PROMPTER_OPTIONS),
                        help="the ViLA variants to train")
    parser.add_argument("--jobs", type=int, default=default_workers(),
                        help="runs at once, one CPU thread each (the results do not depend on it)")
    parser.add_argument("--num-train", type=int, default=DATA["num_train"])
    parser.add_argument("--num-val", type=int, default=DATA["num_val"])
    args = parser.parse_args(argv)
    table, rows = reproduce(Path(args.out), Path(args.data_dir), args.seed, args.prompters, args.jobs,
                            args.num_train, args.num_val)
    print(f"\n{table}\n\n{SYNTHETIC} Wrote {args.out}/results.md, results.json and ablation.png")
    return rows


if __name__ == "__main__":
    main()
