"""Read, validate and complete ``config/{org}-{env}-config.json`` and its secrets file.

Used by :func:`utils.script_runner.parse_args_and_load_config`; scripts do not call it.

Decisions:

* The config is validated against ``schemas/org-env-config-schema.json`` as written, before
  defaults are filled in and before any ``_`` key is injected; every violation is reported at
  once, each with its path (``script-behavior → jitter → min-factor``).
* Defaults are filled in at every level, also below objects the file leaves out, so
  ``config["script-behavior"]["rate-limiting"]["enabled"]`` always exists. A whole-number
  float given for an integer key (``3.0``) becomes an ``int``.
* The files are read by :func:`read_json_file`: UTF-8 with or without a byte-order mark;
  a key given twice in one JSON object, ``NaN``, ``Infinity`` and numbers too large for a
  float are errors, not "last one wins" or infinity.
* Secrets: a JSON object of string values. Each key is injected as ``_`` + snake_case
  (``client-secret`` → ``_client_secret``, ``apiKey`` → ``_api_key``). Values are registered
  with the redaction filter before anything else happens; no message ever quotes one, and a
  broken secrets file is reported by line and column only.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from utils import _redaction as redaction, path_helpers
from utils._schema import SCHEMA_FILE
from utils.exceptions import ConfigurationError, ValidationError
from utils.path_helpers import get_path

if TYPE_CHECKING:  # jsonschema loads only when a config is validated: --help stays fast
    import jsonschema

log = logging.getLogger(__name__)

EXAMPLE_CONFIG = "org-env-config_example.json"
EXAMPLE_SECRETS = "org-env-config-secrets_example.json"
CONFIG_SUFFIX = "-config.json"
SECRETS_SUFFIX = "-config-secrets.json"
PATH_SEPARATOR = " → "
MINIMAL_EXAMPLE = '"global": {"api-base-url": "https://api.example.com"}'
# Injected by the toolkit itself (``_api`` names the API of a client's config view).
RESERVED_NAMES = frozenset(
    {"org_id", "env_type", "token", "args", "dry_run", "full_refresh", "api"}
)
SECRET_NAME = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
GROUP_OTHER_BITS = stat.S_IRWXG | stat.S_IRWXO
MAX_VALUE_CHARS = 60
MAX_LINE_CHARS = 120
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"  # the schema's pattern of api-base-url
JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


# -- one JSON file of config/, read strictly ------------------------------------------------
def display_path(path: Path) -> str:
    """``path`` relative to the project root when inside it (for messages)."""
    try:
        return str(path.relative_to(path_helpers.PROJECT_ROOT))
    except ValueError:
        return str(path)


class _JsonProblem(ValueError):
    """A problem found while parsing that the JSON module lets through; carries its fix."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.fix = fix


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Worded so that no secret-looking "key: value" appears (redaction would eat it).
            raise _JsonProblem(
                f"has the key {key!r} twice in one object",
                "Keep one of them; JSON readers disagree on which one wins.",
            )
        result[key] = value
    return result


def _reject_constant(name: str) -> float:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, though Python's reader takes them."""
    raise _JsonProblem(
        f"holds {name}, which is not a JSON number",
        "Write a finite number (seconds may be fractional, e.g. 0.5).",
    )


def _finite_float(text: str) -> float:
    """Parse a JSON number; one too large for a float (``1e400``) is an error, not infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise _JsonProblem(
            f"holds the number {text[:MAX_VALUE_CHARS]}, which is too large",
            "Write a finite number of a sensible size.",
        )
    return value


def read_json_file(
    path: Path, *, what: str, show_line: bool, example: str | None, empty_fix: str | None = None
) -> Any:
    """Parse the JSON file ``path``; a :class:`ConfigurationError` naming it on any failure.

    Args:
        path: The file.
        what: What it is, for messages (``"config file"``).
        show_line: Quote the offending line of a syntax error (never for a secrets file).
        example: The example file in ``config/`` that the "empty file" fix copies.
        empty_fix: The fix for an empty file instead of copying ``example``.

    Returns:
        The parsed JSON value.

    Raises:
        ConfigurationError: Unreadable, not UTF-8, empty, not valid JSON (line and column),
            nested too deeply, a key given twice, or a number JSON does not allow.
    """
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigurationError(
            f"The {what} {shown} is not UTF-8 text (byte {err.start}).",
            "Save the file as UTF-8.",
        ) from err
    except OSError as err:
        raise ConfigurationError(
            f"The {what} {shown} cannot be read: {err.strerror or type(err).__name__}.",
            "Check that it is a regular file readable by the user running the script.",
            f"ls -l {shown}",
        ) from err
    if not text.strip():
        raise ConfigurationError(
            f"The {what} {shown} is empty.",
            empty_fix or "Write a JSON object into it; see the example file.",
            f"cp config/{example} {shown}" if example else None,
        )
    try:
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except RecursionError as err:
        raise ConfigurationError(
            f"The {what} {shown} is nested too deeply to be a config.",
            "Write a JSON object like the example file; a config is at most a few levels deep.",
        ) from err
    except json.JSONDecodeError as err:
        line = text.splitlines()[err.lineno - 1] if err.lineno <= len(text.splitlines()) else ""
        raise ConfigurationError(
            f"The {what} {shown} is not valid JSON: {err.msg} at line {err.lineno}, "
            f"column {err.colno}.",
            "Fix the JSON at that spot (a trailing comma, a missing comma or quote, or a "
            "comment are the usual causes; JSON allows none of them).",
            f"line {err.lineno}: {line.strip()[:MAX_LINE_CHARS]}" if show_line else None,
        ) from err
    except _JsonProblem as err:  # a duplicate key or a number JSON does not allow
        raise ConfigurationError(f"The {what} {shown} {err}.", err.fix) from err


# -- the schema and the merged config ------------------------------------------------------
def existing_configs() -> list[str]:
    """File names of the configs in ``config/`` (examples and secrets excluded), sorted."""
    folder = get_path("config", EXAMPLE_CONFIG).parent
    return sorted(
        p.name
        for p in folder.glob(f"*{CONFIG_SUFFIX}")
        if p.is_file() and not p.name.endswith(SECRETS_SUFFIX)
    )


def read_config(org_id: str, env_type: str) -> dict[str, Any]:
    """Read ``config/{org_id}-{env_type}-config.json`` as written (no defaults, no checks).

    Raises:
        ConfigurationError: Missing (lists the configs that exist and the ``cp`` command),
            unreadable, or not valid JSON (line and column).
    """
    path = get_path("config", f"{org_id}-{env_type}{CONFIG_SUFFIX}")
    shown = display_path(path)
    if not path.exists():
        found = existing_configs()
        known = f"Configs that exist: {', '.join(found)}." if found else "No config exists yet."
        raise ConfigurationError(
            f"Config file {shown} not found. {known}",
            "Copy the example and fill in your values (or check ORG_ID and ENV_TYPE).",
            f"cp config/{EXAMPLE_CONFIG} {shown}",
        )
    data = read_json_file(path, what="config file", show_line=True, example=EXAMPLE_CONFIG)
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"The config file {shown} holds a JSON {_json_type(data)}, not an object.",
            "The top level must be an object with a 'global' section.",
            f"cp config/{EXAMPLE_CONFIG} {shown}",
        )
    return data


@functools.lru_cache(maxsize=1)
def _load_schema(schema_path: str) -> dict[str, Any]:
    with open(schema_path, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def load_schema() -> dict[str, Any]:
    """The config JSON Schema, read once per process."""
    return _load_schema(str(get_path("schemas", SCHEMA_FILE)))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return JSON_TYPES.get(type(value), type(value).__name__)


def _where(path: Any) -> str:
    return PATH_SEPARATOR.join(str(part) for part in path) or "(top level)"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _to_kebab(key: str) -> str:
    key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", key)
    return re.sub(r"[_\s]+", "-", key).lower()


def _unknown_key(where: str, key: str, known: list[str]) -> str:
    prefix = f"{where}{PATH_SEPARATOR}{key}" if where != "(top level)" else key
    # A key whose value the log redaction would hide names a secret (not "oauth-token-url").
    if redaction.is_secret_key(key) and key not in known:
        # No "key: text" here: redaction hides whatever follows a secret-named key.
        return (
            f"{prefix} looks like a secret, and secrets do not belong in the config; move it "
            "to config/{org}-{env}-config-secrets.json"
        )
    import difflib  # only for an error's suggestion

    guess = difflib.get_close_matches(_to_kebab(key), known, n=1, cutoff=0.6)
    hint = f" (did you mean '{guess[0]}'?)" if guess else f" (known: {', '.join(known)})"
    return f"{prefix}: unknown key{hint}"


def _describe(error: jsonschema.ValidationError, prefix: Sequence[str] = ()) -> list[str]:
    """Turn one jsonschema error into one or more ``path: problem`` lines.

    Args:
        error: The error.
        prefix: Keys above the validated object (``("scripts", "report")`` for a script's
            settings), so the path names the key as the config file holds it.
    """
    where = _where([*prefix, *error.absolute_path])
    kind, value, rule = error.validator, error.instance, error.validator_value
    if "propertyNames" in error.schema_path:
        return [
            f"{where}: {_short(value)} is not a valid name (kebab-case: lowercase letters, "
            "digits and '-', starting with a letter, e.g. 'update-customers')"
        ]
    if kind == "additionalProperties" and isinstance(value, dict):
        known = sorted(error.schema.get("properties", {}))
        return [_unknown_key(where, k, known) for k in value if k not in known]
    if kind == "required" and isinstance(value, dict):
        base = "" if where == "(top level)" else where + PATH_SEPARATOR
        return [f"{base}{name}: required key is missing" for name in rule if name not in value]
    if kind == "type":
        expected = rule if isinstance(rule, str) else " or ".join(rule)
        return [f"{where}: {_short(value)} is not of type '{expected}'"]
    if kind == "exclusiveMinimum":
        return [f"{where}: {_short(value)} must be greater than {rule}"]
    if kind == "minimum":
        return [f"{where}: {_short(value)} must be at least {rule}"]
    if kind == "pattern" and rule == URL_PATTERN:
        return [f"{where}: {_short(value)} is not an http:// or https:// URL"]
    return [f"{where}: {error.message[: MAX_VALUE_CHARS * 2]}"]


def _cross_field_problems(config: dict[str, Any]) -> list[str]:
    """Rules JSON Schema cannot express, checked on the defaults-filled config."""
    problems = []
    jitter = config.get("script-behavior", {}).get("jitter", {})
    low, high = jitter.get("min-factor"), jitter.get("max-factor")
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if numeric and low > high:
        problems.append(
            f"script-behavior{PATH_SEPARATOR}jitter: min-factor ({low}) must not exceed "
            f"max-factor ({high})"
        )
    return problems


def schema_problems(
    instance: Any, schema: dict[str, Any], prefix: Sequence[str] = ()
) -> tuple[list[str], list[Any] | None]:
    """Every violation of ``schema`` by ``instance``, as ``path: problem`` lines.

    Args:
        instance: The JSON value to check.
        schema: A JSON Schema 2020-12.
        prefix: Keys above ``instance`` in the config file, for the paths.

    Returns:
        The lines (sorted by path), and the path (below ``prefix``) of the object holding the
        first problem, None when there is none; the error's example is drawn from there.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    problems = [line for error in errors for line in _describe(error, prefix)]
    if not errors:
        return problems, None
    # An unknown or missing key is reported on its object; any other on the key.
    whole = errors[0].validator in ("additionalProperties", "required")
    return problems, list(errors[0].absolute_path)[: None if whole else -1]


def raise_problems(source: str, problems: list[str], fix: str, example: str | None) -> None:
    """Raise one :class:`ValidationError` listing ``problems`` of the file ``source``.

    Raises:
        ValidationError: Always, when ``problems`` is not empty.
    """
    if not problems:
        return
    count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
    listing = "\n".join(f"  - {line}" for line in problems)
    raise ValidationError(
        f"Config file {source} does not match the schema ({count}):\n{listing}", fix, example
    )


def validate_config(config: dict[str, Any], source: str) -> None:
    """Check ``config`` against the schema and the cross-field rules, reporting all at once.

    Args:
        config: The config as read from the file.
        source: The file name used in the message.

    Raises:
        ValidationError: Listing every problem with its path.
    """
    problems, section = schema_problems(config, load_schema())
    if section is None:
        problems += _cross_field_problems(fill_defaults(copy.deepcopy(config)))
        section = ["script-behavior", "jitter"]
    raise_problems(
        source,
        problems,
        f"Fix each key listed. schemas/{SCHEMA_FILE} describes every key and "
        f"config/{EXAMPLE_CONFIG} shows them all.",
        example_for(section, load_schema()),
    )


def example_for(path: Sequence[Any], schema: dict[str, Any]) -> str:
    """A JSON snippet of the defaults of the object at ``path`` in ``schema``."""
    for key in path:
        schema = schema.get("properties", {}).get(str(key), {})
    if not path or not schema.get("properties") or not isinstance(path[-1], str):
        return MINIMAL_EXAMPLE
    defaults = fill_from_schema({}, schema)
    if None in defaults.values():  # a section of optional settings: defaults say nothing
        return MINIMAL_EXAMPLE
    return f'"{path[-1]}": {json.dumps(defaults)} (the defaults)'


def fill_from_schema(instance: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Fill ``schema``'s defaults into ``instance`` in place, at every level.

    Objects the instance leaves out are created from their default and filled in turn; the
    entries of a map (an object whose ``additionalProperties`` is a schema, such as
    ``global.apis``) are filled from that schema. A whole-number float given for an integer
    key (``3.0``) becomes an ``int``.

    Returns:
        ``instance`` itself.
    """
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        value = instance.get(key)
        if isinstance(value, dict):
            fill_from_schema(value, sub)
        elif sub.get("type") == "integer" and isinstance(value, float) and value.is_integer():
            instance[key] = int(value)
    entry = schema.get("additionalProperties")
    if isinstance(entry, dict) and entry.get("properties"):
        for key, value in instance.items():
            if key not in properties and isinstance(value, dict):
                fill_from_schema(value, entry)
    return instance


def fill_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """Fill the schema's defaults into ``config`` in place (also below absent objects).

    Returns:
        ``config`` itself, for chaining.
    """
    return fill_from_schema(config, load_schema())


def secret_name(key: str) -> str:
    """The snake_case name a secrets-file key is injected under (without the ``_``).

    Example:
        >>> secret_name("client-secret"), secret_name("apiKey"), secret_name("az-token")
        ('client_secret', 'api_key', 'az_token')
    """
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key.strip())
    name = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"[-\s.]+|_+", "_", name).strip("_").lower()


def secrets_path(org_id: str, env_type: str) -> Path:
    """Path of the secrets file of ``org_id``/``env_type``."""
    return get_path("config", f"{org_id}-{env_type}{SECRETS_SUFFIX}")


def _warn_if_shared(path: Path, shown: str) -> None:
    """Warn when the user's own secrets file is open to group or others.

    Only files owned by the running user are checked: that user can ``chmod`` them. A file
    owned by someone else (a Kubernetes Secret volume is root-owned, mode 0440 with the pod's
    fsGroup) is managed by its owner.
    """
    getuid = getattr(os, "getuid", None)
    try:
        info = path.stat()
    except OSError:
        return
    if getuid is None or info.st_uid != getuid() or not info.st_mode & GROUP_OTHER_BITS:
        return
    log.warning(
        "Secrets file %s is accessible by group or others (mode %s); run: chmod 600 %s",
        shown,
        oct(stat.S_IMODE(info.st_mode)),
        shown,
    )


def read_secrets(org_id: str, env_type: str) -> dict[str, str] | None:
    """Read the secrets file, register every value for redaction, and name the keys.

    Returns:
        ``{injected_name: value}`` (``{"_client_secret": "…"}``), or None when the file
        does not exist.

    Raises:
        ConfigurationError: Unreadable or malformed file, a value that is not a string, a
            key that cannot be a name, two keys with the same name, or a reserved name.
    """
    path = secrets_path(org_id, env_type)
    shown = display_path(path)
    if not path.exists():
        return None
    _warn_if_shared(path, shown)
    data = read_json_file(path, what="secrets file", show_line=False, example=EXAMPLE_SECRETS)
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"The secrets file {shown} holds a JSON {_json_type(data)}, not an object.",
            "Write an object of string values.",
            '{"client-secret": "…"}',
        )
    for value in data.values():
        if isinstance(value, str):
            redaction.register_secret(value)
    injected: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigurationError(
                f"Secret {key!r} in {shown} is a JSON {_json_type(value)}; secrets must be "
                "strings.",
                "Quote the value.",
                f'"{key}": "…"',
            )
        name = secret_name(key)
        if not SECRET_NAME.match(name):
            raise ConfigurationError(
                f"Secret key {key!r} in {shown} cannot be turned into a name.",
                "Use letters, digits and '-' in secret keys.",
                '"client-secret": "…"',
            )
        if name in RESERVED_NAMES:
            raise ConfigurationError(
                f"Secret key {key!r} in {shown} would be injected as _{name}, which the "
                "toolkit sets itself.",
                "Rename the secret (az-token holds a ready token).",
                '"az-token": "…"',
            )
        if f"_{name}" in injected:
            raise ConfigurationError(
                f"Two secret keys in {shown} both become _{name}.",
                "Keep one of them.",
            )
        injected[f"_{name}"] = value
    return injected
