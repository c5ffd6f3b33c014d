"""Shared fixtures. The real embedded model is loaded once per test session (about 25 s)."""
from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    # The GPU replay's Triton kernels (neurosim/sim/kernels_triton.py) run in Triton's interpreter on CPU
    # tensors here (tests/test_replay_batch.py); the mode is fixed when triton is first imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def smollm():
    """The embedded SmolLM2-135M-Instruct (float32, CPU) as a ``neurosim.models.LoadedModel``."""
    from neurosim.models import load_model

    return load_model()


SMOLLM_TRACE_CHUNK = 32  # tokens per forward call: the fixture prompt spans several KV-cache chunks


@pytest.fixture(scope="session")
def smollm_text() -> str:
    """The shipped public-domain text (US Declaration of Independence)."""
    from pathlib import Path

    import neurosim

    return (Path(neurosim.__file__).parent / "data" / "declaration_of_independence.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def smollm_prompt(smollm_text) -> str:
    """A short real prompt: the Declaration's title line and first paragraph (80 tokens)."""
    return "\n\n".join(smollm_text.split("\n\n")[1:3])


@pytest.fixture(scope="session")
def smollm_trace(smollm, smollm_prompt, tmp_path_factory):
    """A real SmolLM2 capture of ``smollm_prompt`` (k=3, no lm_head) as an opened, file-backed
    ``analysis.trace.SpikeTrace``. Shared: do not close it or write to its file; copy
    ``smollm_trace.path`` elsewhere if a test needs to modify a trace."""
    from neurosim.capture import capture

    path = tmp_path_factory.mktemp("smollm_trace") / "smollm.h5"
    trace = capture(smollm, smollm_prompt, path, k=3.0, chunk_tokens=SMOLLM_TRACE_CHUNK, progress=False)
    yield trace
    trace.close()
