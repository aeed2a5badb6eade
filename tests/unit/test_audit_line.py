"""The audit line, assembled from fragments, is byte for byte what ``json.dumps`` writes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.audit import AUDIT_FIELDS, RecordingHandler, build_audit_app

from flask_mcp_auth import audit
from flask_mcp_auth.keys.model import APIKey

pytestmark = pytest.mark.usefixtures("clean_logging")


#: Quotes, backslashes, control characters, U+2028, non-ASCII, lone surrogates.
HOSTILE = st.text(
    st.sampled_from(['"', "\\", "\n", "\r", "\t", "\x00", "\x1f", "\u2028", "é", "\ud800", "}"])
    | st.characters(),
    max_size=40,
)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def api_key(name: str | None, user_id: str | None) -> APIKey:
    return APIKey(
        key_id="hostile-key",
        name=name,
        user_id=user_id,
        role="user",
        permissions=frozenset({"read"}),
        requests_per_minute=None,
        requests_per_hour=None,
        expires_at=None,
        fingerprint="0123456789ab",
    )


@given(name=st.none() | HOSTILE, user_id=st.none() | HOSTILE)
def test_a_key_fragment_is_what_json_dumps_writes(name: str | None, user_id: str | None) -> None:
    key = api_key(name, user_id)
    expected = compact(
        {"name": name, "key_fingerprint": "0123456789ab", "user_id": user_id, "role": "user"}
    )
    fragment = audit._key_fragment(key)
    assert "{" + fragment[1:] + "}" == expected
    assert audit._key_fragment(key) is fragment  # encoded once per key object


def test_the_fragment_cache_is_bounded_and_keyed_by_the_object() -> None:
    first = api_key("First", None)
    audit._key_fragment(first)
    for index in range(audit.KEY_FRAGMENT_CACHE_SIZE + 10):
        audit._key_fragment(api_key(f"key {index}", None))
    assert len(audit._key_fragments) <= audit.KEY_FRAGMENT_CACHE_SIZE
    # An equal key that is another object (a reload) gets its own, equal, fragment.
    again = api_key("First", None)
    assert audit._key_fragment(again) == audit._key_fragment(first)


#: What the key store accepts for a name or user id: a string that is not blank.
STORED = HOSTILE.filter(str.strip)


@settings(max_examples=60)  # an app per example
@given(name=STORED, user_id=STORED, path=HOSTILE)
def test_a_whole_line_is_what_json_dumps_writes(name: str, user_id: str, path: str) -> None:
    path = path.encode("utf-8", "surrogatepass").decode("utf-8", "replace")  # a URL's path
    keys = {"hostile-key": {"name": name, "userId": user_id, "role": "user"}}
    records = RecordingHandler()
    logger = audit.audit_log
    logger.addHandler(records)
    try:
        app = build_audit_app(keys)
        app.test_client().get(
            "/" + quote(path, safe=""),
            headers={"X-API-Key": "hostile-key", "X-Request-ID": "req-1"},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
    finally:
        logger.removeHandler(records)
    [record] = [r for r in records.records if r.name == audit.AUDIT_LOGGER]
    line = record.getMessage()
    event = json.loads(line)
    assert line == compact(event)  # the same bytes json.dumps would write for these values
    assert list(event) == list(AUDIT_FIELDS)
    # Werkzeug's request.path collapses leading slashes: "/" + "/x" is "/x".
    expected_path = "/" + path.lstrip("/")
    assert (event["name"], event["user_id"], event["path"]) == (name, user_id, expected_path)
    assert (event["event"], event["status"], event["request_id"]) == ("auth_success", 404, "req-1")
