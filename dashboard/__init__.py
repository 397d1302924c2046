"""The command wall's core: models, protocol, geography and Redis state. No web framework here."""

from __future__ import annotations

__version__ = "0.1.0"
