"""Energy and latency models: neuromorphic chips versus GPUs. Leaf package (numpy only)."""
from .activity import Activity

__all__ = ["Activity"]
