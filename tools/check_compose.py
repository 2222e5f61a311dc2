"""Check ``docker-compose.yml`` against the Compose Specification's JSON Schema, without Docker.

``make lint-deploy`` runs it: no Docker engine, no ``docker-compose`` and no root needed. The
schema is the one Debian's ``docker-compose`` package ships (``compose_spec.json``): used where
that package is installed, else unpacked from it with :mod:`tools.debian_fetch`, or taken
from ``$TXO_COMPOSE_SCHEMA``.

    python -m tools.check_compose docker-compose.yml
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tools import debian_fetch

PACKAGE = "docker-compose"
SCHEMA_IN_PACKAGE = Path("usr/lib/python3/dist-packages/compose/config/compose_spec.json")
ENV_SCHEMA = "TXO_COMPOSE_SCHEMA"


def schema_path() -> Path:
    """The Compose Specification schema: ``$TXO_COMPOSE_SCHEMA``, installed, or unpacked."""
    if os.environ.get(ENV_SCHEMA):
        return Path(os.environ[ENV_SCHEMA])
    installed = Path("/") / SCHEMA_IN_PACKAGE
    if installed.exists():
        return installed
    return debian_fetch.unpacked(PACKAGE) / SCHEMA_IN_PACKAGE


def problems(compose: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every place where ``compose`` breaks the schema, as ``path: message`` lines."""
    # The schema says draft 2019-09 (written with a trailing "#" jsonschema does not know).
    validator = jsonschema.Draft201909Validator(schema)
    return [
        f"{'.'.join(str(p) for p in err.absolute_path) or '(top)'}: {err.message}"
        for err in sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Check each file named (``docker-compose.yml`` by default); 0 when all are valid."""
    files = list(argv if argv is not None else sys.argv[1:]) or ["docker-compose.yml"]
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    failed = False
    for name in files:
        found = problems(yaml.safe_load(Path(name).read_text(encoding="utf-8")), schema)
        for line in found:
            print(f"{name}: {line}", file=sys.stderr)
        failed |= bool(found)
        if not found:
            print(f"{name}: valid against the Compose Specification schema")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
