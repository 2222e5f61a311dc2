"""The ``scripts`` section of a config: each script's own settings, checked by its own schema.

``"scripts": {"update-customers": {...}}`` holds the settings of ``src/update_customers.py``
(the key is :func:`utils._run_control.script_name`), described by
``schemas/scripts/update-customers.json``. Used by
:func:`utils.script_runner.parse_args_and_load_config`; scripts read
``config["scripts"]["update-customers"]``.

Decisions:

* Every section is checked on every run, whichever script runs: a typo in the settings of a
  nightly job is reported by the next run of any script, not at night.
* A section without a schema file is an error naming the file to create (and the schema
  closest to its name, for a misspelt section): settings nobody checks are settings nobody
  reads.
* A settings schema follows the config's own rules, checked when it is read: JSON Schema
  2020-12, an object at the top, kebab-case keys, ``additionalProperties: false`` on every
  object with ``properties``. A schema breaking them is reported against the schema file.
* The running script's section exists after loading whenever it has a schema file, with the
  schema's defaults filled in, also when the config has no section for it; a schema with
  ``required`` keys then makes the section mandatory.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from utils._config_loader import (
    MINIMAL_EXAMPLE,
    PATH_SEPARATOR,
    display_path,
    example_for,
    fill_from_schema,
    raise_problems,
    read_json_file,
    schema_problems,
)
from utils.exceptions import ConfigurationError
from utils.path_helpers import get_path

SECTION = "scripts"
SCHEMA_FOLDER = "scripts"
KEBAB_KEY = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
MAX_QUOTED_CHARS = 80
SCHEMA_EXAMPLE = (
    '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", '
    '"additionalProperties": false, "properties": {"page-size": {"type": "integer", '
    '"minimum": 1, "default": 100, "description": "Records per request."}}}'
)


def schema_path(name: str) -> Path:
    """``schemas/scripts/{name}.json``: the schema of the settings of script ``name``."""
    return get_path("schemas", f"{SCHEMA_FOLDER}/{name}.json")


def known_schemas() -> list[str]:
    """Names of the scripts that have a settings schema, sorted."""
    folder = get_path("schemas", SCHEMA_FOLDER)
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def _short_text(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"


def _convention_problems(schema: Any, where: str = "(top level)") -> list[str]:
    """Where ``schema`` breaks the config's rules (kebab-case keys, closed objects)."""
    if not isinstance(schema, dict):
        return []
    problems = []
    properties = schema.get("properties")
    if isinstance(properties, dict):
        if schema.get("additionalProperties") is not False:
            problems.append(f'{where}: set "additionalProperties": false')
        for key, sub in properties.items():
            path = key if where == "(top level)" else f"{where}{PATH_SEPARATOR}{key}"
            if not KEBAB_KEY.match(key):
                problems.append(f"{path}: keys are kebab-case (e.g. 'page-size')")
            problems += _convention_problems(sub, path)
    return problems


@functools.lru_cache(maxsize=32)
def _read_schema(path: str, modified: int) -> dict[str, Any]:
    """The checked schema at ``path``; cached per modification time (``modified``)."""
    import jsonschema

    file = Path(path)
    shown = display_path(file)
    schema = read_json_file(
        file,
        what="settings schema",
        show_line=True,
        example=None,
        empty_fix=f"Describe the settings in it, e.g.: {SCHEMA_EXAMPLE}",
    )
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ConfigurationError(
            f"The settings schema {shown} does not describe a JSON object.",
            'A script\'s settings are an object: give the schema "type": "object".',
            SCHEMA_EXAMPLE,
        )
    if schema.get("$schema", DRAFT_2020_12) != DRAFT_2020_12:
        raise ConfigurationError(
            f"The settings schema {shown} is written for {_short_text(schema['$schema'])}, "
            "not JSON Schema 2020-12.",
            f'Write it in JSON Schema 2020-12: "$schema": "{DRAFT_2020_12}".',
            SCHEMA_EXAMPLE,
        )
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as err:
        where = PATH_SEPARATOR.join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigurationError(
            f"The settings schema {shown} is not a valid JSON Schema 2020-12: at {where}, "
            f"{err.message[:200]}.",
            "Fix the schema at that place (https://json-schema.org/understanding-json-schema).",
            SCHEMA_EXAMPLE,
        ) from err
    problems = _convention_problems(schema)
    if problems:
        listing = "\n".join(f"  - {line}" for line in problems)
        raise ConfigurationError(
            f"The settings schema {shown} breaks the config's rules:\n{listing}",
            "Config keys are kebab-case and every object lists its keys and refuses others, "
            "so a misspelt setting is an error instead of being ignored.",
            SCHEMA_EXAMPLE,
        )
    return schema


def load_schema(name: str) -> dict[str, Any] | None:
    """The settings schema of script ``name``, checked; None when it has none.

    Raises:
        ConfigurationError: The schema file is unreadable, not JSON (line and column), not a
            valid JSON Schema 2020-12, or breaks the config's rules.
    """
    path = schema_path(name)
    return _read_schema(str(path), path.stat().st_mtime_ns) if path.is_file() else None


def _missing_schema(name: str, source: str) -> ConfigurationError:
    shown = display_path(schema_path(name))
    import difflib  # only for an error's suggestion

    guess = difflib.get_close_matches(name, known_schemas(), n=1, cutoff=0.6)
    hint = f" Did you mean '{guess[0]}' (its schema exists)?" if guess else ""
    return ConfigurationError(
        f"Config file {source} has settings for the script '{name}' ({SECTION}{PATH_SEPARATOR}"
        f"{name}), but {shown} does not exist, so they cannot be checked.{hint}",
        f"Create {shown} describing the settings (make new-script writes one with a new "
        "script), or rename or remove the section.",
        SCHEMA_EXAMPLE,
    )


def apply(config: dict[str, Any], source: str, running: str | None, validate: bool) -> None:
    """Check every section of ``config["scripts"]`` and fill in the schemas' defaults.

    Args:
        config: The config, its own defaults already filled in.
        source: The config file name, for messages.
        running: The running script's name (``update-customers``); its section is created
            when it has a schema and the config has none.
        validate: Check the sections (defaults are filled either way; a section without a
            schema is then left as it is).

    Raises:
        ConfigurationError: A section without a schema file, or a broken schema file.
        ValidationError: Settings that break their schema, every problem listed with its
            path (``scripts → update-customers → page-size``).
    """
    sections = config.setdefault(SECTION, {})
    if not isinstance(sections, dict):
        return  # reported by the config's own schema; unchecked configs keep what they hold
    if running and running not in sections and schema_path(running).is_file():
        sections[running] = {}
    schemas: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    failing: list[str] = []
    example = None
    for name in sorted(sections):
        schema = load_schema(name)
        if schema is None:
            if validate:
                raise _missing_schema(name, source)
            continue
        schemas[name] = schema
        if validate:
            found, at = schema_problems(sections[name], schema, (SECTION, name))
            problems += found
            failing += [display_path(schema_path(name))] if found else []
            if at is not None and example is None:
                example = _example(name, at, schema)
    raise_problems(
        source,
        problems,
        f"Fix each setting listed; {' and '.join(failing)} "
        f"{'describes' if len(failing) == 1 else 'describe'} them (keys, types, defaults).",
        example,
    )
    for name, schema in schemas.items():
        if isinstance(sections[name], dict):
            fill_from_schema(sections[name], schema)


def _example(name: str, at: list[Any], schema: dict[str, Any]) -> str:
    """The defaults of the object holding the first problem, as the error's example."""
    shown = example_for(at, schema)
    if shown != MINIMAL_EXAMPLE:
        return shown
    defaults = fill_from_schema({}, schema)
    return f'"{SECTION}": {{"{name}": {json.dumps(defaults)}}}'
