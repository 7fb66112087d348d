"""The fleet's split into shards: stable, complete, disjoint."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from petrova.documents.shard import Shard, parse_shard, select
from petrova.errors import UsageError

SLUGS = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), unique=True)


@given(SLUGS, st.integers(min_value=1, max_value=9))
def test_shards_cover_the_fleet_once(slugs: list[str], count: int) -> None:
    parts = [select(slugs, Shard(k, count)) for k in range(1, count + 1)]
    assert sorted(s for part in parts for s in part) == sorted(slugs)


@given(SLUGS, st.text(min_size=1, max_size=10))
def test_adding_a_repo_moves_no_other_repo(slugs: list[str], extra: str) -> None:
    assume(extra not in slugs)
    before = select(slugs, Shard(2, 3))
    after = select([*slugs, extra], Shard(2, 3))
    assert [s for s in after if s != extra] == before


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "1", "1/2/3", " 1/2", "1/2\n"])
def test_bad_shards_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="K/N"):
        parse_shard(text)


def test_parse() -> None:
    assert parse_shard("2/4") == Shard(2, 4)
    assert str(parse_shard("2/4")) == "2/4"
