"""The outbound HTTP guard against real loopback servers (plain, IPv6 and TLS).

Loopback is exactly what the guard refuses by default, so every "refused" test points at a live
server that would answer if the guard let the request through, and checks that nothing arrived.
Names are made to resolve where a test needs them through the policy's resolver, the only seam; no
test needs the public internet (a public answer is checked as a policy decision, never connected to).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from casem.adapters.http import (
    AllowList,
    DestinationPolicy,
    DestinationRefused,
    OutboundError,
    Refusal,
    allow_list_from_env,
    classify_address,
    guarded_client,
    guarded_sync_client,
    parse_retry_after,
    raise_for_response,
    validate_destination,
)

REMOTE_SECRET = "REMOTE-BODY-7f3a9c"  # what an internal service would leak if its answer were copied
PUBLIC = "8.8.8.8"  # a public address: only ever answered by test resolvers, never connected to

# -- loopback servers ------------------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    host: str


class _Server(ThreadingHTTPServer):
    address_family = socket.AF_INET


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@dataclass
class Loopback:
    """A real HTTP server on a loopback address. Paths: /ok, /status/<n>, /limited, /big?n=,
    /redirect?to=<url>; every answer other than /ok carries REMOTE_SECRET in its body."""

    bind: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
                loopback.seen.append(Seen(self.path, self.headers.get("Host", "")))
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                headers: dict[str, str] = {}
                status, body = 200, b"hello"
                if url.path.startswith("/status/"):
                    status, body = int(url.path.rsplit("/", 1)[1]), f"stack trace with {REMOTE_SECRET}".encode()
                elif url.path == "/limited":
                    status, body, headers = 429, REMOTE_SECRET.encode(), {"Retry-After": "7"}
                elif url.path == "/big":
                    body = b"x" * int(query["n"])
                elif url.path == "/redirect":
                    status, body, headers = 302, REMOTE_SECRET.encode(), {"Location": query["to"]}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server_class = _Server6 if ":" in self.bind else _Server
        self.server = server_class((self.bind, 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/ok", host: str | None = None) -> str:
        host = host or (f"[{self.bind}]" if ":" in self.bind else self.bind)
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Loopback]:
    loopback = Loopback()
    yield loopback
    loopback.close()


@pytest.fixture
def server6() -> Iterator[Loopback]:
    try:
        loopback = Loopback(bind="::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    yield loopback
    loopback.close()


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    """A resolver answering from a table; any other name does not resolve."""

    def resolve(host: str, port: int) -> list[str]:
        try:
            return table[host.lower().removesuffix(".")]
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, "not in the test table") from None

    return resolve


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host!r} should have been refused before any resolution")


def refused_count(reason: str, stage: str) -> float:
    return REGISTRY.get_sample_value("casem_outbound_refused_total", {"reason": reason, "stage": stage}) or 0.0


LOOPBACK_ALLOWED = AllowList.parse(["127.0.0.0/8", "::1/128"])


# -- loopback: refused by default, allowed by the allow-list ---------------------------------------------


async def test_loopback_server_is_refused_by_default_and_never_reached(server: Loopback) -> None:
    before = refused_count("loopback", "connect")
    async with guarded_client() as client:
        with pytest.raises(DestinationRefused) as refused:
            await client.get(server.url())
    assert refused.value.refusal is Refusal.LOOPBACK
    assert refused.value.status is None and refused.value.transient is False
    assert "allow-list" in refused.value.reason
    assert server.seen == []
    assert refused_count("loopback", "connect") == before + 1


async def test_loopback_server_is_reached_when_the_allow_list_names_its_network(server: Loopback) -> None:
    async with guarded_client(allow=AllowList.parse(["127.0.0.0/8"])) as client:
        response = await client.get(server.url())
    assert response.status_code == 200 and response.text == "hello"
    assert [seen.path for seen in server.seen] == ["/ok"]


def test_sync_client_refuses_and_allows_like_the_async_one(server: Loopback) -> None:
    with guarded_sync_client() as client, pytest.raises(DestinationRefused):
        client.get(server.url())
    assert server.seen == []
    with guarded_sync_client(allow=AllowList.parse(["127.0.0.1"])) as client:
        assert client.get(server.url()).text == "hello"


async def test_ipv6_loopback_server_is_refused_by_default_and_allowed_by_its_network(server6: Loopback) -> None:
    async with guarded_client() as client:
        with pytest.raises(DestinationRefused) as refused:
            await client.get(server6.url())
    assert refused.value.refusal is Refusal.LOOPBACK
    assert server6.seen == []
    async with guarded_client(allow=AllowList.parse(["::1/128"])) as client:
        assert (await client.get(server6.url())).text == "hello"


# -- every disguise of an internal address ---------------------------------------------------------------

# (URL with {port} standing for the loopback server's port, expected refusal)
DISGUISES: list[tuple[str, Refusal]] = [
    ("http://127.0.0.1:{port}/ok", Refusal.LOOPBACK),
    ("http://127.9.9.9:{port}/ok", Refusal.LOOPBACK),
    ("http://2130706433:{port}/ok", Refusal.HOST_FORM),  # decimal
    ("http://0x7f000001:{port}/ok", Refusal.HOST_FORM),  # hex
    ("http://0x7F.0x0.0x0.0x1:{port}/ok", Refusal.HOST_FORM),  # dotted hex
    ("http://0177.0.0.1:{port}/ok", Refusal.HOST_FORM),  # octal
    ("http://127.1:{port}/ok", Refusal.HOST_FORM),  # short form
    ("http://0x7f.1:{port}/ok", Refusal.HOST_FORM),
    ("http://127.0.0.1.:{port}/ok", Refusal.HOST_FORM),  # trailing dot
    ("http://%31%32%37.0.0.1:{port}/ok", Refusal.HOST_FORM),  # percent-encoded
    ("http://0:{port}/ok", Refusal.HOST_FORM),
    ("http://0.0.0.0:{port}/ok", Refusal.UNSPECIFIED),
    ("http://localhost:{port}/ok", Refusal.LOOPBACK),
    ("http://LOCALHOST.:{port}/ok", Refusal.LOOPBACK),
    ("http://hooks.localhost:{port}/ok", Refusal.LOOPBACK),
    ("http://[::1]:{port}/ok", Refusal.LOOPBACK),
    ("http://[0:0:0:0:0:0:0:1]:{port}/ok", Refusal.LOOPBACK),
    ("http://[::]:{port}/ok", Refusal.UNSPECIFIED),
    ("http://[::ffff:127.0.0.1]:{port}/ok", Refusal.IPV4_EMBEDDED),  # IPv4-mapped
    ("http://[::ffff:7f00:1]:{port}/ok", Refusal.IPV4_EMBEDDED),
    ("http://[::ffff:8.8.8.8]:{port}/ok", Refusal.IPV4_EMBEDDED),  # mapped forms are never a destination
    ("http://[::127.0.0.1]:{port}/ok", Refusal.IPV4_EMBEDDED),  # IPv4-compatible
    ("http://[::ffff:0:127.0.0.1]:{port}/ok", Refusal.IPV4_EMBEDDED),  # IPv4-translated
    ("http://[64:ff9b::127.0.0.1]:{port}/ok", Refusal.LOOPBACK),  # NAT64 of loopback
    ("http://[64:ff9b::10.1.2.3]:{port}/ok", Refusal.PRIVATE),  # NAT64 of RFC 1918
    ("http://[64:ff9b::169.254.169.254]/", Refusal.LINK_LOCAL),
    ("http://[64:ff9b:1::a01:203]/", Refusal.PRIVATE),  # local-use NAT64
    ("http://[2002:7f00:1::1]:{port}/ok", Refusal.LOOPBACK),  # 6to4 of loopback
    ("http://[2002:a9fe:a9fe::1]/", Refusal.LINK_LOCAL),  # 6to4 of the metadata service
    ("http://[fe80::1]:{port}/ok", Refusal.LINK_LOCAL),
    ("http://[fe80::1%25lo]:{port}/ok", Refusal.HOST_FORM),  # scoped
    ("http://[fd00::1]/", Refusal.PRIVATE),
    ("http://[fd00:ec2::254]/latest/meta-data/", Refusal.PRIVATE),  # AWS metadata over IPv6
    ("http://[fec0::1]/", Refusal.PRIVATE),
    ("http://[ff02::1]/", Refusal.MULTICAST),
    ("http://[2001:db8::1]/", Refusal.RESERVED),
    ("http://[2001::1]/", Refusal.RESERVED),  # Teredo
    ("http://[100::1]/", Refusal.RESERVED),
    ("http://[4000::1]/", Refusal.RESERVED),  # outside global unicast
    ("http://169.254.169.254/latest/meta-data/", Refusal.LINK_LOCAL),
    ("http://10.0.0.1/", Refusal.PRIVATE),
    ("http://172.31.255.255/", Refusal.PRIVATE),
    ("http://192.168.1.1/", Refusal.PRIVATE),
    ("http://100.64.0.1/", Refusal.PRIVATE),  # CGNAT
    ("http://224.0.0.1/", Refusal.MULTICAST),
    ("http://255.255.255.255/", Refusal.RESERVED),
    ("http://240.0.0.1/", Refusal.RESERVED),
    ("http://192.0.2.1/", Refusal.RESERVED),
    ("http://198.18.0.1/", Refusal.RESERVED),
    ("http://192.0.0.8/", Refusal.RESERVED),
    ("http://example.com@127.0.0.1:{port}/ok", Refusal.USERINFO),
    ("http://user:secret@example.com/", Refusal.USERINFO),
    ("ftp://example.com/", Refusal.SCHEME),
    ("file:///etc/passwd", Refusal.SCHEME),
    ("gopher://127.0.0.1:{port}/", Refusal.SCHEME),
    ("http://example.com:25/", Refusal.PORT),
    ("http://example.com:6379/", Refusal.PORT),
    ("http://example.com:0/", Refusal.PORT),
    ("http://example.com:99999/", Refusal.PORT),
    ("http:///ok", Refusal.HOST_FORM),
    ("http://exa_mple..com/", Refusal.HOST_FORM),
]


@pytest.mark.parametrize(("template", "expected"), DISGUISES, ids=[t for t, _ in DISGUISES])
async def test_each_disguise_is_refused_when_saved(template: str, expected: Refusal, server: Loopback) -> None:
    before = refused_count(expected.value, "save")
    with pytest.raises(DestinationRefused) as refused:
        await validate_destination(template.format(port=server.port), policy=DestinationPolicy(resolver=no_dns))
    assert refused.value.refusal is expected, refused.value.reason
    assert refused.value.transient is False
    assert refused_count(expected.value, "save") == before + 1


@pytest.mark.parametrize(("template", "expected"), DISGUISES, ids=[t for t, _ in DISGUISES])
async def test_each_disguise_is_refused_when_connecting(template: str, expected: Refusal, server: Loopback) -> None:
    """With the system resolver: the loopback forms would reach the live server without the guard."""
    async with guarded_client(timeout=2.0) as client:
        if template in HTTPX_REFUSES:
            with pytest.raises(httpx.InvalidURL):
                await client.get(template.format(port=server.port))
        else:
            with pytest.raises(DestinationRefused) as refused:
                await client.get(template.format(port=server.port))
            assert refused.value.refusal is CONNECT_TIME.get(template, expected), refused.value.reason
    assert server.seen == []


# httpx itself refuses to build a request for these (the guard checks them anyway at save time).
HTTPX_REFUSES = {"http://0177.0.0.1:{port}/ok"}
# httpx reads a URL without a host as relative to the client's base URL: it arrives with no scheme.
CONNECT_TIME = {"file:///etc/passwd": Refusal.HOST_FORM}


NUMERIC_FORMS = ["http://2130706433:{port}/ok", "http://0x7f000001:{port}/ok", "http://127.1:{port}/ok"]


@pytest.mark.parametrize("template", NUMERIC_FORMS)
async def test_numeric_forms_stay_refused_even_when_their_address_is_allowed(template: str, server: Loopback) -> None:
    url = template.format(port=server.port)
    with pytest.raises(DestinationRefused) as refused:
        await validate_destination(url, LOOPBACK_ALLOWED)
    assert refused.value.refusal is Refusal.HOST_FORM
    assert "four decimal numbers" in refused.value.reason
    async with guarded_client(allow=LOOPBACK_ALLOWED) as client:
        with pytest.raises(DestinationRefused):
            await client.get(url)
    assert server.seen == []


# -- names that resolve to internal addresses ------------------------------------------------------------


async def test_a_name_resolving_to_loopback_is_refused_without_revealing_the_address(server: Loopback) -> None:
    policy = DestinationPolicy(resolver=resolver({"hook.test": ["127.0.0.1"]}))
    with pytest.raises(DestinationRefused) as refused:
        await validate_destination(server.url(host="hook.test"), policy=policy)
    assert refused.value.refusal is Refusal.LOOPBACK
    assert refused.value.address == ipaddress.ip_address("127.0.0.1")  # for the operator's logs
    assert "127.0.0.1" not in refused.value.reason  # the tenant learns the kind, not the internal address
    assert "'hook.test' resolves to a loopback address" in refused.value.reason
    async with guarded_client(policy=policy) as client:
        with pytest.raises(DestinationRefused):
            await client.get(server.url(host="hook.test"))
    assert server.seen == []


async def test_a_name_is_refused_when_any_of_its_addresses_is_internal() -> None:
    policy = DestinationPolicy(resolver=resolver({"mixed.test": [PUBLIC, "10.0.0.7"], "public.test": [PUBLIC]}))
    with pytest.raises(DestinationRefused) as refused:
        await validate_destination("https://mixed.test/hook", policy=policy)
    assert refused.value.refusal is Refusal.PRIVATE
    destination = await validate_destination("https://public.test/hook", policy=policy)
    assert destination.addresses == (ipaddress.ip_address(PUBLIC),)
    assert (destination.host, destination.port) == ("public.test", 443)


async def test_an_unresolvable_name_is_refused_at_save_time_and_transient_at_connect_time() -> None:
    policy = DestinationPolicy(resolver=resolver({}))
    with pytest.raises(DestinationRefused) as refused:
        await validate_destination("https://nowhere.test/", policy=policy)
    assert refused.value.refusal is Refusal.UNRESOLVABLE
    pending = await validate_destination("https://nowhere.test:8443/", policy=policy, allow_unresolvable=True)
    assert (pending.host, pending.port, pending.addresses) == ("nowhere.test", 8443, ())
    with pytest.raises(DestinationRefused):  # the other checks still apply
        await validate_destination("https://2130706433/", policy=policy, allow_unresolvable=True)
    async with guarded_client(policy=policy) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.get("https://nowhere.test/")
    error = OutboundError.from_exception(failed.value)
    assert error.transient is True and error.status is None


async def test_connection_goes_to_the_vetted_address_with_the_original_host_header(server: Loopback) -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("hook.test", server.port)  # only the policy's resolver knows this name
    policy = DestinationPolicy(allow=LOOPBACK_ALLOWED, resolver=resolver({"hook.test": ["127.0.0.1"]}))
    async with guarded_client(policy=policy) as client:
        response = await client.get(server.url(host="hook.test"))
    assert response.text == "hello"
    assert server.seen == [Seen("/ok", f"hook.test:{server.port}")]


async def test_dns_rebinding_between_save_and_connect_is_refused(server: Loopback) -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    policy = DestinationPolicy(resolver=rebinding)
    url = server.url(host="rebind.test")
    destination = await validate_destination(url, policy=policy)
    assert destination.addresses == (ipaddress.ip_address(PUBLIC),)
    before = refused_count("loopback", "connect")
    async with guarded_client(policy=policy) as client:
        with pytest.raises(DestinationRefused) as refused:
            await client.get(url)
    assert refused.value.refusal is Refusal.LOOPBACK
    assert calls == ["rebind.test", "rebind.test"]  # resolved again at connect time, and checked
    assert server.seen == []
    assert refused_count("loopback", "connect") == before + 1


async def test_an_allowed_host_name_is_reached_whatever_it_resolves_to(server: Loopback) -> None:
    policy = DestinationPolicy(
        allow=AllowList.parse(["hook.test"]),
        resolver=resolver({"hook.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}),
    )
    async with guarded_client(policy=policy) as client:
        assert (await client.get(server.url(host="HOOK.test"))).status_code == 200
        with pytest.raises(DestinationRefused):
            await client.get(server.url(host="other.test"))
    assert [seen.host for seen in server.seen] == [f"hook.test:{server.port}"]


# -- TLS keeps the original name -------------------------------------------------------------------------


@pytest.fixture
def tls_server() -> Iterator[tuple[Loopback, ssl.SSLContext, list[str | None]]]:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("hook.test").configure_cert(server_context)
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    loopback = Loopback(tls=server_context)
    yield loopback, client_context, names
    loopback.close()


async def test_tls_sni_and_certificate_check_use_the_host_name(
    tls_server: tuple[Loopback, ssl.SSLContext, list[str | None]],
) -> None:
    server, trust, names = tls_server
    policy = DestinationPolicy(allow=LOOPBACK_ALLOWED, resolver=resolver({"hook.test": ["127.0.0.1"]}))
    async with guarded_client(policy=policy, verify=trust) as client:
        response = await client.get(server.url(host="hook.test"))
    assert response.text == "hello"
    assert names == ["hook.test"]
    # The same server by address: its certificate names hook.test only, so verification fails.
    async with guarded_client(policy=policy, verify=trust) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.get(server.url())
    error = OutboundError.from_exception(failed.value)
    assert error.transient is False and "certificate" in error.reason


# -- redirects -------------------------------------------------------------------------------------------


def _hop_policy() -> DestinationPolicy:
    # The first hop is allowed by name; the addresses behind it are not allowed for other names.
    return DestinationPolicy(allow=AllowList.parse(["hook.test"]), resolver=resolver({"hook.test": ["127.0.0.1"]}))


async def test_redirects_are_not_followed_by_default(server: Loopback) -> None:
    target = server.url("/ok")
    async with guarded_client(policy=_hop_policy()) as client:
        response = await client.get(server.url(f"/redirect?to={target}", host="hook.test"))
        with pytest.raises(httpx.TooManyRedirects):  # a per-request override cannot exceed the client's 0
            await client.get(server.url(f"/redirect?to={target}", host="hook.test"), follow_redirects=True)
    assert response.status_code == 302
    with pytest.raises(OutboundError) as failed:
        raise_for_response(response)
    assert failed.value.status == 302 and failed.value.transient is False
    assert "redirect" in failed.value.reason and REMOTE_SECRET not in str(failed.value)
    assert [seen.path.split("?")[0] for seen in server.seen] == ["/redirect", "/redirect"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://127.0.0.1:{port}/ok", Refusal.LOOPBACK),
        ("http://2130706433:{port}/ok", Refusal.HOST_FORM),
        ("http://[::ffff:127.0.0.1]:{port}/ok", Refusal.IPV4_EMBEDDED),
        ("http://169.254.169.254/latest/meta-data/", Refusal.LINK_LOCAL),
        ("http://user@hook.test:{port}/ok", Refusal.USERINFO),
    ],
)
async def test_a_followed_redirect_to_a_refused_destination_is_refused(
    target: str, expected: Refusal, server: Loopback
) -> None:
    async with guarded_client(policy=_hop_policy(), follow_redirects=True) as client:
        with pytest.raises(DestinationRefused) as refused:
            await client.get(server.url(f"/redirect?to={target.format(port=server.port)}", host="hook.test"))
    assert refused.value.refusal is expected
    assert [seen.path.split("?")[0] for seen in server.seen] == ["/redirect"]


async def test_followed_redirects_are_checked_and_capped(server: Loopback) -> None:
    async with guarded_client(policy=_hop_policy(), follow_redirects=True, max_redirects=2) as client:
        response = await client.get(server.url(f"/redirect?to={server.url('/ok', host='hook.test')}", host="hook.test"))
        assert response.text == "hello"
        loop = server.url("/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/ok", host="hook.test")
        with pytest.raises(httpx.TooManyRedirects) as failed:
            await client.get(loop)
    assert OutboundError.from_exception(failed.value).transient is False
    with pytest.raises(ValueError):
        guarded_client(follow_redirects=True, max_redirects=50)


# -- errors carry casem's words, not the receiver's ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "transient"),
    [("/status/500", 500, True), ("/status/503", 503, True), ("/status/404", 404, False), ("/status/418", 418, False)],
)
async def test_error_reason_is_written_by_casem_and_never_holds_the_body(
    path: str, status: int, transient: bool, server: Loopback
) -> None:
    async with guarded_client(allow=LOOPBACK_ALLOWED) as client:
        response = await client.get(server.url(path))
    assert REMOTE_SECRET in response.text  # the receiver did send it
    with pytest.raises(OutboundError) as failed:
        raise_for_response(response)
    error = failed.value
    assert (error.status, error.transient, error.retry_after) == (status, transient, None)
    assert error.reason.startswith(f"HTTP {status}")
    for text in (error.reason, str(error), repr(error)):
        assert REMOTE_SECRET not in text and str(server.port) not in text


async def test_rate_limit_is_transient_with_its_retry_after(server: Loopback) -> None:
    async with guarded_client(allow=LOOPBACK_ALLOWED) as client:
        response = await client.get(server.url("/limited"))
    error = OutboundError.from_response(response)
    assert (error.status, error.transient, error.retry_after) == (429, True, 7.0)
    assert REMOTE_SECRET not in error.reason
    assert raise_for_response(httpx.Response(204)).status_code == 204


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


async def test_a_closed_port_is_a_transient_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    async with guarded_client(allow=LOOPBACK_ALLOWED) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.get(f"http://127.0.0.1:{port}/")
    error = OutboundError.from_exception(failed.value)
    assert (error.status, error.transient, error.reason) == (None, True, "could not connect to the receiver")


async def test_an_oversized_answer_fails_without_being_buffered_whole(server: Loopback) -> None:
    async with guarded_client(allow=LOOPBACK_ALLOWED, max_response_bytes=1024) as client:
        assert len((await client.get(server.url("/big?n=1024"))).content) == 1024
        with pytest.raises(OutboundError) as failed:
            await client.get(server.url("/big?n=200000"))
    assert failed.value.transient is False and "1024 bytes" in failed.value.reason


# -- ports, schemes and the allow-list from the environment ----------------------------------------------


async def test_port_and_scheme_rules() -> None:
    public = resolver({"hooks.example": [PUBLIC]})
    assert (
        await validate_destination("https://hooks.example:8443/x", policy=DestinationPolicy(resolver=public))
    ).port == 8443
    strict = DestinationPolicy(resolver=public, allow_non_default_ports=False, require_https=True)
    assert (await validate_destination("https://hooks.example/x", policy=strict)).port == 443
    with pytest.raises(DestinationRefused) as refused:
        await validate_destination("https://hooks.example:8443/x", policy=strict)
    assert refused.value.refusal is Refusal.PORT and "default port" in refused.value.reason
    with pytest.raises(DestinationRefused) as refused:
        await validate_destination("http://hooks.example/x", policy=strict)
    assert refused.value.refusal is Refusal.SCHEME
    allowed = DestinationPolicy(allow=AllowList.parse(["10.0.0.0/8"]), resolver=no_dns)
    assert (await validate_destination("http://10.1.2.3:8080/", policy=allowed)).addresses[0] == ipaddress.ip_address(
        "10.1.2.3"
    )
    with pytest.raises(DestinationRefused) as refused:  # service ports stay closed on allowed networks
        await validate_destination("http://10.1.2.3:6379/", policy=allowed)
    assert refused.value.refusal is Refusal.PORT


def test_allow_list_from_the_environment() -> None:
    allow = allow_list_from_env({"CASEM_OUTBOUND_ALLOW": " 10.20.0.0/16, 192.168.5.7 ,fd00:1::/64,"})
    assert allow.networks == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("192.168.5.7/32"),
        ipaddress.ip_network("fd00:1::/64"),
    )
    assert allow.permits_address(ipaddress.ip_address("10.20.255.1"))
    assert not allow.permits_address(ipaddress.ip_address("10.21.0.1"))
    assert not allow_list_from_env({}) and not allow_list_from_env({"CASEM_OUTBOUND_ALLOW": " "})
    for bad in ("10.0.0.5/8", "jira.corp", "10.1", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="CASEM_OUTBOUND_ALLOW"):
            allow_list_from_env({"CASEM_OUTBOUND_ALLOW": f"10.9.0.0/16,{bad}"})
    merged = AllowList.parse(["jira.corp"]) | allow
    assert merged.permits_host("JIRA.corp.") and merged.permits_address(ipaddress.ip_address("192.168.5.7"))


async def test_unspecified_addresses_are_refused_even_when_allowed() -> None:
    everything = DestinationPolicy(allow=AllowList.parse(["0.0.0.0/0", "::/0"]), resolver=no_dns)
    for url in ("http://0.0.0.0/", "http://[::]/"):
        with pytest.raises(DestinationRefused) as refused:
            await validate_destination(url, policy=everything)
        assert refused.value.refusal is Refusal.UNSPECIFIED


# -- properties ------------------------------------------------------------------------------------------

# Written out here, independently of the module's own tables.
REFUSED_NETWORKS = [
    *("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12"),
    *("192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24"),
    *("224.0.0.0/4", "240.0.0.0/4"),
    *("::/128", "::1/128", "::ffff:0:0/96", "::/96", "64:ff9b:1::/48", "100::/64", "2001:db8::/32"),
    *("fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"),
]


def addresses_in(networks: Iterable[str]) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    def inside(cidr: str) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        network = ipaddress.ip_network(cidr)
        low, high = int(network.network_address), int(network.broadcast_address)
        return st.integers(low, high).map(
            lambda n: ipaddress.ip_address(n) if network.version == 4 else ipaddress.IPv6Address(n)
        )

    return st.sampled_from(list(networks)).flatmap(inside)


@settings(max_examples=400, deadline=None)
@given(addresses_in(REFUSED_NETWORKS))
def test_any_address_in_a_refused_network_is_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert classify_address(ip) is not None
    policy = DestinationPolicy(resolver=no_dns)
    host = str(ip) if ip.version == 4 else f"[{ip}]"
    with pytest.raises(DestinationRefused):
        policy.validate(f"https://{host}/")
    with pytest.raises(DestinationRefused):  # and behind a name
        DestinationPolicy(resolver=lambda name, port: [str(ip)]).validate("https://name.test/")


@settings(max_examples=200, deadline=None)
@given(addresses_in(["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "fd00::/8", "::1/128"]))
def test_any_refused_address_passes_once_its_network_is_allowed(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    policy = DestinationPolicy(
        allow=AllowList.parse(["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "fd00::/8", "::1"])
    )
    host = str(ip) if ip.version == 4 else f"[{ip}]"
    assert policy.validate(f"http://{host}:8080/").addresses == (ip,)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_any_ipv4_address_is_refused_in_numeric_disguise_or_mapped(number: int) -> None:
    policy = DestinationPolicy(allow=AllowList.parse(["0.0.0.0/0"]), resolver=no_dns)
    ip = ipaddress.IPv4Address(number)
    dotted_octal = ".".join(f"0{byte:o}" for byte in ip.packed)
    for disguise in (str(number), hex(number), dotted_octal, f"[::ffff:{ip}]", f"[::{ip}]"):
        with pytest.raises(DestinationRefused):
            policy.validate(f"http://{disguise}/")
