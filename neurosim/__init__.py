"""neurosim: capture, event-driven simulation and analysis of spiking LLM inference."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spikingbrain-neurosim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
