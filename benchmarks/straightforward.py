"""petrova with every speed-up switched off: the baseline of `make bench`.

This is "the straightforward way": PyYAML's C loader over every input file (registry,
contracts, ledgers; no ledger seal is trusted), then the models (the snapshot is built
and dumped through them), then jsonschema over the output; one
process, the garbage collector left on. It runs the real CLI, so its output must be
byte-for-byte what the fast path writes; the harness checks that.
"""

from __future__ import annotations

import sys
from typing import Any

from petrova.documents import catalogue, schemas
from petrova.files import yaml_strict
from petrova.fleet import snapshot
from petrova.ledger import store
from petrova.models import Snapshot


def _no_json(data: bytes) -> Any:
    """Stands in for the JSON reader inside petrova.ledger.store: every ledger takes the
    YAML path."""
    raise ValueError("straightforward: read it as YAML")


def _straightforward() -> None:
    yaml_strict._fast = None  # no fast YAML parser: every file through libyaml
    catalogue.Catalogue.fast_contract_check = property(  # type: ignore[assignment]
        lambda self: lambda data: False
    )
    setattr(store, "orjson_unique", _no_json)  # noqa: B010  # ledgers through libyaml too

    document_of = snapshot.snapshot_document

    def through_models(typed: Any) -> Any:
        return Snapshot.model_validate(document_of(typed)).model_dump(mode="json")

    setattr(snapshot, "snapshot_document", through_models)  # noqa: B010

    def slow_check(document: Any, cat: catalogue.Catalogue) -> None:
        validator = schemas.snapshot_validator(cat)
        errors = list(validator.iter_errors(document))
        if errors:
            raise SystemExit(f"snapshot does not match its schema: {errors[0].message}")

    schemas.check_snapshot = slow_check  # type: ignore[assignment]
    setattr(snapshot, "check_snapshot", slow_check)  # noqa: B010


if __name__ == "__main__":
    _straightforward()
    from petrova.cli import cli

    sys.exit(cli.main(args=sys.argv[1:], prog_name="petrova"))
