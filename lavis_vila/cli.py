"""What every command-line entry point does before its imports: hide known third-party noise.

``import lavis`` makes torch and fairscale print deprecation ``FutureWarning``s that say nothing
about the user's run, and Gradio 5.50 (the web demo) warns about the API of Gradio 6, which cannot
install next to LAVIS's transformers 4.26 (huggingface-hub >= 1.16 against < 1.0). They are filtered by message, here only, so
every other warning still shows.
"""
import warnings

KNOWN_THIRD_PARTY_WARNINGS = (
    (r"`torch\.jit\.script` is deprecated", FutureWarning),  # torch, for LAVIS's and timm's scripted helpers
    (r"`torch\.cuda\.amp\.custom_(fwd|bwd)\(args\.\.\.\)` is deprecated", FutureWarning),  # fairscale 0.4.4
    (r"`torch\.cuda\.amp\.GradScaler\(args\.\.\.\)` is deprecated", FutureWarning),  # LAVIS runner_base's scaler
    (r".* will be removed in Gradio 6\.0", DeprecationWarning),  # gradio 5.50
    (r"Importing from timm\.models\.\w+ is deprecated", FutureWarning),  # timm 1.x, for LAVIS's EVA ViT (current stack)
)


def quiet_third_party_warnings() -> None:
    for message, category in KNOWN_THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
