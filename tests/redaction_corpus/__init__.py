"""A corpus for redaction: secrets built from the services' documented formats, the syntaxes
they reach a log in, and ordinary text that must come through unchanged.

Secrets are generated (seeded, so every run sees the same corpus) from each service's
documented prefix, length and alphabet, as the public secret scanners' rule lists state
them; nothing here is a real credential. ``positives()`` pairs each secret with the texts it
appears in (alone in prose, and assigned to a key in every syntax of ``TEMPLATES``);
``negatives()`` gives ordinary texts per family. ``tests/redaction_corpus/measure.py`` prints
recall and prose damage from them.
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

SEED = 20261207
ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
WORD = ALNUM + "_"
DASHED = ALNUM + "_-"
B64 = ALNUM + "+/"


@dataclass(frozen=True)
class Case:
    """One text and the secret that must not survive it.

    Attributes:
        family: The service family (for the per-family figures).
        name: Unique case id.
        text: The text as it reaches the logger.
        secret: The secret; its distinctive part (``secret`` minus any documented prefix)
            must be absent from the redacted text.
        form: The syntax it is written in (a ``TEMPLATES`` or ``FREE_FORMS`` entry).
    """

    family: str
    name: str
    text: str
    secret: str
    form: str = ""

    @property
    def core(self) -> str:
        """The part of the secret that must vanish: from its 6th character on, so a visible
        documented prefix (``ghp_``, ``sk_live_``) does not count as a leak."""
        return self.secret[min(6, len(self.secret) // 3) :]


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _mixed(rng: random.Random, alphabet: str, n: int) -> str:
    """``n`` characters of ``alphabet`` with at least one digit and one letter (what a
    generated key has with overwhelming probability at these lengths)."""
    while True:
        value = _r(rng, alphabet, n)
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def _digits(rng: random.Random, n: int) -> str:
    return _r(rng, string.digits, n)


Gen = Callable[[random.Random], str]

# (family, shape name, generator): documented prefix + length + alphabet.
SHAPES: list[tuple[str, str, Gen]] = [
    ("github", "ghp", lambda r: "ghp_" + _mixed(r, ALNUM, 36)),
    ("github", "gho", lambda r: "gho_" + _mixed(r, ALNUM, 36)),
    ("github", "ghs", lambda r: "ghs_" + _mixed(r, ALNUM, 36)),
    ("github", "ghr", lambda r: "ghr_" + _mixed(r, ALNUM, 36)),
    ("github", "fine_grained", lambda r: "github_pat_" + _mixed(r, WORD, 82)),
    ("gitlab", "glpat", lambda r: "glpat-" + _mixed(r, DASHED, 20)),
    ("gitlab", "glrt", lambda r: "glrt-" + _mixed(r, DASHED, 20)),
    ("gitlab", "gldt", lambda r: "gldt-" + _mixed(r, DASHED, 20)),
    ("gitlab", "glptt", lambda r: "glptt-" + _mixed(r, HEX, 40)),
    ("gitlab", "glcbt", lambda r: "glcbt-" + _mixed(r, ALNUM, 2) + "_" + _mixed(r, DASHED, 20)),
    ("gitlab", "glft", lambda r: "glft-" + _mixed(r, DASHED, 20)),
    ("gitlab", "glimt", lambda r: "glimt-" + _mixed(r, DASHED, 25)),
    ("gitlab", "glagent", lambda r: "glagent-" + _mixed(r, DASHED, 50)),
    ("gitlab", "glsoat", lambda r: "glsoat-" + _mixed(r, DASHED, 20)),
    ("gitlab", "runner_reg", lambda r: "GR1348941" + _mixed(r, DASHED, 20)),
    (
        "slack",
        "xoxb",
        lambda r: f"xoxb-{_digits(r, 12)}-{_digits(r, 13)}-{_mixed(r, ALNUM, 24)}",
    ),
    (
        "slack",
        "xoxp",
        lambda r: f"xoxp-{_digits(r, 11)}-{_digits(r, 11)}-{_digits(r, 12)}-{_mixed(r, ALNUM, 32)}",
    ),
    ("slack", "xoxa_short", lambda r: "xoxa-2-" + _mixed(r, ALNUM, 10)),
    ("slack", "xoxr_short", lambda r: "xoxr-" + _mixed(r, ALNUM, 9)),
    (
        "slack",
        "xapp",
        lambda r: f"xapp-1-A{_mixed(r, UPPER_ALNUM, 10)}-{_digits(r, 13)}-{_mixed(r, HEX, 64)}",
    ),
    ("slack", "config", lambda r: "xoxe.xoxp-1-" + _mixed(r, ALNUM, 163)),
    (
        "slack",
        "webhook",
        lambda r: (
            "https://hooks.slack.com/services/T"
            + _mixed(r, UPPER_ALNUM, 8)
            + "/B"
            + _mixed(r, UPPER_ALNUM, 8)
            + "/"
            + _mixed(r, ALNUM, 24)
        ),
    ),
    ("stripe", "sk_live", lambda r: "sk_live_" + _mixed(r, ALNUM, 24)),
    ("stripe", "sk_test_long", lambda r: "sk_test_" + _mixed(r, ALNUM, 99)),
    ("stripe", "rk_live", lambda r: "rk_live_" + _mixed(r, ALNUM, 24)),
    ("stripe", "pk_live", lambda r: "pk_live_" + _mixed(r, ALNUM, 24)),
    ("stripe", "whsec", lambda r: "whsec_" + _mixed(r, ALNUM, 32)),
    ("twilio", "api_key", lambda r: "SK" + _mixed(r, HEX, 32)),
    ("twilio", "account_sid", lambda r: "AC" + _mixed(r, HEX, 32)),
    ("sendgrid", "api_key", lambda r: f"SG.{_mixed(r, DASHED, 22)}.{_mixed(r, DASHED, 43)}"),
    ("mailgun", "private", lambda r: "key-" + _mixed(r, HEX, 32)),
    ("mailgun", "public", lambda r: "pubkey-" + _mixed(r, HEX, 32)),
    ("npm", "token", lambda r: "npm_" + _mixed(r, ALNUM, 36)),
    ("pypi", "upload", lambda r: "pypi-AgEIcHlwaS5vcmc" + _mixed(r, DASHED, 70)),
    ("databricks", "token", lambda r: "dapi" + _mixed(r, HEX, 32)),
    ("databricks", "token_suffix", lambda r: "dapi" + _mixed(r, HEX, 32) + "-2"),
    ("grafana", "service_account", lambda r: f"glsa_{_mixed(r, ALNUM, 32)}_{_mixed(r, HEX, 8)}"),
    ("grafana", "cloud", lambda r: "glc_" + _mixed(r, ALNUM, 48)),
    ("newrelic", "user_key", lambda r: "NRAK-" + _mixed(r, UPPER_ALNUM, 27)),
    ("newrelic", "browser", lambda r: "NRJS-" + _mixed(r, HEX, 19)),
    ("newrelic", "insert", lambda r: "NRII-" + _mixed(r, DASHED, 32)),
    ("huggingface", "user", lambda r: "hf_" + _r(r, string.ascii_letters, 34)),
    ("huggingface", "org", lambda r: "api_org_" + _r(r, string.ascii_letters, 34)),
    (
        "azure",
        "ad_client_secret",
        lambda r: _mixed(r, ALNUM, 3) + str(r.randint(0, 9)) + "Q~" + _mixed(r, ALNUM + "_~.-", 34),
    ),
    ("square", "access", lambda r: "sq0atp-" + _mixed(r, DASHED, 22)),
    ("square", "oauth_secret", lambda r: "sq0csp-" + _mixed(r, DASHED, 43)),
    ("square", "eaaa", lambda r: "EAAA" + _mixed(r, DASHED, 60)),
    ("1password", "service_account", lambda r: "ops_eyJ" + _mixed(r, ALNUM, 250)),
    (
        "1password",
        "secret_key",
        lambda r: "A3-" + "-".join(_mixed(r, UPPER_ALNUM, n) for n in (6, 11, 5, 5, 5)),
    ),
    ("shopify", "shpat", lambda r: "shpat_" + _mixed(r, HEX, 32)),
    ("shopify", "shpss", lambda r: "shpss_" + _mixed(r, HEX, 32)),
    ("atlassian", "api_token", lambda r: "ATATT3" + _mixed(r, DASHED, 186)),
    ("digitalocean", "pat", lambda r: "dop_v1_" + _mixed(r, HEX, 64)),
    ("digitalocean", "oauth", lambda r: "doo_v1_" + _mixed(r, HEX, 64)),
    ("heroku", "v2", lambda r: "HRKU-AA" + _mixed(r, DASHED, 58)),
    ("doppler", "personal", lambda r: "dp.pt." + _mixed(r, ALNUM, 43)),
    ("doppler", "service", lambda r: "dp.st." + _mixed(r, ALNUM, 43)),
    ("aws", "access_key_id", lambda r: "AKIA" + _mixed(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
    ("google", "api_key", lambda r: "AIza" + _mixed(r, DASHED, 35)),
    ("google", "oauth_secret", lambda r: "GOCSPX-" + _mixed(r, DASHED, 28)),
    ("google", "access_token", lambda r: "ya29." + _mixed(r, DASHED, 100)),
    (
        "openai",
        "project",
        lambda r: "sk-proj-" + _mixed(r, DASHED, 58) + "T3BlbkFJ" + _mixed(r, DASHED, 58),
    ),
    ("anthropic", "api", lambda r: "sk-ant-api03-" + _mixed(r, DASHED, 93) + "AA"),
    (
        "dynatrace",
        "token",
        lambda r: f"dt0c01.{_mixed(r, UPPER_ALNUM, 24)}.{_mixed(r, UPPER_ALNUM, 64)}",
    ),
    ("pulumi", "token", lambda r: "pul-" + _mixed(r, HEX, 40)),
    ("postman", "token", lambda r: f"PMAK-{_mixed(r, HEX, 24)}-{_mixed(r, HEX, 34)}"),
    ("linear", "api", lambda r: "lin_api_" + _mixed(r, ALNUM, 40)),
    ("notion", "token", lambda r: "ntn_" + _digits(r, 11) + _mixed(r, ALNUM, 35)),
    ("vault", "service", lambda r: "hvs." + _mixed(r, DASHED, 90)),
    ("sentry", "user", lambda r: "sntryu_" + _mixed(r, HEX, 64)),
    ("docker", "pat", lambda r: "dckr_pat_" + _mixed(r, DASHED, 27)),
    ("planetscale", "token", lambda r: "pscale_tkn_" + _mixed(r, WORD, 43)),
    ("telegram", "bot", lambda r: f"{_digits(r, 10)}:AA{_mixed(r, DASHED, 33)}"),
    ("mailchimp", "api", lambda r: f"{_mixed(r, HEX, 32)}-us{r.randint(1, 21)}"),
    ("sendinblue", "api", lambda r: f"xkeysib-{_mixed(r, HEX, 64)}-{_mixed(r, ALNUM, 16)}"),
    ("alibaba", "access_key_id", lambda r: "LTAI" + _mixed(r, ALNUM, 20)),
    ("adobe", "client_secret", lambda r: "p8e-" + _mixed(r, ALNUM, 32)),
    ("infracost", "token", lambda r: "ico-" + _mixed(r, ALNUM, 32)),
    ("easypost", "token", lambda r: "EZAK" + _mixed(r, ALNUM, 54)),
    ("flutterwave", "secret", lambda r: f"FLWSECK_TEST-{_mixed(r, HEX, 32)}-X"),
    ("rubygems", "token", lambda r: "rubygems_" + _mixed(r, HEX, 48)),
    ("perplexity", "key", lambda r: "pplx-" + _mixed(r, ALNUM, 48)),
    ("prefect", "token", lambda r: "pnu_" + _mixed(r, ALNUM, 36)),
    ("groq", "key", lambda r: "gsk_" + _mixed(r, ALNUM, 52)),
    ("contentful", "pat", lambda r: "CFPAT-" + _mixed(r, DASHED, 43)),
    ("octopus", "api", lambda r: "API-" + _mixed(r, UPPER_ALNUM, 26)),
    ("settlemint", "pat", lambda r: "sm_pat_" + _mixed(r, ALNUM, 16)),
    ("openshift", "user", lambda r: "sha256~" + _mixed(r, DASHED, 43)),
    ("langsmith", "key", lambda r: f"lsv2_pt_{_mixed(r, HEX, 32)}_{_mixed(r, HEX, 10)}"),
    ("facebook", "page", lambda r: "EAAC" + _mixed(r, ALNUM, 120)),
    (
        "jwt",
        "hs256",
        lambda r: (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            + "eyJ"
            + _mixed(r, DASHED, 60)
            + "."
            + _mixed(r, DASHED, 43)
        ),
    ),
    # Secrets with no prefix: found by their key's name or their length.
    ("generic", "alnum_24", lambda r: _mixed(r, ALNUM, 24)),
    ("generic", "alnum_32", lambda r: _mixed(r, ALNUM, 32)),
    ("generic", "hex_32", lambda r: _mixed(r, HEX, 32)),
    ("generic", "password_12", lambda r: _mixed(r, ALNUM + "!#%*", 12)),
    ("opaque", "base64_44", lambda r: _mixed(r, B64, 43) + "="),
    ("opaque", "aws_secret_40", lambda r: _mixed(r, B64, 40)),
    ("opaque", "alnum_64", lambda r: _mixed(r, ALNUM, 64)),
    # 40+ character keys broken by '=', ':', '|' or '@'.
    ("opaque", "split_colon", lambda r: _mixed(r, ALNUM, 20) + ":" + _mixed(r, ALNUM, 30)),
    ("opaque", "split_pipe", lambda r: _digits(r, 15) + "|" + _mixed(r, LOWER_ALNUM, 32)),
    ("opaque", "split_equals", lambda r: _mixed(r, ALNUM, 22) + "=" + _mixed(r, ALNUM, 22)),
    ("opaque", "split_at", lambda r: _mixed(r, ALNUM, 24) + "@" + _mixed(r, ALNUM, 24)),
]

# Key names a secret is assigned to ({I} upper case, {i} as given): the secret word at the
# end, a vendor name as the key, and the forms the issue lists.
KEY_NAMES = [
    "{i}Token",
    "{i}_token",
    "{I}_TOKEN",
    "{i}_api_token",
    "{I}_KEY",
    "{i}Key",
    "{i}_secret_value",
    "{i}_access_token1",
    "{i}Creds",
    "{i}Password",
]

# Assignment syntaxes, after gitleaks' sample generator and the issue's list ({k} key, {s}
# secret).
TEMPLATES = [
    "{k}={s}",
    '{k} = "{s}"',
    '{{\n    "{k}": "{s}"\n}}',
    '\\{{\n    \\"{k}\\": \\"{s}\\"\n\\}}',
    "<{k}>{s}</{k}>",
    "<{k}>\n    {s}\n</{k}>",
    "{k}: {s}",
    "{k}: '{s}'",
    "{k}: |\n  {s}",
    "{k}: >\n  {s}",
    'string {k} = "{s}";',
    'var {k} string = "{s}"',
    '{k} := "{s}"',
    "{k} := `{s}`",
    'String {k} = "{s}";',
    'var {k}: String = "{s}"',
    '${k} .= "{s}"',
    "{k} = '{s}'",
    '  "{k}" => "{s}"',
    '{k} ::= "{s}"',
    '{k} :::= "{s}"',
    '{k} ?= "{s}"',
    '{k} += "{s}"',
    "{k} ?= {s}",
    'const {k} = "{s}"',
    'setProperty("{k}", "{s}")',
    'os.environ["{k}"] = "{s}"',
    "export {k}={s}",
    '<add key="{k}" value="{s}"/>',
    "Connect-Service -{k} '{s}'",
    "{{\\'{k}\\': \\'{s}\\'}}",
    "{{'{k}': '{s}', 'retries': 3}}",
    "{k},{s},",
]
# Forms that carry the secret without a key name of its own.
FREE_FORMS = [
    "using {s} for the upload",
    "{s}",
    "curl -u svc-user:{s} https://api.example.com/v1/items",
    "curl --user 'svc-user:{s}' https://api.example.com/v1/items",
    '<add key="Password" value="{s}"/>',
    "<password>{s}</password>",
    "Connect-AzAccount -ClientSecret '{s}' -Tenant contoso",
    "{{'client_secret': '{s}'}}",
]
IDENTIFIERS = ["stripe", "twilio", "github", "sumo", "app"]


def positives(seed: int = SEED, per_shape: int = 2) -> list[Case]:
    """Every shape's secrets, alone and in every key name and syntax.

    Args:
        seed: Seed of the generator.
        per_shape: Secrets generated per shape.
    """
    rng = random.Random(seed)
    cases: list[Case] = []
    for family, shape, gen in SHAPES:
        for n in range(per_shape):
            secret = gen(rng)
            base = f"{family}.{shape}.{n}"
            for i, form in enumerate(FREE_FORMS):
                if family == "generic" and i < 2:
                    continue  # a random word alone is indistinguishable from an id
                text = form.format(s=secret)
                cases.append(Case(family, f"{base}.free{i}", text, secret, form))
            ident = IDENTIFIERS[n % len(IDENTIFIERS)]
            for j, template in enumerate(TEMPLATES):
                key = KEY_NAMES[(j + n) % len(KEY_NAMES)]
                key = key.replace("{I}", ident.upper()).replace("{i}", ident)
                text = template.format(k=key, s=secret)
                cases.append(Case(family, f"{base}.t{j}", text, secret, template))
    return cases


def vendor_keyed(seed: int = SEED) -> list[Case]:
    """A vendor's name alone as the key of a random value (``TWILIO=...``)."""
    rng = random.Random(seed + 1)
    cases = []
    for ident in ("twilio", "sumo", "alibaba", "mailgun", "newrelic", "dropbox", "algolia"):
        secret = _mixed(rng, LOWER_ALNUM, 20)
        for j, template in enumerate(("{k}={s}", '"{k}": "{s}"', "{k} := '{s}'", "{k}: {s}")):
            key = ident.upper() if j == 0 else ident
            text = template.format(k=key, s=secret)
            cases.append(Case("vendor_key", f"vendor.{ident}.{j}", text, secret, template))
    secret = "su" + _mixed(rng, ALNUM, 12)
    text = f'accessId = "{secret}"'
    cases.append(Case("vendor_key", "vendor.accessId", text, secret, 'accessId = "{s}"'))
    return cases


def _sha(rng: random.Random, algo: str) -> str:
    return hashlib.new(algo, rng.randbytes(16)).hexdigest()


def negatives(seed: int = SEED, per_family: int = 6) -> list[tuple[str, str]]:
    """Ordinary texts, per family, that must come through redaction unchanged.

    Args:
        seed: Seed of the generator.
        per_family: Texts generated per family.

    Returns:
        ``(family, text)`` pairs.
    """
    rng = random.Random(seed + 2)
    out: list[tuple[str, str]] = []
    for _ in range(per_family):
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        sha1, sha256 = _sha(rng, "sha1"), _sha(rng, "sha256")
        year, month, day = rng.randint(2020, 2030), rng.randint(1, 12), rng.randint(1, 28)
        hour, minute, sec = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
        stamp = f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}"
        invoice = f"INV-{year}-{rng.randint(1, 999999):06d}"
        b64 = _mixed(rng, B64, rng.choice((12, 16, 20, 24)))
        out += [
            (
                "url",
                f"GET https://api.businesscentral.dynamics.com/v2.0/{guid}/production/api/v2.0/companies({guid})/salesInvoices?$top=100&$skip={rng.randint(0, 900)}",
            ),
            (
                "url",
                f"POST https://graph.microsoft.com/v1.0/users/{guid}/sendMail -> 202 in 0.{rng.randint(100, 999)}s",
            ),
            ("url", f"next link https://api.example.com/customers?$skiptoken={b64}&$top=50"),
            ("uuid", f'customer {guid} updated; etag W/"{guid}"'),
            (
                "path",
                f"wrote /home/runner/work/txo/output/acme-prod-report_{stamp.replace(':', '')}Z_{sha1[:8]}.xlsx",
            ),
            (
                "path",
                f"read C:\\Users\\ops\\txo\\data\\customers_{year}_q{rng.randint(1, 4)}_final.csv",
            ),
            (
                "timestamp",
                f"run started {stamp}.{rng.randint(0, 999999):06d}+00:00, cursor {stamp}Z",
            ),
            (
                "invoice",
                f"Invoice {invoice} (order SO-{rng.randint(100000, 999999)}, PO {rng.randint(10**9, 10**10)}) posted",
            ),
            ("digest", f"sha256 checksum {sha256}  output/report.xlsx"),
            ("digest", f"pulled ghcr.io/acme/toolkit@sha256:{sha256}"),
            ("digest", f"deployed commit {sha1} ({sha1[:7]}) to prod"),
            ("digest", f"SHA-1: {sha1.upper()}; md5 {sha256[:32]}"),
            ("base64", f'ETag "{b64}" and page cursor {b64}'),
            ("prose", "Token acquired; the secret key is read from the secrets file, never logged"),
            (
                "prose",
                f"primary key: customer_id, sort key = created_at, cache_key={rng.randint(1, 99)}",
            ),
            (
                "prose",
                f"token_count={rng.randint(1, 9)} tokens_acquired={rng.randint(1, 9)} max_tokens: 4096 token_type: Bearer",
            ),
            ("prose", "Loaded config (secrets: _client_secret, token: yes, password: none)"),
            ("prose", f"Idempotency-Key: {guid}"),
            (
                "email",
                f"mail sent to ops-team@example.com from noreply+{rng.randint(1, 99)}@example.com",
            ),
            (
                "version",
                f"python-requests/2.32.{rng.randint(0, 9)} urllib3/2.2.{rng.randint(0, 9)} on Linux-6.8.0-{rng.randint(10, 99)}-generic-x86_64",
            ),
        ]
    return out
