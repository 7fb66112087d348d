"""The ingest's retry policy and defaults, apart from the HTTP code that applies them.

The commands declare their ``--retries``, ``--timeout`` and ``--token-env`` defaults from
here: importing :mod:`petrova.delivery.publish` brings the HTTP layer (about 20 ms), which
a snapshot without ``--publish`` never needs.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TOKEN_ENV = "PETROVA_INGEST_TOKEN"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``retries`` more attempts after the first."""

    retries: int = 4
    timeout: float = 30.0
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, retry_number: int) -> float:
        """Seconds before retry ``retry_number`` (1-based): 1, 2, 4, ... capped."""
        return float(min(self.max_backoff, self.backoff * 2 ** (retry_number - 1)))


@dataclass(frozen=True)
class RetryNote:
    """Said (by the caller, if it wants) before each retry."""

    attempt: int
    reason: str
    delay: float
