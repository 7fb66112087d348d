"""A stable split of the fleet by slug, so that ``sync`` and ``probe`` can run on N runners.

Shard ``K/N`` (1-based) holds the slugs whose sha256 falls in bucket ``K-1`` modulo ``N``:
the split depends on the slug alone, so adding or removing a repo never moves another
repo to a different shard, and every runner computes the same split on its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from petrova.errors import UsageError

_SHARD = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,5})")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, slug: str) -> bool:
        """Whether ``slug`` belongs to this shard."""
        if self.count == 1:
            return True
        bucket = int.from_bytes(hashlib.sha256(slug.encode()).digest()[:8], "big") % self.count
        return bucket == self.index - 1


ALL = Shard(1, 1)


def parse_shard(text: str) -> Shard:
    """``K/N`` with ``1 <= K <= N``; anything else is a usage error that says so."""
    match = _SHARD.fullmatch(text)
    if match is None or int(match.group(1)) > int(match.group(2)):
        raise UsageError(
            f"--shard {text!r} is not K/N with 1 <= K <= N (for example 1/4, 2/4, 3/4, 4/4)"
        )
    return Shard(int(match.group(1)), int(match.group(2)))


def select(slugs: Iterable[str], shard: Shard) -> list[str]:
    """The slugs this shard holds, in their given order."""
    return [slug for slug in slugs if shard.holds(slug)]
