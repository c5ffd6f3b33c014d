"""Scale: long-input capture memory on CPU, and capture / replay throughput on a GPU.

Two measurements, each printing ratios against a baseline measured in the same run:

``--what long`` (CPU): capture an input of ``--tokens`` tokens (default 32,768) of the
embedded SmolLM2-135M, cut into independent windows of the model's context (8,192 tokens;
a longer sequence is outside what the model was trained on). Prints peak resident memory,
tokens/s of the capture against the plain forward pass over the same windows, and the
trace size per token. The point: memory stays bounded (one chunk of activations plus the
KV cache), far below what holding every layer's float activations would take.

``--what gpu`` (CUDA): for the embedded model (if its file is present) and for randomly
initialised models of SmolLM2-135M's and Qwen2.5-7B's shapes in bfloat16, tokens/s of the
plain forward pass, of the capture (trace streamed to disk, uncompressed) and of the
event-driven replay of every layer (bitwise-signed, T = 3).

Usage:
    python -m benchmarks.scale --what long [--tokens 32768]
    python -m benchmarks.scale --what gpu [--models embedded,smollm2,qwen7b] [--tokens 1024]
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from neurosim.capture import capture
from neurosim.models import LoadedModel, load_model

TEXT = Path(__file__).resolve().parents[1] / "neurosim" / "data" / "declaration_of_independence.txt"


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far (GiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def windows(loaded: LoadedModel, n_tokens: int, window: int) -> list[str]:
    """The shipped text repeated to ``n_tokens`` tokens, cut into texts of ``window`` tokens."""
    base = loaded.tokenizer(TEXT.read_text(), add_special_tokens=False)["input_ids"]
    ids = (base * (n_tokens // len(base) + 1))[:n_tokens]
    return [loaded.tokenizer.decode(ids[i : i + window]) for i in range(0, n_tokens, window)]


def plain_forward(loaded: LoadedModel, texts: list[str], chunk: int, max_tokens: int) -> tuple[float, int]:
    """Seconds and tokens of the decoder stack over ``texts`` in chunks with a KV cache (no hooks)."""
    from transformers import DynamicCache

    runner = getattr(loaded.model, "base_model", loaded.model)
    total, t0 = 0, time.perf_counter()
    with torch.inference_mode():
        for text in texts:
            ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"][:, :max_tokens].to(loaded.device)
            cache = DynamicCache()
            for a in range(0, ids.shape[1], chunk):
                runner(input_ids=ids[:, a : a + chunk], past_key_values=cache, use_cache=True)
            total += ids.shape[1]
    if loaded.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, total


def long_input(args: argparse.Namespace) -> None:
    loaded = load_model()
    ctx = loaded.max_positions
    texts = windows(loaded, args.tokens, ctx)
    rss0 = peak_rss_gib()
    # Baseline: the plain forward over the first window (the same chunking and cache growth).
    t_plain, n_plain = plain_forward(loaded, texts[:1], args.chunk, ctx)
    rss_plain = peak_rss_gib()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "long.h5"
        t0 = time.perf_counter()
        tr = capture(loaded, texts, path, chunk_tokens=args.chunk, max_tokens=ctx, progress=True)
        t_cap = time.perf_counter() - t0
        with tr:
            n = tr.n_tokens
            per_token_in = sum(tr.layer(name).in_features for name in tr.layers)
        size = path.stat().st_size
    rss_cap = peak_rss_gib()
    float_all = n * per_token_in * 4 / 2**30
    print(f"input: {n} tokens in {len(texts)} windows of <= {ctx} tokens; chunk {args.chunk} tokens; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"plain forward: {n_plain / t_plain:8.1f} tokens/s   peak RSS {rss_plain:.2f} GiB (after loading: {rss0:.2f} GiB)")
    print(f"capture:       {n / t_cap:8.1f} tokens/s   peak RSS {rss_cap:.2f} GiB   "
          f"overhead {(t_cap / n) / (t_plain / n_plain):.2f}x the plain forward per token")
    print(f"trace: {size / 2**20:.1f} MiB, {size / n / 1024:.1f} KiB/token (gzip)")
    print(f"all layers' float32 inputs for the whole input would take {float_all:.1f} GiB; "
          f"capture peaked at {rss_cap:.2f} GiB")


def random_model(shape: str, device: str) -> LoadedModel:
    """A randomly initialised causal LM of a known shape, bfloat16, with SmolLM2's tokenizer if present."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    if shape == "smollm2":
        cfg = LlamaConfig(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                          intermediate_size=1536, vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True)
    else:
        cfg = Qwen2Config(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                          intermediate_size=18944, vocab_size=152064, max_position_embeddings=32768)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.eval()
    return LoadedModel(model, _tokenizer(), f"random {shape} (bf16)")


def _tokenizer():
    tok_dir = os.environ.get("NEUROSIM_TOKENIZER")
    if tok_dir:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
    return load_model().tokenizer  # the embedded model's tokenizer


def gpu(args: argparse.Namespace) -> None:
    from neurosim.sim.model import replay_trace

    dev = "cuda"
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    print(f"{'model':28s} {'tokens':>6s} {'forward tok/s':>14s} {'capture tok/s':>14s} {'capture/fwd':>11s} "
          f"{'replay tok/s':>13s} {'replay/fwd':>10s} {'trace MiB':>9s}")
    for name in args.models.split(","):
        if name == "embedded":
            try:
                loaded = load_model(device=dev, dtype=torch.bfloat16)
            except FileNotFoundError as e:
                print(f"{name:28s} skipped: {e}")
                continue
        else:
            loaded = random_model(name, dev)
        text = " ".join([TEXT.read_text()] * 3)
        texts = [text]
        n = min(args.tokens, len(loaded.tokenizer(text)["input_ids"]))
        plain_forward(loaded, texts, args.chunk, n)  # warm-up
        t_plain, n_plain = plain_forward(loaded, texts, args.chunk, n)
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            path = Path(tmp) / "t.h5"
            t0 = time.perf_counter()
            tr = capture(loaded, texts, path, chunk_tokens=args.chunk, max_tokens=n, compression=None, progress=False)
            torch.cuda.synchronize()
            t_cap = time.perf_counter() - t0
            with tr:
                t0 = time.perf_counter()
                rep = replay_trace(tr, loaded.model, "bitwise-signed", 3, clip=True, device=dev, progress=False)
                torch.cuda.synchronize()
                t_rep = time.perf_counter() - t0
            size = path.stat().st_size
        print(f"{loaded.model_id[:28]:28s} {n_plain:6d} {n_plain / t_plain:14.1f} {n / t_cap:14.1f} {t_cap / t_plain:10.2f}x "
              f"{n / t_rep:13.1f} {t_rep / t_plain:9.2f}x {size / 2**20:9.1f}")
        print(f"   replay: {rep.total.events / t_rep / 1e6:.1f} M events/s, "
              f"{rep.total.synaptic_ops / t_rep / 1e9:.2f} G synaptic ops/s, peak GPU memory "
              f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        del loaded, tr, rep
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", choices=["long", "gpu"], required=True)
    ap.add_argument("--tokens", type=int, default=None, help="long: 32768; gpu: 1024")
    ap.add_argument("--chunk", type=int, default=256, help="tokens per forward call")
    ap.add_argument("--models", default="embedded,smollm2,qwen7b", help="gpu: comma list")
    ap.add_argument("--tmp", default=None, help="folder for the temporary traces")
    args = ap.parse_args()
    if args.what == "long":
        args.tokens = args.tokens or 32768
        long_input(args)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("--what gpu needs a CUDA device")
        args.tokens = args.tokens or 1024
        gpu(args)


if __name__ == "__main__":
    main()
