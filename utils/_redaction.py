"""Hide secrets in text: registered values first, then secret-shaped patterns.

Stages, each at most one scan of the text:

1. **Registered values** (:func:`register_secret`), one compiled alternation: every secret
   loaded from the secrets file and every token acquired is replaced wherever it appears,
   whatever surrounds it. Besides the raw value, its URL-encoded forms
   (``quote``/``quote_plus``) and its JSON-escaped forms (as it appears inside a JSON
   string, ASCII-escaped or not) are replaced too, because a secret often reaches a log
   inside a query string or a JSON body. Values shorter than :data:`MIN_SECRET_LENGTH`
   characters are ignored: replacing ``"abc"`` everywhere would wreck the log and protect
   nothing.
2. **Patterns** (:mod:`utils._redaction_patterns`), in families of one compiled alternation
   each, that run only when their cheap trigger is in the text: key/value pairs in every
   assignment syntax, PEM blocks, command-line flags and HTTP credentials (a key word such
   as ``pass``, ``secret``, ``token``, ``key`` appears); credentials and webhooks in URLs
   (``://`` and ``@``, or ``webhook``, appear); a few shapes with a character of their own
   (Azure AD secrets' ``Q~``, Telegram's ``:A``, Mailchimp's ``-us``). The key of a
   key/value pair stays visible and only the value is hidden
   (``"password": "[REDACTED]"``), so logs stay readable.
3. **Token runs**: over runs of :data:`~utils._redaction_patterns.TOKEN_MIN_RUN`+ token
   characters, the documented token shapes of widely used services and JWTs; a run no shape
   matches is still hidden when it looks random and the key it is assigned to names a
   service or a credential (``TWILIO=...``, ``accessId = "..."``).
4. **Opaque keys**: any run of 40+ key characters (base64, base64url, random alphanumerics,
   Azure-style secrets, a key split by ``=``, ``:``, ``|`` or ``@``) that
   :func:`utils._redaction_patterns.is_key_like` judges a key rather than a path, a name or a
   hexadecimal digest, found by a byte-level substring search.

A line with nothing secret-shaped in it therefore costs a handful of C-level scans.

:func:`redact` never raises. If anything inside it fails, it returns :data:`REDACTION_FAILED`
instead of the text: a log line is lost, never a secret leaked.

Example:
    >>> register_secret("s3cr3t-value")
    >>> redact("connecting with s3cr3t-value")
    'connecting with [REDACTED]'
    >>> redact('{"client_secret": "abc"}')
    '{"client_secret": "[REDACTED]"}'
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

from utils._redaction_patterns import (
    ANY_KEY_WORD,
    AUTH_RULES,
    AUTH_TRIGGERS,
    KEYED_RULES,
    KEYED_TRIGGERS,
    OPAQUE_MIN_LENGTH,
    SPACED_KEY,
    TOKEN_MIN_RUN,
    TOKEN_RULES,
    TRIGGERED,
    URL_RULES,
    URL_TRIGGER,
    VENDOR_KEY,
    CompiledRules,
    compile_rules,
    is_key_like,
    key_before,
    looks_random,
)

REDACTED = "[REDACTED]"
REDACTION_FAILED = "[REDACTION FAILED: log text withheld]"
MIN_SECRET_LENGTH = 4

# The quote a redacted value keeps, so '"x"' becomes '"[REDACTED]"' (and '\\"x\\"' keeps its
# escaped quotes, however many backslashes escape them).
_QUOTE_MARK = re.compile(r"""\\*["'`]""")

_lock = threading.Lock()
_secrets: set[str] = set()
# Swapped as a whole under the lock; readers use whatever object they see, without locking.
_secret_regex: re.Pattern[str] | None = None
_SECRET_KEY_NAME = re.compile(rf"[\w .-]*?(?i:{ANY_KEY_WORD})")
_AUTH_TRIGGER = re.compile("|".join(AUTH_TRIGGERS))
# The pattern families are compiled at their first use: the key/value family alone takes
# ~35 ms, which a run (or a --help) whose log never holds a key word does not pay.
_FAMILY_RULES = {"keyed": KEYED_RULES, "auth": AUTH_RULES, "url": URL_RULES, "tokens": TOKEN_RULES}
_families: dict[str, CompiledRules] = {}


def _family(name: str) -> CompiledRules:
    """The compiled alternation of one pattern family (compiled once, at its first use)."""
    compiled = _families.get(name)
    if compiled is None:  # two threads may both compile it: the same result, either kept
        compiled = _families[name] = compile_rules(_FAMILY_RULES[name])
    return compiled


# Long runs of key characters are found on byte images of the text in which every such
# character is "k" and everything else a space: a C-level substring search finds a run much
# faster than a regular expression (non-ASCII characters become "?" first, so indexes align).
_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_OPAQUE_TABLE = bytes(ord("k") if i in _ALNUM + b"+/_~.-=:|@" else ord(" ") for i in range(256))
_OPAQUE_RUN = b"k" * OPAQUE_MIN_LENGTH
_TOKEN_TABLE = bytes(ord("k") if i in _ALNUM + b"_.~-" else ord(" ") for i in range(256))
_TOKEN_RUN = b"k" * TOKEN_MIN_RUN
# Every token shape is at least this long but for Slack's legacy xoxa-/xoxr- tokens: shorter
# runs are only candidates for key-named values.
_SHORT_TOKEN_RUN = 20
_SHORT_TOKEN_PREFIX = "xox"
# A GUID alone is the commonest long run in API logs (record ids in URLs); it is no token.
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_GUID_LENGTH = 36
_DIGIT = re.compile("[0-9]")
# Runs judged NOT to be keys (paths, names: never secrets) are remembered, since logs repeat
# them; the memory is bounded and starts over when full. Keys are never remembered.
_NOT_KEYS: set[str] = set()
_NOT_KEYS_MAX = 4096
# Likewise runs in which no token shape was found (host names, file names, URL paths).
_NO_TOKENS: set[str] = set()
# What a value assigned to a key follows: an operator, a quote, white space or '>'.
_VALUE_OPENERS = frozenset(" \t'\"`\\=:>,|")


def _forms(value: str) -> set[str]:
    """Return ``value`` and the encoded forms it takes in URLs and JSON strings."""
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def is_secret_key(name: str) -> bool:
    """Return True when a field or key called ``name`` holds a secret (``password``,
    ``client_secret``, ``X-Api-Key``, ``_az_token`` ...), by the same key words as the
    patterns; ``token_count`` and ``tokens_acquired`` are not secret names.

    Args:
        name: A field name.
    """
    try:
        return _SECRET_KEY_NAME.fullmatch(name) is not None
    except Exception:  # a non-string name: treat as not secret, its value is still redacted
        return False


def register_secret(value: str) -> None:
    """Register a secret value so that :func:`redact` replaces it wherever it appears.

    Values shorter than :data:`MIN_SECRET_LENGTH` characters, ``None`` and empty strings are
    ignored. A ``Bearer `` prefix is not stripped: register the raw token. Non-string values
    (a numeric PIN read from JSON) are registered as their ``str()``. A value with white
    space around it is registered both as given and stripped (code that uses the secret
    usually strips it).

    Args:
        value: The secret.
    """
    global _secret_regex
    if value is None:
        return
    text = value if isinstance(value, str) else str(value)
    if len(text.strip()) < MIN_SECRET_LENGTH:
        return
    with _lock:
        new = (_forms(text) | _forms(text.strip())) - _secrets
        if not new:
            return
        _secrets.update(new)
        # Longest first, so a secret that contains another is hidden whole.
        ordered = sorted(_secrets, key=lambda s: (-len(s), s))
        _secret_regex = re.compile("|".join(map(re.escape, ordered)))


def clear_registered_secrets() -> None:
    """Forget every registered value (for tests)."""
    global _secret_regex
    with _lock:
        _secrets.clear()
        _secret_regex = None


def registered_count() -> int:
    """Return how many forms of registered values are replaced (for diagnostics and tests)."""
    with _lock:
        return len(_secrets)


def _apply_rules(
    rules: CompiledRules,
    text: str,
    pos: int = 0,
    endpos: int | None = None,
    haystack: str | None = None,
) -> str:
    """Run one family's combined pattern over ``text[pos:endpos]``, replacing what it matches.

    Lookbehinds still see the characters before ``pos``. A match that its rule's check
    rejects is kept, and the scan resumes one character after its start, so that nothing
    inside it escapes the other rules. When ``haystack`` is given (a lowercased copy of
    ``text`` with the same indexes) the pattern runs on it and the spans are cut from
    ``text``.
    """
    end_at = len(text) if endpos is None else endpos
    search = rules.regex.search
    hay = text if haystack is None else haystack
    match = search(hay, pos, end_at)
    if match is None:
        return text
    out: list[str] = []
    last = 0
    while match is not None:
        name = match.lastgroup
        rule, secret_group = rules.rules[name] if name else (None, None)
        start, end = match.span()
        if rule is None or (rule.check is not None and not rule.check(text, match)):
            match = search(hay, start + 1, end_at)
            continue
        if secret_group is None:
            out.append(text[last:start])
            out.append(REDACTED)
        else:
            s_start, s_end = match.span(secret_group)
            value = text[s_start:s_end]
            found = _QUOTE_MARK.match(value)
            quote_mark = found.group() if found else ""
            if quote_mark and not (len(value) > len(quote_mark) and value.endswith(quote_mark)):
                quote_mark = ""
            out.append(text[last:s_start])
            out.append(f"{quote_mark}{REDACTED}{quote_mark}")
            out.append(text[s_end:end])
        last = end
        match = search(hay, end if end > start else end + 1, end_at)
    out.append(text[last:])
    return "".join(out)


def _keyed_value(text: str, start: int) -> bool:
    """True when the random-looking run at ``start`` is the value of a key that names a
    service or a credential (``TWILIO=...``, ``"sumo_access_id": "..."``), or follows a
    secret word after white space only (``signing key 9f86...``)."""
    found = key_before(text, start)
    if found is None:
        return False
    name, spaced = found
    if spaced:
        return SPACED_KEY.search(name.lower()) is not None
    return VENDOR_KEY.search(name.lower()) is not None


def _apply_tokens(text: str, ascii_text: bytes) -> str:
    """Run the token family over each run of ``TOKEN_MIN_RUN``+ token characters (right to
    left, so earlier indexes stay valid while later runs are replaced); a run no token shape
    matches is still hidden when it looks random and a key names it as a credential. A run
    that is just a GUID is skipped."""
    image = ascii_text.translate(_TOKEN_TABLE)
    spans = []
    start = image.find(_TOKEN_RUN)
    while start >= 0:
        end = image.find(b" ", start)
        if end < 0:
            end = len(image)
        if not (end - start == _GUID_LENGTH and _GUID.fullmatch(text, start, end)):
            spans.append((start, end))
        start = image.find(_TOKEN_RUN, end)
    for start, end in reversed(spans):
        if end - start >= _SHORT_TOKEN_RUN or text.startswith(_SHORT_TOKEN_PREFIX, start):
            run = text[start:end]
            if run not in _NO_TOKENS:
                redacted = _apply_rules(_family("tokens"), text, start, end)
                if redacted is not text:
                    text = redacted
                    continue
                if len(_NO_TOKENS) >= _NOT_KEYS_MAX:
                    _NO_TOKENS.clear()
                _NO_TOKENS.add(run)
        while end > start and text[end - 1] in "._-":  # trailing punctuation is prose
            end -= 1
        if (
            end - start >= TOKEN_MIN_RUN
            and start > 0
            and text[start - 1] in _VALUE_OPENERS
            and _DIGIT.search(text, start, end) is not None
            and _keyed_value(text, start)
            and looks_random(text[start:end])
        ):
            text = f"{text[:start]}{REDACTED}{text[end:]}"
    return text


# In a long run joined by '=', ':', '@' or '|', a leading name (key=, user@, https:) stays
# visible when it is a plain name and what follows it is the key.
_RUN_PREFIX = re.compile(r"(?:[A-Za-z][A-Za-z0-9_.-]*[=:@|]+)+")


def _apply_opaque(text: str, ascii_text: bytes) -> str:
    """Replace every run of 40+ key characters that :func:`is_key_like` judges a key.

    Base64 padding (``=``) after a run is hidden with it; a leading ``name=`` or ``user@``
    stays when the rest is the key.
    """
    image = ascii_text.translate(_OPAQUE_TABLE)
    start = image.find(_OPAQUE_RUN)
    if start < 0:
        return text
    out: list[str] = []
    last = 0
    size = len(text)
    while start >= 0:
        end = image.find(b" ", start)
        if end < 0:
            end = size
        stop = end
        while end > start and text[end - 1] in ".:|@":  # a sentence's stop is not the key's
            end -= 1
        run = text[start:end]
        if run not in _NOT_KEYS:
            if is_key_like(run):
                prefix = _RUN_PREFIX.match(run)
                if (
                    prefix is not None
                    and not is_key_like(prefix.group())
                    and is_key_like(run[prefix.end() :])
                ):
                    start += prefix.end()
                out.append(text[last:start])
                out.append(REDACTED)
                last = end
            else:
                if len(_NOT_KEYS) >= _NOT_KEYS_MAX:
                    _NOT_KEYS.clear()
                _NOT_KEYS.add(run)
        start = image.find(_OPAQUE_RUN, max(end, stop))
    out.append(text[last:])
    return "".join(out)


def _has_key_word(lowered: str) -> bool:
    """True when one of :data:`KEYED_TRIGGERS` is in ``lowered``.

    Plain substring checks in a loop: a regular expression or ``any()`` over a generator
    costs about twice as much, on every record.
    """
    for word in KEYED_TRIGGERS:  # noqa: SIM110
        if word in lowered:
            return True
    return False


def _lower_ascii(text: str) -> str:
    """Lowercase ``text`` keeping every index (``str.lower`` can lengthen some letters)."""
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = text.encode("ascii", "replace").lower().decode("ascii")
    return lowered


def _apply_patterns(text: str) -> str:
    """Run every pattern family whose trigger is present; a plain text costs a few scans."""
    lowered = _lower_ascii(text)
    if _has_key_word(lowered):
        redacted = _apply_rules(_family("keyed"), text, haystack=lowered)
        if redacted is not text:
            text, lowered = redacted, _lower_ascii(redacted)
    if _AUTH_TRIGGER.search(lowered):
        text = _apply_rules(_family("auth"), text)
    if ("@" in text and "://" in text) or URL_TRIGGER in text:
        text = _apply_rules(_family("url"), text)
    for trigger, regex in TRIGGERED:
        if trigger in text:
            text = regex.sub(REDACTED, text)
    ascii_text = text.encode("ascii", "replace")
    redacted = _apply_tokens(text, ascii_text)
    if redacted is not text:
        text, ascii_text = redacted, redacted.encode("ascii", "replace")
    return _apply_opaque(text, ascii_text)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and secret-shaped value replaced.

    Never raises: on any internal failure it returns :data:`REDACTION_FAILED`, never ``text``.
    A non-string argument is converted with ``str()`` first (a failing ``__str__`` yields the
    placeholder too).

    Args:
        text: Any text, typically a fully formatted log line.

    Returns:
        The text with secrets replaced by :data:`REDACTED`.
    """
    try:
        if not isinstance(text, str):
            text = str(text)
        secret_regex = _secret_regex
        if secret_regex is not None:
            text = secret_regex.sub(REDACTED, text)
        return _apply_patterns(text)
    except Exception:  # never let logging take a batch job down, never leak on failure
        return REDACTION_FAILED


SECRET_PARAM = re.compile(
    r"_*([a-z_-]*(password|passwd|pwd|secret|token|api[-_]?key|apikey|signature|credential)"
    r"|key|sig|code|auth)",
    re.IGNORECASE,
)
"""Query parameter names whose values are treated as secrets in URLs we log or report."""


def _safe_param(part: str) -> str:
    name = part.split("=", 1)[0]
    return f"{name}={REDACTED}" if SECRET_PARAM.fullmatch(unquote(name)) else part


def safe_url(url: str, *, query: bool = True) -> str:
    """Return ``url`` fit for logs and errors: no ``user:password@``, secret params redacted.

    The one rule for every URL the toolkit shows (API calls, token endpoints, next links).

    Args:
        url: Any URL (absolute or not).
        query: Keep the query (secret values redacted); False drops it whole (a token
            endpoint's URL is shown without one).

    Example:
        >>> safe_url("https://u:p@api.example.com/x?api_key=abc&top=5")
        'https://api.example.com/x?api_key=[REDACTED]&top=5'
        >>> safe_url("https://login.example.com/t/token?code=x", query=False)
        'https://login.example.com/t/token'
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        kept = "&".join(_safe_param(p) for p in parts.query.split("&") if p) if query else ""
        return redact(urlunsplit((parts.scheme, netloc, parts.path, kept, "")))
    except ValueError:
        return REDACTED
