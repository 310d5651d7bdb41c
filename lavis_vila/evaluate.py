"""Evaluate from a LAVIS project YAML: ``python -m lavis_vila.evaluate --cfg-path Y [--options ...]``.

Runs ``run.test_splits`` with the weights the model config names (``model.finetuned`` with
``model.load_finetuned: True``). Also ``vila-evaluate``, and under ``torchrun``.
"""
from lavis_vila.launch import build_runner, setup


def main(argv=None):
    cfg, task, datasets, model, run_id = setup(argv, description="Evaluate a lavis_vila model.")
    return build_runner(cfg, task, model, datasets, run_id).evaluate(skip_reload=True)


if __name__ == "__main__":
    main()
