"""Query-string keys are redacted from Werkzeug and gunicorn log lines."""

from __future__ import annotations

import logging
import subprocess
import sys
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from flask_mcp_auth import redaction
from flask_mcp_auth.redaction import REDACTED, RedactingFilter, redact_atoms, redact_query

pytestmark = pytest.mark.usefixtures("clean_logging")

SECRET = "s3cr3t-key-value"


def args_of(query: str) -> dict[str, list[str]]:
    """How Werkzeug (so the extension) reads a query string."""
    request = Request(EnvironBuilder(query_string=query).get_environ())
    return request.args.to_dict(flat=False)


def test_request_line_forms():
    cases = {
        f"GET /mcp?api_key={SECRET} HTTP/1.1": "GET /mcp?api_key=[REDACTED] HTTP/1.1",
        f"GET /mcp?a=1&api_key={SECRET}&b=2 HTTP/1.1": (
            "GET /mcp?a=1&api_key=[REDACTED]&b=2 HTTP/1.1"
        ),
        f"GET /mcp?api%5Fkey={SECRET} HTTP/1.1": "GET /mcp?api%5Fkey=[REDACTED] HTTP/1.1",
        f"GET /mcp?%61pi_key={SECRET} HTTP/1.1": "GET /mcp?%61pi_key=[REDACTED] HTTP/1.1",
        f"GET /mcp?api_key={SECRET}%26x%3D1 HTTP/1.1": "GET /mcp?api_key=[REDACTED] HTTP/1.1",
        f"GET /mcp?api_key={SECRET}&api_key={SECRET}2 HTTP/1.1": (
            "GET /mcp?api_key=[REDACTED]&api_key=[REDACTED] HTTP/1.1"
        ),
        f'"GET /mcp?api_key=a"{SECRET} HTTP/1.1" 401 -': (
            '"GET /mcp?api_key=[REDACTED] HTTP/1.1" 401 -'
        ),
        f"/mcp?api_key={SECRET}": "/mcp?api_key=[REDACTED]",  # gunicorn {raw_uri}e
        f"https://ex.test/p?api_key={SECRET}": "https://ex.test/p?api_key=[REDACTED]",  # referer
        f"GET /mcp?a=b?api_key={SECRET} HTTP/1.1": "GET /mcp?a=b?api_key=[REDACTED] HTTP/1.1",
        f"GET /mcp?api_key={SECRET}?x=1 HTTP/1.1": "GET /mcp?api_key=[REDACTED] HTTP/1.1",
        f"api_key={SECRET}&x=1": "api_key=[REDACTED]&x=1",  # a bare query string (gunicorn %(q)s)
        "GET /mcp?x=api_key&y=2 HTTP/1.1": "GET /mcp?x=api_key&y=2 HTTP/1.1",
        "GET /mcp?my_api_key=1 HTTP/1.1": "GET /mcp?my_api_key=1 HTTP/1.1",
        "no query here": "no query here",
    }
    for line, expected in cases.items():
        assert redact_query(line) == expected, line


def test_redacted_query_parses_to_redacted_values_only():
    query = urlencode([("a", "1"), ("api_key", SECRET), ("b", "x y&z")])
    assert args_of(redact_query(query)) == {"a": ["1"], "api_key": [REDACTED], "b": ["x y&z"]}


NAMES = st.sampled_from(["api_key", "a", "b", "api", "key", "api_keyx", "API_KEY"])


@given(
    pairs=st.lists(st.tuples(NAMES, st.text(max_size=12)), max_size=6), encode_name=st.booleans()
)
def test_no_value_the_extension_would_read_survives(pairs, encode_name):
    """Whatever the query, Werkzeug reads only [REDACTED] under api_key afterwards,
    and every other parameter unchanged."""
    parts = []
    for name, value in pairs:
        encoded = "".join(f"%{ord(c):02X}" for c in name) if encode_name else quote(name)
        parts.append(f"{encoded}={quote(value, safe='')}")
    query = "&".join(parts)
    before = args_of(query)
    after = args_of(redact_query(query))
    assert set(after) == set(before)
    # Earlier tests may have registered other names (the set only grows per process).
    redacted_names = {"api_key", *redaction._query_params}
    for name, values in after.items():
        if name in redacted_names:
            assert values == [REDACTED] * len(values)
        else:
            assert values == before[name]


def test_custom_query_param_is_redacted(audit_app):
    audit_app(MCP_API_KEY_QUERY_PARAM="token", MCP_AUDIT_LOG="off")
    assert redact_query(f"GET /x?token={SECRET}&api_key={SECRET}") == (
        f"GET /x?token={REDACTED}&api_key={REDACTED}"
    )


def test_filter_rewrites_message_args_and_traceback():
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /?api_key={SECRET} HTTP/1.1", 200, "-"),
        None,
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f'"GET /?api_key={REDACTED} HTTP/1.1" 200 -'
    try:
        raise ValueError(f"bad url /x?api_key={SECRET}")
    except ValueError:
        error = logging.LogRecord(
            "gunicorn.error", logging.ERROR, __file__, 1, "boom", None, sys.exc_info()
        )
    RedactingFilter().filter(error)
    assert SECRET not in logging.Formatter().format(error)


def test_gunicorn_atoms_hide_headers_and_query_values():
    atoms = {
        "r": f"GET /mcp?api_key={SECRET} HTTP/1.1",
        "q": f"api_key={SECRET}",
        "{query_string}e": f"api_key={SECRET}",
        "{x-api-key}i": SECRET,
        "{authorization}i": f"Bearer {SECRET}",
        "{http_x_api_key}e": SECRET,
        "{http_authorization}e": f"Bearer {SECRET}",
        "f": f"https://example.test/page?api_key={SECRET}",
        "s": "200",
        "D": 12,
    }
    redacted = redact_atoms(dict(atoms))
    assert SECRET not in repr(redacted)
    assert redacted["s"] == "200" and redacted["D"] == 12


def test_the_package_does_not_import_gunicorn():
    code = (
        "import sys\n"
        "from flask import Flask\n"
        "from flask_mcp_auth import MCPAuth\n"
        "MCPAuth(Flask('x'), audit_log='off')\n"
        "import flask_mcp_auth.redaction\n"
        "assert 'gunicorn' not in sys.modules, 'gunicorn imported'\n"
        "assert flask_mcp_auth.redaction.GunicornLogger.__name__ == 'GunicornLogger'\n"
        "assert 'gunicorn' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
