"""petrova with every speed-up switched off: the baseline of `make bench`.

This is "the straightforward way": PyYAML's C loader over every input file (registry,
contracts, ledgers), then the models, then jsonschema over the output, no cache and a
single core. It runs the real CLI, so its output must be byte-for-byte what the fast
path writes; the harness checks that.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson

from petrova import catalogue, io, ledger, schemas


class _NoJson:
    """Stands in for orjson inside petrova.ledger: every ledger takes the YAML path."""

    JSONDecodeError = orjson.JSONDecodeError

    def loads(self, data: bytes) -> Any:
        raise orjson.JSONDecodeError("straightforward: read it as YAML", "", 0)


def _straightforward() -> None:
    io._fast = None  # no fast YAML parser: every file through libyaml
    catalogue.Catalogue.fast_contract_check = property(lambda self: None)  # type: ignore[assignment]
    setattr(ledger, "orjson", _NoJson())  # noqa: B010  # ledgers through libyaml too
    os.environ["PETROVA_CACHE"] = "off"
    os.environ["PETROVA_JOBS"] = "1"

    def slow_check(document: Any, cat: catalogue.Catalogue) -> None:
        validator = schemas._snapshot_validators(cat)[1]
        errors = list(validator.iter_errors(document))
        if errors:
            raise SystemExit(f"snapshot does not match its schema: {errors[0].message}")

    schemas.check_snapshot = slow_check  # type: ignore[assignment]
    import petrova.commands.snapshot as snapshot_command

    setattr(snapshot_command, "check_snapshot", slow_check)  # noqa: B010


if __name__ == "__main__":
    _straightforward()
    from petrova.cli import cli

    sys.exit(cli.main(args=sys.argv[1:], prog_name="petrova"))
