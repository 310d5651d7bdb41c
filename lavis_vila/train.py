"""Train from a LAVIS project YAML: ``python -m lavis_vila.train --cfg-path Y [--options k=v ...]``.

Also ``vila-train``, and under ``torchrun --nproc_per_node=N -m lavis_vila.train ...``.
"""
from lavis_vila import launch


def main(argv=None):
    return launch.main(argv, evaluate=False)


if __name__ == "__main__":
    main()
