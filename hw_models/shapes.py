"""Decoder-only transformer shapes (Llama / Qwen2 style) and their dense GPU workload.

``SMOLLM2_135M``: the embedded SmolLM2-135M (hidden 576, 30 layers, 9 query / 3 KV heads of
64, MLP 1536, vocab 49152, tied embeddings; the model card HuggingFaceTB/SmolLM2-135M and the GGUF's config).
``QWEN25_7B``: Qwen2.5-7B (hidden 3584, 28 layers, 28 query / 4 KV heads of 128, MLP 18944,
vocab 152064, untied; Qwen2.5 config.json), the base model SpikingBrain-7B was converted from.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._checks import finite_nonneg, positive_int

@dataclass(frozen=True)
class ModelShape:
    """Shape of a Llama-style decoder (SwiGLU MLP, grouped-query attention).

    Attributes:
        name: label.
        hidden: model width.
        layers: decoder layers.
        heads, kv_heads, head_dim: attention heads (query / key-value) and head size.
        intermediate: MLP width.
        vocab: vocabulary size.
        tie_embeddings: lm_head shares the embedding matrix.
    """

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        for f in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab"):
            positive_int(f"ModelShape {self.name!r}", f, getattr(self, f))
        if self.heads % self.kv_heads:
            raise ValueError(f"ModelShape {self.name!r}: heads ({self.heads}) must be a multiple of kv_heads")

    def linear_shapes(self, include_lm_head: bool = False) -> list[tuple[str, str, int, int]]:
        """(name, role, in_features, out_features) of every nn.Linear, in execution order."""
        q = self.heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        per_layer = (("self_attn.q_proj", "q", self.hidden, q), ("self_attn.k_proj", "k", self.hidden, kv),
                     ("self_attn.v_proj", "v", self.hidden, kv), ("self_attn.o_proj", "o", q, self.hidden),
                     ("mlp.gate_proj", "gate", self.hidden, self.intermediate),
                     ("mlp.up_proj", "up", self.hidden, self.intermediate),
                     ("mlp.down_proj", "down", self.intermediate, self.hidden))
        out = [(f"model.layers.{i}.{n}", r, a, b) for i in range(self.layers) for n, r, a, b in per_layer]
        if include_lm_head:
            out.append(("lm_head", "lm_head", self.hidden, self.vocab))
        return out

    def shared_inputs(self, include_lm_head: bool = False) -> dict[str, str]:
        """Layer name -> name of the earlier layer that receives the identical input spikes
        (k_proj and v_proj share q_proj's input; up_proj shares gate_proj's)."""
        out = {}
        for name, role, _, _ in self.linear_shapes(include_lm_head):
            if role in ("k", "v"):
                out[name] = name.rsplit(".", 1)[0] + ".q_proj"
            elif role == "up":
                out[name] = name.rsplit(".", 1)[0] + ".gate_proj"
        return out

    @property
    def decoder_linear_params(self) -> int:
        """Weights of all decoder nn.Linear layers (no embeddings, no lm_head)."""
        return sum(a * b for _, _, a, b in self.linear_shapes())

    @property
    def lm_head_params(self) -> int:
        return self.hidden * self.vocab

    @property
    def total_params(self) -> int:
        """All weights incl. embeddings (norm weights and biases excluded, < 0.1 %)."""
        emb = self.hidden * self.vocab
        return self.decoder_linear_params + emb + (0 if self.tie_embeddings else self.lm_head_params)

    def kv_bytes_per_token(self, bytes_per_value: int = 2) -> int:
        """KV-cache bytes stored per token of context (all layers)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_value

    def eager_elementwise_bytes(self, tokens: float, act_bytes: float = 2.0) -> float:
        """HBM bytes (B) moved by the unfused elementwise kernels of an eager Hugging Face decoder
        (transformers' Llama / Qwen2 modeling code) for ``tokens`` tokens, all layers. ESTIMATE,
        counted from that code per token and layer (h = hidden, q / kv = query / key-value width,
        I = MLP width; bf16 = 2 B, float32 = 4 B): two RMSNorms in float32 (upcast, square, mean,
        scale, downcast, weight: 36 h each), two residual adds (6 h each), rotary embedding of q
        and k (x cos, rotate_half's negate and concatenate, x sin, add: 20 B per element), the
        attention output's transpose copy (4 q) and SiLU(gate) x up (10 I): 84 h + 24 q + 20 kv +
        10 I bytes per token and layer. A fused engine (the "hardware" regime) keeps these in
        registers; GEMMs and attention move their own operands (their measured times include it)."""
        q = self.heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        per_token_layer = eager_elementwise_bytes_per_token(self.hidden, q, kv, self.intermediate, act_bytes)
        return float(tokens) * self.layers * per_token_layer

    def dense_work(
        self,
        mode: str,
        batch: int = 1,
        prompt_len: int = 1024,
        context: float | None = None,
        weight_bytes: float = 2.0,
        act_bytes: float = 2.0,
        lm_head_tokens: str = "last",
    ) -> dict[str, float]:
        """FLOPs and HBM bytes of one forward call on a dense engine (GPU).

        Args:
            mode: "prefill" (``batch`` sequences of ``prompt_len`` tokens) or "decode" (one new
                token for each of ``batch`` sequences, attending to ``context`` cached tokens).
            batch: sequences processed together.
            prompt_len: prefill length (tokens).
            context: decode: cached tokens attended to (default ``prompt_len``).
            weight_bytes, act_bytes: bytes per weight / activation / KV value.
            lm_head_tokens: prefill only: "last" (logits for the last position, as generate()
                does) or "all" (every position).

        Returns:
            dict with ``flops``, ``bytes``, ``tokens`` (new tokens in this call), ``layers``,
            and the parts ``linear_flops``, ``attn_flops``, ``lm_head_flops``,
            ``weight_bytes``, ``kv_bytes``, ``act_bytes``.

        The model counts: all decoder linear layers, the lm_head, the attention score and
        value products (causal: half of L x L in prefill), KV-cache reads (decode) and writes,
        and the input/output activations of every linear layer. Norms, rotary, softmax and
        SiLU are elementwise and not counted (< 1 % of FLOPs; their bytes are kept in L2).
        """
        positive_int("dense_work", "batch", batch)
        positive_int("dense_work", "prompt_len", prompt_len)
        if lm_head_tokens not in ("last", "all"):
            raise ValueError(f"lm_head_tokens must be 'last' or 'all', got {lm_head_tokens!r}")
        q = self.heads * self.head_dim
        P = self.decoder_linear_params
        io_per_token = sum(a + b for _, _, a, b in self.linear_shapes())  # activations in+out, all layers
        if mode == "prefill":
            n = batch * prompt_len
            head_tokens = batch if lm_head_tokens == "last" else n
            lin_f = 2.0 * n * P
            attn_f = self.layers * 2.0 * batch * q * prompt_len * prompt_len  # causal: QK^T + AV, half of L^2 each
            kv = float(n) * self.kv_bytes_per_token(int(act_bytes))          # cache writes
            acts = float(n) * io_per_token * act_bytes
        elif mode == "decode":
            ctx = float(prompt_len if context is None else context)
            finite_nonneg("dense_work", "context", ctx)
            n = batch
            head_tokens = batch
            lin_f = 2.0 * n * P
            attn_f = self.layers * 4.0 * batch * q * ctx                    # QK^T + AV over the cache
            kv = batch * (ctx + 1.0) * self.kv_bytes_per_token(int(act_bytes))  # read cache + write new
            acts = float(n) * io_per_token * act_bytes
        else:
            raise ValueError(f"mode must be 'prefill' or 'decode', got {mode!r}")
        head_f = 2.0 * head_tokens * self.lm_head_params
        wbytes = (P + self.lm_head_params) * weight_bytes
        return {
            "flops": lin_f + attn_f + head_f,
            "bytes": wbytes + kv + acts + head_tokens * self.vocab * act_bytes,
            "tokens": float(n),
            "layers": float(self.layers),
            "linear_flops": lin_f,
            "attn_flops": attn_f,
            "lm_head_flops": head_f,
            "weight_bytes": wbytes,
            "kv_bytes": kv,
            "act_bytes": acts,
        }


def eager_elementwise_bytes_per_token(hidden: int, q: int, kv: int, intermediate: int, act_bytes: float = 2.0) -> float:
    """Bytes per token of one eager decoder layer's elementwise kernels (see
    :meth:`ModelShape.eager_elementwise_bytes`): 84 h + 24 q + 20 kv + 10 I at 2-byte activations."""
    return (84 * hidden + 24 * q + 20 * kv + 10 * intermediate) * act_bytes / 2.0


SMOLLM2_135M = ModelShape(
    name="SmolLM2-135M",
    hidden=576,          # SmolLM2-135M config: hidden_size 576
    layers=30,           # num_hidden_layers 30
    heads=9,             # num_attention_heads 9
    kv_heads=3,          # num_key_value_heads 3
    head_dim=64,         # 576 / 9
    intermediate=1536,   # intermediate_size 1536
    vocab=49152,         # vocab_size 49152
    tie_embeddings=True,  # tie_word_embeddings true
)

QWEN25_7B = ModelShape(
    name="Qwen2.5-7B",
    hidden=3584,         # Qwen2.5-7B config: hidden_size 3584
    layers=28,           # num_hidden_layers 28
    heads=28,            # num_attention_heads 28
    kv_heads=4,          # num_key_value_heads 4
    head_dim=128,        # 3584 / 28
    intermediate=18944,  # intermediate_size 18944
    vocab=152064,        # vocab_size 152064
    tie_embeddings=False,  # tie_word_embeddings false
)

# The smallest model of Qwen2.5-7B's architecture class (Qwen2: q/k/v bias, 2 KV heads): a host
# probe for the Qwen2 code path (hw_models.gpu_calibration, docs/gpu-regimes.md).
QWEN25_05B = ModelShape(
    name="Qwen2.5-0.5B",
    hidden=896,          # Qwen2.5-0.5B config: hidden_size 896
    layers=24,           # num_hidden_layers 24
    heads=14,            # num_attention_heads 14
    kv_heads=2,          # num_key_value_heads 2
    head_dim=64,         # 896 / 14
    intermediate=4864,   # intermediate_size 4864
    vocab=151936,        # vocab_size 151936
    tie_embeddings=True,  # tie_word_embeddings true
)
