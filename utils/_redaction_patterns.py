"""Secret-shaped patterns behind :mod:`utils._redaction`, in families of one alternation each.

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
:func:`utils._redaction._apply_opaque`) and judged by :func:`is_key_like`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Key names that mark the value beside them as secret, by first letter (lowercase: the key
# rules run on a lowercased copy of the text, so they match any case).
# A key ENDING in one of these words is secret too (client_secret, clientSecret, az-token,
# DB_PASSWORD, x-api-key): the match starts at the word, so any prefix is allowed, while
# anything after it is not, except the suffixes of _KEY_SUFFIX (access_token1, secret_value):
# token_count, tokens_acquired and secretary stay readable. Pagination cursors
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
    "c": rf"lient{_SEP_OPT}key|redentials?|reds|ookie",
    "a": rf"(?:uth|pp|pi|ccount){_SEP_OPT}key|ccess{_SEP_OPT}(?:key|signature)|uthorization"
    rf"|uth{_WHOLE_KEY_4}",
    "t": "oken"
    + "".join(
        f"(?<!{word}token)" for word in ("skip", "delta", "page", "next", "continuation", "sync")
    ),
}
ANY_KEY_WORD = "|".join(f"{first}(?:{rest})" for first, rest in KEY_WORDS.items())
# What may follow the secret word and still name the same secret: a number (access_token1)
# or a word saying which form the value takes (secret_value, tokenString, password_b64).
_KEY_SUFFIX = (
    r"(?:[_.-]?(?:[0-9]{1,3}|value|val|str|string|text|b64|base64|hex|raw|enc|encoded"
    r"|plain(?:text)?|cleartext|data))?"
)
# The character before the first one is not part of a word (a lookbehind placed after it).
_BOUNDARY = r"(?<![A-Za-z0-9_].)"

# A quoted key may close with a quote (JSON, dict repr) or an escaped quote (JSON in a string,
# escaped once or more: the repr of such a string doubles the backslashes), then a bracket
# (os.environ['API_KEY'] = ...); an XML attribute pair follows with ' value'
# (<add key="Password" value="..."/>).
_KEY_END = r"""(?:\\*["'])?\]?(?:[ \t]+value)?"""
# A type between the name and the operator: var apiToken string = "...", token: String = ...
_TYPE = r"(?:[ \t]*:?[ \t]+(?:string|str|bytes|\[\]byte|securestring|char[ \t]*\*?))?"
# key: value, key = value, key => value, and the assignment operators of Go (:=), Make
# (::=, :::=, ?=, +=), PHP (.=) and shells (||); no line breaks between key and value.
_SEPARATOR = r"[ \t]*(?:=>|:{1,3}=|[?.+]=|\|\||[:=])[ \t]*"
# A quoted key followed by a comma and a quoted value is a call's argument pair:
# setProperty("X_TOKEN", "..."), headers.set('Authorization', '...'); a CSV row holds
# KEY,value, with no space.
_ARGUMENT = r"""\\*["'][ \t]*,[ \t]*(?=\\*["'`])|,(?=[^\s,"']{8,},)"""
# HTTP auth schemes stay visible before a redacted credential.
_SCHEME = r"(?:(?:bearer|basic|token|digest|negotiate|ntlm|bot)[ \t]+)?"
# Bare words that say a value is absent or present are not secrets ("token: yes").
_NOT_A_SECRET = r"(?!(?:null|none|true|false|yes|no)\b)"
# A value that is only an ellipsis or asterisks is a placeholder in an example or a value
# already masked ("client-secret": "…"), never a secret: it stays readable.
_PLACEHOLDER = r"(?:…|\.\.\.|\*{3,})"
# The value: a YAML block scalar ("password: |" and its indented lines), a flat list or tuple
# ("secret": ["a", "b"], 'auth': ('user', 'pw')), escaped-quoted (\"v\" or \'v\', as
# in the repr of a repr), double-quoted, single-quoted (optionally b/r/u-prefixed),
# back-quoted (Go raw strings), or bare.
# Quoted forms are written as unrolled loops ("[^"\\]*(?:\\.[^"\\]*)*"): an alternation per
# character would cost ten times more.
# A bare value ends at a line end or a delimiter (never at a quote it does not own, so a JSON
# line stays valid; a closing parenthesis at its end is left to the prose around it).
_VALUE = (
    r"(?P<s>"
    r"[|>][-+0-9]*[ \t]*(?:\r?\n[ \t]+[^\r\n]*)+"
    r"|\[[^\[\]\n]+\]|\([^()\n]*\)"
    rf'|\\+"(?!{_PLACEHOLDER}\\+")[^\\\n]*(?:\\+(?!")[^\\\n]*)*\\+"'
    rf"|\\+'(?!{_PLACEHOLDER}\\+')[^\\\n]*(?:\\+(?!')[^\\\n]*)*\\+'"
    r"|`[^`\n]*`"
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

_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_TIMESTAMP = re.compile(r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}T[0-9]{2}:?[0-9]{2}(?::?[0-9]{2})?Z?")
_DIGIT = re.compile("[0-9]")
_LETTER = re.compile("[A-Za-z]")
# Hexadecimal runs are digests (SHA-1/SHA-256 checksums, sha256: image digests, git commit
# ids), never judged keys on their own: a hex key is found by its name or its prefix.
_HEX = re.compile(r"[0-9a-fA-F]+=*")
_SEPARATORS = re.compile(r"[/_~+=.:|@-]+")
# A segment made of a word (lower, Capitalised, camelCase or UPPER) and a number is a name.
_WORDY = re.compile(
    r"[A-Za-z]?[a-z]*[0-9]*|[A-Z]+[0-9]*|[0-9]+[a-z]*|[A-Za-z][a-z]+(?:[A-Z][a-z]+)*[0-9]*"
)
# Segments this short are never judged: random keys have long segments between separators.
SHORT_SEGMENT = 8
OPAQUE_MIN_LENGTH = 40


def _random_segment(segment: str) -> bool:
    """True for a segment longer than :data:`SHORT_SEGMENT` that is no word, number or hex."""
    return (
        len(segment) > SHORT_SEGMENT
        and not _WORDY.fullmatch(segment)
        and not _HEX.fullmatch(segment)
    )


def is_key_like(run: str) -> bool:
    """Decide whether a 40+ character run is an opaque key rather than a name, path or digest.

    Rules, in order: a run without both letters and digits is kept (words, ``x`` * 40); a
    hexadecimal run is kept (a digest: SHA-1/SHA-256, git commit ids); then, after GUIDs and
    ISO timestamps are set aside, it is a key when one of its ``/ _ - + ~ . = : | @``-separated
    segments is longer than :data:`SHORT_SEGMENT` and is neither a word-and-number nor hex
    (base64, random alphanumerics, AWS secret keys, a key split by ``:`` or ``|``).
    So file paths, URL paths with GUIDs, snake_case and kebab-case names, ``sha256:``
    digests and the toolkit's own timestamped file names are kept.

    Args:
        run: A run of ``[A-Za-z0-9+/_~.=:|@-]`` characters, at least 40 long.

    Returns:
        True when the run should be redacted.
    """
    if not (_DIGIT.search(run) and _LETTER.search(run)):
        return False
    if _HEX.fullmatch(run):
        return False
    rest = _TIMESTAMP.sub("/", _UUID.sub("/", run))
    return any(_random_segment(segment) for segment in _SEPARATORS.split(rest))


# A value given to a key that names a vendor or a credential (below) is hidden when it looks
# random: at least this long, letters and digits, not a GUID, timestamp or name.
SHORT_KEY_MIN = 12


def looks_random(value: str) -> bool:
    """True when ``value`` (a run of ``[A-Za-z0-9_.-]``) looks like generated key material.

    Hex counts here (the key's name says what it is), GUIDs and timestamps do not.

    Args:
        value: The candidate value.
    """
    if len(value) < SHORT_KEY_MIN or not (_DIGIT.search(value) and _LETTER.search(value)):
        return False
    if _UUID.fullmatch(value) or _TIMESTAMP.match(value):
        return False
    return any(
        len(segment) > SHORT_SEGMENT and not _WORDY.fullmatch(segment)
        for segment in _SEPARATORS.split(value)
    )


# Names of the services a batch integration meets, and the generic words of the secret
# scanners' key rules: a random-looking value assigned to a key holding one of them is a
# credential (STRIPE=..., "twilio": "SK...", sumo_access_id = "su...").
VENDOR_KEY = re.compile(
    "adafruit|adobe|airtable|algolia|alibaba|anthropic|artifactory|asana|atlassian|auth0"
    "|azure|bitbucket|bittrex|cloudflare|codecov|cohere|coinbase|confluen|contentful"
    "|databricks|datadog|discord|doppler|drone|dropbox|dynatrace|etsy|facebook|fastly"
    "|finicity|finnhub|flickr|freshbooks|github|gitlab|gitter|gocardless|grafana|heroku"
    "|hubspot|huggingface|intercom|jfrog|jira|kraken|kucoin|launchdarkly|linear|linked.?in"
    "|mailchimp|mailgun|mapbox|mattermost|message.?bird|meraki|netlify|new.?relic|notion"
    "|npm|okta|openai|pagerduty|plaid|postman|pulumi|pypi|rapidapi|sendbird|sendgrid"
    "|sentry|shopify|slack|snyk|sonar|square|stripe|sumo|telegr|travis|twilio|twitch"
    "|twitter|typeform|vault|yandex|zendesk|access|auth|passw|pwd|cred|secret"
)
# A key directly followed by white space and a random value, in prose ("signing key 9f86...").
SPACED_KEY = re.compile(r"(?:key|secret|token|password|credential)$")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-$")
# Assignment operators by their last character: := ::= :::= ?= .= += => || = : > ,
_OPERATOR_ENDS = frozenset("=:>|,")
_KEY_LOOKBACK = 80


def key_before(text: str, start: int) -> tuple[str, bool] | None:
    """Return the name of the key that ``text[start:]`` is assigned to, read backwards.

    Recognised: ``key = v``, ``key: v``, ``"key": "v"``, ``key := v`` (and ``::=``,
    ``?=``, ``.=``, ``+=``, ``=>``, ``||``), ``<key>v``, ``key,v`` and ``key v`` (white
    space only).

    Args:
        text: The text.
        start: Where the value starts.

    Returns:
        ``(name, spaced)`` (``spaced`` when only white space separates them), or None.
    """
    low = max(0, start - _KEY_LOOKBACK)
    i = start
    while i > low and start - i < 5 and text[i - 1] in " \t'\"`\\":
        i -= 1
    if i <= low:
        return None
    last = text[i - 1]
    spaced = False
    if last in _OPERATOR_ENDS:
        i -= 1
        if (last == "|" and text[i - 1 : i] == "|") or (
            last in "=>" and i > low and text[i - 1] in "=:?.+"
        ):
            i -= 1
        while i > low and text[i - 1] == ":":
            i -= 1
        stop = i - 4
        while i > low and i > stop and text[i - 1] in " \t'\"]\\":
            i -= 1
    elif i < start and last in _KEY_CHARS:
        spaced = True
    else:
        return None
    end = i
    while i > low and text[i - 1] in _KEY_CHARS:
        i -= 1
    return (text[i:end], spaced) if i < end else None


@dataclass(frozen=True)
class Rule:
    """One redaction rule.

    Attributes:
        name: Short identifier, used in tests and group names.
        starts: The characters a match can start with; each becomes its own branch.
        rest: The pattern after that first character. The optional group ``(?P<s>...)`` is
            what gets hidden; without it the whole match is.
        check: Optional predicate on the original text and the match (on the text the
            family scans, which has the same indexes); a match it rejects is kept as it is.
    """

    name: str
    starts: str
    rest: str
    check: Callable[[str, re.Match[str]], bool] | None = None


def _key_rules() -> list[Rule]:
    """key: value, key = value, "key": "value", 'key': 'value', Name: value headers, YAML,
    connection strings (Password=...;), assignments and call arguments, one rule per first
    letter of the key word. A bare value runs to the end of the line or a delimiter, so a
    value with spaces is hidden whole."""
    return [
        Rule(
            "key_value",
            first,
            rf"(?:{rest}){_KEY_SUFFIX}(?:{_KEY_END}{_TYPE}{_SEPARATOR}|{_ARGUMENT})"
            rf"{_NOT_DONE}{_SCHEME}{_VALUE}",
        )
        for first, rest in KEY_WORDS.items()
    ]


# A name ending in 'key' is secret (STRIPE_KEY, stripeKey, license-key) unless the word
# before it says it is a database, cache or request key.
_PLAIN_KEY_WORDS = (
    "primary foreign partition sort row range cache idempotency public pub hash lookup"
    " dedup dedupe group routing object natural composite unique index idx schema sequence"
    " bucket entity record item map message translation i18n lock state s3 file blob"
    " cursor shard join match dict table field column attribute attr config setting"
    " settings tag label metric event request correlation trace param query header parent"
    " child page continuation resume upload download hot surrogate business candidate sso"
)
_PLAIN_KEYS = frozenset(_PLAIN_KEY_WORDS.split())
_KEY_OWNER = re.compile(r"([A-Za-z0-9]*?)[_.-]?$")
_PLAIN_VALUE = re.compile(r"""[\\"'`]*(?:[A-Za-z]+(?:[ _.-][A-Za-z]+)*|[0-9]{1,6})?[\\"'`]*""")


def _secret_key_ending(text: str, match: re.Match[str]) -> bool:
    """Check a ``...key = value`` match: 'key' ends a longer name (after ``_``, ``-`` or
    ``.``, or as the capitalised end of camelCase), the name is not one of
    :data:`_PLAIN_KEYS`, and the value is not a plain word or a small number."""
    start = match.start()
    before = text[max(0, start - 30) : start]
    if not before:
        return False
    if before[-1] not in "_-." and not (text[start] == "K" and before[-1].isalnum()):
        return False
    owner = _KEY_OWNER.search(before)
    if owner is not None and owner.group(1).lower() in _PLAIN_KEYS:
        return False
    value_start, value_end = match.span(f"{match.lastgroup}_s")
    return not _PLAIN_VALUE.fullmatch(text, value_start, value_end)


# KEYED_RULES are matched against the ASCII-lowercased text (so every branch has one first
# character and no case-insensitive matching) and cut from the original. One of these words
# appears in any text they can match: a text without any of them skips the family.
KEYED_TRIGGERS = ("pass", "secret", "token", "key", "auth", "pwd", "sig", "cookie", "cred", "-u")

KEYED_RULES: tuple[Rule, ...] = (
    # PEM private keys, multi-line; a block cut short (no END line) is hidden to the end.
    Rule(
        "pem",
        "-",
        r"----begin[a-z0-9 ]*private key[a-z ]*-----(?P<s>[\s\S]*?)"
        r"(?=-----end[a-z0-9 ]*private key[a-z ]*-----|\Z)",
    ),
    # Query strings and form bodies (?key=v&key=v): values there cannot hold white space.
    Rule("query", "?&", rf"[\w.~%$-]*?(?:{ANY_KEY_WORD}){_KEY_SUFFIX}={_TIGHT_VALUE}"),
    # A parameter named just "key" in a query string is an API key (Google, Bing Maps ...).
    Rule("query_key", "?&", rf"key={_TIGHT_VALUE}"),
    *_key_rules(),
    Rule(
        "key_ending",
        "k",
        rf"ey{_KEY_SUFFIX}(?:{_KEY_END}{_TYPE}{_SEPARATOR}|{_ARGUMENT}){_NOT_DONE}{_VALUE}",
        _secret_key_ending,
    ),
    # --password value or -ClientSecret 'value' on a command line (after white space);
    # curl -u user:password / --user user:password; <password>value</password> and
    # <stripeKey>value</stripeKey> in XML.
    Rule(
        "cli_flag",
        "-",
        rf"(?<![^\s]-)-?[\w-]*?(?:{ANY_KEY_WORD})[ \t]+{_NOT_DONE}"
        r"(?P<s>'[^'\n]*'|\"[^\"\n]*\"|[^\s\"']+)",
    ),
    Rule(
        "cli_user",
        "-",
        r"(?<=\s-)(?:u|-user)(?:[ \t]+|=)[^\s:\"']*:(?P<s>'[^'\n]*'|\"[^\"\n]*\"|[^\s\"']+)",
    ),
    Rule(
        "cli_user_quoted",
        "-",
        r"(?<=\s-)(?:u|-user)(?:[ \t]+|=)"
        r"(?P<s>\"[^\"\n]*\":\"[^\"\n]*\"|\"[^\"\n]*:[^\"\n]*\"|'[^'\n]*:[^'\n]*')",
    ),
    Rule(
        "xml",
        "<",
        rf"[\w.:-]*?(?:{ANY_KEY_WORD}|[a-z0-9][_.-]?key){_KEY_SUFFIX}(?:\s[^>]*)?>(?P<s>[^<]+)",
    ),
)

# 'Bearer' followed by one plain word of this length or less ("Bearer tokens are cached") is
# prose, not a credential; anything else after it (digits, symbols, mixed case, a longer
# run) is hidden.
PROSE_WORD_MAX = 15
_PROSE_WORD = re.compile(rf"[A-Za-z][a-z]{{0,{PROSE_WORD_MAX - 1}}}\.?")


def _credential_after_scheme(text: str, match: re.Match[str]) -> bool:
    """True unless the text after the auth scheme is a single plain word (prose)."""
    return _PROSE_WORD.fullmatch(match.group().split(None, 1)[-1]) is None


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


def _has_letter_and_digit(text: str, match: re.Match[str]) -> bool:
    """True when the match holds both a letter and a digit (a token, not a user name)."""
    found = match.group()
    return bool(_DIGIT.search(found) and _LETTER.search(found))


# Rules for texts that hold a URL with an "@", or a webhook URL (the URL is the secret).
URL_TRIGGER = "hook"  # hooks.slack.com, webhook.office.com, discord.com/api/webhooks
URL_RULES: tuple[Rule, ...] = (
    # Credentials in URLs: scheme://user:password@host keeps the user.
    Rule("url_userinfo", ":", r"//[^\s:/@?#]*:(?P<s>[^\s/?#@]+(?:@[^\s/?#@]+)*)@"),
    # A token used as the whole user info (https://<token>@github.com/...).
    Rule("url_token_user", ":", r"//(?P<s>[A-Za-z0-9_.~-]{20,})@", _has_letter_and_digit),
    Rule(
        "webhook",
        "hwd",
        r"(?:ooks\.slack\.com/(?:services|workflows|triggers)"
        r"|ebhook\.office\.com/webhookb2|iscord(?:app)?\.com/api/webhooks)/(?P<s>[\w/@+-]+)",
    ),
)

# Token shapes of widely used services: (first characters, rest of the prefix, body). The
# body's length is the documented one or a lower bound; a token ends where its alphabet does.
_END = r"(?![A-Za-z0-9])"
_PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("g", r"h[pousr]_", r"[A-Za-z0-9]{36}"),
    ("g", r"ithub_pat_", r"\w{22,}"),
    ("g", r"l(?:pat|rt|dt|ptt|ft|imt|soat|ffct|oas|agent|wt)-", r"[\w-]{20,}"),
    ("g", r"lcbt-", r"[0-9a-zA-Z]{1,5}_[\w-]{20,}"),
    ("G", r"R1348941", r"[\w-]{20,}"),
    ("g", r"l(?:sa|c)_", r"[A-Za-z0-9+/_]{32,}"),
    ("G", r"OCSPX-", r"[\w-]{20,}"),
    ("y", r"a29\.", r"[\w-]{20,}"),
    ("x", r"ox[abeoprs]-", r"[A-Za-z0-9-]{8,}"),
    ("x", r"oxe\.xox[bp]-", r"[A-Za-z0-9-]{20,}"),
    ("x", r"app-", r"\d-[A-Za-z0-9-]{10,}"),
    ("x", r"keysib-", r"[a-f0-9]{32,}-?\w*"),
    ("srp", r"k_(?:live|test|prod)_", r"[A-Za-z0-9]{10,}"),
    ("w", r"hsec_", r"[A-Za-z0-9]{20,}"),
    ("S", r"K", r"[0-9a-fA-F]{32}" + _END),
    ("A", r"C", r"[0-9a-f]{32}" + _END),
    ("S", r"G\.", r"[\w-]{16,}\.?[\w-]*"),
    ("k", r"ey-", r"[0-9a-f]{32}" + _END),
    ("p", r"ubkey-", r"[0-9a-f]{32}" + _END),
    ("n", r"pm_", r"[A-Za-z0-9]{36}"),
    ("p", r"ypi-", r"[\w-]{16,}"),
    ("d", r"api", r"[a-f0-9]{32}(?:-\d)?" + _END),
    ("N", r"R(?:AK|JS|II|AA|RA|SP)-", r"[\w-]{16,}"),
    ("h", r"f_", r"[A-Za-z]{30,}"),
    ("a", r"pi_org_", r"[A-Za-z]{30,}"),
    ("s", r"hp(?:at|ca|pa|ss)_", r"[a-fA-F0-9]{32}"),
    ("s", r"q0(?:atp|csp)-", r"[\w-]{22,}"),
    ("E", r"AA[AMC]", r"[\w-]{22,}"),
    ("o", r"ps_", r"eyJ[A-Za-z0-9+/=]{20,}"),
    ("A", r"3-", r"[A-Z0-9]{6}-[A-Z0-9-]{20,}"),
    ("A", r"T(?:ATT|CTT|BB)", r"[\w=-]{20,}"),
    ("d", r"o[opr]_v1_", r"[a-f0-9]{64}"),
    ("H", r"RKU-", r"[\w-]{20,}"),
    ("d", r"p\.(?:pt|st|sa|ct|scim|audit)\.", r"[A-Za-z0-9]{20,}"),
    ("d", r"t0c01\.", r"[A-Za-z0-9]{24}\.[A-Za-z0-9]{20,}"),
    ("d", r"ckr_pat_", r"[\w-]{20,}"),
    ("h", r"v[sb]\.", r"[\w-]{24,}"),
    ("p", r"8e-", r"[A-Za-z0-9]{32}"),
    ("A", r"GE-SECRET-KEY-1", r"[A-Z0-9]{20,}"),
    ("L", r"TAI", r"[A-Za-z0-9]{16,}"),
    ("A", r"KCp", r"[A-Za-z0-9]{20,}"),
    ("C", r"(?:LOJARS_|FPAT-)", r"[\w-]{20,}"),
    ("E", r"Z[AT]K", r"[A-Za-z0-9]{20,}"),
    ("F", r"LW(?:SECK|PUBK)(?:_TEST)?-", r"[A-Za-z0-9]{12,}(?:-X)?"),
    ("f", r"(?:o1|m1[ar]|m2)_", r"[\w+/-]{20,}"),
    ("f", r"io-u-", r"[\w=-]{20,}"),
    ("i", r"co-", r"[A-Za-z0-9]{32}"),
    ("l", r"in_api_", r"[A-Za-z0-9]{20,}"),
    ("l", r"sv2_(?:pt|sk)_", r"[a-f0-9]{32}_?[a-f0-9]*"),
    ("n", r"tn_", r"[A-Za-z0-9]{30,}"),
    ("A", r"PI-", r"[A-Z0-9]{26}" + _END),
    ("p", r"plx-", r"[A-Za-z0-9]{20,}"),
    ("p", r"scale_(?:tkn|oauth|pw)_", r"[\w=.-]{20,}"),
    ("P", r"MAK-", r"[a-fA-F0-9]{24}-[a-fA-F0-9]{20,}"),
    ("p", r"(?:nu|ul)[_-]", r"[A-Za-z0-9]{36,}"),
    ("r", r"(?:dme|ubygems)_", r"[a-z0-9]{40,}"),
    ("r", r"8_", r"[A-Za-z0-9]{30,}"),
    ("g", r"sk_", r"[A-Za-z0-9]{40,}"),
    ("t", r"(?:k-us-|fp_)", r"[\w=.-]{40,}"),
    ("s", r"ntry[su]_", r"[\w+/=]{40,}"),
    ("s", r"m_(?:aat|pat|sat)_", r"[A-Za-z0-9]{16}"),
    ("s", r"hippo_(?:live|test)_", r"[a-fA-F0-9]{40}"),
    ("s", r"gp_", r"[A-Za-z0-9_]{40,}"),
    ("s", r"ha256~", r"[\w-]{43}"),
    ("s", r"k\.eyJ", r"[\w.-]{20,}"),
    ("v", r"1\.0-", r"[a-f0-9]{24}-[a-f0-9]{64,}"),
    ("A", r"Iza", r"[\w-]{30,}"),
    ("A", r"QVN", r"[\w-]{30,}"),
    ("x", r"ai-", r"[A-Za-z0-9]{40,}"),
    # OpenAI / Anthropic style sk-... and sk-proj-... keys.
    ("s", r"k-", r"[A-Za-z0-9_-]{16,}"),
    # AWS access key ids (secret keys are caught by the opaque rule or by their key name).
    ("A", r"(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA)", r"[A-Z0-9]{16}" + _END),
)


def _token_rules() -> tuple[Rule, ...]:
    """JSON Web Tokens, then one rule per first character of :data:`_PREFIXES`."""
    rules = [
        # JSON Web Tokens (JWS and JWE; unsigned ones too).
        Rule(
            "jwt",
            "e",
            rf"{_BOUNDARY}y[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]*"
            r"(?:\.[A-Za-z0-9_-]*){0,2}",
        )
    ]
    by_first: dict[str, list[str]] = {}
    for starts, prefix, body in _PREFIXES:
        for first in starts:
            by_first.setdefault(first, []).append(f"{prefix}{body}")
    for first, bodies in by_first.items():
        rules.append(Rule(f"prefix_{first}", first, rf"{_BOUNDARY}(?:{'|'.join(bodies)})"))
    return tuple(rules)


# Every TOKEN_RULES match lies inside a run of at least this many [A-Za-z0-9_.-] characters;
# the family runs only over such runs, which are also the candidates for key-named values.
TOKEN_MIN_RUN = SHORT_KEY_MIN
TOKEN_RULES: tuple[Rule, ...] = _token_rules()

# Shapes that hold a character outside the token runs, each found when its trigger is in the
# text: Azure AD client secrets (xxx8Q~...), Telegram bot tokens (123456:AA...), Mailchimp
# keys (32 hex characters and the data centre, -us12).
TRIGGERED: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Q~", re.compile(r"(?<![\w~.])[\w~.]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])")),
    (":A", re.compile(r"(?<![\w:])[0-9]{5,16}:A[\w-]{34}(?![\w-])")),
    ("-us", re.compile(r"(?<![\w-])[0-9a-f]{32}-us[0-9]{1,2}(?![\w-])")),
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
