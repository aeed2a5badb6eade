"""The URLs the sign-in trusts: the issuer's canonical form, the redirect allow-list and
the resource / audience path checks."""

from __future__ import annotations

import re

import pytest

from flask_mcp_auth.oauth.urls import (
    DEFAULT_REDIRECT_URIS,
    RedirectRules,
    canonical_issuer,
    origin_of,
    path_within,
    resource_within,
)

# -- canonical_issuer ------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        "https://mcp.example.com",
        "https://mcp.example.com:8443",
        "http://127.0.0.1:3210",
        "http://localhost:3210",
        "http://[::1]:8080",
        "http://127.0.0.1",
        "https://127.0.0.1",
    ],
)
def test_canonical_issuers_are_accepted_as_written(issuer: str) -> None:
    assert canonical_issuer(issuer) == issuer


@pytest.mark.parametrize(
    ("issuer", "problem"),
    [
        ("https://mcp.example.com/", "trailing slash"),
        ("https://mcp.example.com/mcp", "no path"),
        ("https://mcp.example.com?x=1", "query"),
        ("https://mcp.example.com?", "query"),
        ("https://mcp.example.com#top", "fragment"),
        ("https://mcp.example.com#", "fragment"),
        ("https://MCP.example.com", "canonical form"),
        ("HTTPS://mcp.example.com", "canonical form"),
        ("https://mcp.example.com:443", "no default port"),
        ("http://127.0.0.1:80", "no default port"),
        ("http://mcp.example.com", "only for loopback"),
        ("http://10.0.0.1:8080", "only for loopback"),
        ("https://user@mcp.example.com", "user name or password"),
        ("https://user:pw@mcp.example.com", "user name or password"),
        ("mcp.example.com", "absolute https://"),
        ("not a url", "absolute https://"),
        ("ftp://mcp.example.com", "absolute https://"),
        ("https://", "absolute https://"),
        ("https://:8443", "absolute https://"),
        ("https://mcp.example.com:99999", "not a URL"),
        ("https://[::1", "not a URL"),
    ],
)
def test_non_canonical_issuers_are_refused_naming_the_problem(issuer: str, problem: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        canonical_issuer(issuer)
    message = str(excinfo.value)
    assert problem in message
    assert repr(issuer) in message


def test_a_non_canonical_issuer_message_spells_the_canonical_form() -> None:
    with pytest.raises(ValueError, match=re.escape("write 'https://mcp.example.com'")):
        canonical_issuer("https://MCP.Example.com:443")


# -- RedirectRules ----------------------------------------------------------------------

DEFAULTS = RedirectRules.parse(DEFAULT_REDIRECT_URIS)


@pytest.mark.parametrize(
    "uri",
    [
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "https://chatgpt.com/connector/oauth/abc123",
        "https://chatgpt.com/connector/oauth/g-6f1e/callback",
        "https://claude.ai/api/mcp/auth_callback",
        "https://claude.com/api/mcp/auth_callback",
        "http://127.0.0.1:53117/callback",
        "http://127.0.0.1/",
        "http://127.0.0.1",
        "http://localhost:8976/oauth/callback?x=1",
        "http://[::1]:33418/cb",
    ],
)
def test_the_default_rules_admit_chatgpt_claude_and_loopback(uri: str) -> None:
    assert DEFAULTS.admits(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://chatgpt.com.evil.com/connector/oauth/abc",
        "https://chatgpt.com.evil.com/connector_platform_oauth_redirect",
        "https://evil.com/https://chatgpt.com/connector/oauth/abc",
        "https://chatgpt.com/connector/oauth/../x",
        "https://chatgpt.com/connector/oauth/abc/../../../x",
        "https://chatgpt.com/connector/oauth/%2e%2e/x",
        "https://chatgpt.com/connector/oauth/%2E%2E/x",
        "https://chatgpt.com/connector/oauth/.%2e/x",
        "https://chatgpt.com/connector/oauth/.\t./x",
        "https://chatgpt.com/connector/oauth/\n/x",
        "https://chatgpt.com/connector/oauth",
        "https://chatgpt.com/connector/oauthx",
        "http://chatgpt.com/connector/oauth/abc",
        "http://chatgpt.com/connector_platform_oauth_redirect",
        "https://chatgpt.com/connector_platform_oauth_redirect/more",
        "https://chatgpt.com/connector_platform_oauth_redirect#frag",
        "https://chatgpt.com/connector/oauth/abc#frag",
        "https://chatgpt.com/connector/oauth/abc#",
        "http://127.0.0.1:5000/cb#frag",
        "https://user@chatgpt.com/connector/oauth/abc",
        "https://chatgpt.com@evil.com/connector/oauth/abc",
        "http://user:pw@127.0.0.1:5000/cb",
        "http://localhost@evil.com/cb",
        "http://127.0.0.1.evil.com/cb",
        "http://localhost.evil.com/cb",
        "https://claude.ai/api/mcp/auth_callback/x",
        "https://claude.ai/api/mcp/auth_callbacks",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "//chatgpt.com/connector/oauth/abc",
        "/connector/oauth/abc",
        "",
        "http://127.0.0.1:notaport/cb",
        "https://chatgpt.com/connector/oauth/" + "a" * 2000,
    ],
)
def test_the_default_rules_refuse_lookalikes_and_other_schemes(uri: str) -> None:
    assert not DEFAULTS.admits(uri)


def test_a_uri_at_the_length_limit_is_admitted_and_one_over_is_not() -> None:
    base = "https://chatgpt.com/connector/oauth/"
    assert DEFAULTS.admits(base + "a" * (2000 - len(base)))
    assert not DEFAULTS.admits(base + "a" * (2001 - len(base)))


@pytest.mark.parametrize("value", [None, 42, b"https://claude.ai/api/mcp/auth_callback"])
def test_a_redirect_that_is_not_a_string_is_refused(value: object) -> None:
    assert not DEFAULTS.admits(value)  # type: ignore[arg-type]


def test_rules_sort_entries_into_exact_prefix_and_loopback() -> None:
    rules = RedirectRules.parse(
        ("https://app.example.com/cb", "https://app.example.com/oauth/*", "http://localhost")
    )
    assert rules.exact == frozenset({"https://app.example.com/cb"})
    assert rules.prefixes == ("https://app.example.com/oauth/",)
    assert rules.loopback_hosts == frozenset({"localhost"})
    assert rules.admits("https://app.example.com/cb")
    assert not rules.admits("https://app.example.com/cb/")
    assert rules.admits("https://app.example.com/oauth/x")
    assert not rules.admits("http://127.0.0.1:8000/cb")  # only the loopback host listed
    assert rules.admits("http://localhost:8000/cb")


def test_a_loopback_entry_with_a_path_is_exact_not_any_port() -> None:
    rules = RedirectRules.parse(("http://127.0.0.1:8000/cb",))
    assert rules.admits("http://127.0.0.1:8000/cb")
    assert not rules.admits("http://127.0.0.1:8001/cb")
    assert not rules.admits("http://127.0.0.1:8000/other")


def test_empty_rules_admit_nothing() -> None:
    rules = RedirectRules.parse(())
    assert not rules.admits("http://127.0.0.1:8000/cb")
    assert not rules.admits("https://claude.ai/api/mcp/auth_callback")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("chatgpt.com/cb", "absolute https://"),
        ("ftp://example.com/cb", "absolute https://"),
        ("javascript:alert(1)", "absolute https://"),
        ("https:///cb", "absolute https://"),
        ("https://*.example.com/cb", "absolute https://"),
        ("https://example.com/*/cb", "absolute https://"),
        ("http://example.com/cb", "must be loopback"),
        ("https://example.com/cb#frag", "no fragment"),
        ("https://example.com*", "must include a path"),
    ],
)
def test_bad_entries_are_refused_naming_the_entry(entry: str, problem: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        RedirectRules.parse(("https://fine.example.com/cb", entry))
    assert problem in str(excinfo.value)
    assert repr(entry) in str(excinfo.value)


# -- resource_within and path_within -----------------------------------------------------

ISSUER = "https://mcp.example.com"


@pytest.mark.parametrize(
    ("resource", "within"),
    [
        (ISSUER, True),
        (ISSUER + "/", True),
        (ISSUER + "/mcp", True),
        (ISSUER + "/mcp/deeper", True),
        (ISSUER + "x", False),
        (ISSUER + ".evil.com", False),
        (ISSUER + ".evil.com/mcp", False),
        (ISSUER + ":8443/mcp", False),
        ("http://mcp.example.com/mcp", False),
        (ISSUER + "/mcp?x=1", False),
        (ISSUER + "/mcp#f", False),
        (ISSUER + "?", False),
        ("", False),
        ("https://other.example.com/mcp", False),
    ],
)
def test_resource_within_the_issuer(resource: str, within: bool) -> None:
    assert resource_within(resource, ISSUER) is within


@pytest.mark.parametrize(
    ("path", "audience_path", "within"),
    [
        ("/mcp", "/mcp", True),
        ("/mcp/", "/mcp", True),
        ("/mcp/tools/call", "/mcp", True),
        ("/mcpx", "/mcp", False),
        ("/mcp-admin", "/mcp", False),
        ("/", "/mcp", False),
        ("/other", "/mcp", False),
        ("/mc", "/mcp", False),
        ("/mcp", "/mcp/", True),
        ("/mcpx", "/mcp/", False),
        ("/anything", "/", True),
        ("/anything", "", True),
        ("/a/b", "/a/b", True),
        ("/a/bc", "/a/b", False),
        ("/a", "/a/b", False),
    ],
)
def test_path_within_an_audience_path_stops_at_segment_boundaries(
    path: str, audience_path: str, within: bool
) -> None:
    assert path_within(path, audience_path) is within


@pytest.mark.parametrize(
    ("uri", "origin"),
    [
        ("https://chatgpt.com/connector/oauth/x?y=1", "https://chatgpt.com"),
        ("http://127.0.0.1:5000/cb", "http://127.0.0.1:5000"),
        ("http://[::1]:33418/cb", "http://[::1]:33418"),
        ("https://user:pw@host.example/cb", "https://host.example"),
    ],
)
def test_origin_of_a_redirect_drops_path_query_and_userinfo(uri: str, origin: str) -> None:
    assert origin_of(uri) == origin
