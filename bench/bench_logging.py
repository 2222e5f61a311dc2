"""Logging benchmark: cost per record with redaction vs the same logging without it.

Both sides log the same records through the same kinds of handler, a console stream and a
per-run file, with the same format strings; only the formatters differ: the toolkit's
redacting formatters against ``logging.Formatter`` (text) and python-json-logger's
``JsonFormatter`` (JSON). The records are a realistic mix: HTTP requests, progress lines,
third-party debug lines, and one in ten carrying a secret (token response, assignment,
vendor token, key-named value, URL credentials, connection string: each in turn) that the
toolkit side has to hide. Goal: at most 1.5x.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from bench.common import Row, interleaved, ratio_stats
from utils import _log_formatters as log_formatters, _redaction as redaction
from utils._log_formatters import (
    CONSOLE_FORMAT,
    FILE_FORMAT,
    RedactingJsonFormatter,
    RedactingTextFormatter,
)

RECORDS_PER_SAMPLE = 2000
REPEATS = 15
GOAL = 1.5
REGISTERED_SECRETS = 4
GUID = "550e8400-e29b-41d4-a716-446655440000"

# (logger name, level, message template, args)
MESSAGES: list[tuple[str, int, str, tuple[object, ...]]] = [
    (
        "utils.api_factory",
        logging.INFO,
        "GET %s -> %d in %.3fs",
        (f"https://api.example.com/v2.0/companies({GUID})/customers", 200, 0.231),
    ),
    ("src.report", logging.INFO, "Processed %d records for %s/%s", (1234, "acme", "prod")),
    (
        "urllib3.connectionpool",
        logging.DEBUG,
        '%s://%s:%s "%s %s %s" %s %s',
        ("https", "api.example.com", 443, "GET", "/v2.0/customers?$top=100", "HTTP/1.1", 200, 5123),
    ),
    (
        "utils.load_n_save",
        logging.INFO,
        "Saved %s (%d rows)",
        ("output/acme-prod-report_2026-11-26T0645Z.xlsx", 1234),
    ),
    (
        "utils.api_factory",
        logging.WARNING,
        "Rate limited (429); retrying in %.1fs (attempt %d of %d)",
        (1.6, 2, 4),
    ),
    (
        "utils._auth",
        logging.INFO,
        "Token acquired for client %s, expires in %d s",
        ("txo-batch", 3599),
    ),
    (
        "src.report",
        logging.DEBUG,
        "Page %d: %d records, next link %s",
        (3, 100, "https://api.example.com/v2.0/customers?$skiptoken=abc123"),
    ),
    (
        "urllib3.connectionpool",
        logging.DEBUG,
        "Starting new HTTPS connection (%d): %s:%s",
        (1, "api.example.com", 443),
    ),
    ("src.report", logging.INFO, "Summary: %d customers, %d orders, %d errors", (812, 4410, 0)),
    # One in ten carries a secret: the tenth slot takes each of SECRET_MESSAGES in turn.
    (
        "utils._auth",
        logging.DEBUG,
        "Token response: %s",
        (
            '{"token_type": "Bearer", "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_abcdefgh", "expires_in": 3599}',
        ),
    ),
]
# The secret records: a token response, an assignment, a vendor token alone, a key-named
# value, URL credentials, a connection string.
SECRET_MESSAGES: list[tuple[str, int, str, tuple[object, ...]]] = [
    MESSAGES[-1],
    ("src.report", logging.INFO, "config: %s", ('apiToken := "gL9Qx2Vb7Nm4Kp8Rt3Wz"',)),
    ("src.report", logging.INFO, "cloning with %s", ("glpat-Ab3De6Gh9Jk2Mn5Pq8St",)),
    ("src.report", logging.DEBUG, "env %s", ("STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc",)),
    (
        "urllib3.connectionpool",
        logging.DEBUG,
        "connecting to %s",
        ("postgresql://app:Pa55-w0rd-77@db.example.com:5432/app",),
    ),
    (
        "src.report",
        logging.INFO,
        "storage %s",
        ("AccountName=acct;AccountKey=c2VjcmV0LWFjY291bnQta2V5LXZhbHVl==;EndpointSuffix=x",),
    ),
]


def _configure(
    logger: logging.Logger, text_console: logging.Formatter, file_fmt: logging.Formatter, sink: Path
) -> list[logging.Handler]:
    console = logging.StreamHandler(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    console.setLevel(logging.INFO)
    console.setFormatter(text_console)
    file = logging.FileHandler(sink, encoding="utf-8")
    file.setLevel(logging.DEBUG)
    file.setFormatter(file_fmt)
    logger.handlers = [console, file]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return [console, file]


def _emit(logger: logging.Logger) -> Callable[[], None]:
    children = {name: logger.getChild(name) for name, *_ in MESSAGES + SECRET_MESSAGES}

    def run() -> None:
        for i in range(RECORDS_PER_SAMPLE):
            slot = i % len(MESSAGES)
            if slot == len(MESSAGES) - 1:
                name, level, msg, args = SECRET_MESSAGES[
                    (i // len(MESSAGES)) % len(SECRET_MESSAGES)
                ]
            else:
                name, level, msg, args = MESSAGES[slot]
            children[name].log(level, msg, *args)

    return run


def _measure(mode: str, folder: Path) -> Row:
    toolkit = logging.getLogger(f"bench.toolkit.{mode}")
    plain = logging.getLogger(f"bench.plain.{mode}")
    if mode == "json":
        context = {"org": "acme", "env": "prod", "run_id": "0123abcd"}
        toolkit_console: logging.Formatter = RedactingJsonFormatter(lambda: context)
        plain_console: logging.Formatter = JsonFormatter(
            ["asctime", "levelname", "name", "message"], static_fields=context
        )
    else:
        toolkit_console = RedactingTextFormatter(CONSOLE_FORMAT)
        plain_console = logging.Formatter(CONSOLE_FORMAT)
    handlers = _configure(
        toolkit,
        toolkit_console,
        RedactingTextFormatter(FILE_FORMAT),
        folder / f"toolkit-{mode}.log",
    )
    handlers += _configure(
        plain, plain_console, logging.Formatter(FILE_FORMAT), folder / f"plain-{mode}.log"
    )
    try:
        a, b = interleaved(_emit(toolkit), _emit(plain), repeats=REPEATS)
    finally:
        for handler in handlers:
            handler.close()
    median, low, high = ratio_stats(a, b)
    per_record = sorted(a)[len(a) // 2] / RECORDS_PER_SAMPLE * 1e6
    return Row(
        area="Logging",
        measure=f"Cost per record, {mode} console + DEBUG file, redacted vs plain",
        value=f"{median:.2f}×",
        goal=f"≤ {GOAL:.2f}×",
        met=median <= GOAL,
        spread=f"{low:.2f}–{high:.2f}×",
        bound="plain logging.Formatter / JsonFormatter to the same handlers",
        notes=(
            f"{RECORDS_PER_SAMPLE} records per sample, 1 in 10 with a secret, "
            f"{REGISTERED_SECRETS} registered secrets; toolkit ≈ {per_record:.1f} µs/record"
        ),
        extra={"ratio": median, "p25": low, "p75": high, "toolkit_us_per_record": per_record},
    )


def _measure_redaction_alone(folder: Path) -> Row:
    """The toolkit's own text formatters with redaction on vs switched off (isolates it)."""
    on = logging.getLogger("bench.redaction.on")
    off = logging.getLogger("bench.redaction.off")
    handlers = _configure(
        on,
        RedactingTextFormatter(CONSOLE_FORMAT),
        RedactingTextFormatter(FILE_FORMAT),
        folder / "on.log",
    )
    handlers += _configure(
        off,
        RedactingTextFormatter(CONSOLE_FORMAT),
        RedactingTextFormatter(FILE_FORMAT),
        folder / "off.log",
    )
    emit_off = _emit(off)

    def without_redaction() -> None:
        real = log_formatters.redact
        log_formatters.redact = str
        try:
            emit_off()
        finally:
            log_formatters.redact = real

    try:
        a, b = interleaved(_emit(on), without_redaction, repeats=REPEATS)
    finally:
        for handler in handlers:
            handler.close()
    median, low, high = ratio_stats(a, b)
    return Row(
        area="Logging",
        measure="Cost per record, text console + DEBUG file, redaction on vs off",
        value=f"{median:.2f}×",
        goal=f"≤ {GOAL:.2f}×",
        met=median <= GOAL,
        spread=f"{low:.2f}–{high:.2f}×",
        bound="the same toolkit formatters with redact() replaced by str()",
        notes="isolates the redaction scans from the formatters' other differences",
        extra={"ratio": median, "p25": low, "p75": high},
    )


def run() -> list[Row]:
    """Measure text and JSON modes against plain logging, and redaction alone."""
    for i in range(REGISTERED_SECRETS):
        redaction.register_secret(f"registered-secret-{i}-Xy7Q2pLm")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            return [
                _measure("text", folder),
                _measure("json", folder),
                _measure_redaction_alone(folder),
            ]
    finally:
        redaction.clear_registered_secrets()


if __name__ == "__main__":
    for row in run():
        print(row.measure, row.value, row.spread, row.notes)
