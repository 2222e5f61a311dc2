"""Script entry point: command line, config, secrets and first token; exit codes and signals.

A script in ``src/`` looks like::

    def main() -> None:
        config = parse_args_and_load_config("Customer report")
        ...

    if __name__ == "__main__":
        run_script(main)

Decisions:

* ORG_ID and ENV_TYPE are plain names: letters, digits, ``_`` and ``.``, not starting with
  ``.``, without ``..``, at most :data:`MAX_NAME_LENGTH` characters. ``-`` is refused because
  it separates the two in ``{org}-{env}-config.json``.
* SIGTERM makes the main thread raise :class:`ScriptTerminated`, a ``BaseException``, so an
  ``except Exception`` in a script does not swallow it while ``finally`` blocks and ``with``
  exits still run; the run ends with exit code 143. A second SIGTERM during that clean-up is
  ignored (the orchestrator's SIGKILL follows anyway). SIGINT raises ``KeyboardInterrupt`` as
  usual (again on a second Ctrl-C) and ends with 130. Either also sets the run-wide stop
  (:mod:`utils._run_control`): worker threads the script started keep running their own code,
  but the HTTP client sends nothing more for them and its waits end at once, so the process
  exits promptly. Signals arriving after ``main()`` returned are ignored, so the summary is
  always written.
* The one-line run summary is logged at INFO after every run, success or failure, but not
  after ``--help``.
* ``--log-format`` and ``--log-level`` take any case and are applied before the other
  arguments are checked, so with ``--log-format json`` even a usage error is a JSON line.
* A failure's traceback goes to the log file only, whatever the console level: the console
  shows the message (a ``HelpfulError``'s three parts).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, NoReturn

from utils import (
    _auth as auth,
    _config_loader as config_loader,
    _metrics,
    _run_control as run_control,
    _script_settings,
    logger as txo_logger,
    run_stats,
)
from utils._log_formatters import FILE_ONLY
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ConfigurationError,
    FileOperationError,
    HelpfulError,
    PartialWriteError,
    StateLockedError,
    ValidationError,
)

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_API = 4
EXIT_FILE = 5
EXIT_PARTIAL_WRITE = 6
EXIT_STATE_LOCKED = 75  # EX_TEMPFAIL, as cron's `flock -E 75`: try again later
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

# Most specific first: the first class an error is an instance of decides its exit code.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigurationError, EXIT_USAGE),
    (ValidationError, EXIT_USAGE),
    (ApiAuthenticationError, EXIT_AUTH),
    (PartialWriteError, EXIT_PARTIAL_WRITE),
    (ApiOperationError, EXIT_API),
    (StateLockedError, EXIT_STATE_LOCKED),
    (FileOperationError, EXIT_FILE),
    (HelpfulError, EXIT_ERROR),
)
EXIT_MEANINGS = {
    EXIT_OK: "success",
    EXIT_ERROR: "error",
    EXIT_USAGE: "usage or configuration error",
    EXIT_AUTH: "authentication error",
    EXIT_API: "API error",
    EXIT_FILE: "file error",
    EXIT_PARTIAL_WRITE: "partial write-back",
    EXIT_STATE_LOCKED: "state locked by another run",
    EXIT_INTERRUPTED: "interrupted",
    EXIT_TERMINATED: "terminated",
}
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]*$")
MAX_NAME_LENGTH = 64
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
USAGE = (
    "ORG_ID ENV_TYPE [--log-format text|json] [--log-level LEVEL] [--dry-run] "
    "[--full-refresh] [script options]"
)
# The flags every script has, injected into the config as ``_dry_run`` / ``_full_refresh``.
RUN_FLAGS = {
    "--dry-run": "send no POST/PUT/PATCH/DELETE: log each as 'DRY RUN: would …' instead; "
    "GETs and token requests are real; no state is committed",
    "--full-refresh": "ignore the saved incremental state and pull everything; the state is "
    "replaced when the run succeeds",
}
ArgumentsHook = Callable[[argparse.ArgumentParser], Any]
# The console options: how a value's case is folded, its choices and its help line; read
# early (see _console_options_early) and again by the full parse.
CONSOLE_OPTIONS: dict[str, tuple[Callable[[str], str], tuple[str, ...], str]] = {
    "--log-format": (
        str.lower,
        LOG_FORMATS,
        "console format (default: text, or $TXO_LOG_FORMAT)",
    ),
    "--log-level": (
        str.upper,
        LOG_LEVELS,
        "console level (default: INFO, or $TXO_LOG_LEVEL); the log file always has DEBUG",
    ),
}


class ScriptArgs(argparse.Namespace, dict):  # type: ignore[misc]
    """The parsed command line: an ``argparse.Namespace`` that is also a ``dict``.

    ``config["_args"].limit`` and ``config["_args"]["limit"]`` both work, and a config that
    holds it still goes through ``json.dumps`` as plain JSON.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        dict.__setitem__(self, name, value)

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        dict.pop(self, name, None)


class ScriptTerminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (exit code 143).

    A ``BaseException`` so ``except Exception`` in a script lets it through; clean-up in
    ``finally`` blocks and ``with`` exits runs as it passes.
    """


class _HelpShown(SystemExit):
    """``--help`` was printed: exit quietly, without a run summary."""


def exit_code_for(error: BaseException) -> int:
    """The process exit code for ``error`` (see the README's table).

    Example:
        >>> exit_code_for(ConfigurationError("x", "y"))
        2
    """
    if isinstance(error, ScriptTerminated):
        return EXIT_TERMINATED
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for error_class, code in EXIT_CODES:
        if isinstance(error, error_class):
            return code
    return EXIT_ERROR


def _prog() -> str:
    """How the running script is invoked, for usage lines (``python -m src.report``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return f"python -m {spec.name}"
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "script"


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises a ValidationError (exit 2) instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ValidationError(
            f"Bad command line: {message}.",
            f"Run it as: {self.prog} {USAGE}. Add --help to see every option.",
            f"{self.prog} acme prod --log-format json",
        )

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _HelpShown(status)


def _check_name(label: str, value: str, prog: str) -> None:
    if PLAIN_NAME.match(value) and ".." not in value and len(value) <= MAX_NAME_LENGTH:
        return
    raise ValidationError(
        f"{label} {value!r} is not a plain name.",
        f"Use only letters, digits, '_' and '.' (not first, no '..'), at most "
        f"{MAX_NAME_LENGTH} characters: {label} becomes part of the config file name.",
        f"{prog} acme prod",
    )


def _console_options_early(argv: Sequence[str] | None) -> None:
    """Apply valid ``--log-format`` / ``--log-level`` values before the full parse.

    So a usage error (a missing ENV_TYPE, a bad ORG_ID) is already rendered in the format
    the user asked for: with ``--log-format json`` every console line is JSON. Each option is
    read on its own; a bad or missing value is left for the full parse to report.
    """
    settings: dict[str, str] = {}
    for option, (fold_case, choices, _help) in CONSOLE_OPTIONS.items():
        parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
        parser.add_argument(option, type=fold_case)
        try:
            known, _ = parser.parse_known_args(argv)
        except argparse.ArgumentError:  # no value after the option: the full parse reports it
            continue
        value = getattr(known, option[2:].replace("-", "_"))
        if value in choices:
            settings[option] = value
    txo_logger.configure_console(
        log_format=settings.get("--log-format"), level=settings.get("--log-level")
    )


def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    arguments: ArgumentsHook | None = None,
) -> argparse.Namespace:
    """Parse ``ORG_ID ENV_TYPE [--log-format …] [--log-level …] [--dry-run] [--full-refresh]``
    and the script's own options.

    Args:
        description: What the script does, shown by ``--help``.
        argv: Arguments to parse instead of ``sys.argv[1:]``.
        arguments: Called with the ``argparse.ArgumentParser`` before parsing, to add the
            script's own options (``parser.add_argument("--limit", type=int, default=0)``).

    Raises:
        ValidationError: Unknown or missing arguments, a bad option value, or an
            ORG_ID/ENV_TYPE that is not a plain name (exit code 2).
    """
    prog = _prog()
    parser = _ArgumentParser(
        prog=prog,
        description=description,
        epilog="Config: config/{ORG_ID}-{ENV_TYPE}-config.json; secrets: "
        "config/{ORG_ID}-{ENV_TYPE}-config-secrets.json.",
    )
    parser.add_argument("org_id", metavar="ORG_ID", help="organisation, e.g. acme")
    parser.add_argument("env_type", metavar="ENV_TYPE", help="environment, e.g. prod or test")
    for option, (fold_case, choices, help_text) in CONSOLE_OPTIONS.items():
        parser.add_argument(option, type=fold_case, choices=choices, default=None, help=help_text)
    for flag, help_text in RUN_FLAGS.items():
        parser.add_argument(flag, action="store_true", help=help_text)
    if arguments is not None:
        arguments(parser)
    args = parser.parse_args(argv, namespace=ScriptArgs())
    _check_name("ORG_ID", args.org_id, prog)
    _check_name("ENV_TYPE", args.env_type, prog)
    return args


def _first_token(config: dict[str, Any], has_secrets: bool, org_id: str, env_type: str) -> str:
    if not has_secrets:
        shown = config_loader.display_path(config_loader.secrets_path(org_id, env_type))
        raise ConfigurationError(
            f"Secrets file {shown} not found; this script needs an API token, acquired "
            "with its client-secret (or given as az-token).",
            "Copy the example, put the client secret in it and make it private "
            "(chmod 600). A script that calls no API can do without both: pass "
            "require_token=False to parse_args_and_load_config (docs/writing-scripts.md).",
            f"cp config/{config_loader.EXAMPLE_SECRETS} {shown} && chmod 600 {shown}",
        )
    return auth.get_token_provider(config).get_token()


def parse_args_and_load_config(
    description: str,
    require_token: bool = True,
    validate_config: bool = True,
    *,
    arguments: ArgumentsHook | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Parse the command line, load and validate the config, load secrets, get a token.

    Args:
        description: What the script does, shown by ``--help``.
        require_token: Acquire a token now (``_token``); when False, ``_token`` is None and
            no token request is made.
        validate_config: Check the config against the schema (defaults are filled either way).
        arguments: Called with the ``argparse`` parser to add the script's own options;
            their values are in ``config["_args"]`` (an ``argparse.Namespace``).
        argv: Arguments to parse instead of ``sys.argv[1:]`` (tests).

    Returns:
        The config with the schema's defaults filled in, every secret injected as
        ``_`` + snake_case of its key, and ``_org_id``, ``_env_type``, ``_token``, ``_args``
        (the parsed command line), ``_dry_run`` and ``_full_refresh`` (bools).

    Raises:
        ValidationError: Bad arguments or schema violations (exit code 2).
        ConfigurationError: Missing or malformed config or secrets, incomplete client
            credentials (exit code 2).
        ApiAuthenticationError: The token endpoint refused or failed (exit code 3).

    Example:
        >>> config = parse_args_and_load_config("Customer report")  # doctest: +SKIP
        >>> config["script-behavior"]["retry-strategy"]["max-retries"]  # doctest: +SKIP
        3
    """
    _console_options_early(argv)
    args = parse_args(description, argv, arguments)
    txo_logger.configure_console(log_format=args.log_format, level=args.log_level)
    txo_logger.set_context(org_id=args.org_id, env_type=args.env_type)
    org_id, env_type = args.org_id, args.env_type

    config = config_loader.read_config(org_id, env_type)
    source = f"config/{org_id}-{env_type}{config_loader.CONFIG_SUFFIX}"
    if validate_config:
        config_loader.validate_config(config, source)
    config_loader.fill_defaults(config)
    _script_settings.apply(config, source, run_control.script_name(), validate_config)
    secrets = config_loader.read_secrets(org_id, env_type)
    config.update(secrets or {})
    config["_org_id"] = org_id
    config["_env_type"] = env_type
    config["_args"] = args
    config["_dry_run"] = bool(args.dry_run)
    config["_full_refresh"] = bool(args.full_refresh)
    run_control.set_dry_run(config["_dry_run"])
    config["_token"] = None
    if require_token:
        config["_token"] = _first_token(config, secrets is not None, org_id, env_type)
    log.debug(
        "Loaded %s (secrets: %s, token: %s)",
        source,
        ", ".join(sorted(secrets or {})) or "none",
        "yes" if config["_token"] else "no",
    )
    return config


class _Signals:
    """The run's signal handlers: active while ``main()`` runs, inert afterwards."""

    def __init__(self) -> None:
        self.active = False
        self.terminating = False

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if not self.active or self.terminating:
            log.warning("Received SIGTERM again; still cleaning up")
            return
        self.terminating = True
        run_control.request_stop()  # worker threads: no further request leaves the process
        raise ScriptTerminated(signum)

    def on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.active:
            run_control.request_stop()
            raise KeyboardInterrupt


def _install(handlers: _Signals) -> None:
    # Signal handlers can only be set from the main thread; elsewhere run without them.
    try:
        signal.signal(signal.SIGTERM, handlers.on_sigterm)
        signal.signal(signal.SIGINT, handlers.on_sigint)
    except ValueError:
        log.debug("Not in the main thread: SIGTERM/SIGINT handlers not installed")


def _exit_code_of_system_exit(exc: SystemExit) -> int:
    if exc.code is None:
        return EXIT_OK
    if isinstance(exc.code, int):
        return exc.code
    log.error("%s", exc.code)
    return EXIT_ERROR


def _report(error: BaseException) -> int:
    """Log ``error`` for a person (no traceback on the console) and return its exit code."""
    code = exit_code_for(error)
    if isinstance(error, ScriptTerminated):
        log.error("Terminated (SIGTERM): stopped; files already written are complete.")
    elif isinstance(error, KeyboardInterrupt):
        log.error("Interrupted (Ctrl-C): stopped; files already written are complete.")
    elif isinstance(error, HelpfulError):
        log.error("%s", error)
    else:
        log_file = txo_logger.get_log_file()
        where = f"; the traceback is in {log_file}" if log_file else ""
        log.error("Unexpected error: %s: %s%s", type(error).__name__, error, where)
    # The console showed the message; the traceback goes to the file only, at any console level.
    log.debug("Traceback of the failure", exc_info=error, extra={FILE_ONLY: True})
    return code


def _log_summary(code: int, duration_s: float) -> None:
    """Log the run summary: one line, the last of the run.

    As text, the figures in words, then ``dry run`` when it was one, then each of the
    script's counters as ``name N``. In JSON log format the same line carries them as
    top-level fields (``exit_code``, ``duration_s``, ``api_calls`` …, ``counters``), so a
    log shipper reads them without parsing the message.
    """
    counts = run_stats.snapshot()
    counters = run_stats.script_counters()
    dry_run = run_control.is_dry_run()
    duration = round(duration_s, 3)
    fields: dict[str, Any] = {
        "exit_code": code,
        "duration_s": duration,
        "api_calls": counts.get(run_stats.API_CALLS, 0),
        "retries": counts.get(run_stats.RETRIES, 0),
        "rate_limited": counts.get(run_stats.RATE_LIMITED, 0),
        "breaker_opens": counts.get(run_stats.BREAKER_OPENS, 0),
        "files_written": counts.get(run_stats.FILES_WRITTEN, 0),
        "dry_run": dry_run,
        "counters": counters,
    }
    extras = "".join(f" · {name} {value}" for name, value in counters.items())
    log.info(
        "Run summary: exit %d (%s) in %.2fs · API calls %d · retries %d · 429s %d · "
        "breaker opens %d · files written %d%s%s",
        code,
        EXIT_MEANINGS.get(code, "error"),
        duration,
        fields["api_calls"],
        fields["retries"],
        fields["rate_limited"],
        fields["breaker_opens"],
        fields["files_written"],
        " · dry run: no POST/PUT/PATCH/DELETE sent" if dry_run else "",
        extras,
        extra=fields,
    )


def run_script(main: Callable[[], Any]) -> NoReturn:
    """Run ``main()`` as a batch job and exit with the code its outcome maps to.

    Resets the run counters, handles SIGTERM (exit 143) and SIGINT (exit 130), renders a
    :class:`HelpfulError` on the console without a traceback (the traceback goes to the
    DEBUG log file), and logs the one-line run summary.

    Args:
        main: The script's main function, called without arguments.

    Raises:
        SystemExit: Always, with 0, 1, 2, 3, 4, 5, 6, 75, 130 or 143.
    """
    txo_logger.setup_logger()
    run_stats.reset()
    run_control.reset()
    started = time.monotonic()
    handlers = _Signals()
    _install(handlers)
    handlers.active = True
    try:
        main()
        handlers.active = False
        if not run_control.is_dry_run():
            run_control.run_success_hooks()  # e.g. commit the incremental state
        code = EXIT_OK
    except _HelpShown as shown:
        handlers.active = False
        sys.exit(shown.code)
    except SystemExit as exc:
        handlers.active = False
        code = _exit_code_of_system_exit(exc)
    except BaseException as error:  # the entry point: every outcome becomes an exit code
        handlers.active = False
        code = _report(error)
    handlers.active = False
    duration_s = time.monotonic() - started
    _log_summary(code, duration_s)
    _metrics.push_run_metrics(code, duration_s, run_stats.snapshot(), run_stats.script_counters())
    sys.exit(code)
