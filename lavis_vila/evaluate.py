"""Evaluate from a LAVIS project YAML: ``python -m lavis_vila.evaluate --cfg-path Y [--options ...]``.

Runs ``run.test_splits`` with the weights the model config names (``model.finetuned`` with
``model.load_finetuned: True``). Also ``vila-evaluate``, and under ``torchrun``.
"""
from lavis_vila.cli import quiet_third_party_warnings

quiet_third_party_warnings()  # before launch imports torch and LAVIS

from lavis_vila import launch  # noqa: E402


def main(argv=None):
    return launch.main(argv, evaluate=True)


if __name__ == "__main__":
    main()
