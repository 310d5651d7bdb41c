"""Train from a LAVIS project YAML: ``python -m lavis_vila.train --cfg-path Y [--options k=v ...]``.

Also ``vila-train``, and under ``torchrun --nproc_per_node=N -m lavis_vila.train ...``.
"""
from lavis_vila.launch import build_runner, setup


def main(argv=None):
    cfg, task, datasets, model, run_id = setup(argv, description="Train a lavis_vila model.")
    build_runner(cfg, task, model, datasets, run_id).train()


if __name__ == "__main__":
    main()
