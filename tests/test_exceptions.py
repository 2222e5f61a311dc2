"""HelpfulError renders three parts; every subclass keeps them and its own context."""

from __future__ import annotations

import pytest

from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ApiRateLimitError,
    ApiTimeoutError,
    CircuitOpenError,
    ConfigurationError,
    FileOperationError,
    HelpfulError,
    ValidationError,
)

ALL_SUBCLASSES = [
    ConfigurationError,
    ValidationError,
    FileOperationError,
    ApiAuthenticationError,
    ApiOperationError,
    ApiTimeoutError,
    ApiRateLimitError,
    CircuitOpenError,
]


def test_renders_problem_solution_and_example() -> None:
    err = HelpfulError("Config missing", "Copy the example", "cp a b")
    assert (
        str(err) == "❌ Problem: Config missing\n✅ Solution: Copy the example\n📝 Example: cp a b"
    )


def test_example_line_only_when_given() -> None:
    err = HelpfulError("Config missing", "Copy the example")
    assert str(err) == "❌ Problem: Config missing\n✅ Solution: Copy the example"
    assert "📝" not in str(err)


def test_keeps_the_three_parts_as_attributes() -> None:
    err = HelpfulError("what", "how", "ex")
    assert (err.what_went_wrong, err.how_to_fix, err.example) == ("what", "how", "ex")
    assert HelpfulError("what", "how").example is None


def test_keyword_arguments_work() -> None:
    err = HelpfulError(what_went_wrong="w", how_to_fix="h", example="e")
    assert str(err).splitlines()[2] == "📝 Example: e"


@pytest.mark.parametrize("cls", ALL_SUBCLASSES)
def test_every_subclass_is_a_helpful_error_that_renders(cls: type[HelpfulError]) -> None:
    err = cls("it broke", "fix it", "like this")
    assert isinstance(err, HelpfulError)
    assert isinstance(err, Exception)
    assert str(err) == "❌ Problem: it broke\n✅ Solution: fix it\n📝 Example: like this"
    with pytest.raises(HelpfulError):
        raise err


def test_api_operation_error_carries_request_context() -> None:
    err = ApiOperationError("boom", "retry later", status_code=503, url="https://x/y", method="GET")
    assert (err.status_code, err.url, err.method) == (503, "https://x/y", "GET")


def test_api_operation_error_context_defaults() -> None:
    err = ApiOperationError("boom", "retry later")
    assert (err.status_code, err.url, err.method) == (None, "", "")


def test_rate_limit_error_carries_retry_after() -> None:
    err = ApiRateLimitError("slow down", "wait", retry_after=120.0, url="https://x", method="GET")
    assert err.retry_after == 120.0
    assert err.status_code == 429
    assert ApiRateLimitError("a", "b").retry_after is None


def test_circuit_open_error_is_an_api_operation_error() -> None:
    assert issubclass(CircuitOpenError, ApiOperationError)
    err = CircuitOpenError("open", "wait", url="https://x", method="POST")
    assert err.method == "POST"


def test_is_picklable_for_worker_processes() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(ConfigurationError("a", "b", "c")))
    assert str(err) == str(ConfigurationError("a", "b", "c"))
