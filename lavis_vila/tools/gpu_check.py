"""The prepared GPU check (``lavis_vila.experiments.gpu_check``); exit code 1 if a step failed.

    bash run_scripts/vila/gpu_check.sh OUT              # on the bare GPU machine (see the script)
    python -m lavis_vila.tools.gpu_check --out OUT --dry-run   # the same steps, tiny, on the CPU
"""
import argparse
import sys

from lavis_vila.experiments.gpu_check import Settings, run
from lavis_vila.experiments.gpu_check_report import markdown


def main(argv=None):
    defaults = Settings()
    parser = argparse.ArgumentParser(description="The prepared GPU check: ViLA 32->4 at full size, trained, evaluated "
                                                 "and benchmarked.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder for the JSON, the markdown and the logs")
    parser.add_argument("--dry-run", action="store_true", help="the tiny model on the CPU")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--eval-samples", type=int, default=defaults.eval_samples)
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds allowed for each step")
    args = parser.parse_args(argv)
    report = run(args.out, Settings(args.dry_run, args.steps, args.batch_size, args.eval_samples, args.timeout))
    print(markdown(report))
    failed = [r for r in report["steps_run"] if r["status"] == "failed"]
    for r in failed:
        print(f"FAILED: {r['step']} {r.get('runner', r.get('batch_size'))}\n{r.get('output_tail', '')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
