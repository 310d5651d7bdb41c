"""What every command-line entry point does before its imports: hide known third-party noise.

``import lavis`` makes torch and fairscale print deprecation ``FutureWarning``s that say nothing
about the user's run. They are filtered by message, here only, so every other warning still shows.
"""
import warnings

KNOWN_THIRD_PARTY_WARNINGS = (
    r"`torch\.jit\.script` is deprecated",  # torch, for LAVIS's and timm's scripted helpers
    r"`torch\.cuda\.amp\.custom_(fwd|bwd)\(args\.\.\.\)` is deprecated",  # fairscale 0.4.4
    r"`torch\.cuda\.amp\.GradScaler\(args\.\.\.\)` is deprecated",  # LAVIS runner_base's scaler
)


def quiet_third_party_warnings() -> None:
    for message in KNOWN_THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
