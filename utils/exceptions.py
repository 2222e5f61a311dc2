"""User-facing errors: one root, one subclass per failure category, a three-part message.

Every error a script user can meet is a :class:`HelpfulError` that says what went wrong,
how to fix it and, where it helps, an example. ``run_script`` maps each class to an exit code.
"""

from __future__ import annotations

from typing import Any

PROBLEM_MARK = "❌ Problem:"
SOLUTION_MARK = "✅ Solution:"
EXAMPLE_MARK = "📝 Example:"


class HelpfulError(Exception):
    """Root of every user-facing error.

    Args:
        what_went_wrong: One sentence describing the failure.
        how_to_fix: What the user should do about it.
        example: Optional command, snippet or value showing the fix.

    Example:
        >>> print(HelpfulError("Config missing", "Create it", "cp a b"))
        ❌ Problem: Config missing
        ✅ Solution: Create it
        📝 Example: cp a b
    """

    def __init__(self, what_went_wrong: str, how_to_fix: str, example: str | None = None):
        self.what_went_wrong = what_went_wrong
        self.how_to_fix = how_to_fix
        self.example = example
        super().__init__(what_went_wrong, how_to_fix, example)

    def __str__(self) -> str:
        lines = [f"{PROBLEM_MARK} {self.what_went_wrong}", f"{SOLUTION_MARK} {self.how_to_fix}"]
        if self.example:
            lines.append(f"{EXAMPLE_MARK} {self.example}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        parts = [repr(self.what_went_wrong), repr(self.how_to_fix)]
        if self.example is not None:
            parts.append(repr(self.example))
        return f"{type(self).__name__}({', '.join(parts)})"


class ConfigurationError(HelpfulError):
    """A config or secrets file is missing, unreadable or inconsistent (exit code 2)."""


class ValidationError(HelpfulError):
    """Data or configuration fails validation: schema violations, wrong data types (exit 2)."""


class FileOperationError(HelpfulError):
    """A file could not be read or written, or a path escapes its folder (exit code 5)."""


class ApiAuthenticationError(HelpfulError):
    """A token could not be acquired, or the API rejected it (exit code 3)."""


class ApiOperationError(HelpfulError):
    """An API request failed (exit code 4).

    The context may be given by keyword (as the toolkit does) or by position after
    ``example``, in the order status code, URL, method.

    Args:
        what_went_wrong: One sentence describing the failure.
        how_to_fix: What the user should do about it.
        example: Optional example of the fix.
        status_code: HTTP status of the last response, or None when none arrived.
        url: The request URL, without credentials or secret query values.
        method: The HTTP method, upper case.
    """

    def __init__(
        self,
        what_went_wrong: str,
        how_to_fix: str,
        example: str | None = None,
        status_code: int | None = None,
        url: str = "",
        method: str = "",
    ):
        super().__init__(what_went_wrong, how_to_fix, example)
        self.status_code = status_code
        self.url = url
        self.method = method


class ApiTimeoutError(ApiOperationError):
    """A request or a 202 polling wait ran past its configured timeout (exit code 4)."""


class ApiRateLimitError(ApiOperationError):
    """The API asked us to wait longer than allowed, or kept answering 429 (exit code 4).

    Args:
        what_went_wrong: One sentence describing the failure.
        how_to_fix: What the user should do about it.
        example: Optional example of the fix.
        retry_after: Seconds the server asked to wait, when it said so (may be given by
            position, after ``example``).
        status_code: HTTP status of the last response (default 429).
        url: The request URL, without credentials or secret query values.
        method: The HTTP method, upper case.
    """

    def __init__(
        self,
        what_went_wrong: str,
        how_to_fix: str,
        example: str | None = None,
        retry_after: float | None = None,
        *,
        status_code: int | None = 429,
        url: str = "",
        method: str = "",
    ):
        super().__init__(
            what_went_wrong, how_to_fix, example, status_code=status_code, url=url, method=method
        )
        self.retry_after = retry_after


class CircuitOpenError(ApiOperationError):
    """The circuit breaker is open: the call failed at once without reaching the server."""


class PartialWriteError(ApiOperationError):
    """A write-back ended with some records written and some not (exit code 6).

    A scheduler must not re-run such a job blindly: the records already written would be
    written again. ``report`` (a ``utils.api_factory.WriteReport``) says which were.

    Args:
        what_went_wrong: One sentence describing the failure.
        how_to_fix: What the user should do about it.
        example: Optional example of the fix.
        report: The write report of the call, item by item.
        status_code: HTTP status of the last failed item, when one answered.
        url: The request URL, without credentials or secret query values.
        method: The HTTP method, upper case.
    """

    def __init__(
        self,
        what_went_wrong: str,
        how_to_fix: str,
        example: str | None = None,
        *,
        report: Any = None,
        status_code: int | None = None,
        url: str = "",
        method: str = "",
    ):
        super().__init__(
            what_went_wrong, how_to_fix, example, status_code=status_code, url=url, method=method
        )
        self.report = report


class StateLockedError(HelpfulError):
    """Another run of the same script for the same org/env holds the state (exit code 75).

    Try again later, as cron's ``flock -E 75`` would.
    """
