"""Redaction: a corpus of secret formats is hidden, ordinary text is left alone, never raises.

The corpus (``CORPUS``, ``REGISTERED``, ``ORDINARY``) is also used by ``tests/test_logger.py``,
which pushes it through real subprocesses, consoles and log files.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from utils import redaction
from utils.redaction import REDACTED, REDACTION_FAILED, redact, register_secret
from utils.redaction_patterns import is_key_like

PEM_BODY = (
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ"
)
REGISTERED = (
    "Reg1stered-Plain-Q9",  # no shape at all
    "p@ss/w+rd&more=1",  # appears URL-encoded
    'quote"back\\slash-77',  # appears JSON-escaped
    "short-xyz",  # a short token glued to other text
)

# (case id, text, secrets that must not survive)
CORPUS: list[tuple[str, str, tuple[str, ...]]] = [
    ("bearer_header", "Authorization: Bearer abcDEF123456ghiJKL789", ("abcDEF123456ghiJKL789",)),
    ("bearer_free", "sending Bearer 9f8e7d6c5b4a3210zyx to the API", ("9f8e7d6c5b4a3210zyx",)),
    ("basic_header", "Authorization: Basic dXNlcjpwYXNzd29yZA==", ("dXNlcjpwYXNzd29yZA",)),
    (
        "jwt",
        "id token eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        (
            "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ",
            "dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ),
    ),
    ("json_password", '{"user": "bob", "password": "hunter2-Secret"}', ("hunter2-Secret",)),
    ("json_case_spacing", '{"_Client_Secret" : "cs-VALUE-77"}', ("cs-VALUE-77",)),
    ("json_compact", '{"access_token":"at-Value-123","expires_in":3599}', ("at-Value-123",)),
    ("json_camel", '{"clientSecret": "camel-secret-9", "id": 4}', ("camel-secret-9",)),
    ("json_kebab", '{"client-secret": "kebab-secret-8"}', ("kebab-secret-8",)),
    ("json_az_token", '{"az-token": "Bearer aztok-abc-123"}', ("aztok-abc-123",)),
    ("json_number", '{"pwd": 98765431}', ("98765431",)),
    ("json_escaped", 'body: "{\\"password\\": \\"esc-pw-1\\"}"', ("esc-pw-1",)),
    ("dict_repr", "{'refresh_token': 'rt-value-456', 'scope': 'x'}", ("rt-value-456",)),
    ("kwargs_repr", "Config(passwd='kw-secret-5', host='db')", ("kw-secret-5",)),
    ("yaml", "password: correct horse battery staple", ("correct", "horse", "battery", "staple")),
    ("yaml_apikey", "apiKey: yaml-api-key-3", ("yaml-api-key-3",)),
    ("query", "GET https://api.example.com/items?api_key=qk-778899&page=2", ("qk-778899",)),
    ("query_token", "GET /items?page=2&token=tok-exact-42 HTTP/1.1", ("tok-exact-42",)),
    (
        "form_body",
        "client_secret=form-secret-1&grant_type=client_credentials&client_id=abc",
        ("form-secret-1",),
    ),
    ("header_api_key", "X-Api-Key: xk-5566-abcd", ("xk-5566-abcd",)),
    ("header_apim", "Ocp-Apim-Subscription-Key: apim-0f9e8d7c", ("apim-0f9e8d7c",)),
    (
        "conn_password",
        "Server=tcp:db.example.com;Database=app;User ID=app;Password=Pa55 w0rd!;Encrypt=True",
        ("Pa55 w0rd!", "w0rd!"),
    ),
    (
        "conn_account_key",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWFjY291bnQta2V5LXZhbHVl==;EndpointSuffix=core.windows.net",
        ("c2VjcmV0LWFjY291bnQta2V5LXZhbHVl",),
    ),
    ("url_userinfo", "postgresql://app_user:db-Pa55word@db.example.com:5432/app", ("db-Pa55word",)),
    (
        "pem",
        f"key loaded:\n-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\nnext",
        tuple(PEM_BODY.splitlines()),
    ),
    ("pem_rsa_cut", f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}", tuple(PEM_BODY.splitlines())),
    (
        "github_ghp",
        "push with ghp_16C7e42F292c6912E7710c838347Ae178B4a now",
        ("ghp_16C7e42F292c6912E7710c838347Ae178B4a",),
    ),
    (
        "github_gho",
        "oauth gho_16C7e42F292c6912E7710c838347Ae178B4a",
        ("16C7e42F292c6912E7710c838347Ae178B4a",),
    ),
    (
        "github_pat",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
        ("11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",),
    ),
    ("slack_bot", "slack xoxb-2048-1234567890-AbCdEfGhIjKlMnOpQrStUv", ("AbCdEfGhIjKlMnOpQrStUv",)),
    ("slack_user", "slack xoxp-1111-2222-3333-a1b2c3d4e5f6", ("a1b2c3d4e5f6",)),
    ("aws_key_id", "aws key AKIAIOSFODNN7EXAMPLE in use", ("AKIAIOSFODNN7EXAMPLE",)),
    (
        "aws_secret_named",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "bPxRfiCYEXAMPLEKEY"),
    ),
    ("aws_secret_bare", "using wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ("K7MDENG/bPxRfiCY",)),
    (
        "openai_sk",
        "OPENAI sk-T3BlbkFJabcdefghijklmnop1234567890ABCD",
        ("T3BlbkFJabcdefghijklmnop",),
    ),
    ("openai_proj", "key sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34", ("Ab12Cd34Ef56Gh78Ij90Kl12Mn34",)),
    ("stripe", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", ("4eC39HqLyjWDarjtT1zdp7dc",)),
    (
        "google_api",
        "maps AIzaSyA1234567890abcdefghijklmnopqrstu",
        ("AIzaSyA1234567890abcdefghijklmnopqrstu",),
    ),
    ("npm", "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 in .npmrc", ("a1B2c3D4e5F6g7H8i9J0",)),
    (
        "opaque_base64url",
        "stored Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u done",
        ("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo",),
    ),
    (
        "opaque_hex",
        "signing key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ("9f86d081884c7d659a2feaa0c55ad015",),
    ),
    (
        "opaque_alnum",
        "api secret value k3J9mQ2xL8vN4pR7tY1wZ6bC5dF0gH2jK4lM8nPq5R",
        ("k3J9mQ2xL8vN4pR7tY1wZ6bC5dF0gH2",),
    ),
    (
        "opaque_azure_secret",
        "client secret value Kq58Q~4jT.ZdfAbC-Mx_yzZbK8dQ2ymFqBc9aRkzz.",
        ("Kq58Q~4jT.ZdfAbC", "ymFqBc9aRkzz"),
    ),
    ("xml", "<creds><user>bob</user><password>xml-pw-77</password></creds>", ("xml-pw-77",)),
    ("cli_flag", "ran: tool --client-secret cli-sec-31 --org acme", ("cli-sec-31",)),
    (
        "azure_sas",
        "https://acct.blob.core.windows.net/c/f.csv?sv=2022-11-02&sig=AbCd%2Bef%3D&se=2030",
        ("AbCd%2Bef%3D",),
    ),
    ("cookie", "Set-Cookie: session=cookie-val-12; Path=/; HttpOnly", ("cookie-val-12",)),
    ("env_style", "DB_PASSWORD=env-pw-99 ./run.sh", ("env-pw-99",)),
    (
        "docker_auth",
        '{"auths": {"registry.example.com": {"auth": "dXNlcjpkb2NrZXItcHc="}}}',
        ("dXNlcjpkb2NrZXItcHc",),
    ),
    ("dict_pass", "{'user': 'bob', 'pass': 'short-pass-4'}", ("short-pass-4",)),
    ("env_mysql_pwd", "MYSQL_PWD=my-sql-pw-2 mysql -u app", ("my-sql-pw-2",)),
    (
        "gcp_service_account",
        '{"type": "service_account", "private_key_id": "k1", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDgcp\\n-----END PRIVATE KEY-----\\n"}',
        ("MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDgcp",),
    ),
    ("mongodb_srv", "mongodb+srv://svc:mongo-pw-8@cluster0.example.net/db", ("mongo-pw-8",)),
    ("url_at_in_password", "https://bob:p@ss-at-6@host.example.com/x", ("p@ss-at-6", "ss-at-6")),
    (
        "header_dict_repr",
        "{'User-Agent': 'python-requests/2.32', 'Authorization': 'Bearer hdr-tok-3141'}",
        ("hdr-tok-3141",),
    ),
    (
        "anthropic",
        "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        ("AbCdEfGhIjKlMnOpQrStUvWxYz012345",),
    ),
    (
        "aws_session_env",
        "AWS_SESSION_TOKEN=FwoGZXIvYXdzEBYaDHqa0AP1/sess+tok",
        ("FwoGZXIvYXdzEBYaDHqa0AP1",),
    ),
    ("registered_plain", "connecting with Reg1stered-Plain-Q9 now", ("Reg1stered-Plain-Q9",)),
    ("registered_glued", "prefixshort-xyzsuffix", ("short-xyz",)),
    (
        "registered_url",
        f"GET /x?q={quote('p@ss/w+rd&more=1', safe='')}",
        ("p%40ss%2Fw%2Brd", "p@ss/w+rd"),
    ),
    ("registered_json", '{"note": "quote\\"back\\\\slash-77"}', ('quote\\"back', 'quote"back')),
]

# Texts that must come through unchanged.
ORDINARY: list[tuple[str, str]] = [
    ("uuid", "customer 550e8400-e29b-41d4-a716-446655440000 updated"),
    ("guid_upper", "company {6F9619FF-8B86-D011-B42D-00C04FC964FF} selected"),
    ("iso_time", "run started 2026-11-26T06:45:00.123456+00:00 and 2026-11-26T0645Z"),
    ("posix_path", "wrote /home/runner/work/txo/output/acme-prod-customers_2026-11-26T0645Z.xlsx"),
    ("windows_path", r"read C:\Users\ops\txo\data\customers_2024_q3_final_version_2.csv"),
    (
        "url_guid_path",
        "GET https://api.businesscentral.dynamics.com/v2.0/tenant/production/api/v2.0/companies/550e8400-e29b-41d4-a716-446655440000/customers?$top=100",
    ),
    (
        "url_plain",
        "see https://learn.microsoft.com/en-us/graph/paging?view=graph-rest-1.0 for paging",
    ),
    ("url_port", "Starting new HTTPS connection (1): api.example.com:443"),
    ("skiptoken", "next link https://api.example.com/customers?$skiptoken=Zm9v"),
    ("sentence", "The secretary filed the token count report; nothing secret here."),
    ("numbers", "Processed 1,234,567 records in 12.5 s (98.7% ok, -3 skipped, 0x1F flags)"),
    ("token_count", "token_count=5 tokens_acquired=3 max_tokens: 4096 token_type: Bearer"),
    ("key_words", "keyboard shortcut, monkey business, password_policy.csv saved"),
    ("snake_long", "calling build_customer_report_for_organisation_and_environment_v2 now"),
    ("camel_long", "class CustomerSynchronisationServiceImplementationFactory loaded"),
    ("email", "mail sent to ops-team@example.com from noreply@example.com"),
    ("json_plain", '{"id": 42, "name": "Contoso", "token": null, "enabled": true}'),
    ("log_file_name", "log file logs/acme-prod-report_2026-11-26T064500Z_1a2b3c4d.log"),
    ("http_line", 'https://api.example.com:443 "GET /v2.0/customers?$top=100 HTTP/1.1" 200 5123'),
    ("basic_prose", "Basic settings loaded; Basic Auth disabled"),
    ("sha_short", "commit 3f2a9c1 deployed"),
    ("base_word", "Authorization header missing for this request"),
    ("short_words", "author: Jane, oauth: enabled, pass_rate: 5, signal: ok, passenger: 2"),
    ("hostname", "connected to ip-10-0-1-23.eu-west-1.compute.internal.example.com:5432."),
    ("java_class", "at com.example.v2.service.CustomerServiceImpl2.handleRequest(Impl.java:42)"),
    (
        "site_packages",
        "File /opt/app/.venv/lib/python3.11/site-packages/pythonjsonlogger/json.py, line 42",
    ),
    ("presence_words", "Loaded config (secrets: _client_secret, token: yes, password: none)"),
]

ADVERSARIAL_SIZE = 200_000
ADVERSARIAL_BUDGET_SECONDS = 2.0


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    """Every test starts with the corpus's registered values, and leaves nothing behind."""
    redaction.clear_registered_secrets()
    for value in REGISTERED:
        register_secret(value)
    yield
    redaction.clear_registered_secrets()


def test_corpus_is_wide() -> None:
    assert len(CORPUS) >= 40
    assert len({case for case, _, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("case", "text", "secrets"), CORPUS, ids=[c[0] for c in CORPUS])
def test_secret_is_hidden(case: str, text: str, secrets: tuple[str, ...]) -> None:
    out = redact(text)
    for secret in secrets:
        assert secret not in out, f"{case}: {secret!r} survived in {out!r}"
    assert REDACTED in out


@pytest.mark.parametrize(("case", "text"), ORDINARY, ids=[c[0] for c in ORDINARY])
def test_ordinary_text_is_not_mangled(case: str, text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"password": "x1y2"}', '{"password": "[REDACTED]"}'),
        ('{"_Client_Secret" : "abc"}', '{"_Client_Secret" : "[REDACTED]"}'),
        ("{'password': 'x', 'user': 'bob'}", "{'password': '[REDACTED]', 'user': 'bob'}"),
        ("password: two words", "password: [REDACTED]"),
        ("?api_key=abc&page=2", "?api_key=[REDACTED]&page=2"),
        (
            "client_secret=s&grant_type=client_credentials",
            "client_secret=[REDACTED]&grant_type=client_credentials",
        ),
        ("X-Api-Key: abc", "X-Api-Key: [REDACTED]"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED]"),
        ("Password=p w;Encrypt=True", "Password=[REDACTED];Encrypt=True"),
        ("https://user:pw@host/x", "https://user:[REDACTED]@host/x"),
        ("<password>pw</password>", "<password>[REDACTED]</password>"),
        (
            "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----",
            "-----BEGIN EC PRIVATE KEY-----[REDACTED]-----END EC PRIVATE KEY-----",
        ),
        ('{\\"token\\": \\"t1\\"}', '{\\"token\\": \\"[REDACTED]\\"}'),
        ("(token: abc123)", "(token: [REDACTED])"),
    ],
)
def test_key_stays_visible_and_only_the_value_is_hidden(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("_client_secret", True),
        ("clientSecret", True),
        ("X-Api-Key", True),
        ("_az_token", True),
        ("token", True),
        ("access_token", True),
        ("AccountKey", True),
        ("pwd", True),
        ("token_count", False),
        ("tokens_acquired", False),
        ("secretary", False),
        ("cwd", False),
        ("name", False),
        ("nextPageToken", False),
    ],
)
def test_secret_key_names(name: str, secret: bool) -> None:
    assert redaction.is_secret_key(name) is secret


def test_registered_value_forms_are_all_hidden() -> None:
    value = 'Sp ace+slash/quote"é-2024'
    register_secret(value)
    forms = [
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    ]
    for form in forms:
        assert redact(f"<{form}>") == f"<{REDACTED}>", form


def test_longer_registered_value_wins_over_its_prefix() -> None:
    register_secret("abcd")
    register_secret("abcdefgh")
    assert redact("x abcdefgh y") == f"x {REDACTED} y"


def test_short_and_empty_values_are_ignored() -> None:
    before = redaction.registered_count()
    for value in ("", "abc", None):
        register_secret(value)  # type: ignore[arg-type]
    assert redaction.registered_count() == before
    assert redact("abc is fine") == "abc is fine"


def test_non_string_value_is_registered_as_text() -> None:
    register_secret(12345678)  # type: ignore[arg-type]
    assert redact("pin 12345678") == f"pin {REDACTED}"


def test_clear_forgets_values() -> None:
    redaction.clear_registered_secrets()
    assert redact("Reg1stered-Plain-Q9") == "Reg1stered-Plain-Q9"


def test_redaction_is_idempotent() -> None:
    for _, text, _ in CORPUS:
        once = redact(text)
        assert redact(once) == once


def test_internal_failure_returns_placeholder_not_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(text: str) -> str:
        raise RuntimeError("broken pattern")

    monkeypatch.setattr(redaction, "_apply_patterns", boom)
    assert redact("password=hunter2") == REDACTION_FAILED


def test_failing_str_returns_placeholder() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise ValueError("no")

    assert redact(Hostile()) == REDACTION_FAILED  # type: ignore[arg-type]


def test_non_string_input_is_rendered_then_redacted() -> None:
    assert redact({"password": "x9"}) == "{'password': '[REDACTED]'}"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "password: " + "a " * (ADVERSARIAL_SIZE // 2),
        "password=" * (ADVERSARIAL_SIZE // 9),
        '"password": "' + "\\" * ADVERSARIAL_SIZE,
        'password: \\"' + "x" * ADVERSARIAL_SIZE,
        "?" + "a" * ADVERSARIAL_SIZE,
        "<" + "a" * ADVERSARIAL_SIZE,
        "-----BEGIN PRIVATE KEY-----" + "A" * ADVERSARIAL_SIZE,
        "a1/" * (ADVERSARIAL_SIZE // 3),
        "Ab1-" * (ADVERSARIAL_SIZE // 4),
        "eyJ" + "a" * ADVERSARIAL_SIZE,
        "x" * ADVERSARIAL_SIZE,
    ],
    ids=[
        "yaml_spaces",
        "repeated_keys",
        "backslashes",
        "escaped_quote",
        "query",
        "xml",
        "pem",
        "path_like",
        "dashed",
        "jwt_prefix",
        "plain",
    ],
)
def test_pathological_input_is_linear(text: str) -> None:
    start = time.perf_counter()
    redact(text)
    assert time.perf_counter() - start < ADVERSARIAL_BUDGET_SECONDS


@pytest.mark.parametrize(
    ("run", "key"),
    [
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
        ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", True),
        ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", True),
        ("0/companies/550e8400-e29b-41d4-a716-446655440000/customers", False),
        ("acme-prod-report_2026-11-26T064500Z_1a2b3c4d", False),
        ("test_thing_number_2_with_a_very_long_name_here", False),
        ("CustomerSynchronisationServiceImplementation", False),
        ("x" * 45, False),
    ],
)
def test_is_key_like(run: str, key: bool) -> None:
    assert is_key_like(run) is key


def test_register_and_redact_from_many_threads() -> None:
    values = [f"thread-secret-{i:03d}-Qz" for i in range(64)]
    errors: list[str] = []

    def worker(value: str) -> None:
        register_secret(value)
        out = redact(f"value={value};")
        if value in out:
            errors.append(out)

    threads = [threading.Thread(target=worker, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(v not in redact(" ".join(values)) for v in values)
