"""Local Hugging Face folders of a named model shape with random weights, for machines the
embedded GGUF cannot reach (a device call carries at most 64 MiB).

The weights are initialised on ``--device`` (fast on a GPU), saved with ``save_pretrained``
in ``--dtype``, and the tokenizer of ``--tokenizer`` (e.g. the embedded SmolLM2's, saved as
a HF folder) is saved beside them; its ids fit both vocabularies.

Shapes: ``smollm2-135m`` (Llama: hidden 576, 30 blocks, MLP 1536, heads 9/3, vocab 49152,
as the embedded SmolLM2-135M-Instruct) and ``qwen2.5-7b`` (Qwen2: hidden 3584, 28 blocks,
MLP 18944, heads 28/4, vocab 152064, rope theta 1e6; Qwen2.5-7B's published config).

Usage:
    python benchmarks/random_models.py --shape qwen2.5-7b --tokenizer TOK_DIR --out DIR --device cuda
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

SHAPES = {
    "smollm2-135m": ("llama", dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                   num_attention_heads=9, num_key_value_heads=3, head_dim=64,
                                   max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
                                   tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)),
    "qwen2.5-7b": ("qwen2", dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                                 rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
                                 bos_token_id=151643, eos_token_id=151643)),
}


def build(shape: str, out: Path, tokenizer: Path, device: str = "cuda", dtype: torch.dtype = torch.bfloat16,
          seed: int = 0) -> Path:
    """Write a random-weight model of ``shape`` and ``tokenizer``'s files to ``out``."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    kind, kw = SHAPES[shape]
    cfg = AutoConfig.for_model(kind, **kw)
    torch.manual_seed(seed)
    t = time.perf_counter()
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise in the target dtype (no float32 copy of a 7B model)
    try:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(cfg)
    finally:
        torch.set_default_dtype(default)
    n = sum(p.numel() for p in model.parameters())
    t_init = time.perf_counter() - t
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer, local_files_only=True).save_pretrained(out)
    print(f"{shape}: {n / 1e9:.2f} B parameters ({dtype}) initialised on {device} in {t_init:.1f} s, saved to {out} "
          f"in {time.perf_counter() - t - t_init:.1f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", required=True, choices=list(SHAPES))
    p.add_argument("--tokenizer", required=True, type=Path, help="folder with tokenizer.json (and its config)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    args = p.parse_args(argv)
    build(args.shape, args.out, args.tokenizer, args.device, getattr(torch, args.dtype))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
