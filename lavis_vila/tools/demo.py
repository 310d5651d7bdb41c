"""Run the whole ViLA recipe on the synthetic keyframe_qa benchmark (``lavis_vila.experiments.demo``).

    python -m lavis_vila.tools.demo --out output/demo --data-dir data/keyframe_qa --seed 0 1 2
"""
import argparse
from pathlib import Path

from lavis_vila.datasets.synthetic_options import add_generator_arguments, generator_kwargs
from lavis_vila.experiments.demo import reproduce
from lavis_vila.experiments.jobs import default_workers
from lavis_vila.experiments.report import SYNTHETIC


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the ViLA recipe on the synthetic keyframe_qa benchmark.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="output/demo")
    parser.add_argument("--data-dir", default="data/keyframe_qa", help="one sub-directory per seed")
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of data and training (3 fit in 15 minutes on a 2-core Xeon; docs/results/demo.md also "
                             "reports --seed 0 1 2 3 4)")
    parser.add_argument("--vila-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="extra --options for stage 2 (ViLA), e.g. model.prompter_gradient=selected; "
                             "the model.* ones also apply where ViLA is evaluated, timed and drawn")
    parser.add_argument("--jobs", type=int, default=default_workers(),
                        help="trainings at once, one CPU thread each (the results do not depend on it)")
    add_generator_arguments(parser, seed=False)
    args = parser.parse_args(argv)
    table, vila = reproduce(Path(args.out), Path(args.data_dir), args.seed, args.jobs, args.vila_options,
                            generator_kwargs(args))
    print(f"\n{SYNTHETIC}\n\n{table}")
    print(f"\nAsk seed {args.seed[0]}'s ViLA about a video in the web demo:\n"
          f"  python -m lavis_vila.tools.app --checkpoint {vila}")


if __name__ == "__main__":
    main()
