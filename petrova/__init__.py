"""petrova: the control plane for a fleet of governed git repositories."""

from __future__ import annotations

__version__ = "0.1.0"
