"""Roles of linear layers (q, k, v, qkv, o, gate, up, down, lm_head) and the one role detector."""
from __future__ import annotations

import re

# Model order of the roles; "qkv" is a fused query/key/value projection (GPT-2 ``c_attn``).
ROLES: tuple[str, ...] = ("q", "k", "v", "qkv", "o", "gate", "up", "down", "lm_head")
OTHER = "other"  # any other linear layer (routers, adapters ...)
ALL_ROLES: tuple[str, ...] = ROLES + (OTHER,)

_PATTERNS: tuple[tuple[str, str], ...] = (
    # last component of the module name -> role (Llama/Qwen/Mistral/Phi/GPT-NeoX/GPT-2 conventions)
    (r"q_proj|query|wq", "q"),
    (r"k_proj|key|wk", "k"),
    (r"v_proj|value|wv", "v"),
    (r"c_attn|qkv_proj|query_key_value|Wqkv", "qkv"),
    (r"o_proj|out_proj|dense|wo", "o"),
    (r"gate_proj|w1", "gate"),
    (r"up_proj|w3|fc1|c_fc|dense_h_to_4h", "up"),
    (r"down_proj|w2|fc2|dense_4h_to_h", "down"),
    (r"lm_head|embed_out", "lm_head"),
)
_MLP_PARENTS = frozenset({"mlp", "feed_forward", "ffn"})
_ATTN_PARENTS = frozenset({"attn", "self_attn", "attention", "self_attention"})


def role_of(name: str) -> str:
    """Role of a linear module from its name: one of :data:`ALL_ROLES`.

    GPT-2 names ``c_proj`` twice: under ``mlp`` it is the down projection, under ``attn``
    the output projection; ``c_fc`` is the MLP up projection and ``c_attn`` the fused qkv.

    >>> role_of("model.layers.3.self_attn.k_proj"), role_of("transformer.h.0.mlp.c_proj")
    ('k', 'down')
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    parts = name.rsplit(".", 2)
    last = parts[-1]
    if last == "c_proj":
        parent = parts[-2] if len(parts) > 1 else ""
        return "down" if parent in _MLP_PARENTS else "o" if parent in _ATTN_PARENTS else OTHER
    for pattern, role in _PATTERNS:
        if re.fullmatch(pattern, last):
            return role
    return OTHER
