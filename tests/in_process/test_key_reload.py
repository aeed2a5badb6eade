"""MCP_API_KEYS_FILE and live reload in one process: start-up checks, add, revoke,
expire, broken edits, a vanished file, SIGHUP, and atomic swaps under concurrency."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.clocks import FakeClock
from support.keyfiles import write_atomically, write_in_place

from flask_mcp_auth import ConfigError, MCPAuth, generate_api_key
from flask_mcp_auth.keys.source import StoreSource, _signature

pytestmark = pytest.mark.usefixtures("restore_sighup")

# Plain key ids are secrets: no message may ever contain them.
OLD_ID = "old-key-7f3a9c2e51"
NEW_ID = "new-key-b41d0e8a66"
INLINE_ID = "inline-key-90c2d7f1e3"
ALL_IDS = (OLD_ID, NEW_ID, INLINE_ID)

OLD = {"name": "Old Connector", "userId": "old", "role": "user", "permissions": ["read"]}
NEW = {"name": "New Connector", "userId": "new", "role": "user", "permissions": ["read"]}
INLINE = {"name": "Inline Key", "userId": "inline", "role": "admin", "permissions": ["*"]}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    write_atomically(path, {OLD_ID: OLD})
    return path


@pytest.fixture
def file_app(make_app: Callable[..., Flask], key_file: Path) -> Callable[..., Flask]:
    """An app whose keys come from ``key_file``, checked on every request by default."""

    def factory(**config: Any) -> Flask:
        config.setdefault("MCP_API_KEYS_FILE", str(key_file))
        config.setdefault("MCP_API_KEYS_FILE_CHECK_INTERVAL", 0)
        return make_app(keys=config.pop("keys", None), **config)

    return factory


def who(app: Flask, key: str) -> tuple[int, str | None]:
    """(status, principal name) of the seed's curl test made with ``key``."""
    response = app.test_client().get("/mcp/status", headers={"X-API-Key": key})
    body = response.get_json()
    name = body["principal"]["name"] if response.status_code == 200 else body["error"]
    return response.status_code, name


def assert_no_key_id_in(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        for key_id in ALL_IDS:
            assert key_id not in record.getMessage()


# -- start-up -----------------------------------------------------------------


def test_keys_from_the_file_answer_the_seed_curl_test(file_app):
    app = file_app()
    assert who(app, OLD_ID) == (200, "Old Connector")
    assert who(app, "not-a-key") == (401, "invalid_api_key")


def test_file_from_the_environment(make_app, key_file, monkeypatch):
    monkeypatch.setenv("MCP_API_KEYS_FILE", str(key_file))
    assert who(make_app(keys=None), OLD_ID) == (200, "Old Connector")


def test_file_as_a_constructor_option_in_the_factory_pattern(key_file):
    auth = MCPAuth(api_keys_file=str(key_file), api_keys_file_check_interval=0)
    app = Flask(__name__)
    auth.init_app(app)
    assert who(app, OLD_ID) == (200, "Old Connector")
    write_atomically(key_file, {NEW_ID: NEW})
    assert who(app, NEW_ID) == (200, "New Connector")


def test_file_and_mcp_api_keys_combine(file_app):
    app = file_app(keys={INLINE_ID: INLINE})
    assert who(app, OLD_ID) == (200, "Old Connector")
    assert who(app, INLINE_ID) == (200, "Inline Key")


def test_signed_form_of_a_file_key_works(file_app):
    app = file_app(JWT_SECRET="rotation-secret")
    signed = generate_api_key(OLD_ID, "rotation-secret")
    assert who(app, signed) == (200, "Old Connector")


def test_same_key_id_in_both_refuses_to_start_naming_entries_not_the_id(file_app, key_file):
    with pytest.raises(ConfigError) as refused:
        file_app(keys={OLD_ID: INLINE})
    message = str(refused.value)
    assert str(key_file) in message
    assert "Old Connector" in message and "Inline Key" in message
    assert "also defined in MCP_API_KEYS" in message
    assert OLD_ID not in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({OLD_ID: {**OLD, "role": "superuser"}}, 'entry "Old Connector", field "role"'),
        ({OLD_ID: {**OLD, "expiresAt": "soon"}}, 'entry "Old Connector", field "expiresAt"'),
        ('{"' + OLD_ID + '": {"name": ', "is not valid JSON"),
        ("[1, 2]", "the top level must be a JSON object"),
        ("", "the file is empty"),
        ("  \n", "the file is empty"),
    ],
    ids=["bad-role", "bad-expiry", "truncated-json", "array", "empty", "blank"],
)
def test_invalid_file_refuses_to_start(file_app, key_file, content, expected):
    write_atomically(key_file, content)
    with pytest.raises(ConfigError) as refused:
        file_app()
    message = str(refused.value)
    assert message.startswith(f"MCP_API_KEYS_FILE ({key_file})")
    assert expected in message
    assert OLD_ID not in message


def test_file_messages_match_mcp_api_keys_messages(make_app, key_file):
    broken = {OLD_ID: {**OLD, "permisions": ["read"]}}
    with pytest.raises(ConfigError) as inline:
        make_app(keys=broken)
    write_atomically(key_file, broken)
    with pytest.raises(ConfigError) as from_file:
        make_app(keys=None, MCP_API_KEYS_FILE=str(key_file))
    assert str(from_file.value) == str(inline.value).replace(
        "MCP_API_KEYS:", f"MCP_API_KEYS_FILE ({key_file}):", 1
    )


def test_missing_file_refuses_to_start(file_app, tmp_path):
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ConfigError, match="cannot read the key file: No such file"):
        file_app(MCP_API_KEYS_FILE=str(missing))


@pytest.mark.parametrize("interval", ["-1", "soon", "nan", "inf"])
def test_bad_check_interval_refuses_to_start(file_app, monkeypatch, interval):
    monkeypatch.setenv("MCP_API_KEYS_FILE_CHECK_INTERVAL", interval)
    with pytest.raises(ConfigError, match="MCP_API_KEYS_FILE_CHECK_INTERVAL"):
        file_app(MCP_API_KEYS_FILE_CHECK_INTERVAL=None)


# -- live reload --------------------------------------------------------------


def test_added_key_works_at_the_next_check(file_app, key_file):
    app = file_app()
    assert who(app, NEW_ID)[0] == 401
    write_atomically(key_file, {OLD_ID: OLD, NEW_ID: NEW})
    assert who(app, NEW_ID) == (200, "New Connector")
    assert who(app, OLD_ID) == (200, "Old Connector")


def test_removed_key_is_refused_at_the_next_check(file_app, key_file):
    app = file_app()
    write_atomically(key_file, {NEW_ID: NEW})
    assert who(app, OLD_ID) == (401, "invalid_api_key")
    assert who(app, NEW_ID) == (200, "New Connector")


def test_expiry_moved_into_the_past_is_refused(file_app, key_file):
    app = file_app()
    write_atomically(key_file, {OLD_ID: {**OLD, "expiresAt": "2020-01-01T00:00:00Z"}})
    assert who(app, OLD_ID) == (401, "api_key_expired")


def test_in_place_rewrite_of_the_same_size_is_noticed(file_app, key_file):
    app = file_app()
    same_size = {OLD_ID: {**OLD, "name": "Old Connectoz"}}
    assert len(json.dumps(same_size, indent=2)) == key_file.stat().st_size
    write_in_place(key_file, same_size)
    assert who(app, OLD_ID) == (200, "Old Connectoz")


def test_mcp_api_keys_stay_in_force_across_reloads(file_app, key_file):
    app = file_app(keys={INLINE_ID: INLINE})
    write_atomically(key_file, {NEW_ID: NEW})
    assert who(app, INLINE_ID) == (200, "Inline Key")
    assert who(app, NEW_ID) == (200, "New Connector")


def test_broken_edit_keeps_the_last_good_store_and_logs_the_startup_message_once(
    file_app, key_file, caplog
):
    app = file_app()
    broken = {OLD_ID: OLD, NEW_ID: {**NEW, "role": "root"}}
    write_atomically(key_file, broken)
    with pytest.raises(ConfigError) as at_startup:
        StoreSource(path=key_file)

    caplog.set_level(logging.INFO, logger="flask_mcp_auth")
    for _ in range(3):
        assert who(app, OLD_ID) == (200, "Old Connector")
        assert who(app, NEW_ID)[0] == 401

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert str(at_startup.value) in errors[0].getMessage()
    assert 'entry "New Connector", field "role"' in errors[0].getMessage()
    assert "keeping the last good key store" in errors[0].getMessage()

    write_atomically(key_file, {OLD_ID: OLD, NEW_ID: NEW})
    assert who(app, NEW_ID) == (200, "New Connector")
    assert_no_key_id_in(caplog)


def test_truncated_file_mid_edit_locks_nobody_out(file_app, key_file):
    app = file_app()
    write_in_place(key_file, "")  # an editor has truncated the file, not yet written it
    assert who(app, OLD_ID) == (200, "Old Connector")
    write_in_place(key_file, '{"' + OLD_ID + '": {"name": "Old')  # half written
    assert who(app, OLD_ID) == (200, "Old Connector")
    write_in_place(key_file, {NEW_ID: NEW})
    assert who(app, OLD_ID)[0] == 401
    assert who(app, NEW_ID) == (200, "New Connector")


def test_explicit_empty_object_revokes_every_key(file_app, key_file):
    app = file_app()
    write_atomically(key_file, {})
    assert who(app, OLD_ID)[0] == 401


def test_key_id_moved_into_mcp_api_keys_on_reload_is_kept_out(file_app, key_file, caplog):
    app = file_app(keys={INLINE_ID: INLINE})
    caplog.set_level(logging.ERROR, logger="flask_mcp_auth")
    write_atomically(key_file, {OLD_ID: OLD, INLINE_ID: NEW})
    assert who(app, OLD_ID) == (200, "Old Connector")
    assert who(app, INLINE_ID) == (200, "Inline Key")
    [error] = caplog.records
    assert "also defined in MCP_API_KEYS" in error.getMessage()
    assert_no_key_id_in(caplog)


def test_removed_file_keeps_the_store_and_logs_once_per_outage(file_app, key_file, caplog):
    app = file_app()
    caplog.set_level(logging.INFO, logger="flask_mcp_auth")
    key_file.unlink()
    for _ in range(3):
        assert who(app, OLD_ID) == (200, "Old Connector")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "cannot read the key file: No such file or directory" in errors[0].getMessage()
    assert str(key_file) in errors[0].getMessage()

    write_atomically(key_file, {NEW_ID: NEW})
    assert who(app, NEW_ID) == (200, "New Connector")
    assert who(app, OLD_ID)[0] == 401
    assert any("readable again" in r.getMessage() for r in caplog.records)

    key_file.unlink()  # a second outage is reported again
    assert who(app, NEW_ID) == (200, "New Connector")
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    assert_no_key_id_in(caplog)


def test_reload_log_names_changes_by_label(file_app, key_file, caplog):
    app = file_app()
    caplog.set_level(logging.INFO, logger="flask_mcp_auth")
    write_atomically(key_file, {NEW_ID: NEW})
    who(app, NEW_ID)
    [reloaded] = [r for r in caplog.records if "reloaded" in r.getMessage()]
    assert "added New Connector [" in reloaded.getMessage()
    assert "removed Old Connector [" in reloaded.getMessage()
    assert_no_key_id_in(caplog)


# -- how often the file is checked ---------------------------------------------


def test_file_is_checked_at_most_once_per_interval(key_file):
    clock = FakeClock()
    source = StoreSource(path=key_file, check_interval=1.0, clock=clock)
    write_atomically(key_file, {NEW_ID: NEW})
    clock.advance(0.99)
    assert source.current().contains(OLD_ID)  # not yet looked at the file
    clock.advance(0.02)
    store = source.current()
    assert store.contains(NEW_ID) and not store.contains(OLD_ID)


def test_default_interval_is_one_second(make_app, key_file):
    app = make_app(keys=None, MCP_API_KEYS_FILE=str(key_file))
    assert (
        app.extensions["mcp_auth"].state_for(app).settings["MCP_API_KEYS_FILE_CHECK_INTERVAL"]
        == 1.0
    )


def test_sighup_makes_the_next_request_reread_the_file(file_app, key_file):
    app = file_app(MCP_API_KEYS_FILE_CHECK_INTERVAL=3600)
    write_atomically(key_file, {NEW_ID: NEW})
    assert who(app, OLD_ID)[0] == 200  # the hour has not passed
    os.kill(os.getpid(), signal.SIGHUP)
    assert who(app, OLD_ID)[0] == 401
    assert who(app, NEW_ID) == (200, "New Connector")


def make_old(path: Path) -> None:
    """Give the file a modification time an hour ago (so it is not 'racy')."""
    an_hour_ago = path.stat().st_mtime - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))


def rewrite_behind_stats_back(source: StoreSource, path: Path, keys: Any) -> None:
    """Rewrite in place, then make the recorded signature match what stat() says now,
    as on a file system whose coarse timestamps hide a same-size rewrite."""
    write_in_place(path, keys)
    make_old(path)
    source._signature = _signature(os.stat(path))


def test_sighup_rereads_even_when_the_metadata_look_unchanged(key_file):
    make_old(key_file)
    clock = FakeClock()
    source = StoreSource(path=key_file, check_interval=1.0, clock=clock)
    rewrite_behind_stats_back(source, key_file, {NEW_ID: NEW})
    clock.advance(5)
    assert source.current().contains(OLD_ID)  # stat() saw nothing, so nothing was read
    source.request_reload()  # what the SIGHUP handler does
    assert source.current().contains(NEW_ID)


def test_recently_modified_file_is_compared_by_content_at_the_next_check(key_file):
    clock = FakeClock()
    source = StoreSource(path=key_file, check_interval=1.0, clock=clock)  # just written
    write_in_place(key_file, {NEW_ID: NEW})
    source._signature = _signature(os.stat(key_file))  # coarse timestamps hid the rewrite
    clock.advance(1)
    assert source.current().contains(NEW_ID)


def test_reload_request_without_a_file_changes_nothing(make_app):
    app = make_app()  # keys from MCP_API_KEYS only
    app.extensions["mcp_auth"].state_for(app).keys.request_reload()
    assert who(app, "chatgpt-connector-key") == (200, "ChatGPT Connector")


def test_sighup_handler_of_someone_else_is_left_alone(file_app):
    def theirs(signum: int, frame: Any) -> None:
        pass

    signal.signal(signal.SIGHUP, theirs)
    file_app()
    assert signal.getsignal(signal.SIGHUP) is theirs


def test_sighup_is_not_taken_when_disabled_or_without_a_file(file_app, make_app):
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    file_app(MCP_API_KEYS_RELOAD_ON_SIGHUP="false")
    make_app()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL


def test_forked_child_reloads_even_if_a_thread_was_checking_at_fork(key_file):
    clock = FakeClock()
    source = StoreSource(path=key_file, check_interval=1.0, clock=clock)
    write_atomically(key_file, {NEW_ID: NEW})
    clock.advance(5)
    with source._lock:  # as if another thread were mid-check when the server forked
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os._exit(0 if source.current().contains(NEW_ID) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- atomic swap under concurrent requests ------------------------------------

GENERATIONS = 16
KEYS_PER_GENERATION = 40


def generation(number: int) -> dict[str, Any]:
    """Key i exists in generation g unless (i + g) % 3 == 0; every name says its generation."""
    return {
        f"swap-key-{i:03d}": {"name": f"gen-{number}", "role": "user", "permissions": ["read"]}
        for i in range(KEYS_PER_GENERATION)
        if (i + number) % 3 != 0
    }


def generations_consistent_with(key_id: str, status: int, name: str | None) -> set[int]:
    if status == 200:
        assert name is not None and name.startswith("gen-")
        number = int(name.removeprefix("gen-"))
        assert key_id in generation(number), "a key answered with another generation's entry"
        return {number}
    assert status == 401
    return {g for g in range(GENERATIONS) if key_id not in generation(g)}


def test_concurrent_requests_see_the_old_or_the_new_store_never_a_mix(make_app, key_file):
    write_atomically(key_file, generation(0))
    app = make_app(
        keys=None,
        MCP_API_KEYS_FILE=str(key_file),
        MCP_API_KEYS_FILE_CHECK_INTERVAL=0,
        # Keys come and go with the generations: refusals here are not an attack.
        MCP_AUTH_FAILURE_LIMIT="off",
    )
    errors: list[str] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        client = app.test_client()
        oldest_possible = 0  # generations only move forward, in every thread
        try:
            while not stop.is_set():
                key_id = f"swap-key-{rng.randrange(KEYS_PER_GENERATION):03d}"
                response = client.get("/mcp/status", headers={"X-API-Key": key_id})
                body = response.get_json()
                name = body["principal"]["name"] if response.status_code == 200 else None
                possible = generations_consistent_with(key_id, response.status_code, name)
                later = {g for g in possible if g >= oldest_possible}
                assert later, f"{key_id}: {response.status_code} {name} after gen {oldest_possible}"
                oldest_possible = min(later)
        except AssertionError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    try:
        for number in range(1, GENERATIONS):
            write_atomically(key_file, generation(number))
            # Let the readers meet this generation before the next one replaces it.
            probe = next(iter(generation(number)))
            # Bounded, not timed: the checking thread may wait for the GIL a while.
            deadline = time.monotonic() + 20
            while who(app, probe) != (200, f"gen-{number}"):
                assert time.monotonic() < deadline, f"generation {number} never came into force"
                time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors[:5]
    assert who(app, "swap-key-001") == (200, f"gen-{GENERATIONS - 1}")
