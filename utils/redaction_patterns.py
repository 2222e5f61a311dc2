"""Secret-shaped patterns behind :mod:`utils.redaction`, in families of one alternation each.

Each rule is a regular expression with an optional named group ``s`` (the part to hide); what
surrounds ``s`` stays visible, so ``"password": "x"`` becomes ``"password": "[REDACTED]"``.
Rules without an ``s`` group are hidden whole.

Speed is part of the contract (a record must cost at most 1.5x plain logging), so
:func:`compile_rules` turns a family of rules into ONE alternation shaped for Python's regex
engine: every branch starts with a plain literal character (``p(?:assword...)|s(?:ecret...)``),
which lets the engine skip positions that cannot start a match and reject branches on their
first character. Rules therefore name the characters they start with and give the rest of
their pattern; a word boundary before the first character is a lookbehind placed after it.
Opaque 40+ character keys are found without a regular expression (see
:func:`utils.redaction._apply_opaque`) and judged by :func:`is_key_like`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Key names that mark the value beside them as secret, by first letter (lowercase: the key
# rules run on a lowercased copy of the text, so they match any case).
# A key ENDING in one of these words is secret too (client_secret, clientSecret, az-token,
# DB_PASSWORD, x-api-key): the match starts at the word, so any prefix is allowed, while
# anything after it (token_count, tokens_acquired, secretary) is not. Pagination cursors
# ($skiptoken, nextPageToken ...) are not secrets. Short names count only as a whole key:
# 'pwd', 'pass', 'auth' (Docker's config.json) and 'sig' (Azure SAS URLs).
_WHOLE_KEY = r"(?<![A-Za-z0-9]...)"
_WHOLE_KEY_4 = r"(?<![A-Za-z0-9]....)"
_SEP_OPT = r"[_\- ]?"
KEY_WORDS: dict[str, str] = {
    "p": rf"ass(?:word|wd|phrase)|rivate{_SEP_OPT}key|wd{_WHOLE_KEY}|ass{_WHOLE_KEY_4}",
    "s": rf"ecret(?:{_SEP_OPT}(?:access{_SEP_OPT})?key)?|igning{_SEP_OPT}key"
    rf"|ubscription{_SEP_OPT}key|hared{_SEP_OPT}(?:access{_SEP_OPT})?(?:key|signature)"
    rf"|ignature|et-cookie|ig{_WHOLE_KEY}",
    "e": rf"ncryption{_SEP_OPT}key",
    "m": rf"aster{_SEP_OPT}key",
    "f": rf"unctions?{_SEP_OPT}key",
    "c": rf"lient{_SEP_OPT}key|redentials?|ookie",
    "a": rf"(?:uth|pp|pi|ccount){_SEP_OPT}key|ccess{_SEP_OPT}(?:key|signature)|uthorization"
    rf"|uth{_WHOLE_KEY_4}",
    "t": "oken"
    + "".join(
        f"(?<!{word}token)" for word in ("skip", "delta", "page", "next", "continuation", "sync")
    ),
}
ANY_KEY_WORD = "|".join(f"{first}(?:{rest})" for first, rest in KEY_WORDS.items())
# The character before the first one is not part of a word (a lookbehind placed after it).
_BOUNDARY = r"(?<![A-Za-z0-9_].)"

# A quoted key may close with a quote (JSON, dict repr) or an escaped quote (JSON in a string,
# escaped once or more: the repr of such a string doubles the backslashes), then a bracket
# (os.environ['API_KEY'] = ...).
_KEY_END = r"""(?:\\*["'])?\]?"""
# key: value, key = value, key => value; no line breaks between key and value.
_SEPARATOR = r"[ \t]*(?:=>|[:=])[ \t]*"
# HTTP auth schemes stay visible before a redacted credential.
_SCHEME = r"(?:(?:bearer|basic|token|digest|negotiate|ntlm|bot)[ \t]+)?"
# Bare words that say a value is absent or present are not secrets ("token: yes").
_NOT_A_SECRET = r"(?!(?:null|none|true|false|yes|no)\b)"
# A value that is only an ellipsis or asterisks is a placeholder in an example or a value
# already masked ("client-secret": "…"), never a secret: it stays readable.
_PLACEHOLDER = r"(?:…|\.\.\.|\*{3,})"
# The value: a YAML block scalar ("password: |" and its indented lines), a flat list or tuple
# ("secret": ["a", "b"], 'auth': ('user', 'pw')), escaped-quoted,
# double-quoted, single-quoted (optionally b/r/u-prefixed), or bare.
# Quoted forms are written as unrolled loops ("[^"\\]*(?:\\.[^"\\]*)*"): an alternation per
# character would cost ten times more.
# A bare value ends at a line end or a delimiter (never at a quote it does not own, so a JSON
# line stays valid; a closing parenthesis at its end is left to the prose around it).
_VALUE = (
    r"(?P<s>"
    r"[|>][-+0-9]*[ \t]*(?:\r?\n[ \t]+[^\r\n]*)+"
    r"|\[[^\[\]\n]+\]|\([^()\n]*\)"
    rf'|\\+"(?!{_PLACEHOLDER}\\+")[^\\\n]*(?:\\+(?!")[^\\\n]*)*\\+"'
    rf'|[bru]{{0,2}}"(?!{_PLACEHOLDER}")[^"\\\n]*(?:\\.[^"\\\n]*)*"'
    rf"|[bru]{{0,2}}'(?!{_PLACEHOLDER}')[^'\\\n]*(?:\\.[^'\\\n]*)*'"
    rf"""|{_NOT_A_SECRET}(?!{_PLACEHOLDER}(?:[\s"',;]|$))[^\s"'&;,<>{{}}\[\]]"""
    r"""(?:[^\r\n"'&;,<>{}\[\]]*[^\s"'&;,<>{}\[\]\\)])?"""
    r")"
)
# A query-string or form-body value ends at white space.
_TIGHT_VALUE = rf"""(?P<s>{_NOT_A_SECRET}[^\s"'&;,<>{{}}\[\]\\]+)"""

# Lowercase 'bearer' is common in prose; it only counts before something key-like.
_KEYLIKE_AHEAD = r"(?=[A-Za-z0-9\-._~+/]*(?:[0-9+/=]|[a-z][A-Z]))"
_B64_TOKEN = r"[A-Za-z0-9\-._~+/]+=*"
# A value already replaced (after an optional scheme) is left alone: redaction is idempotent.
_NOT_DONE = rf"(?!{_SCHEME}\[redacted\])"
_PREFIXED = r"[A-Za-z0-9_.\-]{16,}"

_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_TIMESTAMP = re.compile(r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}T[0-9]{2}:?[0-9]{2}(?::?[0-9]{2})?Z?")
_DIGIT = re.compile("[0-9]")
_LETTER = re.compile("[A-Za-z]")
_HEX = re.compile(r"[0-9a-fA-F]+=*")
_SEPARATORS = re.compile(r"[/_~+=.-]+")
# A segment made of a word (lower, Capitalised, camelCase or UPPER) and a number is a name.
_WORDY = re.compile(
    r"[A-Za-z]?[a-z]*[0-9]*|[A-Z]+[0-9]*|[0-9]+[a-z]*|[A-Za-z][a-z]+(?:[A-Z][a-z]+)*[0-9]*"
)
# Segments this short are never judged: random keys have long segments between separators.
SHORT_SEGMENT = 8
OPAQUE_MIN_LENGTH = 40


def is_key_like(run: str) -> bool:
    """Decide whether a 40+ character run is an opaque key rather than a name or a path.

    Rules, in order: a run without both letters and digits is kept (words, ``x`` * 40); a
    hexadecimal run is a key (digests, hex keys); a run without separators is a key
    (base64, random alphanumerics); otherwise, after GUIDs and ISO timestamps are set
    aside, it is a key when one of its ``/ _ - + ~ .``-separated segments is longer than
    :data:`SHORT_SEGMENT` and is not a word-and-number (AWS secret keys, base64url).
    So file paths, URL paths with GUIDs, snake_case and kebab-case names and the toolkit's
    own timestamped file names are kept.

    Args:
        run: A run of ``[A-Za-z0-9+/_~.-]`` characters, at least 40 long.

    Returns:
        True when the run should be redacted.
    """
    if not (_DIGIT.search(run) and _LETTER.search(run)):
        return False
    if _HEX.fullmatch(run):
        return True
    if not _SEPARATORS.search(run.rstrip("=")):
        return not _WORDY.fullmatch(run)
    rest = _TIMESTAMP.sub("/", _UUID.sub("/", run))
    return any(
        len(segment) > SHORT_SEGMENT and not _WORDY.fullmatch(segment)
        for segment in _SEPARATORS.split(rest)
    )


@dataclass(frozen=True)
class Rule:
    """One redaction rule.

    Attributes:
        name: Short identifier, used in tests and group names.
        starts: The characters a match can start with; each becomes its own branch.
        rest: The pattern after that first character. The optional group ``(?P<s>...)`` is
            what gets hidden; without it the whole match is.
        check: Optional predicate on the whole match; a match it rejects is kept as it is.
    """

    name: str
    starts: str
    rest: str
    check: Callable[[str], bool] | None = None


def _key_rules() -> list[Rule]:
    """key: value, key = value, "key": "value", 'key': 'value', Name: value headers, YAML,
    connection strings (Password=...;), one rule per first letter of the key word, both cases.
    A bare value runs to the end of the line or a delimiter, so a value with spaces is
    hidden whole."""
    return [
        Rule(
            "key_value",
            first,
            rf"(?:{rest}){_KEY_END}{_SEPARATOR}{_NOT_DONE}{_SCHEME}{_VALUE}",
        )
        for first, rest in KEY_WORDS.items()
    ]


# KEYED_RULES are matched against the ASCII-lowercased text (so every branch has one first
# character and no case-insensitive matching) and cut from the original. One of these words
# appears in any text they can match: a text without any of them skips the family.
KEYED_TRIGGERS = ("pass", "secret", "token", "key", "auth", "pwd", "sig", "cookie", "credential")

KEYED_RULES: tuple[Rule, ...] = (
    # PEM private keys, multi-line; a block cut short (no END line) is hidden to the end.
    Rule(
        "pem",
        "-",
        r"----begin[a-z0-9 ]*private key[a-z ]*-----(?P<s>[\s\S]*?)"
        r"(?=-----end[a-z0-9 ]*private key[a-z ]*-----|\Z)",
    ),
    # Query strings and form bodies (?key=v&key=v): values there cannot hold white space.
    Rule("query", "?&", rf"[\w.~%$-]*?(?:{ANY_KEY_WORD})={_TIGHT_VALUE}"),
    # A parameter named just "key" in a query string is an API key (Google, Bing Maps ...).
    Rule("query_key", "?&", rf"key={_TIGHT_VALUE}"),
    *_key_rules(),
    # --password value on a command line; <password>value</password> in XML.
    Rule("cli_flag", "-", rf"-[\w-]*?(?:{ANY_KEY_WORD})[ \t]+(?P<s>[^\s\"']+)"),
    Rule("xml", "<", rf"[\w.:-]*?(?:{ANY_KEY_WORD})(?:\s[^>]*)?>(?P<s>[^<]+)"),
)

# 'Bearer' followed by one plain word of this length or less ("Bearer tokens are cached") is
# prose, not a credential; anything else after it (digits, symbols, mixed case, a longer
# run) is hidden.
PROSE_WORD_MAX = 15
_PROSE_WORD = re.compile(rf"[A-Za-z][a-z]{{0,{PROSE_WORD_MAX - 1}}}\.?")


def _credential_after_scheme(match: str) -> bool:
    """True unless the text after the auth scheme is a single plain word (prose)."""
    return _PROSE_WORD.fullmatch(match.split(None, 1)[-1]) is None


# HTTP authorisation schemes, matched in the original case: lowercase 'bearer' and 'Basic'
# are common in prose, so they count only before something key-like; 'Bearer' before
# anything but a plain word.
AUTH_TRIGGERS = ("bearer", "basic")
AUTH_RULES: tuple[Rule, ...] = (
    Rule(
        "bearer",
        "B",
        rf"{_BOUNDARY}(?:earer|EARER)[ \t]+(?P<s>{_B64_TOKEN})",
        _credential_after_scheme,
    ),
    Rule(
        "basic",
        "Bb",
        rf"{_BOUNDARY}(?:earer|asic|ASIC)[ \t]+{_KEYLIKE_AHEAD}(?P<s>{_B64_TOKEN})",
    ),
)


def _has_letter_and_digit(match: str) -> bool:
    """True when ``match`` holds both a letter and a digit (a token, not a user name)."""
    return bool(_DIGIT.search(match) and _LETTER.search(match))


# Rules for texts that hold a URL with an "@", or a Slack webhook.
URL_WEBHOOK_TRIGGER = "hooks.slack.com"
URL_RULES: tuple[Rule, ...] = (
    # Credentials in URLs: scheme://user:password@host keeps the user.
    Rule("url_userinfo", ":", r"//[^\s:/@?#]*:(?P<s>[^\s/?#@]+(?:@[^\s/?#@]+)*)@"),
    # A token used as the whole user info (https://<token>@github.com/...).
    Rule("url_token_user", ":", r"//(?P<s>[A-Za-z0-9_.~-]{20,})@", _has_letter_and_digit),
    Rule("slack_webhook", "h", r"ooks\.slack\.com/services/(?P<s>[A-Za-z0-9/_-]+)"),
)

# Every TOKEN_RULES match lies inside a run of at least this many [A-Za-z0-9_.-] characters;
# the family runs only over such runs.
TOKEN_MIN_RUN = 20
TOKEN_RULES: tuple[Rule, ...] = (
    # JSON Web Tokens (JWS and JWE; unsigned ones too).
    Rule(
        "jwt",
        "e",
        rf"{_BOUNDARY}y[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]*"
        r"(?:\.[A-Za-z0-9_-]*){0,2}",
    ),
    # Well-known token prefixes: GitHub, GitLab, npm, PyPI, Hugging Face, Shopify,
    # DigitalOcean, Stripe, SendGrid, Slack.
    Rule("github", "g", rf"{_BOUNDARY}(?:h[pousr]_|ithub_pat_|lpat-|lptt-|ldt-){_PREFIXED}"),
    Rule("npm", "n", rf"{_BOUNDARY}pm_{_PREFIXED}"),
    Rule("pypi", "p", rf"{_BOUNDARY}ypi-{_PREFIXED}"),
    Rule("huggingface", "h", rf"{_BOUNDARY}f_{_PREFIXED}"),
    Rule("shopify_stripe", "s", rf"{_BOUNDARY}(?:hp(?:at|ca|pa|ss)_|k_(?:live|test)_){_PREFIXED}"),
    Rule("stripe_restricted", "r", rf"{_BOUNDARY}k_(?:live|test)_{_PREFIXED}"),
    Rule("digitalocean", "d", rf"{_BOUNDARY}o[opr]_v1_{_PREFIXED}"),
    Rule("sendgrid", "S", rf"{_BOUNDARY}G\.{_PREFIXED}"),
    Rule("slack", "x", rf"{_BOUNDARY}(?:ox[a-z]-|app-)[A-Za-z0-9-]{{10,}}"),
    # OpenAI / Anthropic style sk-... and sk-proj-... keys.
    Rule("sk", "s", rf"{_BOUNDARY}k-[A-Za-z0-9_-]{{16,}}"),
    Rule("google", "A", rf"{_BOUNDARY}Iza[0-9A-Za-z_-]{{30,}}"),
    # AWS access key ids (secret keys are caught by the opaque rule or by their key name).
    Rule(
        "aws_id",
        "A",
        rf"{_BOUNDARY}(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA)[A-Z0-9]{{16}}"
        r"(?![A-Za-z0-9])",
    ),
)


@dataclass(frozen=True)
class CompiledRules:
    """The combined alternation and, per group name, its rule and secret group."""

    regex: re.Pattern[str]
    rules: dict[str, tuple[Rule, str | None]]


def compile_rules(rules: tuple[Rule, ...]) -> CompiledRules:
    """Join ``rules`` into one compiled alternation, one branch per first character.

    The result reads ``p(?:(?P<r0>...)|(?P<r5>...))|s(?:...)|...``: each rule's pattern is
    wrapped in a group ``rN`` (its ``s`` group renamed ``rN_s``); that group closes last, so
    ``match.lastgroup`` names the rule that matched. Rules sharing a first character keep
    their order, and the earliest wins when two match at the same position.

    Args:
        rules: The rules.

    Returns:
        The compiled alternation with its lookup table.
    """
    by_first: dict[str, list[str]] = {}
    table: dict[str, tuple[Rule, str | None]] = {}
    counter = 0
    for rule in rules:
        for first in dict.fromkeys(rule.starts):
            name = f"r{counter}"
            counter += 1
            body = rule.rest.replace("(?P<s>", f"(?P<{name}_s>")
            table[name] = (rule, f"{name}_s" if body != rule.rest else None)
            by_first.setdefault(first, []).append(f"(?P<{name}>{body})")
    branches = [f"{re.escape(first)}(?:{'|'.join(bodies)})" for first, bodies in by_first.items()]
    return CompiledRules(re.compile("|".join(branches)), table)
