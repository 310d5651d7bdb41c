"""The experiments that reproduce the README's figures, as library code.

``demo`` (the recipe on keyframe_qa) and ``ablation`` (the Frame-Prompter on its two-event
variant) share the training and evaluation stages in ``stages`` and the report helpers in
``report``; ``selection_trace`` replays a run's checkpoints; ``bench`` and ``bench_data`` time
the models and the data path; ``gpu_check`` is the prepared check for one GPU machine;
``make_tiny_tokenizers`` regenerates the shipped tiny tokenizers. ``jobs`` runs trainings side
by side and ``machine`` records where a figure comes from. Their command lines are the thin
``python -m lavis_vila.tools.<name>``. Importing this package imports nothing.
"""
