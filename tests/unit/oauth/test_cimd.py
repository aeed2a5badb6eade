"""Client-id metadata documents, fetched from real local servers (no mocked network).

Each test starts an HTTP server on 127.0.0.1 in a thread; the server counts the
connections it accepts and the requests each path gets, so a test can tell a cached
answer from a fetch and a refusal made before connecting from one made after.
"""

from __future__ import annotations

import datetime
import json
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flask_mcp_auth.oauth.cimd import (
    ClientMetadata,
    ClientMetadataError,
    MetadataDocuments,
    _lifetime,
    address_allowed,
    is_metadata_document_url,
    parse_document,
)

REDIRECT = "http://127.0.0.1:33418/callback"


class DocumentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        self.connections = 0
        self.hits: Counter[str] = Counter()
        self.hosts: list[str] = []
        self.scheme = "http"

    def url(self, path: str, host: str = "127.0.0.1", scheme: str | None = None) -> str:
        return f"{scheme or self.scheme}://{host}:{self.port}{path}"

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up mid-answer is expected here."""


def document(client_id: str, **fields: Any) -> dict[str, Any]:
    return {"client_id": client_id, "client_name": "Test client", "redirect_uris": [REDIRECT]} | (
        fields
    )


class Handler(BaseHTTPRequestHandler):
    server: DocumentServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(
        self, body: bytes, kind: str = "application/json", status: int = 200, **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if "Content_Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        self.server.hits[path] += 1
        self.server.hosts.append(self.headers["Host"])
        own = f"{self.server.scheme}://{self.headers['Host']}{path}"
        valid = json.dumps(document(own)).encode()
        if path.startswith("/doc/"):
            self.answer(valid)
        elif path == "/max-age":
            self.answer(valid, Cache_Control="public, max-age=0")
        elif path == "/vendor":
            extra = {"grant_types": ["authorization_code", "refresh_token"], "unknown": {"a": 1}}
            body = json.dumps(document(own, logo_uri="https://x.example/l.png", **extra))
            self.answer(body.encode(), "application/oauth-client-metadata+json; charset=utf-8")
        elif path == "/other-id":
            self.answer(json.dumps(document(own + "-other")).encode())
        elif path == "/large":
            self.answer(json.dumps(document(own, client_name="x" * 6000)).encode())
        elif path == "/large-unsized":  # HTTP/1.0: the body ends when the connection does
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(document(own, client_name="x" * 6000)).encode())
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(valid)))
            self.end_headers()
            self.wfile.flush()
            time.sleep(3)
            self.wfile.write(valid)
        elif path == "/drip":  # each byte well within a read timeout, the whole far past it
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            for byte in valid:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        elif path == "/short":  # fewer bytes than the Content-Length promised
            self.answer(valid[:-5], Content_Length=str(len(valid)))
        elif path == "/slow-ok":
            time.sleep(0.3)
            self.answer(valid)
        elif path == "/redirect":
            self.answer(b"", status=302, Location=self.server.url("/doc/target"))
        elif path == "/not-json":
            self.answer(b"{not json")
        elif path == "/nan":
            self.answer(valid.replace(b'"Test client"', b"NaN"))
        elif path == "/nested":
            deep: Any = "leaf"
            for _ in range(12):
                deep = {"d": deep}
            self.answer(json.dumps(document(own, extra=deep)).encode())
        elif path == "/brackets":
            self.answer(b"[" * 4000)
        elif path == "/many-keys":
            self.answer(json.dumps(document(own, **{f"k{n}": n for n in range(120)})).encode())
        elif path == "/array":
            self.answer(b"[]")
        elif path == "/text":
            self.answer(valid, "text/html")
        elif path == "/confidential":
            body = document(own, token_endpoint_auth_method="client_secret_basic")
            self.answer(json.dumps(body).encode())
        elif path == "/no-redirect-uris":
            self.answer(json.dumps(document(own, redirect_uris=[])).encode())
        elif path == "/redirect-uris-string":
            self.answer(json.dumps(document(own, redirect_uris=REDIRECT)).encode())
        elif path == "/name-number":
            self.answer(json.dumps(document(own, client_name=7)).encode())
        else:
            self.answer(b'{"error": "secret body text"}', status=404)


@pytest.fixture
def server() -> Iterator[DocumentServer]:
    running = DocumentServer()
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture
def documents() -> MetadataDocuments:
    return MetadataDocuments(allow_private=True, timeout=1.0)


def refusal(documents: MetadataDocuments, client_id: str) -> str:
    with pytest.raises(ClientMetadataError) as raised:
        documents.get(client_id)
    return str(raised.value)


# -- fetching ------------------------------------------------------------------------


def test_a_valid_document_is_fetched_once_then_cached(server, documents):
    url = server.url("/doc/a")
    metadata = documents.get(url)
    assert metadata == ClientMetadata(
        client_id=url,
        client_name="Test client",
        redirect_uris=(REDIRECT,),
        token_endpoint_auth_method="none",
        grant_types=("authorization_code",),
        response_types=("code",),
    )
    assert documents.get(url) is metadata
    assert server.hits["/doc/a"] == 1
    assert server.hosts == [f"127.0.0.1:{server.port}"]


def test_json_suffix_types_optional_fields_and_unknown_fields(server, documents):
    metadata = documents.get(server.url("/vendor"))
    assert metadata.grant_types == ("authorization_code", "refresh_token")
    assert metadata.logo_uri == "https://x.example/l.png"
    assert metadata.client_uri is None


def test_localhost_over_http_is_fetched_with_its_host_header(server, documents):
    url = server.url("/doc/named", host="localhost")
    assert documents.get(url).client_id == url
    assert server.hosts == [f"localhost:{server.port}"]


def test_each_fetch_logs_one_debug_line_without_the_body(server, documents, caplog):
    caplog.set_level(logging.DEBUG, logger="flask_mcp_auth.oauth")
    documents.get(server.url("/doc/logged"))
    with pytest.raises(ClientMetadataError):
        documents.get(server.url("/missing"))
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert "fetched client metadata document" in lines[0]
    assert "HTTP 404" in lines[1]
    assert not any("secret body text" in line or "Test client" in line for line in lines)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/other-id", "names a different client_id"),
        ("/large", "larger than 5120 bytes"),
        ("/large-unsized", "larger than 5120 bytes"),
        ("/short", "ended early"),
        ("/redirect", "redirects are not followed (HTTP 302)"),
        ("/not-json", "not valid JSON"),
        ("/nan", "not valid JSON"),
        ("/nested", "nested too deeply"),
        ("/brackets", "not valid JSON"),
        ("/many-keys", "too many keys"),
        ("/array", "not a JSON object"),
        ("/text", "not served as JSON"),
        ("/missing", "answered HTTP 404"),
        ("/confidential", "only public clients"),
        ("/no-redirect-uris", "1 to 50 redirect_uris"),
        ("/redirect-uris-string", "redirect_uris in the client metadata document is not a list"),
        ("/name-number", "client_name in the client metadata document is not a string"),
    ],
)
def test_a_bad_document_is_refused_with_a_clear_message(server, documents, path, message):
    text = refusal(documents, server.url(path))
    assert message in text
    assert "secret body text" not in text
    assert server.hits[path] == 1


def test_the_redirect_target_is_not_fetched(server, documents):
    refusal(documents, server.url("/redirect"))
    assert server.hits["/doc/target"] == 0


@pytest.mark.parametrize("path", ["/slow", "/drip"])
def test_the_time_limit_covers_the_whole_fetch(server, path):
    documents = MetadataDocuments(allow_private=True, timeout=0.5)
    started = time.monotonic()
    assert "timed out" in refusal(documents, server.url(path))
    assert time.monotonic() - started < 1.5


def test_failures_are_cached_briefly(server):
    documents = MetadataDocuments(allow_private=True, timeout=1.0, failure_ttl=0.3)
    first = refusal(documents, server.url("/missing"))
    assert refusal(documents, server.url("/missing")) == first
    assert server.hits["/missing"] == 1
    time.sleep(0.4)
    refusal(documents, server.url("/missing"))
    assert server.hits["/missing"] == 2


def test_max_age_is_honoured_above_the_failure_floor(server):
    documents = MetadataDocuments(allow_private=True, timeout=1.0, failure_ttl=0.3)
    documents.get(server.url("/max-age"))
    documents.get(server.url("/max-age"))
    assert server.hits["/max-age"] == 1
    time.sleep(0.4)
    documents.get(server.url("/max-age"))
    assert server.hits["/max-age"] == 2


def test_the_cache_evicts_its_oldest_entry(server):
    documents = MetadataDocuments(allow_private=True, timeout=1.0, max_entries=2)
    for name in ("a", "b", "c"):
        documents.get(server.url(f"/doc/{name}"))
    documents.get(server.url("/doc/c"))
    documents.get(server.url("/doc/a"))
    assert server.hits == Counter({"/doc/a": 2, "/doc/b": 1, "/doc/c": 1})


def test_concurrent_requests_for_one_url_fetch_it_once(server, documents):
    results: list[ClientMetadata] = []
    threads = [
        threading.Thread(target=lambda: results.append(documents.get(server.url("/slow-ok"))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert len({id(result) for result in results}) == 1
    assert server.hits["/slow-ok"] == 1


def test_https_to_a_server_without_tls_fails_cleanly(server, documents):
    assert "TLS" in refusal(documents, server.url("/doc/a", scheme="https"))


@pytest.mark.parametrize(
    ("cache_control", "expected"),
    [
        (None, 300.0),
        ("max-age=600", 600.0),
        ('public, max-age="120"', 120.0),
        ("max-age=0", 30.0),
        ("no-store", 30.0),
        ("max-age=999999", 86400.0),
        ("max-age=junk", 300.0),
    ],
)
def test_cache_lifetimes(cache_control, expected):
    assert _lifetime(cache_control, 300.0, 30.0) == expected


def test_parse_document_applies_the_defaults():
    body = json.dumps({"client_id": "https://c.example/m", "redirect_uris": [REDIRECT]})
    metadata = parse_document("https://c.example/m", body.encode())
    assert metadata.client_name is None
    assert metadata.token_endpoint_auth_method == "none"
    assert (metadata.grant_types, metadata.response_types) == (("authorization_code",), ("code",))


# -- refused before connecting --------------------------------------------------------


@pytest.mark.parametrize(
    "client_id",
    [
        "https://127.0.0.1:{port}/doc/a",
        "https://localhost:{port}/doc/a",
        "https://[::ffff:127.0.0.1]:{port}/doc/a",
        "https://[::1]:{port}/doc/a",
        "https://10.0.0.1/x",
        "https://192.168.0.10/x",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0:{port}/doc/a",
        "https://[fe80::1]/x",
    ],
)
def test_private_addresses_are_refused_before_connecting(server, client_id):
    documents = MetadataDocuments(timeout=1.0)
    started = time.monotonic()
    text = refusal(documents, client_id.format(port=server.port))
    assert text == "the client_id host has a private or reserved address"
    assert time.monotonic() - started < 0.5
    assert server.connections == 0


def test_http_on_loopback_is_not_a_document_url_without_allow_private(server):
    text = refusal(MetadataDocuments(), server.url("/doc/a"))
    assert text == "client_id is not a URL of a client metadata document"
    assert server.connections == 0


def test_link_local_stays_refused_with_allow_private():
    documents = MetadataDocuments(allow_private=True, timeout=1.0)
    assert "private or reserved" in refusal(documents, "https://169.254.169.254/x")


def test_an_unresolvable_host_is_refused():
    documents = MetadataDocuments(timeout=2.0)
    text = refusal(documents, "https://name.invalid/client")
    # Without a network the resolver may give up only after the time limit.
    assert text in (
        "the client_id host does not resolve",
        "resolving the client_id host timed out",
    )


@pytest.mark.parametrize(
    ("client_id", "allow_private", "expected"),
    [
        ("https://client.example/metadata.json", False, True),
        ("https://client.example/m?v=1", False, True),
        ("https://client.example:8443/m", False, True),
        ("https://10.0.0.1/m", False, True),  # addresses are judged when fetching
        ("https://client.example", False, False),
        ("https://client.example/", False, False),
        ("https://client.example/m#part", False, False),
        ("https://client.example/m#", False, False),
        ("https://user@client.example/m", False, False),
        ("https://user:pw@client.example/m", False, False),
        ("https://client.example/a/../m", False, False),
        ("https://client.example/./m", False, False),
        ("https://client.example/a/%2E%2e/m", False, False),
        ("https://client.example/a\\b", False, False),
        ("https://client.example/a b", False, False),
        ("https://client.example/caf\u00e9", False, False),
        ("https://client.example:99999/m", False, False),
        ("https:///m", False, False),
        ("https://client.example/" + "a" * 2100, False, False),
        ("http://client.example/m", False, False),
        ("http://client.example/m", True, False),
        ("http://10.0.0.1/m", True, False),
        ("http://127.0.0.1:8000/m", False, False),
        ("http://127.0.0.1:8000/m", True, True),
        ("http://127.1.2.3/m", True, True),
        ("http://[::1]:8000/m", True, True),
        ("http://localhost:8000/m", True, True),
        ("ftp://client.example/m", False, False),
        ("my-client", False, False),
        ("", False, False),
    ],
)
def test_is_metadata_document_url(client_id, allow_private, expected):
    assert is_metadata_document_url(client_id, allow_private) is expected


REFUSED_ALWAYS = [
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "169.254.169.254",
    "::ffff:169.254.169.254",
    "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
    "fe80::1",
    "fe80::1%eth0",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "::127.0.0.1",
    "100::1",
    "not an address",
    "",
]
PRIVATE = [
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    "::ffff:127.0.0.1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "::ffff:10.0.0.1",
    "fc00::1",
    "fd12:3456::1",
    "2001:db8::1",
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "2002:a00:1::1",  # 6to4 around 10.0.0.1
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "11.0.0.1",
    "172.32.0.1",
    "192.169.0.1",
    "100.128.0.1",
    "::ffff:8.8.8.8",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", REFUSED_ALWAYS)
def test_addresses_refused_even_with_allow_private(address):
    assert not address_allowed(address)
    assert not address_allowed(address, allow_private=True)


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_need_allow_private(address):
    assert not address_allowed(address)
    assert address_allowed(address, allow_private=True)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert address_allowed(address)
    assert address_allowed(address, allow_private=True)


# -- TLS: SNI and the certificate checked against the host name -------------------------


@pytest.fixture
def tls(tmp_path: Path) -> Callable[[str], tuple[ssl.SSLContext, ssl.SSLContext]]:
    """Contexts (server, client) for a certificate naming ``name``, from a test CA."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def make(name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())

        def certificate(subject: str, issuer: str, ca: bool) -> Any:
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            )
            if not ca:
                san = x509.SubjectAlternativeName([x509.DNSName(name)])
                builder = builder.add_extension(san, critical=False)
            return builder.sign(key, hashes.SHA256())

        # One key signs for itself as the CA and for the server: enough for a test.
        ca = certificate("cimd test CA", "cimd test CA", ca=True)
        leaf = certificate(name, "cimd test CA", ca=False)
        pem = serialization.Encoding.PEM
        (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
        (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
        (tmp_path / "key.pem").write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_side.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "key.pem")
        client_side = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        return server_side, client_side

    return make


def serve_tls(server: DocumentServer, context: ssl.SSLContext) -> list[str | None]:
    names: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: names.append(name)  # type: ignore[assignment,misc]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.scheme = "https"
    return names


def test_https_sends_sni_and_verifies_the_host_name(server, tls):
    server_side, client_side = tls("localhost")
    names = serve_tls(server, server_side)
    documents = MetadataDocuments(allow_private=True, timeout=2.0, ssl_context=client_side)
    url = server.url("/doc/tls", host="localhost")
    assert documents.get(url).client_id == url
    assert names == ["localhost"]
    assert server.hosts == [f"localhost:{server.port}"]


def test_a_certificate_for_another_name_is_refused(server, tls):
    server_side, client_side = tls("other.example")
    serve_tls(server, server_side)
    documents = MetadataDocuments(allow_private=True, timeout=2.0, ssl_context=client_side)
    text = refusal(documents, server.url("/doc/tls", host="localhost"))
    assert text == "the TLS certificate of the client_id host could not be verified"
    assert server.hits["/doc/tls"] == 0


def test_an_untrusted_certificate_is_refused(server, tls):
    server_side, _ = tls("localhost")
    serve_tls(server, server_side)
    documents = MetadataDocuments(allow_private=True, timeout=2.0)
    text = refusal(documents, server.url("/doc/tls", host="localhost"))
    assert text == "the TLS certificate of the client_id host could not be verified"
