"""petrova/net/http.py: the one HTTP layer's rules, against real servers on 127.0.0.1.

Nothing here sends a packet off this machine: the address rule is checked as a pure
function, and the connect path is shown to refuse (with name resolution faked) before
any socket connects.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from petrova.net import http as net
from petrova.net.http import NoAnswer, Secret, Transport, address_allowed, is_loopback
from petrova.probe import http as probe_http
from tests.fake_services import FakeService, make_certificate
from tests.ingest_server import DROP, GARBLE, HANG, Answer, IngestServer, Seen, Servers

TOKEN = "tok-5e1d9a-never-shown"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "[::1]",
        "169.254.169.254",  # the cloud metadata service
        "fe80::1",
        "fe80::1%eth0",
        "10.0.0.7",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # shared address space (CGNAT)
        "0.0.0.0",
        "::",
        "224.0.0.251",  # multicast
        "ff02::1",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.2.10",  # documentation
        "198.18.0.1",  # benchmarking
        "fc00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:a00:1::1",  # 6to4 carrying 10.0.0.1
        "2002:7f00:1::1",  # 6to4 carrying 127.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "not-an-address",
        "",
    ],
)
def test_no_inward_or_special_address_is_allowed(address: str) -> None:
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "140.82.112.3", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(address)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost.evil.example", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_one_loopback_rule(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every outgoing connect; none may happen in the tests that use this."""
    tried: list[Any] = []
    real = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        tried.append(address)
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return tried


def _resolve_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        out = []
        for a in addresses:
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            sockaddr = (a, int(port), 0, 0) if family == socket.AF_INET6 else (a, int(port))
            out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.parametrize(
    "addresses",
    [
        ("169.254.169.254",),
        ("10.0.0.1", "127.0.0.1"),
        ("::1", "0.0.0.0"),
        ("::ffff:127.0.0.1",),
        ("fe80::1", "100.64.1.1", "192.168.0.1"),
    ],
)
def test_a_name_resolving_inward_is_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch, no_connect: list[Any], addresses: tuple[str, ...]
) -> None:
    _resolve_to(monkeypatch, *addresses)
    transport = Transport(timeout=5, allow_inward=False)
    with pytest.raises(NoAnswer) as caught:
        net.request("GET", "https://service.example/x", transport=transport)
    assert caught.value.kind == "not_allowed"
    assert caught.value.reason == "not allowed"
    assert no_connect == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://[::1]:9/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://localhost:9/",
    ],
)
def test_an_inward_literal_is_refused_before_any_connection(
    no_connect: list[Any], url: str
) -> None:
    with pytest.raises(NoAnswer) as caught:
        net.request("GET", url, transport=Transport(timeout=5, allow_inward=False))
    assert caught.value.kind == "not_allowed"
    assert no_connect == []


def test_only_vetted_addresses_are_connected_and_the_name_stays_the_host(
    monkeypatch: pytest.MonkeyPatch, ingest: Servers, no_connect: list[Any]
) -> None:
    """A name with a refused and an allowed address: only the allowed one is tried, the
    connection goes to that address, and ``Host`` still names the service."""
    server = ingest(lambda s, seen: Answer(200, b"{}"))
    _resolve_to(monkeypatch, "10.1.2.3", "127.0.0.1")
    # Stand-in for a public address: here 127.0.0.1 plays one (10.1.2.3 stays refused).
    monkeypatch.setattr(net, "address_allowed", lambda a: a == "127.0.0.1")
    transport = Transport(timeout=5, allow_inward=False)
    answer = net.request("GET", f"http://service.example:{server.port}/x", transport=transport)
    assert answer.status == 200
    assert no_connect == [("127.0.0.1", server.port)]
    assert server.requests[0].headers["Host"] == f"service.example:{server.port}"


def test_the_deadline_bounds_a_trickling_or_silent_server(ingest: Servers) -> None:
    server = ingest(lambda s, seen: HANG)
    try:
        with pytest.raises(NoAnswer) as caught:
            net.request("GET", server.url, transport=Transport(timeout=0.3))
    finally:
        server.release.set()
    assert caught.value.kind == "timeout"
    assert caught.value.transient
    assert "0.3s" in caught.value.reason


def test_redirects_are_returned_never_followed(ingest: Servers) -> None:
    other = ingest(lambda s, seen: Answer(200, b"{}"))
    server = ingest(lambda s, seen: Answer(302, headers={"Location": other.url}))
    answer = net.request("GET", server.url, transport=Transport(timeout=5), token=Secret(TOKEN))
    assert answer.status == 302
    assert answer.location == other.url
    assert other.requests == []


def test_a_token_never_travels_in_clear_text_off_loopback(no_connect: list[Any]) -> None:
    with pytest.raises(NoAnswer) as caught:
        net.request(
            "GET", "http://service.example/x", transport=Transport(timeout=5), token=Secret(TOKEN)
        )
    assert caught.value.kind == "insecure"
    assert no_connect == []


def test_the_body_is_bounded(ingest: Servers) -> None:
    server = ingest(lambda s, seen: Answer(200, b"x" * 5000))
    answer = net.request("GET", server.url, transport=Transport(timeout=5), max_body=1000)
    assert answer.truncated and len(answer.body) == 1000
    with pytest.raises(ValueError):
        answer.json()


def test_json_with_headers_etag_and_status(ingest: Servers) -> None:
    def behaviour(server: IngestServer, seen: Seen) -> Answer:
        if seen.headers.get("If-None-Match") == '"v1"':
            return Answer(304, headers={"ETag": '"v1"'})
        return Answer(201, b'{"id": 7}', {"ETag": '"v1"', "X-Thing": "yes"})

    server = ingest(behaviour)
    transport = Transport(timeout=5)
    first = net.request_json(
        "POST", server.url, transport=transport, payload={"a": 1}, token=Secret(TOKEN),
        headers={"X-GitHub-Api-Version": "2022-11-28"},
    )  # fmt: skip
    assert (first.status, first.json(), first.etag) == (201, {"id": 7}, '"v1"')
    assert first.headers["x-thing"] == "yes"
    seen = server.requests[0]
    assert seen.body == b'{"a":1}'
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-GitHub-Api-Version"] == "2022-11-28"
    again = net.request_json("GET", server.url, transport=transport, etag=first.etag)
    assert again.status == 304
    # an ETag that cannot be a header (a newline, non-Latin-1) is simply not sent
    for bad in ('"v1"\r\nX-Evil: 1', '"vé"'):
        odd = net.request_json("GET", server.url, transport=transport, etag=bad)
        assert odd.status == 201
    assert "X-Evil" not in server.requests[-2].headers


def test_reasons_are_scrubbed_of_the_token(ingest: Servers) -> None:
    with pytest.raises(NoAnswer) as caught:
        net.request(
            "GET",
            f"http://host-{TOKEN}.invalid/x",
            transport=Transport(timeout=2),
            token=Secret(TOKEN),
        )
    assert TOKEN not in caught.value.reason
    assert repr(Secret(TOKEN)) == "Secret('***')"


class _Proxy:
    """A plain-HTTP forward proxy on 127.0.0.1 that answers every request itself."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.lines.append(data.split(b"\r\n", 1)[0])
                conn.sendall(
                    b"HTTP/1.1 299 Proxied\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Proxy]:
    p = _Proxy()
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{p.port}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    yield p
    p.sock.close()


def test_one_proxy_rule_never_for_loopback(proxy: _Proxy, ingest: Servers) -> None:
    server = ingest(lambda s, seen: Answer(200, b"{}"))
    direct = net.request("GET", server.url, transport=Transport(timeout=5))
    assert direct.status == 200 and proxy.lines == []
    proxied = net.request("GET", "http://service.example/x?q=1", transport=Transport(timeout=5))
    assert proxied.status == 299
    assert proxy.lines == [b"GET http://service.example/x?q=1 HTTP/1.1"]


# --- what a probe records of a failure -----------------------------------------------------


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def test_a_probe_records_one_phrase_for_every_failed_connection(ingest: Servers) -> None:
    """Refused, dropped, not HTTP, TLS to a plain server: the same words, so recorded
    details cannot serve as a port scanner's report."""
    plain = ingest(lambda s, seen: Answer(200, b"{}"))
    dropped = ingest(lambda s, seen: DROP)
    garbled = ingest(lambda s, seen: GARBLE)
    urls = [
        f"http://127.0.0.1:{_closed_port()}/x",
        f"https://127.0.0.1:{plain.port}/x",  # wrong TLS version: a plain server
        dropped.url,
        garbled.url,
        "https://name.invalid/x",
    ]
    transport = probe_http.Transport(timeout=5, allow_inward=True)
    reasons = set()
    for url in urls:
        with pytest.raises(probe_http.CouldNotLook) as caught:
            probe_http.request(url, transport=transport)
        reasons.add(caught.value.reason)
    assert reasons == {"could not connect"}
    refused = probe_http.Transport(timeout=5, allow_inward=False)
    with pytest.raises(probe_http.CouldNotLook) as caught:
        probe_http.request(plain.url, transport=refused)
    assert caught.value.reason == "address not allowed"
    assert plain.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://traceo..example.com/x",  # an empty label: IDNA refuses it
        "https://host/v\u00e9rif",  # non-ASCII path: encoded, never a crash
        "http://127.0.0.1:99999/x",  # a port out of range
        "https://user:pw@host/x",
        "ftp://host/x",
        "https://host/a b",
    ],
)
def test_unusable_urls_are_a_reason_never_a_crash(url: str) -> None:
    transport = probe_http.Transport(timeout=2, allow_inward=False)
    with pytest.raises(probe_http.CouldNotLook) as caught:
        probe_http.request(url, transport=transport)
    assert caught.value.reason


def test_a_vetted_tls_connection_checks_the_certificate_against_the_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Connecting to the vetted address keeps the name for SNI and the certificate check:
    the fake's certificate names 127.0.0.1 only, so reaching it as another name fails,
    and reaching it as 127.0.0.1 succeeds."""
    cert, key = make_certificate(tmp_path)
    service = FakeService({"/x": 200}, tls=(cert, key))
    try:
        context = ssl.create_default_context(cafile=str(cert))
        monkeypatch.setattr(net, "address_allowed", lambda a: a == "127.0.0.1")
        transport = Transport(timeout=5, context=context, allow_inward=False)
        ok = net.request("GET", f"{service.base}/x", transport=transport)
        assert ok.status == 200
        _resolve_to(monkeypatch, "127.0.0.1")
        port = service.base.rsplit(":", 1)[1]
        with pytest.raises(NoAnswer) as caught:
            net.request("GET", f"https://service.example:{port}/x", transport=transport)
        assert caught.value.kind == "tls"
    finally:
        service.close()


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "caf\u00e9\u2603"])
def test_a_header_that_cannot_be_sent_is_a_reason_not_a_crash(ingest: Servers, value: str) -> None:
    server = ingest(lambda s, seen: Answer(200, b"{}"))
    with pytest.raises(NoAnswer) as caught:
        net.request("GET", server.url, transport=Transport(timeout=5), headers={"X-Thing": value})
    assert caught.value.kind == "bad_url"
    assert server.count() == 0
