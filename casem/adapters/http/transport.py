"""The guarded httpx client: every casem delivery and integration sends its HTTP through it.

How the guard sits in httpx: `GuardedAsyncTransport` is an `httpx.AsyncHTTPTransport` whose connection
pool gets a network backend that, for each new connection, checks the host, resolves it once, vets
every address and opens the socket to a vetted address itself. Nothing resolves the name again after
the check, so DNS rebinding between check and connect cannot work. The connection pool, the Host
header, TLS SNI and certificate verification all keep the original host name: httpcore starts TLS
with `server_hostname` = the URL's host. (Rewriting each request's URL to the address and passing
httpcore's `sni_hostname` extension would also keep SNI, but the pool would then key connections by
address and could reuse a TLS connection verified for one name for a request to another name served
from the same address, as behind a CDN.)

The transport also checks each request's URL (scheme, user info, port, host form) before it reaches
the pool, so every redirect hop is checked too when a client follows redirects; the connect-time
check covers the hop's addresses.

Limits: proxies are not supported (a proxy resolves names itself, out of the guard's reach), so the
clients ignore HTTP(S)_PROXY; answers larger than `max_response_bytes` (counted on the wire) fail.

SaaS libraries with their own HTTP stack must go through the guard, not around it. What they offer:
- slack_sdk: the sync WebClient uses urllib with no session to inject; AsyncWebClient takes `base_url`
  and an aiohttp `session`. An aiohttp connector can take a vetting resolver, but aiohttp skips the
  resolver for hosts that are IP literals, and slack_sdk's requests follow redirects (aiohttp's
  default), so a resolver alone leaves literal-address URLs and redirect hops unchecked. Call the
  Web API methods casem needs (chat.postMessage, ...) with `guarded_client` instead, as the Slack
  delivery does with httpx today.
- jira (pycontribs): builds its own requests session (ResilientSession); call Jira's REST API with
  `guarded_client` rather than adopting the library.
- twilio: `Client(http_client=...)` accepts a `twilio.http.HttpClient` subclass, whose `request()`
  could send through `guarded_sync_client` (in a thread, it blocks); a Twilio-compatible SMS send is a
  single form POST, simpler to make with `guarded_client` directly.
- ServiceNow's Table API is plain REST: `guarded_client`.
- any library built on httpx: hand it a `guarded_client(...)` or a `GuardedAsyncTransport`.
A library that cannot be routed through the guard must only ever receive operator-set URLs that were
checked with `validate_destination`, and must not follow redirects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

import httpcore
import httpx

from casem.adapters.http.errors import OutboundError
from casem.adapters.http.policy import AllowList, DestinationPolicy, DestinationRefused, Refusal, count_refusal

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
# A name may resolve to many addresses: try a few, each with the connect timeout.
MAX_ADDRESSES_TRIED = 3
USER_AGENT = "casem-outbound/1"

SocketOptions = Iterable[Any] | None


class _GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to vetted addresses, resolved once per connection."""

    def __init__(self, policy: DestinationPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self._policy = policy
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._policy.aresolve(host, port, timeout=timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except DestinationRefused as exc:
            if exc.refusal is Refusal.UNRESOLVABLE:  # DNS failures are transient at connect time
                raise httpcore.ConnectError(f"{host} does not resolve") from exc
            count_refusal(exc, "connect")
            raise
        failure: Exception | None = None
        for address in addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() answers at least one address
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedSyncBackend(httpcore.NetworkBackend):
    """The blocking twin of `_GuardedAsyncBackend` (resolution has no timeout of its own there)."""

    def __init__(self, policy: DestinationPolicy, inner: httpcore.NetworkBackend) -> None:
        self._policy = policy
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._policy.resolve(host, port)
        except DestinationRefused as exc:
            if exc.refusal is Refusal.UNRESOLVABLE:
                raise httpcore.ConnectError(f"{host} does not resolve") from exc
            count_refusal(exc, "connect")
            raise
        failure: Exception | None = None
        for address in addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _install_backend(transport: httpx.BaseTransport | httpx.AsyncBaseTransport, guard: type, policy: Any) -> None:
    # httpx has no public way to give its pool a network backend: replace the pool's, and refuse to
    # build a transport at all (fail closed) if a new httpx/httpcore laid its internals out differently.
    pool = getattr(transport, "_pool", None)
    expected = httpcore.AsyncConnectionPool if guard is _GuardedAsyncBackend else httpcore.ConnectionPool
    base = httpcore.AsyncNetworkBackend if guard is _GuardedAsyncBackend else httpcore.NetworkBackend
    inner = getattr(pool, "_network_backend", None)
    if type(pool) is not expected or not isinstance(inner, base):
        raise RuntimeError("this httpx/httpcore version is not supported by the outbound guard")
    pool._network_backend = guard(policy, inner)  # type: ignore[union-attr]


def _check_request(policy: DestinationPolicy, request: httpx.Request) -> None:
    try:
        policy.check_url(request.url)
    except DestinationRefused as exc:
        count_refusal(exc, "connect")
        raise


def _too_large(limit: int) -> OutboundError:
    return OutboundError(f"the receiver's answer was larger than {limit} bytes", transient=False)


class _CappedAsyncStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise _too_large(self._limit)
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class _CappedSyncStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise _too_large(self._limit)
            yield chunk

    def close(self) -> None:
        self._stream.close()


class GuardedAsyncTransport(httpx.AsyncHTTPTransport):
    """An `httpx.AsyncHTTPTransport` that only reaches destinations the policy allows."""

    def __init__(
        self,
        policy: DestinationPolicy | None = None,
        *,
        verify: Any = True,
        cert: Any = None,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
        retries: int = 0,
        socket_options: SocketOptions = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        # trust_env only governs SSL_CERT_FILE/SSL_CERT_DIR here (an internal CA); proxies are never set.
        super().__init__(
            verify=verify, cert=cert, http2=http2, limits=limits, retries=retries, socket_options=socket_options
        )
        self.policy = policy or DestinationPolicy()
        self._max_response_bytes = max_response_bytes
        _install_backend(self, _GuardedAsyncBackend, self.policy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _check_request(self.policy, request)
        response = await super().handle_async_request(request)
        if self._max_response_bytes is None:
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedAsyncStream(response.stream, self._max_response_bytes),
            extensions=response.extensions,
        )


class GuardedTransport(httpx.HTTPTransport):
    """The blocking twin of `GuardedAsyncTransport`, for synchronous callers."""

    def __init__(
        self,
        policy: DestinationPolicy | None = None,
        *,
        verify: Any = True,
        cert: Any = None,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
        retries: int = 0,
        socket_options: SocketOptions = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(verify=verify, cert=cert, limits=limits, retries=retries, socket_options=socket_options)
        self.policy = policy or DestinationPolicy()
        self._max_response_bytes = max_response_bytes
        _install_backend(self, _GuardedSyncBackend, self.policy)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _check_request(self.policy, request)
        response = super().handle_request(request)
        if self._max_response_bytes is None:
            return response
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedSyncStream(response.stream, self._max_response_bytes),
            extensions=response.extensions,
        )


def _policy(allow: AllowList | None, policy: DestinationPolicy | None) -> DestinationPolicy:
    if policy is not None and allow is not None:
        raise ValueError("pass either an allow-list or a policy, not both")
    return policy or DestinationPolicy(allow=allow or AllowList())


def _redirects(follow_redirects: bool, max_redirects: int) -> int:
    if not 0 <= max_redirects <= MAX_REDIRECTS:
        raise ValueError(f"max_redirects must be between 0 and {MAX_REDIRECTS}")
    return max_redirects if follow_redirects else 0


def guarded_client(
    allow: AllowList | None = None,
    *,
    policy: DestinationPolicy | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    follow_redirects: bool = False,
    max_redirects: int = 3,
    headers: Mapping[str, str] | None = None,
    base_url: str = "",
    auth: httpx.Auth | tuple[str, str] | None = None,
    verify: Any = True,
    http2: bool = False,
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` that refuses non-public destinations unless `allow` lists them.

    Redirects are not followed unless asked; then every hop is checked like the first request, at
    most `max_redirects` (≤ 5) of them. No proxy, no .netrc. Pass either `allow` or a full `policy`.
    """
    chosen = _policy(allow, policy)
    return httpx.AsyncClient(
        transport=GuardedAsyncTransport(chosen, verify=verify, http2=http2, max_response_bytes=max_response_bytes),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=_redirects(follow_redirects, max_redirects),
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        base_url=base_url,
        auth=auth,
        trust_env=False,
    )


def guarded_sync_client(
    allow: AllowList | None = None,
    *,
    policy: DestinationPolicy | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    follow_redirects: bool = False,
    max_redirects: int = 3,
    headers: Mapping[str, str] | None = None,
    base_url: str = "",
    auth: httpx.Auth | tuple[str, str] | None = None,
    verify: Any = True,
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
) -> httpx.Client:
    """The blocking twin of `guarded_client`. Do not call it from the event loop: it blocks on DNS and I/O."""
    chosen = _policy(allow, policy)
    return httpx.Client(
        transport=GuardedTransport(chosen, verify=verify, max_response_bytes=max_response_bytes),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=_redirects(follow_redirects, max_redirects),
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        base_url=base_url,
        auth=auth,
        trust_env=False,
    )


__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "GuardedAsyncTransport",
    "GuardedTransport",
    "guarded_client",
    "guarded_sync_client",
]
