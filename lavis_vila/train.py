"""Train from a LAVIS project YAML: ``python -m lavis_vila.train --cfg-path Y [--options k=v ...]``.

Also ``vila-train``, and under ``torchrun --nproc_per_node=N -m lavis_vila.train ...``.
"""
from lavis_vila.cli import quiet_third_party_warnings

quiet_third_party_warnings()  # before launch imports torch and LAVIS

from lavis_vila import launch  # noqa: E402


def main(argv=None):
    return launch.main(argv, evaluate=False)


if __name__ == "__main__":
    main()
