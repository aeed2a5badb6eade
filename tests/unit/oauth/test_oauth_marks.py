"""One-time marks over the rate-limit storage: memory and a real Redis, failing closed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from limits.storage import MemoryStorage, Storage, storage_from_string
from support.servers import RedisServer

from flask_mcp_auth.oauth.marks import MarksUnavailable, UsedMarks


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        yield storage_from_string(server.url)


def test_a_token_id_is_spent_once(storage: Storage) -> None:
    marks = UsedMarks(storage)
    assert marks.spend("token-a", 60) is True
    assert marks.spend("token-a", 60) is False
    assert marks.spend("token-a", 60) is False
    assert marks.spend("token-b", 60) is True


def test_a_family_is_ended_and_others_are_not(storage: Storage) -> None:
    marks = UsedMarks(storage)
    assert marks.family_ended("family-a") is False
    marks.end_family("family-a", 600)
    assert marks.family_ended("family-a") is True
    assert marks.family_ended("family-b") is False
    marks.end_family("family-a", 600)  # ending it twice keeps it ended
    assert marks.family_ended("family-a") is True


def test_spending_and_ending_do_not_share_names(storage: Storage) -> None:
    marks = UsedMarks(storage)
    marks.end_family("same", 60)
    assert marks.spend("same", 60) is True
    assert UsedMarks(storage).spend("other", 60) is True
    assert marks.family_ended("other") is False


def test_two_prefixes_are_two_sets_of_marks(storage: Storage) -> None:
    one, two = UsedMarks(storage, "app-one"), UsedMarks(storage, "app-two")
    assert one.spend("token", 60) is True
    assert two.spend("token", 60) is True
    one.end_family("family", 60)
    assert two.family_ended("family") is False


def test_two_instances_over_one_storage_share_the_marks(storage: Storage) -> None:
    assert UsedMarks(storage, "p").spend("token", 60) is True
    assert UsedMarks(storage, "p").spend("token", 60) is False  # another worker, same storage


def test_the_marks_expire_no_sooner_than_asked(redis_server: RedisServer) -> None:
    UsedMarks(storage_from_string(redis_server.url), "p").spend("token", 59.2)
    client = redis_server.client()
    [name] = [n.decode() for n in client.keys("*")]
    assert name.endswith("p/mcp-auth/oauth/used/token")
    assert 59 <= client.ttl(name) <= 60  # rounded up to whole seconds


def test_a_tiny_lifetime_still_gets_a_whole_second(redis_server: RedisServer) -> None:
    UsedMarks(storage_from_string(redis_server.url)).spend("token", 0.01)
    client = redis_server.client()
    [name] = client.keys("*")
    assert client.ttl(name) == 1


class BrokenStorage(MemoryStorage):
    def incr(self, *args: object, **kwargs: object) -> int:
        raise ConnectionError("storage down")

    def get(self, *args: object, **kwargs: object) -> int:
        raise ConnectionError("storage down")


def test_a_storage_that_raises_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    marks = UsedMarks(BrokenStorage())
    with (
        caplog.at_level(logging.ERROR, logger="flask_mcp_auth.oauth"),
        pytest.raises(MarksUnavailable),
    ):
        marks.spend("token", 60)
    assert "failing closed" in caplog.text
    with pytest.raises(MarksUnavailable):
        marks.end_family("family", 60)
    with pytest.raises(MarksUnavailable):
        marks.family_ended("family")


def test_a_stopped_redis_fails_closed_and_a_restarted_one_serves_again(
    redis_server: RedisServer,
) -> None:
    marks = UsedMarks(storage_from_string(redis_server.url))
    assert marks.spend("before", 60) is True
    redis_server.stop()
    with pytest.raises(MarksUnavailable):
        marks.spend("during", 60)
    with pytest.raises(MarksUnavailable):
        marks.family_ended("family")
    with pytest.raises(MarksUnavailable):
        marks.end_family("family", 60)
    redis_server.start()  # an empty Redis (no persistence): the marks start over
    assert marks.spend("after", 60) is True
    assert marks.spend("after", 60) is False
