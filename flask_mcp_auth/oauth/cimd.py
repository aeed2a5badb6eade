"""Client-id metadata documents: an ``https://`` URL as an OAuth ``client_id``.

draft-ietf-oauth-client-id-metadata-document (used by Claude and ChatGPT) lets a client
name itself by a URL that serves its RFC 7591 metadata as JSON. Fetching a URL a stranger
chose invites server-side request forgery, so ``MetadataDocuments.get``:

- takes only ``https://`` URLs with a path, and no fragment, userinfo or dot segments;
- resolves the host once and refuses private, loopback, link-local, multicast, reserved
  and unspecified addresses (IPv4-mapped and 6to4 IPv6 too), then connects to the very
  address it checked, sending the ``Host`` header and doing TLS with SNI and certificate
  verification against the host name, so a second DNS answer cannot point elsewhere;
- does **not follow redirects**: a 3xx is an error;
- reads at most ``max_bytes`` of body, all within ``timeout`` seconds (DNS included);
- wants a 200 JSON object, at most 8 levels deep, 100 keys and 50 redirect URIs;
- caches documents (``Cache-Control: max-age``, else ``cache_ttl``; at most 24 hours, at
  least ``failure_ttl``) and failures (``failure_ttl``), so a hostile URL cannot make every
  request refetch, and fetches a URL once however many requests ask for it at a time.

``allow_private=True`` (``MCP_OAUTH_CIMD_ALLOW_PRIVATE``, for tests and intranets) admits
private and loopback addresses, and ``http://`` client ids whose host is loopback.
Link-local (cloud metadata), multicast, reserved and unspecified addresses stay refused.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

logger = logging.getLogger("flask_mcp_auth.oauth")

_MAX_URL = 2048
_MAX_DEPTH = 8
_MAX_KEYS = 100
_MAX_REDIRECT_URIS = 50
_MAX_LIFETIME = 24 * 3600.0
_UNSAFE_URL_CHARACTER = re.compile(r"[\x00-\x20\x7f\\#]")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


class ClientMetadataError(Exception):
    """A client id whose metadata document cannot be used; ``str()`` is safe to show."""


@dataclass(frozen=True)
class ClientMetadata:
    """The fields of a client metadata document this package uses, checked."""

    client_id: str
    client_name: str | None
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str = "none"
    grant_types: tuple[str, ...] = ("authorization_code",)
    response_types: tuple[str, ...] = ("code",)
    #: As the document gave them: unverified, for display only.
    client_uri: str | None = None
    logo_uri: str | None = None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4-mapped IPv6 address reaches the IPv4 address: judge that one.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_allowed(address: str, allow_private: bool = False) -> bool:
    """Whether a resolved address may be fetched from (``allow_private``: private too)."""
    ip = _ip(address)
    if ip is None:
        return False
    # A 6to4 address is relayed to the IPv4 address inside it: that one must pass too.
    sixtofour = ip.sixtofour if isinstance(ip, ipaddress.IPv6Address) else None
    if sixtofour is not None and not address_allowed(str(sixtofour), allow_private):
        return False
    if ip.is_loopback:
        return allow_private
    if ip.is_unspecified or ip.is_link_local or ip.is_multicast or ip.is_reserved:
        return False
    if ip in _THIS_NETWORK:  # 0.0.0.0/8 reaches this host on some systems
        return False
    # is_global also leaves out ranges that are neither (100.64.0.0/10, shared NAT space).
    return allow_private or (ip.is_global and not ip.is_private)


def _is_loopback_host(host: str) -> bool:
    ip = _ip(host)
    return host == "localhost" if ip is None else ip.is_loopback


def _target(client_id: str, allow_private: bool) -> SplitResult | None:
    if len(client_id) > _MAX_URL or not client_id.isascii():
        return None
    if _UNSAFE_URL_CHARACTER.search(client_id):
        return None
    try:
        parts = urlsplit(client_id)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if not parts.hostname or "@" in parts.netloc or parts.path in ("", "/"):
        return None
    segments = parts.path.lower().replace("%2e", ".").split("/")
    if "." in segments or ".." in segments:
        return None
    if parts.scheme == "https":
        return parts
    if parts.scheme == "http" and allow_private and _is_loopback_host(parts.hostname):
        return parts
    return None


def is_metadata_document_url(client_id: str, allow_private: bool) -> bool:
    """Whether ``get`` would fetch ``client_id`` (addresses are checked only then)."""
    return _target(client_id, allow_private) is not None


def _lifetime(cache_control: str | None, default: float, floor: float) -> float:
    """How long a document is kept: its ``max-age`` (``no-store``: 0), else ``default``."""
    seconds = default
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            seconds = 0.0
        elif name == "max-age" and value.strip().strip('"').isdigit():
            seconds = float(value.strip().strip('"'))
    # The floor keeps a hostile max-age=0 from making every request refetch.
    return min(max(seconds, floor), _MAX_LIFETIME)


def _strings(document: dict[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ClientMetadataError(
            f"{name} in the client metadata document is not a list of strings"
        )
    return tuple(value)


def _optional_string(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is not None and not isinstance(value, str):
        raise ClientMetadataError(f"{name} in the client metadata document is not a string")
    return value


def _check_shape(document: object) -> None:
    keys = 0
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > _MAX_DEPTH:
            raise ClientMetadataError("the client metadata document is nested too deeply")
        children = list(value.values()) if isinstance(value, dict) else value
        if isinstance(value, dict):
            keys += len(value)
        if keys > _MAX_KEYS:
            raise ClientMetadataError("the client metadata document has too many keys")
        if isinstance(children, list):
            pending.extend((child, depth + 1) for child in children)


def _refuse_constant(name: str) -> None:
    raise ValueError(name)


def parse_document(client_id: str, body: bytes) -> ClientMetadata:
    """The checked metadata in ``body``, the document fetched from ``client_id``."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise ClientMetadataError("the client metadata document is not valid JSON") from None
    if not isinstance(document, dict):
        raise ClientMetadataError("the client metadata document is not a JSON object")
    _check_shape(document)
    if document.get("client_id") != client_id:
        raise ClientMetadataError("the client metadata document names a different client_id")
    redirect_uris = _strings(document, "redirect_uris", ())
    if not redirect_uris or len(redirect_uris) > _MAX_REDIRECT_URIS:
        raise ClientMetadataError("the client metadata document needs 1 to 50 redirect_uris")
    if any(not urlsplit(uri).scheme or "#" in uri for uri in redirect_uris):
        raise ClientMetadataError("a redirect_uri is not an absolute URI without a fragment")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientMetadataError('only public clients (token_endpoint_auth_method "none")')
    return ClientMetadata(
        client_id=client_id,
        client_name=_optional_string(document, "client_name"),
        redirect_uris=redirect_uris,
        grant_types=_strings(document, "grant_types", ("authorization_code",)),
        response_types=_strings(document, "response_types", ("code",)),
        client_uri=_optional_string(document, "client_uri"),
        logo_uri=_optional_string(document, "logo_uri"),
    )


class MetadataDocuments:
    """Fetches, checks and caches client metadata documents; safe across threads."""

    def __init__(
        self,
        allow_private: bool = False,
        timeout: float = 5.0,
        max_bytes: int = 5120,
        cache_ttl: float = 300.0,
        max_entries: int = 1024,
        *,
        failure_ttl: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.cache_ttl = cache_ttl
        self.max_entries = max_entries
        self.failure_ttl = failure_ttl
        self._ssl = ssl_context or ssl.create_default_context()
        self._lock = threading.Lock()
        # client id -> (expiry, outcome); a str outcome is the message of a cached failure
        self._cache: OrderedDict[str, tuple[float, ClientMetadata | str]] = OrderedDict()
        self._pending: dict[str, Future[ClientMetadata | str]] = {}
        # getaddrinfo has no timeout: a few threads run it so that the deadline holds.
        self._resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cimd-dns")

    def get(self, client_id: str) -> ClientMetadata:
        """The checked metadata of ``client_id``; raises ``ClientMetadataError``."""
        target = _target(client_id, self.allow_private)
        if target is None:
            raise ClientMetadataError("client_id is not a URL of a client metadata document")
        with self._lock:
            entry = self._cache.get(client_id)
            if entry is not None and entry[0] > time.monotonic():
                return _unwrap(entry[1])
            pending = self._pending.get(client_id)
            if pending is None:  # this thread fetches; others asking meanwhile wait for it
                future: Future[ClientMetadata | str] = Future()
                self._pending[client_id] = future
        if pending is not None:
            try:
                return _unwrap(pending.result(timeout=self.timeout + 1.0))
            except TimeoutError:
                raise ClientMetadataError(
                    "fetching the client metadata document timed out"
                ) from None
        outcome: ClientMetadata | str = "the client metadata document could not be fetched"
        lifetime = self.failure_ttl
        try:
            outcome, lifetime = self._fetch(client_id, target)
        except Exception:  # a bug is logged, cached as a failure, and never leaves waiters
            logger.exception("client metadata document %s: unexpected error", client_id)
        finally:
            with self._lock:
                self._cache.pop(client_id, None)
                while self._cache and len(self._cache) >= self.max_entries:
                    self._cache.popitem(last=False)  # the oldest entry
                self._cache[client_id] = (time.monotonic() + lifetime, outcome)
                del self._pending[client_id]
            future.set_result(outcome)
        return _unwrap(outcome)

    def _fetch(self, client_id: str, target: SplitResult) -> tuple[ClientMetadata | str, float]:
        started = time.monotonic()
        try:
            body, cache_control = self._download(target, started + self.timeout)
            metadata = parse_document(client_id, body)
        except ClientMetadataError as error:
            logger.debug("client metadata document %s: %s", client_id, error)
            return str(error), self.failure_ttl
        lifetime = _lifetime(cache_control, self.cache_ttl, self.failure_ttl)
        logger.debug(
            "fetched client metadata document %s in %.3fs", client_id, time.monotonic() - started
        )
        return metadata, lifetime

    def _download(self, target: SplitResult, deadline: float) -> tuple[bytes, str | None]:
        host, https = target.hostname or "", target.scheme == "https"
        port = target.port or (443 if https else 80)
        lookup = self._resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            addresses = lookup.result(timeout=max(deadline - time.monotonic(), 0.0))
        except TimeoutError:
            lookup.cancel()
            raise ClientMetadataError("resolving the client_id host timed out") from None
        except (OSError, UnicodeError):
            raise ClientMetadataError("the client_id host does not resolve") from None
        for *_, sockaddr in addresses:
            ip = str(sockaddr[0])
            # An http client id is admitted only for a loopback host: it must stay there.
            if not address_allowed(ip, self.allow_private) or not (https or _is_loopback_host(ip)):
                raise ClientMetadataError("the client_id host has a private or reserved address")
        raw = _connect(addresses, deadline)
        # Per-read timeouts cannot bound a server that drips bytes: at the deadline the
        # watchdog shuts the socket down, which ends any read in progress.
        watched, fired = raw.dup(), threading.Event()
        remaining = max(deadline - time.monotonic(), 0.0)
        watchdog = threading.Timer(remaining, _shut, [watched, fired])
        watchdog.start()
        try:
            answer = self._exchange(target, raw)
        except (OSError, http.client.HTTPException, ClientMetadataError) as error:
            raise ClientMetadataError(_failure(error, fired.is_set())) from None
        finally:
            watchdog.cancel()
            watched.close()
            raw.close()
        if fired.is_set():  # a shut socket reads as the end of the body: it is not
            raise ClientMetadataError("fetching the client metadata document timed out")
        return answer

    def _exchange(self, target: SplitResult, raw: socket.socket) -> tuple[bytes, str | None]:
        host = target.hostname or ""
        sock = raw if target.scheme == "http" else self._ssl.wrap_socket(raw, server_hostname=host)
        connection = http.client.HTTPConnection(host, target.port or 0)
        connection.sock = sock  # already connected, to the address that was checked
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            headers = {"Host": target.netloc, "Accept": "application/json", "Connection": "close"}
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            if 300 <= response.status < 400:
                raise ClientMetadataError(f"redirects are not followed (HTTP {response.status})")
            if response.status != 200:
                raise ClientMetadataError(
                    f"the client metadata document URL answered HTTP {response.status}"
                )
            kind = (response.getheader("Content-Type") or "").partition(";")[0].strip().lower()
            if kind != "application/json" and not kind.endswith("+json"):
                raise ClientMetadataError("the client metadata document is not served as JSON")
            too_large = f"the client metadata document is larger than {self.max_bytes} bytes"
            if (response.length or 0) > self.max_bytes:
                raise ClientMetadataError(too_large)
            body = b""
            while chunk := response.read(min(4096, self.max_bytes + 1 - len(body))):
                body += chunk
                if len(body) > self.max_bytes:
                    raise ClientMetadataError(too_large)
            if response.length:
                raise ClientMetadataError("the client metadata document ended early")
            return body, response.getheader("Cache-Control")
        finally:
            connection.close()


def _connect(addresses: list[Any], deadline: float) -> socket.socket:
    """A socket connected to the first of ``addresses`` that answers before the deadline."""
    for family, kind, proto, _, sockaddr in addresses:
        raw = socket.socket(family, kind, proto)
        try:
            raw.settimeout(max(deadline - time.monotonic(), 0.001))
            raw.connect(sockaddr)
        except OSError:
            raw.close()
            continue
        return raw
    raise ClientMetadataError("could not connect to the client_id host")


def _failure(error: Exception, timed_out: bool) -> str:
    """The message for a fetch that failed with ``error``; the watchdog's doing first."""
    if timed_out or isinstance(error, TimeoutError):
        return "fetching the client metadata document timed out"
    if isinstance(error, ClientMetadataError):
        return str(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        return "the TLS certificate of the client_id host could not be verified"
    if isinstance(error, ssl.SSLError):
        return "TLS with the client_id host failed"
    return "fetching the client metadata document failed"


def _shut(sock: socket.socket, fired: threading.Event) -> None:
    fired.set()
    with contextlib.suppress(OSError):  # already closed: nothing to stop
        sock.shutdown(socket.SHUT_RDWR)


def _unwrap(outcome: ClientMetadata | str) -> ClientMetadata:
    if isinstance(outcome, str):
        raise ClientMetadataError(outcome)
    return outcome
