"""Catalogue edits as a person would make them by pull request (tests only).

SPEC §2 promises that renaming or adding an integration is a schema edit and no code
change; these helpers make exactly that edit to a copy of the catalogue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def rename_integration(catalogue: Path, old: str, new: str, out: Path) -> Path:
    """Rename ``old`` to ``new`` (keeping ``old`` in ``x-legacy-ids``); write to ``out``."""
    schema: dict[str, Any] = json.loads(catalogue.read_text())
    props = schema["properties"]["integrations"]["properties"]
    schema["properties"]["integrations"]["properties"] = {
        (new if key == old else key): value for key, value in props.items()
    }
    text = json.dumps(schema).replace(f"#/$defs/integration_{old}", f"#/$defs/integration_{new}")
    schema = json.loads(text)
    defs = schema["$defs"]
    schema["$defs"] = {
        (f"integration_{new}" if key == f"integration_{old}" else key): value
        for key, value in defs.items()
    }
    schema["$defs"][f"integration_{new}"]["x-legacy-ids"] = [old]
    out.write_text(json.dumps(schema, indent=2) + "\n")
    return out


def add_integration(catalogue: Path, new: str, title: str, out: Path) -> Path:
    """Append integration ``new`` with one required evidence field; write to ``out``."""
    schema: dict[str, Any] = json.loads(catalogue.read_text())
    props = schema["properties"]["integrations"]["properties"]
    template = json.dumps(next(iter(props.values())))
    first_id = next(iter(props))
    props[new] = json.loads(
        template.replace(f"#/$defs/integration_{first_id}", f"#/$defs/integration_{new}")
    )
    schema["$defs"][f"integration_{new}"] = {
        "title": title,
        "description": f"{title} watches the repo.",
        "x-legacy-ids": [],
        "type": "object",
        "additionalProperties": False,
        "required": [f"{new}_project"],
        "properties": {
            f"{new}_project": {"description": f"{title} project", "type": "string", "minLength": 1}
        },
    }
    out.write_text(json.dumps(schema, indent=2) + "\n")
    return out
