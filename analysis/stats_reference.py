"""Reference values and definitions of the SpikingBrain report (arXiv:2509.05276, section 3)."""
from __future__ import annotations

import encoders

from .roles import ROLES  # noqa: F401  (re-exported)
from .roles import role_of as infer_role  # noqa: F401  (the old name)

REPORT_WINDOW: tuple[str, int] = (encoders.DEFAULT_SCHEME, 3)  # arXiv:2509.05276: 3-step bitwise-ternary window
# SpikingBrain-7B headline statistics, (SpikingBrain report, arXiv:2509.05276);
# fractions in [0, 1], about 1 % of counts exceed 16.
REPORT_7B: dict[str, float] = {
    "sparsity": 0.6915,
    "silence": 0.184,
    "spikes_per_active_channel": 1.13,
    "frac_abs_le_7": 0.941,
    "frac_abs_gt_16": 0.01,
}
# Sign-split schemes: two lines per channel (encoders.Scheme.needs_sign_split).
SPLIT_SCHEMES: frozenset[str] = frozenset(encoders.scheme_names(signed=False))
# Step budgets that all carry |s| <= 7, the range holding 94.1 % of the report's counts
# (section 3): comparisons at these budgets are at equal precision (encoders.Scheme.budget).
DEFAULT_BUDGETS: dict[str, int] = {s.name: s.budget for s in encoders.REGISTRY.values()}
DEFINITIONS: dict[str, str] = {
    "value": "one integer spike count s of one (token, channel) input of a linear layer",
    "silence": "fraction of values with s == 0",
    "active_fraction": "1 - silence",
    "never_firing_channels": "channels whose count is 0 for every token seen",
    "spikes": "non-zero slots of the spike train of s clipped to the T-step window of the scheme",
    "sparsity": "1 - spikes / (lines * T * values); lines = 2 per channel for sign-split unsigned schemes",
    "spikes_per_active_channel": "spikes / values with s != 0",
    "firing_rate_per_step": "spikes at step t / (lines * values), step 0 first (MSB first for bitwise)",
    "frac_abs_le_7": "fraction of values with |s| <= 7",
    "frac_abs_gt_16": "fraction of values with |s| > 16",
    "steps_needed": "Int2Spike default T for the data: max over the layer (encoders.steps_needed)",
    "unsigned_schemes": f"{' and '.join(encoders.scheme_names(signed=False))} are sign-split: two unipolar lines per channel",
    "vth": "adaptive threshold V_th = mean|x|/k per token, same units as the activations",
    "temporal_sparsity": "fraction of values equal to the same channel's value at the previous token of the "
                         "same prompt (each prompt's first token has no previous token and is not counted)",
    "delta": "sigma-delta sending: s_t - s_(t-1) per layer and channel, the first token of a prompt sends s_0",
}
