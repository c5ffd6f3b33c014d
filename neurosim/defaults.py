"""What a run replays and prices unless told otherwise (light: the command line reads it)."""
from __future__ import annotations

DEFAULT_SCHEMES: tuple[str, ...] = ("bitwise-signed", "ternary", "bitwise-twos")  # replayed; the first is priced
DEFAULT_CHIPS: tuple[str, ...] = ("loihi2", "loihi", "truenorth", "spinnaker2")
DEFAULT_GPUS: tuple[str, ...] = ("h100", "a100")
