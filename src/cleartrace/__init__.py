"""ClearTrace: consent-first recording of how people work at their computer."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
