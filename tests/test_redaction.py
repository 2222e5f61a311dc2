"""Redaction: a corpus of secret formats is hidden, ordinary text is left alone, never raises.

Two corpora. The hand-written one (``CORPUS``, ``REGISTERED``, ``ORDINARY``) is also used by
``tests/test_logger.py``, which pushes it through real subprocesses, consoles and log files.
The generated one (``tests/redaction_corpus``: secrets built from each service's documented
prefix, length and alphabet, in every assignment syntax, and ordinary texts per family) is
checked here family by family, directly and through the real logger in a child process (text
and JSON console, DEBUG file; as a ``%s`` argument, as the message, inside a logged
exception and inside a dict logged with ``%r``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tests.redaction_corpus import Case, negatives, positives, vendor_keyed
from utils import _redaction as redaction
from utils._redaction import REDACTED, REDACTION_FAILED, redact, register_secret
from utils._redaction_patterns import is_key_like, key_before, looks_random

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
    # The assignment forms of DESIGN §3 and the key names and short token shapes of issue 16.
    ("go_short_assign", 'apiToken := "go-tok-8Qz3Lm"', ("go-tok-8Qz3Lm",)),
    ("make_conditional", "DEPLOY_TOKEN ?= mk-tok-77Qa", ("mk-tok-77Qa",)),
    ("php_concat", '$githubToken .= "php-tok-5Wd2"', ("php-tok-5Wd2",)),
    ("go_typed_var", 'var apiToken string = "typed-tok-3Xy"', ("typed-tok-3Xy",)),
    ("js_const", 'const X_TOKEN = "const-tok-9Lk"', ("const-tok-9Lk",)),
    ("set_property", 'setProperty("X_TOKEN", "prop-tok-4Rt")', ("prop-tok-4Rt",)),
    ("os_environ_set", 'os.environ["X_TOKEN"] = "env-tok-6Hb"', ("env-tok-6Hb",)),
    ("shell_export", "export X_TOKEN=exp-tok-2Nc", ("exp-tok-2Nc",)),
    ("xml_add_key", '<add key="Password" value="nuget-pw-7Tq"/>', ("nuget-pw-7Tq",)),
    ("powershell", "Connect-Graph -ClientSecret 'ps-sec-5Mv' -TenantId x", ("ps-sec-5Mv",)),
    ("curl_user", "curl -u svc:curl-pw-8Gd https://api.example.com", ("curl-pw-8Gd",)),
    ("curl_long_user", "curl --user 'svc:curl-pw-9Jk' https://x", ("curl-pw-9Jk",)),
    ("escaped_repr", "{\\'password\\': \\'esc-rep-3Fw\\'}", ("esc-rep-3Fw",)),
    ("key_suffix_upper", "STRIPE_KEY=strk-4Dq9Lw", ("strk-4Dq9Lw",)),
    ("key_suffix_camel", '{"licenseKey": "lic-8Hs2Vb"}', ("lic-8Hs2Vb",)),
    ("token_number", "access_token1=tok1-7Gh3Mn", ("tok1-7Gh3Mn",)),
    ("secret_value", "secret_value: sv-5Kp8Rz", ("sv-5Kp8Rz",)),
    ("creds", "{'creds': 'cr-2Wq7Tx'}", ("cr-2Wq7Tx",)),
    ("access_id", 'accessId = "su7Kq2Lm9Np4Rs"', ("su7Kq2Lm9Np4Rs",)),
    ("vendor_key", "TWILIO=k8vq2lm9np4rs7tw3xyz", ("k8vq2lm9np4rs7tw3xyz",)),
    ("gitlab_runner", "runner glrt-Ab3De6Gh9Jk2Mn5Pq8St registered", ("Ab3De6Gh9Jk2Mn5Pq8St",)),
    ("gitlab_deploy", "gldt-Ab3De6Gh9Jk2Mn5Pq8St", ("Ab3De6Gh9Jk2Mn5Pq8St",)),
    ("slack_short", "legacy xoxa-2-Ab3De6Gh9J", ("Ab3De6Gh9J",)),
    ("twilio_sk", "twilio SK2f4e6a8c0b1d3f5e7a9c1b3d5f7e9a0b", ("2f4e6a8c0b1d3f5e7a9c",)),
    ("mailgun_key", "mailgun key-3f5e7a9c1b3d5f7e9a0b2c4d6e8f0a1b", ("3f5e7a9c1b3d5f7e9a0b",)),
    ("databricks", "dapi3f5e7a9c1b3d5f7e9a0b2c4d6e8f0a1b", ("3f5e7a9c1b3d5f7e9a0b",)),
    ("newrelic", "NRAK-AB3DE6GH9JK2MN5PQ8ST1VW4YZ", ("AB3DE6GH9JK2MN5PQ8ST",)),
    ("grafana_sa", "glsa_Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7Bc0Ef_0a1b2c3d", ("Ab3De6Gh9Jk2Mn5Pq8St",)),
    ("azure_ad_short", "secret Ab18Q~Xk2vN3.mP2_R7tYwBzq8vN3kLmP2xR7t", ("Xk2vN3.mP2_R7tYwBzq8",)),
    (
        "split_by_colon",
        "Ab3De6Gh9Jk2Mn5Pq8St:Vw4Yz7Bc0Ef3Hi6Kl9No2Qr5Tu8Wx",
        ("Ab3De6Gh9Jk2", "Vw4Yz7Bc0Ef3Hi6Kl9No"),
    ),
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
    (
        "sha256_checksum",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  report.xlsx",
    ),
    (
        "image_digest",
        "image ghcr.io/acme/toolkit@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ),
    ("git_commit", "deployed commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 to prod"),
    ("invoice_numbers", "Invoice INV-2026-000123 for order SO-104233 (PO 4500012345) posted"),
    ("short_base64", "ETag dGVzdC1ldGFnLTEy and cursor Zm9vYmFy"),
    ("plain_keys", "primary_key=customer_id idempotency_key: 550e8400-e29b-41d4-a716-446655440000"),
]

REPO = Path(__file__).resolve().parent.parent
ADVERSARIAL_SIZE = 200_000


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
        ('apiToken := "v1"', 'apiToken := "[REDACTED]"'),
        ('<add key="Password" value="v1"/>', '<add key="Password" value="[REDACTED]"/>'),
        ("-ClientSecret 'v1' -TenantId t", "-ClientSecret '[REDACTED]' -TenantId t"),
        ("curl -u svc:v1 https://x", "curl -u svc:[REDACTED] https://x"),
        ("{\\'token\\': \\'v1\\'}", "{\\'token\\': \\'[REDACTED]\\'}"),
        (
            "cursor=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u",
            "cursor=[REDACTED]",
        ),
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


PATHOLOGICAL: dict[str, str] = {
    "yaml_spaces": "password: " + "a " * (ADVERSARIAL_SIZE // 2),
    "repeated_keys": "password=" * (ADVERSARIAL_SIZE // 9),
    "backslashes": '"password": "' + "\\" * ADVERSARIAL_SIZE,
    "escaped_quote": 'password: \\"' + "x" * ADVERSARIAL_SIZE,
    "escaped_single_quote": "password: \\'" + "x" * ADVERSARIAL_SIZE,
    "query": "?" + "a" * ADVERSARIAL_SIZE,
    "xml": "<" + "a" * ADVERSARIAL_SIZE,
    "pem": "-----BEGIN PRIVATE KEY-----" + "A" * ADVERSARIAL_SIZE,
    "path_like": "a1/" * (ADVERSARIAL_SIZE // 3),
    "dashed": "Ab1-" * (ADVERSARIAL_SIZE // 4),
    "jwt_prefix": "eyJ" + "a" * ADVERSARIAL_SIZE,
    "plain": "x" * ADVERSARIAL_SIZE,
    "operators": "token :" + ":" * ADVERSARIAL_SIZE + "=",
    "typed_decl": "var apiToken " + "string " * (ADVERSARIAL_SIZE // 7),
    "key_endings": "a_key" * (ADVERSARIAL_SIZE // 5),
    "cli_dashes": " -" + "-" * ADVERSARIAL_SIZE + "secret",
    "curl_users": " -u a" * (ADVERSARIAL_SIZE // 5),
    "xml_value_attr": '<add key="password"' + " value" * (ADVERSARIAL_SIZE // 6),
    "azure_tildes": "Q~" * (ADVERSARIAL_SIZE // 2),
    "telegram": "12345:A" * (ADVERSARIAL_SIZE // 7),
    "joined_run": "Ab1=" * (ADVERSARIAL_SIZE // 4),
    "gitlab_dashes": "glpat-" + "-" * ADVERSARIAL_SIZE,
    "assignments": "k8Zq2Lm9Np4R = " * (ADVERSARIAL_SIZE // 15),
    "call_arguments": '"token", ' * (ADVERSARIAL_SIZE // 10),
}
# CPU seconds the child may spend on ALL the inputs above (about 5 MB of text). Linear
# scans finish in a fraction of it even on a loaded machine; one catastrophic backtrack
# over 200,000 characters would need hours, so the bound fails it whatever the load.
PATHOLOGICAL_CPU_BOUND = 60
PATHOLOGICAL_CHILD = """
import json, resource, sys
from pathlib import Path
bound = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_CPU, (bound, bound))
from utils._redaction import redact, REDACTION_FAILED
texts = json.loads(Path(sys.argv[1]).read_text())
done = {name: redact(text) != REDACTION_FAILED for name, text in texts.items()}
print(json.dumps(done))
"""


def test_pathological_input_finishes_within_an_injected_cpu_bound(tmp_path: Path) -> None:
    data = tmp_path / "pathological.json"
    data.write_text(json.dumps(PATHOLOGICAL), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", PATHOLOGICAL_CHILD, str(data), str(PATHOLOGICAL_CPU_BOUND)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == 0, f"killed by the CPU bound or failed: {proc.stderr[-2000:]}"
    assert json.loads(proc.stdout) == dict.fromkeys(PATHOLOGICAL, True)


@pytest.mark.parametrize(
    ("run", "key"),
    [
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
        ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", True),
        ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", False),
        ("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", False),
        ("Ab3De6Gh9Jk2Mn5Pq8St:Vw4Yz7Bc0Ef3Hi6Kl9No2Qr5", True),
        ("123456789012345|ab3de6gh9jk2mn5pq8st1vw4yz7bc0ef", True),
        ("https://api.example.com:443/v2.0/customers/items", False),
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


# -- the generated corpus, family by family ---------------------------------------------------
GENERATED = positives() + vendor_keyed()
GENERATED_BY_FAMILY: dict[str, list[Case]] = defaultdict(list)
for _case in GENERATED:
    GENERATED_BY_FAMILY[_case.family].append(_case)
NEGATIVES_BY_FAMILY: dict[str, list[str]] = defaultdict(list)
for _family, _text in negatives():
    NEGATIVES_BY_FAMILY[_family].append(_text)


def test_generated_corpus_covers_every_family_and_syntax() -> None:
    assert len(GENERATED_BY_FAMILY) >= 50
    assert len(GENERATED) >= 5000
    assert len({case.name for case in GENERATED}) == len(GENERATED)
    assert len(NEGATIVES_BY_FAMILY) >= 10


@pytest.mark.parametrize("family", sorted(GENERATED_BY_FAMILY))
def test_generated_secrets_vanish(family: str) -> None:
    leaks = [
        f"{case.name}: {case.text!r} -> {redact(case.text)!r}"
        for case in GENERATED_BY_FAMILY[family]
        if case.core in redact(case.text)
    ]
    assert leaks == []


@pytest.mark.parametrize("family", sorted(NEGATIVES_BY_FAMILY))
def test_generated_ordinary_text_comes_through_unchanged(family: str) -> None:
    changed = [(t, redact(t)) for t in NEGATIVES_BY_FAMILY[family] if redact(t) != t]
    assert changed == []


@pytest.mark.parametrize(
    ("value", "random"),
    [
        ("su7Kq2Lm9Np4Rs", True),
        ("9c57849e396f0541c4955fc822343dad", True),
        ("api.example.com", False),
        ("550e8400-e29b-41d4-a716-446655440000", False),
        ("2026-11-26T06:45:00", False),
        ("report_2026_q3_final", False),
        ("short1", False),
    ],
)
def test_looks_random(value: str, random: bool) -> None:
    assert looks_random(value) is random


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('TWILIO="v', ("TWILIO", False)),
        ("stripe_key := 'v", ("stripe_key", False)),
        ('os.environ["SUMO_ID"] = "v', ("SUMO_ID", False)),
        ("<vendorToken>v", ("vendorToken", False)),
        ("signing key v", ("key", True)),
        ("https://v", None),
        ("(v", None),
    ],
)
def test_key_before_reads_the_assignment_backwards(
    text: str, found: tuple[str, bool] | None
) -> None:
    assert key_before(text, len(text) - 1) == found


# -- the generated corpus through the real logger ---------------------------------------------
LOGGED_TEMPLATES_PER_SECRET = 6
LOGGER_CHILD = r"""
import json, logging, sys
from pathlib import Path

import utils.path_helpers as path_helpers
path_helpers.PROJECT_ROOT = Path(sys.argv[1])
from utils import logger as txo_logger

data = json.loads(Path(sys.argv[2]).read_text())
log = txo_logger.setup_logger()
if data["json"]:
    txo_logger.configure_console("json")
txo_logger.set_context("acme", "prod")
other = logging.getLogger("urllib3.connectionpool")
for i, (name, text) in enumerate(data["cases"]):
    lg = other if i % 2 else log
    lg.info("[%s] arg %s", name, text)
    lg.info("[" + name + "] message " + text)
    try:
        raise ValueError(text)
    except ValueError:
        lg.exception("[%s] exception", name)
    lg.info("[%s] dict %r", name, {"case": name, "payload": text})
print(json.dumps({"log_file": str(txo_logger.get_log_file())}))
"""
WAYS = ("arg", "message", "exception", "dict")


def _logged_positives() -> list[Case]:
    """Per secret, the free forms and a rotating handful of the assignment syntaxes."""
    chosen: list[Case] = []
    per_secret: dict[str, int] = defaultdict(int)
    for case in GENERATED:
        key = case.secret
        if ".free" in case.name or per_secret[key] < LOGGED_TEMPLATES_PER_SECRET:
            if ".free" not in case.name:
                per_secret[key] += 1
            chosen.append(case)
    return chosen


LOGGED_POSITIVES = _logged_positives()
LOGGED_NEGATIVES = [(f"neg.{family}.{i}", text) for i, (family, text) in enumerate(negatives())]


def _run_logger_child(tmp_path: Path, json_mode: bool) -> dict[str, str]:
    cases = [[case.name, case.text] for case in LOGGED_POSITIVES] + [
        [name, text] for name, text in LOGGED_NEGATIVES
    ]
    data = tmp_path / "cases.json"
    data.write_text(json.dumps({"json": json_mode, "cases": cases}), encoding="utf-8")
    project = tmp_path / "root"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TXO_LOG")}
    proc = subprocess.run(
        [sys.executable, "-c", LOGGER_CHILD, str(project), str(data)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log_file = Path(json.loads(proc.stdout.strip().splitlines()[-1])["log_file"])
    return {"console": proc.stderr, "file": log_file.read_text(encoding="utf-8")}


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The generated corpus logged four ways by a real child process, text and JSON."""
    return {
        "text": _run_logger_child(tmp_path_factory.mktemp("text"), json_mode=False),
        "json": _run_logger_child(tmp_path_factory.mktemp("json"), json_mode=True),
    }


def _json_records(console: str) -> dict[str, list[dict[str, Any]]]:
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in console.splitlines():
        record = json.loads(line)
        name = record["message"].split("]", 1)[0].lstrip("[")
        records[name].append(record)
    return records


@pytest.mark.parametrize("mode", ["text", "json"])
def test_logged_secrets_vanish_from_console_and_file(
    logged: dict[str, dict[str, str]], mode: str
) -> None:
    outputs = logged[mode]
    leaks = sorted(
        f"{where}: {case.name}"
        for case in LOGGED_POSITIVES
        for where, out in outputs.items()
        for form in {case.core, json.dumps(case.core)[1:-1]}
        if form in out
    )
    assert leaks == []


@pytest.mark.parametrize("mode", ["text", "json"])
def test_every_logged_case_reached_console_and_file_four_ways(
    logged: dict[str, dict[str, str]], mode: str
) -> None:
    outputs = logged[mode]
    missing = [
        f"{case.name} {way}"
        for case in LOGGED_POSITIVES[:: max(1, len(LOGGED_POSITIVES) // 200)]
        for way in WAYS
        if f"[{case.name}] {way}" not in outputs["file"]
        or (mode == "text" and f"[{case.name}] {way}" not in outputs["console"])
    ]
    assert missing == []
    if mode == "json":
        records = _json_records(outputs["console"])
        assert len(records) == len(LOGGED_POSITIVES) + len(LOGGED_NEGATIVES)
        assert all(len(group) == len(WAYS) for group in records.values())


@pytest.mark.parametrize("mode", ["text", "json"])
def test_logged_ordinary_text_comes_through_unchanged(
    logged: dict[str, dict[str, str]], mode: str
) -> None:
    outputs = logged[mode]
    damaged = []
    for name, text in LOGGED_NEGATIVES:
        payload = {"case": name, "payload": text}
        shown = {
            "arg": f"[{name}] arg {text}",
            "message": f"[{name}] message {text}",
            "exception": f"ValueError: {text}",
            "dict": f"[{name}] dict {payload!r}",
        }
        damaged += [f"file {name} {way}" for way, s in shown.items() if s not in outputs["file"]]
        if mode == "text":
            damaged += [
                f"console {name} {way}" for way, s in shown.items() if s not in outputs["console"]
            ]
        else:
            records = _json_records(outputs["console"])[name]
            messages = {r["message"] for r in records} | {r.get("exc_info", "") for r in records}
            damaged += [
                f"console {name} {way}"
                for way, s in shown.items()
                if not any(s in m for m in messages)
            ]
    assert damaged == []
