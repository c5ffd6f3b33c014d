"""Shared fixtures. The real embedded model is loaded once per test session (about 25 s)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def smollm():
    """The embedded SmolLM2-135M-Instruct (float32, CPU) as a ``neurosim.models.LoadedModel``."""
    from neurosim.models import load_model

    return load_model()
