"""The URLs the OAuth sign-in trusts: its issuer, and where it may send a browser back.

Pure functions and values, no I/O: the settings registry parses
``MCP_OAUTH_ISSUER`` and ``MCP_OAUTH_REDIRECT_URIS`` with them, and the
authorization server checks every redirect against :class:`RedirectRules`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

#: The redirect URIs admitted when MCP_OAUTH_REDIRECT_URIS is not set: ChatGPT's and
#: Claude's callbacks; loopback callbacks (any port and path) are admitted besides.
DEFAULT_REDIRECT_URIS = (
    "https://chatgpt.com/connector_platform_oauth_redirect",
    "https://chatgpt.com/connector/oauth/*",
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
    "http://127.0.0.1",
    "http://localhost",
    "http://[::1]",
)

_LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (brackets allowed)."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def canonical_issuer(text: str) -> str:
    """``text`` if it is a canonical issuer origin; ValueError saying what is wrong.

    Clients compare the issuer character for character, so a non-canonical
    form is refused rather than silently rewritten: the operator must write
    exactly the origin clients will reach.
    """
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a URL ({exc})") from None
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(
            f"{text!r} must be an absolute https:// URL such as https://mcp.example.com"
        )
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ValueError(f"{text!r}: http:// is allowed only for loopback hosts; use https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r} must not contain a user name or password")
    if parts.path or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"{text!r} must be an origin: no path, query, fragment or trailing slash")
    default_port = 443 if parts.scheme == "https" else 80
    host_part = f"[{host}]" if ":" in host else host
    canonical = f"{parts.scheme}://{host_part}" + (
        f":{port}" if port is not None and port != default_port else ""
    )
    if canonical != text:
        raise ValueError(
            f"{text!r} is not in canonical form (lowercase scheme and host, no default "
            f"port): write {canonical!r}"
        )
    return text


def resource_within(resource: str, issuer: str) -> bool:
    """True if ``resource`` is the issuer itself or a URL below it (RFC 8707 targets)."""
    if "#" in resource or "?" in resource:
        return False
    return resource == issuer or resource.startswith(issuer + "/")


def path_within(path: str, audience_path: str) -> bool:
    """True if the request ``path`` is at or below a token's audience path."""
    if audience_path in ("", "/"):
        return True
    base = audience_path.rstrip("/")
    return path == base or path.startswith(base + "/")


@dataclass(frozen=True)
class RedirectRules:
    """The redirect-URI allow-list: exact URIs, prefixes ending in ``*``, loopback origins.

    An entry ``http://127.0.0.1`` (or ``localhost``, ``[::1]``) admits that host on any
    port and path, as RFC 8252 asks for native apps.
    """

    exact: frozenset[str]
    prefixes: tuple[str, ...]
    loopback_hosts: frozenset[str]

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> RedirectRules:
        """The rules of ``entries``; ValueError naming a bad entry."""
        exact: set[str] = set()
        prefixes: list[str] = []
        loopback: set[str] = set()
        for entry in entries:
            pattern = entry[:-1] if entry.endswith("*") else entry
            parts = urlsplit(pattern)
            host = parts.hostname or ""
            if parts.scheme not in ("https", "http") or not host or "*" in pattern:
                raise ValueError(
                    f"{entry!r}: expected an absolute https:// URI, optionally ending in '*'"
                )
            if parts.scheme == "http" and not is_loopback_host(host):
                raise ValueError(f"{entry!r}: http:// redirect URIs must be loopback")
            if parts.fragment:
                raise ValueError(f"{entry!r}: a redirect URI has no fragment")
            if parts.scheme == "http" and parts.path in ("", "/") and not entry.endswith("*"):
                loopback.add(host.lower())
            elif entry.endswith("*"):
                if parts.path in ("", "/") and not pattern.endswith("/"):
                    raise ValueError(
                        f"{entry!r}: a prefix must include a path, e.g. https://host/cb/*"
                    )
                prefixes.append(pattern)
            else:
                exact.add(entry)
        return cls(frozenset(exact), tuple(prefixes), frozenset(loopback))

    def admits(self, uri: str) -> bool:
        """True if ``uri`` may receive an authorization response."""
        if not isinstance(uri, str) or not uri or len(uri) > 2000:
            return False
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            return False
        if parts.fragment or "#" in uri or parts.username or parts.password:
            return False
        if uri in self.exact:
            return True
        host = (parts.hostname or "").lower()
        if parts.scheme == "http" and host in self.loopback_hosts:
            return True
        if parts.scheme != "https":
            return False
        # Browsers resolve "..", and "%2e%2e" (any case) as "..", before following a prefix.
        if ".." in uri or "%2e" in uri.lower():
            return False
        return any(uri.startswith(prefix) for prefix in self.prefixes)


def origin_of(uri: str) -> str:
    """``scheme://host[:port]`` of an absolute URI (for CSP ``form-action``)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


__all__ = [
    "DEFAULT_REDIRECT_URIS",
    "RedirectRules",
    "canonical_issuer",
    "is_loopback_host",
    "origin_of",
    "path_within",
    "resource_within",
]
