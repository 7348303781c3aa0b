"""gradmanip: composable reward/safety gradient manipulation for safe reinforcement learning."""

__version__ = "0.1.0"

__all__ = ["__version__"]
