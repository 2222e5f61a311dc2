"""The config as the client of one named API of ``global.apis`` sees it.

``create_rest_api(config, api="graph")`` builds its client from :func:`api_config`: ``global``
merged with the API's entry, and the API's own static token in the place of ``az-token``. So
the HTTP client knows nothing of named APIs, and the token provider keys its cache on the
view's credentials as it does for the default API (it reads ``_api`` only to word messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from utils.exceptions import ConfigurationError

API_SECTION = "apis"
STATIC_TOKEN_SUFFIX = "_token"


def api_config(config: Mapping[str, Any], api: str | None) -> Mapping[str, Any]:
    """The config as the client of one API sees it: ``global`` merged with its entry.

    ``api=None`` is the default API (``global.api-base-url``, ``az-token``): ``config`` as
    it is. A name picks an entry of ``global.apis``; the keys it sets (not null) replace
    those of ``global``, the rest come from ``global``. An entry that sets ``tenant-id`` but
    no ``oauth-token-url`` gets the Azure AD endpoint of its own tenant, not global's URL.
    Its static token is the secret ``{name}-token`` (injected as ``_{name}_token``), never
    ``az-token``, and the default API's ``_token`` is not carried over.

    Args:
        config: The loaded config (or a hand-built one).
        api: A name of ``global.apis``, or None.

    Returns:
        A new shallow copy for a named API (``config`` itself for None); the view carries
        ``_api`` (the name) for the token provider's messages.

    Raises:
        ConfigurationError: ``api`` is not a name of ``global.apis`` (the known ones listed).

    Example:
        >>> view = api_config({"global": {"api-base-url": "https://bc.example/v2",
        ...     "client-id": "app", "apis": {"graph": {"api-base-url": "https://g.example/v1",
        ...     "oauth-scope": "https://g.example/.default"}}}}, "graph")
        >>> view["global"]["api-base-url"], view["global"]["client-id"]
        ('https://g.example/v1', 'app')
    """
    if api is None:
        return config
    glob = config.get("global") or {}
    apis = glob.get("apis") or {}
    entry = apis.get(api) if isinstance(apis, Mapping) and isinstance(api, str) else None
    if not isinstance(entry, Mapping):
        raise _unknown_api(api, sorted(apis) if isinstance(apis, Mapping) else [])
    merged = {key: value for key, value in glob.items() if key != API_SECTION}
    merged.update({key: value for key, value in entry.items() if value is not None})
    if entry.get("tenant-id") is not None and entry.get("oauth-token-url") is None:
        merged["oauth-token-url"] = None
    view = dict(config)
    view["global"] = merged
    view["_api"] = api
    view["_token"] = None
    view["_az_token"] = config.get(static_token_name(api))
    return view


def static_token_name(api: str) -> str:
    """The config key of API ``api``'s static token: secret ``graph-token`` → ``_graph_token``.

    API names are kebab-case (the schema's rule), so this is the name the secrets loader
    injects ``{api}-token`` under (``_`` + snake_case of the key).
    """
    return "_" + api.replace("-", "_").lower() + STATIC_TOKEN_SUFFIX


def _unknown_api(api: object, known: list[str]) -> ConfigurationError:
    import difflib  # only for an error's suggestion

    guess = difflib.get_close_matches(str(api), known, n=1, cutoff=0.6)
    hint = f" Did you mean '{guess[0]}'?" if guess else ""
    listed = ", ".join(known) if known else "none (the config has no global → apis)"
    return ConfigurationError(
        f"No API named {api!r} in the config: global → apis names {listed}.{hint}",
        "Pass a name of global → apis (or api=None for global → api-base-url), or add the "
        "API to global → apis in the config.",
        '"global": {"apis": {"graph": {"api-base-url": "https://graph.microsoft.com/v1.0", '
        '"oauth-scope": "https://graph.microsoft.com/.default"}}}',
    )
