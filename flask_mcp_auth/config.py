"""Every setting flask-mcp-auth reads, in one place.

A setting resolves, highest first: the ``MCPAuth(...)`` constructor argument,
``app.config[NAME]``, ``os.environ[NAME]``, the default below.  Values from
the environment are strings and are converted by the setting's parser; values
from ``app.config`` or the constructor may already have the right type.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

from .audit_output import DEFAULT_FLUSH_MS, MAX_FLUSH_MS
from .credentials import DEFAULT_ACCEPT_BEARER, DEFAULT_HEADER, DEFAULT_QUERY_PARAM, DEFAULT_REALM
from .errors import ConfigError
from .oauth.urls import DEFAULT_REDIRECT_URIS, RedirectRules, canonical_issuer
from .ratelimit.limits import parse_limits
from .roles import check_role

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}: expected a boolean (true/false), got {value!r}")


def parse_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {type(value).__name__}")
    return value.strip()


def parse_optional_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return parse_str(name, value) or None


def parse_non_negative_float(name: str, value: Any) -> float:
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not number >= 0 or number == float("inf"):
        raise ConfigError(f"{name}: expected a finite number of seconds >= 0, got {value!r}")
    return number


def parse_passthrough(name: str, value: Any) -> Any:
    return value


def _checked_or_empty(name: str, value: Any, check: Callable[[str], str], hint: str = "") -> str:
    """A string ``check`` accepts (its ValueError becomes a ConfigError), or empty."""
    text = parse_str(name, value)
    if not text:
        return text
    try:
        return check(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}{hint}") from None


def parse_default_role(name: str, value: Any) -> str:
    """A role name, or empty for no anonymous access."""
    return _checked_or_empty(name, value, check_role, " (or empty for no anonymous access)")


def parse_limit_string(name: str, value: Any) -> str:
    """A flask-limiter limit string, checked now; the rate limiter parses it at start-up."""
    text = parse_str(name, value)
    parse_limits(name, text)
    return text


def parse_failure_limit(name: str, value: Any) -> str:
    """A limit string of at most one window."""
    text = parse_str(name, value)
    windows = parse_limits(name, text)
    if len(windows) > 1:
        raise ConfigError(f"{name}: give one window (e.g. '20 per minute'), got {len(windows)}")
    return text


# RFC 9110 section 5.6.2: a header field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Printable ASCII: what a header value can carry without a 500 from Werkzeug.
_PRINTABLE = re.compile(r"[ -~]*")
# RFC 3986 path characters; no '<' or '>', which Flask would read as a URL variable.
_URL_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")


def parse_header_name(name: str, value: Any) -> str:
    text = parse_str(name, value)
    if not _TOKEN.fullmatch(text):
        raise ConfigError(f"{name}: {text!r} is not a valid HTTP header name")
    return text


def parse_realm(name: str, value: Any) -> str:
    # Sent in every 401's WWW-Authenticate header: a newline there made every 401 a 500.
    text = parse_str(name, value)
    if not _PRINTABLE.fullmatch(text):
        raise ConfigError(f"{name}: {text!r} must be printable ASCII (no control characters)")
    return text


def _check_url_path(name: str, path: str) -> str:
    if not _URL_PATH.fullmatch(path):
        raise ConfigError(
            f"{name}: {path!r} is not a URL path (it must start with '/' and hold only "
            "URL path characters: no spaces, no '<' or '>')"
        )
    return path


def parse_url_path(name: str, value: Any) -> str:
    """One URL path; empty means none."""
    text = parse_str(name, value)
    return _check_url_path(name, text) if text else text


def parse_str_list(name: str, value: Any) -> tuple[str, ...]:
    """A comma-separated string, or a list of strings, as a tuple without blanks."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not all(
        isinstance(item, str) for item in items
    ):
        raise ConfigError(f"{name}: expected a comma-separated string or a list of strings")
    return tuple(item.strip() for item in items if item.strip())


#: The OAuth discovery URLs that can be answered (see flask_mcp_auth.discovery).
OAUTH_ANSWERS = ("protected-resource", "authorization-server", "openid-configuration", "register")


def parse_oauth_answers(name: str, value: Any) -> frozenset[str]:
    answers = parse_str_list(name, value)
    unknown = sorted(set(answers) - set(OAUTH_ANSWERS))
    if unknown:
        raise ConfigError(
            f"{name}: unknown answer(s) {', '.join(unknown)}; expected any of "
            f"{', '.join(OAUTH_ANSWERS)} (comma-separated), or empty for none"
        )
    return frozenset(answers)


def parse_paths(name: str, value: Any) -> tuple[str, ...]:
    return tuple(_check_url_path(name, path) for path in parse_str_list(name, value))


def parse_issuer(name: str, value: Any) -> str:
    """The OAuth issuer: a canonical https:// origin (http:// on loopback), or empty."""
    return _checked_or_empty(name, value, canonical_issuer)


def parse_redirect_uris(name: str, value: Any) -> RedirectRules:
    """An allow-list of redirect URIs (whitespace- or comma-separated, or a list)."""
    entries = parse_str_list(name, value.replace(" ", ",") if isinstance(value, str) else value)
    try:
        return RedirectRules.parse(entries)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def parse_positive_int(name: str, value: Any) -> int:
    try:
        number = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        raise ConfigError(f"{name}: expected a whole number of seconds, got {value!r}") from None
    if isinstance(value, bool) or number <= 0 or (isinstance(value, float) and number != value):
        raise ConfigError(f"{name}: expected a whole number of seconds > 0, got {value!r}")
    return number


def parse_flush_ms(name: str, value: Any) -> int:
    """MCP_AUDIT_FLUSH_MS: whole milliseconds from 0 (no batching) to MAX_FLUSH_MS."""
    expected = f"expected a whole number of milliseconds from 0 to {MAX_FLUSH_MS}"
    try:
        number = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name}: {expected}, got {value!r}") from None
    if (
        isinstance(value, bool)
        or (isinstance(value, float) and number != value)
        or not 0 <= number <= MAX_FLUSH_MS
    ):
        raise ConfigError(f"{name}: {expected} (0 writes each line at once), got {value!r}")
    return number


@dataclass(frozen=True)
class Setting:
    name: str
    option: str
    default: Any
    parse: Callable[[str, Any], Any]
    meaning: str
    #: Another environment variable read when NAME is not set anywhere (e.g. the
    #: Node-style DEBUG, which cannot live in app.config: Flask owns app.config["DEBUG"]).
    env_fallback: str | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "MCP_API_KEYS",
        "api_keys",
        None,
        parse_passthrough,
        "The key store: a JSON object (string, or a dict in app.config) mapping each key id "
        "to {name, userId, role, permissions, rateLimit, expiresAt}. Unset or empty: no keys.",
    ),
    Setting(
        "JWT_SECRET",
        "jwt_secret",
        None,
        parse_optional_str,
        "Secret that signs keys of the form mcp_<keyId>_<signature>. Falls back to the "
        "app's SECRET_KEY. Without either, only plain keys work.",
    ),
    Setting(
        "MCP_DEFAULT_ROLE",
        "default_role",
        "guest",
        parse_default_role,
        "Role of callers that present no key. Empty string: anonymous requests to any "
        "route that is not exempt get 401.",
    ),
    Setting(
        "MCP_API_KEY_HEADER",
        "api_key_header",
        DEFAULT_HEADER,
        parse_header_name,
        "Request header checked first for the key.",
    ),
    Setting(
        "MCP_ACCEPT_BEARER",
        "accept_bearer",
        DEFAULT_ACCEPT_BEARER,
        parse_bool,
        "Also read the key from 'Authorization: Bearer <key>' (checked second).",
    ),
    Setting(
        "MCP_API_KEY_QUERY_PARAM",
        "api_key_query_param",
        DEFAULT_QUERY_PARAM,
        parse_str,
        "Query parameter checked last for the key. Empty string: query keys are refused.",
    ),
    Setting(
        "MCP_REQUIRE_SIGNED_KEYS",
        "require_signed_keys",
        False,
        parse_bool,
        "Accept only signed keys (mcp_<keyId>_<signature>); plain key ids are refused. "
        "Start-up fails without JWT_SECRET or SECRET_KEY.",
    ),
    Setting(
        "MCP_STATUS_URL",
        "status_url",
        "/mcp/status",
        parse_url_path,
        "Where the status route is mounted. Empty string: no status route.",
    ),
    Setting(
        "MCP_AUTH_REALM",
        "realm",
        DEFAULT_REALM,
        parse_realm,
        "Realm named in the WWW-Authenticate challenge of 401 responses.",
    ),
    Setting(
        "MCP_OAUTH_DISCOVERY_ANSWERS",
        "oauth_discovery_answers",
        frozenset(OAUTH_ANSWERS),
        parse_oauth_answers,
        "OAuth discovery URLs answered with a JSON 404 that explains how to send an API key "
        "(comma-separated: protected-resource, authorization-server, openid-configuration, "
        "register). Empty string: none. A route of the app at the same URL always wins.",
    ),
    Setting(
        "MCP_OAUTH_LOGIN_PATHS",
        "oauth_login_paths",
        ("/auth/oauth/login", "/authorize", "/token"),
        parse_paths,
        "Further OAuth endpoint paths (comma-separated) answered the same way; empty: none.",
    ),
    Setting(
        "RATELIMIT_STORAGE_URI",
        "storage_uri",
        "memory://",
        parse_str,
        "flask-limiter storage for rate-limit counters: memory:// (one process), "
        "redis://host:6379 (shared by workers and hosts) or any URI flask-limiter accepts. "
        "Ignored when the app passes its own Limiter (MCPAuth(app, limiter=...)).",
    ),
    Setting(
        "MCP_DEFAULT_RATE_LIMIT",
        "default_rate_limit",
        "",
        parse_limit_string,
        "flask-limiter limit string (e.g. '60/minute;1000/hour') for keys without rateLimit. "
        "Empty: no limit.",
    ),
    Setting(
        "MCP_ANONYMOUS_RATE_LIMIT",
        "anonymous_rate_limit",
        "",
        parse_limit_string,
        "flask-limiter limit string for callers without a key, counted per client address. "
        "Empty: no limit.",
    ),
    Setting(
        "MCP_AUTH_FAILURE_LIMIT",
        "auth_failure_limit",
        "20 per minute",
        parse_failure_limit,
        "Invalid-credential attempts allowed per client address and window; past it the "
        "address gets 429 for any request with a credential until the window resets. "
        "Empty or 'off': no lockout.",
    ),
    Setting(
        "MCP_RATELIMIT_FAIL_CLOSED",
        "ratelimit_fail_closed",
        False,
        parse_bool,
        "When the rate-limit storage is unreachable: false counts in process memory until "
        "it is back; true answers 503.",
    ),
    Setting(
        "MCP_AUDIT_LOG",
        "audit_log",
        None,
        parse_optional_str,
        "Where audit lines (one JSON object per key use, 403 and 429) go: 'stderr', 'stdout', "
        "a file path, or 'off'. Unset: stderr, unless the application configured a handler "
        "on the 'flask_mcp_auth.audit' logger.",
    ),
    Setting(
        "MCP_AUDIT_FLUSH_MS",
        "audit_flush_ms",
        DEFAULT_FLUSH_MS,
        parse_flush_ms,
        f"Milliseconds (0-{MAX_FLUSH_MS}) an audit line may wait to be written with the lines "
        "after it, in one write, by the extension's own stderr/stdout/file handler; batches "
        "are also written at exit, on SIGTERM and before fork(). 0: each line is written and "
        "flushed as it is produced.",
    ),
    Setting(
        "MCP_DEBUG",
        "debug",
        None,
        parse_optional_str,
        "Debug namespaces, Node 'debug' syntax: auth:keys, auth:request, auth:ratelimit, "
        "'*' wildcards, '-name' excludes (e.g. 'auth:*,-auth:ratelimit'). Unset: the DEBUG "
        "environment variable.",
        env_fallback="DEBUG",
    ),
    Setting(
        "MCP_API_KEYS_FILE",
        "api_keys_file",
        None,
        parse_optional_str,
        "Path to a JSON file with the MCP_API_KEYS schema, re-read while the server runs "
        "(key rotation without restart). May be combined with MCP_API_KEYS; a key id in both "
        "is an error. Missing, empty or invalid at start-up: start-up fails.",
    ),
    Setting(
        "MCP_API_KEYS_FILE_CHECK_INTERVAL",
        "api_keys_file_check_interval",
        1.0,
        parse_non_negative_float,
        "Seconds between checks (one stat() per process) of MCP_API_KEYS_FILE for changes; "
        "0 checks on every authenticated request.",
    ),
    Setting(
        "MCP_OAUTH_ISSUER",
        "oauth_issuer",
        "",
        parse_issuer,
        "The public origin of the service (e.g. https://mcp.example.com). Set, it turns on "
        "the OAuth sign-in whose credential is an API key; empty: no OAuth.",
    ),
    Setting(
        "MCP_OAUTH_REDIRECT_URIS",
        "oauth_redirect_uris",
        RedirectRules.parse(DEFAULT_REDIRECT_URIS),
        parse_redirect_uris,
        "Redirect URIs OAuth clients may register: exact URIs and prefixes ending in '*' "
        "(comma- or space-separated). Default: ChatGPT's and Claude's callbacks and loopback.",
    ),
    Setting(
        "MCP_OAUTH_CIMD_ALLOW_PRIVATE",
        "oauth_cimd_allow_private",
        False,
        parse_bool,
        "Fetch client-id metadata documents from private and loopback addresses too (and "
        "http:// ones on loopback): for tests and intranets.",
    ),
    Setting(
        "MCP_OAUTH_ACCESS_TOKEN_TTL",
        "oauth_access_token_ttl",
        3600,
        parse_positive_int,
        "Lifetime of an OAuth access token, seconds.",
    ),
    Setting(
        "MCP_OAUTH_REFRESH_TOKEN_TTL",
        "oauth_refresh_token_ttl",
        30 * 24 * 3600,
        parse_positive_int,
        "Lifetime of an OAuth refresh token, seconds (each use rotates it).",
    ),
    Setting(
        "MCP_OAUTH_SCOPES",
        "oauth_scopes",
        (),
        parse_str_list,
        "Scopes (permission names) published as scopes_supported; empty: none published.",
    ),
    Setting(
        "MCP_API_KEYS_RELOAD_ON_SIGHUP",
        "reload_on_sighup",
        True,
        parse_bool,
        "With MCP_API_KEYS_FILE, make SIGHUP re-read the file at the next request, where no "
        "other handler owns SIGHUP in the process (e.g. each gunicorn worker).",
    ),
)

SETTINGS_BY_OPTION: dict[str, Setting] = {s.option: s for s in SETTINGS}


def resolve_settings(
    options: Mapping[str, Any],
    config: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return {setting name: value} for every setting, applying precedence."""
    env = os.environ if environ is None else environ
    resolved: dict[str, Any] = {}
    for setting in SETTINGS:
        if options.get(setting.option) is not None:
            raw = options[setting.option]
        elif config.get(setting.name) is not None:
            raw = config[setting.name]
        elif setting.name in env:
            raw = env[setting.name]
        elif setting.env_fallback is not None and setting.env_fallback in env:
            raw = env[setting.env_fallback]
        else:
            resolved[setting.name] = setting.default
            continue
        resolved[setting.name] = setting.parse(setting.name, raw)
    _check_combinations(resolved, config)
    return resolved


def signing_secret(settings: Mapping[str, Any], config: Mapping[str, Any]) -> str | bytes | None:
    """The secret that signs keys: JWT_SECRET, else the app's SECRET_KEY, else None."""
    secret = settings["JWT_SECRET"] or config.get("SECRET_KEY") or None
    if secret is not None and not isinstance(secret, (str, bytes)):
        raise ConfigError(f"SECRET_KEY: expected a string or bytes, got {type(secret).__name__}")
    return secret


def _check_combinations(settings: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Rules that involve more than one setting."""
    if settings["MCP_REQUIRE_SIGNED_KEYS"] and not signing_secret(settings, config):
        raise ConfigError(
            "MCP_REQUIRE_SIGNED_KEYS is on but there is no secret to verify signatures: "
            "set JWT_SECRET (or the app's SECRET_KEY)"
        )
    if settings["MCP_OAUTH_ISSUER"]:
        if not signing_secret(settings, config):
            raise ConfigError(
                "MCP_OAUTH_ISSUER is set but there is no secret to sign OAuth tokens with: "
                "set JWT_SECRET (or the app's SECRET_KEY)"
            )
        if not settings["MCP_ACCEPT_BEARER"]:
            raise ConfigError(
                "MCP_OAUTH_ISSUER is set but MCP_ACCEPT_BEARER is off: OAuth access tokens "
                "are sent as 'Authorization: Bearer <token>'"
            )
        missing = [name for name in ("authlib", "joserfc") if find_spec(name) is None]
        if missing:
            raise ConfigError(
                f"MCP_OAUTH_ISSUER is set but {' and '.join(missing)} is not installed: "
                "pip install 'flask-mcp-auth[oauth]'"
            )


def check_options(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - set(SETTINGS_BY_OPTION))
    if unknown:
        valid = ", ".join(sorted(SETTINGS_BY_OPTION))
        raise TypeError(f"MCPAuth() got unknown option(s) {', '.join(unknown)}; valid: {valid}")
