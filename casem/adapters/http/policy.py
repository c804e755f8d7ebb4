"""Where casem's outbound HTTP may go: the destination policy of the server-side request forgery guard.

Tenants choose the URLs casem calls (webhooks, Teams connectors, and soon Jira, ServiceNow, SMS and
Slack endpoints). Without a guard such a URL can point at the machine casem runs on, its cloud
metadata service or any internal host, and casem would carry the request and report the answer.

The policy refuses, before anything is sent:
- a scheme other than http/https, user info before the host (`http://a@b/`), invalid ports and
  well-known non-HTTP service ports (optionally every non-default port);
- host names that are not plain DNS names, and every numeric host form other than four decimal
  numbers (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`): C resolvers read those as addresses
  while other parsers do not, so they only serve to disguise one;
- every address that is not globally routable: loopback, private, shared (CGNAT), link-local (the
  cloud metadata service at 169.254.169.254), multicast, unspecified, documentation and other
  reserved ranges, IPv6 unique-local/link-local/site-local, IPv4-mapped/compatible/translated IPv6,
  and NAT64 / 6to4 addresses whose embedded IPv4 address is refused. A name is refused when any of
  the addresses it resolves to is.

Operators who mean an internal host list its network (or name) in an `AllowList`. The allow-list
lifts the address checks only; the form checks above still apply, and unspecified addresses
(0.0.0.0/8, ::) are never allowed since connecting to them reaches the local host.

The same policy runs at save time (`validate_destination`, clear error for the API) and at connect
time (the guarded transport resolves once, checks, and connects to the vetted address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import httpx
from prometheus_client import Counter

from casem.adapters.http.errors import OutboundError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses the host resolves to (textual). Raises OSError when it does not resolve.
Resolver = Callable[[str, int], Iterable[str]]

ALLOW_ENV = "CASEM_OUTBOUND_ALLOW"
DEFAULT_PORTS = {"http": 80, "https": 443}
DEFAULT_RESOLVE_TIMEOUT_S = 5.0

# Well-known ports of services that are not HTTP. An HTTP request body sent there can be read as that
# service's commands (mail relaying, key-value stores), so they are refused even on allowed hosts.
BLOCKED_PORTS: frozenset[int] = frozenset(
    {
        *(20, 21, 22, 23, 69),  # file transfer and remote shells
        *(25, 110, 143, 465, 587, 993, 995),  # mail
        *(53, 123, 161, 179, 389, 636),  # DNS, NTP, SNMP, BGP, LDAP
        *(111, 135, 137, 139, 445, 2049),  # RPC and file sharing
        *(512, 513, 514, 515),  # BSD remote services, printing
        *(5060, 5061, 6000, 6665, 6666, 6667, 6668, 6669, 6697),  # SIP, X11, IRC
        *(2375, 2376, 2379, 2380, 10250),  # container and cluster control planes
        *(3306, 5432, 6379, 9042, 11211, 27017),  # databases and caches
    }
)

REFUSED = Counter(
    "casem_outbound_refused_total",
    "Outbound HTTP destinations refused by the request forgery guard",
    ["reason", "stage"],
)


class Refusal(StrEnum):
    """Why a destination is refused; the values are the `reason` label of the refusal counter."""

    SCHEME = "scheme"
    USERINFO = "userinfo"
    PORT = "port"
    HOST_FORM = "host_form"
    UNRESOLVABLE = "unresolvable"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link_local"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"
    IPV4_EMBEDDED = "ipv4_embedded"


ADDRESS_REFUSALS = frozenset(
    {
        Refusal.LOOPBACK,
        Refusal.PRIVATE,
        Refusal.LINK_LOCAL,
        Refusal.MULTICAST,
        Refusal.UNSPECIFIED,
        Refusal.RESERVED,
        Refusal.IPV4_EMBEDDED,
    }
)

_ALLOW_HINT = (
    "Calls to internal or non-public addresses are refused. If this destination is intended, an operator "
    f"can add its network to the org's outbound allow-list (casem admin allow-outbound) or to {ALLOW_ENV}."
)


class DestinationRefused(OutboundError):
    """The guard refused a destination: permanent, with no HTTP status.

    `refusal` is the category (also the metric label), `host` the host as written and `address` the
    refused address when there is one (for operators' logs: the message shows it only when the URL
    itself held the address, so a tenant cannot map internal names to addresses through it).
    """

    def __init__(self, reason: str, refusal: Refusal, *, host: str | None = None, address: IPAddress | None = None):
        super().__init__(reason, status=None, transient=False)
        self.refusal = refusal
        self.host = host
        self.address = address


def _networks(*specs: tuple[str, Refusal, str]) -> tuple[tuple[IPNetwork, Refusal, str], ...]:
    return tuple((ipaddress.ip_network(cidr), refusal, text) for cidr, refusal, text in specs)


# First match wins: more specific networks come before the ones containing them.
_REFUSED_V4 = _networks(
    ("0.0.0.0/8", Refusal.UNSPECIFIED, "an unspecified ('this network') address"),
    ("10.0.0.0/8", Refusal.PRIVATE, "a private address (RFC 1918)"),
    ("100.64.0.0/10", Refusal.PRIVATE, "a carrier-grade NAT shared address (RFC 6598)"),
    ("127.0.0.0/8", Refusal.LOOPBACK, "a loopback address"),
    ("169.254.0.0/16", Refusal.LINK_LOCAL, "a link-local address (where cloud metadata services answer)"),
    ("172.16.0.0/12", Refusal.PRIVATE, "a private address (RFC 1918)"),
    ("192.0.0.0/24", Refusal.RESERVED, "an IETF protocol assignment address"),
    ("192.0.2.0/24", Refusal.RESERVED, "a documentation address"),
    ("192.88.99.0/24", Refusal.RESERVED, "a deprecated 6to4 relay address"),
    ("192.168.0.0/16", Refusal.PRIVATE, "a private address (RFC 1918)"),
    ("198.18.0.0/15", Refusal.RESERVED, "a benchmarking address"),
    ("198.51.100.0/24", Refusal.RESERVED, "a documentation address"),
    ("203.0.113.0/24", Refusal.RESERVED, "a documentation address"),
    ("224.0.0.0/4", Refusal.MULTICAST, "a multicast address"),
    ("240.0.0.0/4", Refusal.RESERVED, "a reserved or broadcast address"),
)
_REFUSED_V6 = _networks(
    ("::/128", Refusal.UNSPECIFIED, "the unspecified address"),
    ("::1/128", Refusal.LOOPBACK, "the loopback address"),
    ("::ffff:0:0/96", Refusal.IPV4_EMBEDDED, "an IPv4-mapped IPv6 address"),
    ("::ffff:0:0:0/96", Refusal.IPV4_EMBEDDED, "an IPv4-translated IPv6 address"),
    ("::/96", Refusal.IPV4_EMBEDDED, "an IPv4-compatible IPv6 address"),
    ("64:ff9b:1::/48", Refusal.PRIVATE, "a local-use NAT64 address"),
    ("100::/64", Refusal.RESERVED, "a discard-only address"),
    ("2001::/32", Refusal.RESERVED, "a Teredo tunnel address"),
    ("2001:2::/48", Refusal.RESERVED, "a benchmarking address"),
    ("2001:10::/28", Refusal.RESERVED, "a deprecated ORCHID address"),
    ("2001:20::/28", Refusal.RESERVED, "an ORCHID address"),
    ("2001:db8::/32", Refusal.RESERVED, "a documentation address"),
    ("3fff::/20", Refusal.RESERVED, "a documentation address"),
    ("5f00::/16", Refusal.RESERVED, "a segment routing address"),
    ("fc00::/7", Refusal.PRIVATE, "a unique-local address"),
    ("fe80::/10", Refusal.LINK_LOCAL, "a link-local address"),
    ("fec0::/10", Refusal.PRIVATE, "a site-local address"),
    ("ff00::/8", Refusal.MULTICAST, "a multicast address"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")

_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def classify_address(ip: IPAddress) -> tuple[Refusal, str] | None:
    """The refusal category and description of a non-public address; None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, via = None, ""
        if ip in _NAT64:
            embedded, via = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "a NAT64 address"
        elif ip.sixtofour is not None:
            embedded, via = ip.sixtofour, "a 6to4 address"
        if embedded is not None:
            inner = classify_address(embedded)
            return (inner[0], f"{via} embedding {inner[1]}") if inner else None
    for network, refusal, text in _REFUSED_V4 if ip.version == 4 else _REFUSED_V6:
        if ip in network:
            return refusal, text
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return Refusal.RESERVED, "an address outside the IPv6 global unicast range"
    if not ip.is_global:  # whatever else the standard library knows to be special-purpose
        return Refusal.RESERVED, "a special-purpose address"
    return None


@dataclass(frozen=True)
class AllowList:
    """Destinations an operator allows although they are not public: networks and exact host names.

    A host name here is trusted whatever it resolves to (the connection still goes to the addresses
    resolved once at connect time); prefer networks.
    """

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str], *, allow_host_names: bool = True) -> AllowList:
        """Entries are CIDR networks (`10.20.0.0/16`, `fd00::/8`), single addresses or host names.

        A network with host bits set (`10.0.0.5/8`) is an error rather than silently widened.
        """
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=True))
                continue
            except ValueError as exc:
                if "/" in entry or ":" in entry or _looks_numeric(entry):
                    raise ValueError(f"{entry!r} is not a valid CIDR network: {exc}") from None
            name = _normalized_name(entry)
            if not allow_host_names:
                raise ValueError(f"{entry!r} is not a CIDR network (host names are not accepted here)")
            if name is None:
                raise ValueError(f"{entry!r} is neither a CIDR network nor a host name")
            hosts.add(name)
        return cls(tuple(networks), frozenset(hosts))

    def permits_address(self, ip: IPAddress) -> bool:
        return any(ip.version == network.version and ip in network for network in self.networks)

    def permits_host(self, host: str) -> bool:
        name = _normalized_name(host)
        return name is not None and name in self.hosts

    def __or__(self, other: AllowList) -> AllowList:
        """The union of two lists (an organization's and the operator's)."""
        return AllowList(tuple(dict.fromkeys(self.networks + other.networks)), self.hosts | other.hosts)

    def __bool__(self) -> bool:
        return bool(self.networks or self.hosts)


def allow_list_from_env(environ: Mapping[str, str] | None = None, name: str = ALLOW_ENV) -> AllowList:
    """The operator-wide allow-list: `CASEM_OUTBOUND_ALLOW=10.20.0.0/16,192.168.5.7,fd00:1::/64`.

    Unset or empty means nothing beyond public addresses. A bad entry raises ValueError naming the
    variable, so a typo stops the process at start instead of silently allowing nothing (or more).
    """
    value = (os.environ if environ is None else environ).get(name, "")
    try:
        return AllowList.parse(value.split(","), allow_host_names=False)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses getaddrinfo gives for a TCP connection to host:port (blocking)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Destination:
    """A URL's destination as checked: the host as written, the effective port and, once resolved,
    the vetted addresses."""

    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...] = ()


@dataclass(frozen=True)
class DestinationPolicy:
    """The destination rules of one client: an allow-list, the resolver, and the port and scheme rules.

    `allow_non_default_ports` is on by default: receivers commonly listen on 8080, 8443 or 9000, and
    the protection against the internal network comes from the address checks, not from ports. Turn
    it off for deployments whose integrations all use 80/443. `blocked_ports` stay refused either way.
    `resolver` is the only seam for tests: it lets a name resolve to chosen addresses.
    """

    allow: AllowList = field(default_factory=AllowList)
    resolver: Resolver = system_resolver
    allow_non_default_ports: bool = True
    blocked_ports: frozenset[int] = BLOCKED_PORTS
    require_https: bool = False

    def check_url(self, url: str | httpx.URL) -> Destination:
        """The checks that need no resolution: scheme, user info, port and host form."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise DestinationRefused(f"the URL is invalid ({exc})", Refusal.HOST_FORM) from None
        schemes = ("https",) if self.require_https else ("http", "https")
        if not parsed.scheme or (parsed.scheme in schemes and not parsed.host):
            raise DestinationRefused("the URL must be absolute (scheme://host/path)", Refusal.HOST_FORM)
        if parsed.scheme not in schemes:
            allowed = " and ".join(schemes)
            raise DestinationRefused(
                f"only absolute {allowed} URLs are allowed (got scheme {parsed.scheme!r})", Refusal.SCHEME
            )
        host = parsed.raw_host.decode("ascii")
        if parsed.userinfo:
            raise DestinationRefused(
                "URLs with a user name or password before the host are refused; send credentials in a header",
                Refusal.USERINFO,
                host=host,
            )
        port = DEFAULT_PORTS[parsed.scheme] if parsed.port is None else parsed.port
        self.check_port(parsed.scheme, port)
        self.check_host(host)
        return Destination(parsed.scheme, host, port)

    def check_port(self, scheme: str, port: int) -> None:
        if not 0 < port < 65536:
            raise DestinationRefused(f"port {port} is not a valid TCP port", Refusal.PORT)
        if port in self.blocked_ports:
            raise DestinationRefused(
                f"port {port} belongs to a well-known service that is not HTTP; receivers must listen on an HTTP port",
                Refusal.PORT,
            )
        if port != DEFAULT_PORTS.get(scheme) and not self.allow_non_default_ports:
            raise DestinationRefused(
                f"only the default port of {scheme} ({DEFAULT_PORTS.get(scheme)}) is allowed on this server "
                f"(got {port})",
                Refusal.PORT,
            )

    def check_host(self, host: str) -> IPAddress | str:
        """An address literal (for `[v6]` and four decimal numbers) or the normalized host name."""
        if not host:
            raise DestinationRefused("the URL has no host", Refusal.HOST_FORM)
        if ":" in host:
            if "%" in host:
                raise DestinationRefused(
                    f"{host!r} is a scoped IPv6 address, which is never public", Refusal.HOST_FORM, host=host
                )
            try:
                return ipaddress.IPv6Address(host)
            except ValueError:
                raise DestinationRefused(
                    f"{host!r} is not a valid IPv6 address", Refusal.HOST_FORM, host=host
                ) from None
        if _looks_numeric(host):
            try:
                literal = ipaddress.IPv4Address(host)
            except ValueError:
                literal = None
            if literal is None or str(literal) != host:
                raise DestinationRefused(
                    f"{host!r} is a numeric host form that resolvers read in different ways; write the address "
                    "as four decimal numbers (such as 192.0.2.10) or use a host name",
                    Refusal.HOST_FORM,
                    host=host,
                )
            return literal
        name = _normalized_name(host)
        if name is None:
            raise DestinationRefused(f"{host!r} is not a valid host name", Refusal.HOST_FORM, host=host)
        return name

    def vet_address(self, ip: IPAddress, *, host: str, literal: bool, allowed_host: bool = False) -> None:
        """Raise DestinationRefused unless the address is public or allowed."""
        found = classify_address(ip)
        if found is None:
            return
        refusal, text = found
        if refusal is not Refusal.UNSPECIFIED and (allowed_host or self.allow.permits_address(ip)):
            return
        subject = f"{host!r} is {text}" if literal else f"{host!r} resolves to {text}"
        hint = "" if refusal is Refusal.UNSPECIFIED else f" {_ALLOW_HINT}"
        raise DestinationRefused(f"{subject}.{hint}", refusal, host=host, address=ip)

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Check the host, resolve it once (blocking) and vet every address; answer them in resolver order."""
        checked = self.check_host(host)
        if not isinstance(checked, str):
            self.vet_address(checked, host=host, literal=True)
            return [checked]
        allowed_host = self.allow.permits_host(checked)
        if (checked == "localhost" or checked.endswith(".localhost")) and not allowed_host:
            raise DestinationRefused(f"{host!r} is a loopback name. {_ALLOW_HINT}", Refusal.LOOPBACK, host=host)
        try:
            answers = list(self.resolver(host, port))
        except (OSError, UnicodeError):
            answers = []
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                # A scope ("fe80::1%eth0") only comes with link-local addresses, which are refused.
                addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
            except ValueError:
                raise DestinationRefused(
                    f"{host!r} resolves to something that is not an IP address", Refusal.HOST_FORM, host=host
                ) from None
        if not addresses:
            raise DestinationRefused(f"{host!r} does not resolve to any address", Refusal.UNRESOLVABLE, host=host)
        for ip in addresses:
            self.vet_address(ip, host=host, literal=False, allowed_host=allowed_host)
        return addresses

    async def aresolve(
        self, host: str, port: int, *, timeout: float | None = DEFAULT_RESOLVE_TIMEOUT_S
    ) -> list[IPAddress]:
        """`resolve` off the event loop (getaddrinfo blocks). Raises TimeoutError past `timeout`."""
        return await asyncio.wait_for(asyncio.to_thread(self.resolve, host, port), timeout)

    def validate(self, url: str | httpx.URL, *, allow_unresolvable: bool = False) -> Destination:
        """Every check of a URL, resolution included (blocking). Counted as a save-time refusal.

        With `allow_unresolvable`, a well-formed host name that does not resolve (yet) passes with no
        addresses: the connect-time check still vets whatever it resolves to when a call is made.
        """
        try:
            destination = self.check_url(url)
            try:
                addresses = tuple(self.resolve(destination.host, destination.port))
            except DestinationRefused as exc:
                if allow_unresolvable and exc.refusal is Refusal.UNRESOLVABLE:
                    return destination
                raise
            return Destination(destination.scheme, destination.host, destination.port, addresses)
        except DestinationRefused as exc:
            count_refusal(exc, "save")
            raise

    async def avalidate(
        self,
        url: str | httpx.URL,
        *,
        allow_unresolvable: bool = False,
        timeout: float | None = DEFAULT_RESOLVE_TIMEOUT_S,
    ) -> Destination:
        """`validate` off the event loop; a resolution slower than `timeout` counts as unresolvable."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.validate, url, allow_unresolvable=allow_unresolvable), timeout
            )
        except TimeoutError:
            if allow_unresolvable:
                return self.check_url(url)
            refused = DestinationRefused(
                f"the host of the URL did not resolve within {timeout:g} s", Refusal.UNRESOLVABLE
            )
            count_refusal(refused, "save")
            raise refused from None


async def validate_destination(
    url: str,
    allow: AllowList | None = None,
    *,
    policy: DestinationPolicy | None = None,
    allow_unresolvable: bool = False,
) -> Destination:
    """Check a URL when it is saved (a webhook, a Teams connector, an integration's base URL).

    Answers the vetted destination or raises `DestinationRefused` whose `reason` says what is refused,
    why, and what an operator can do; callers turn it into their input error (JSON:API 400 on the
    URL attribute). Pass the org's allow-list combined with the operator's (`org | operator`), or a
    whole policy when the call site has port or scheme rules. `allow_unresolvable` accepts a host
    name that does not resolve yet (see `DestinationPolicy.validate`).
    """
    if policy is not None and allow is not None:
        raise ValueError("pass either an allow-list or a policy, not both")
    chosen = policy or DestinationPolicy(allow=allow or AllowList())
    return await chosen.avalidate(url, allow_unresolvable=allow_unresolvable)


def count_refusal(exc: DestinationRefused, stage: str) -> None:
    """Count a refusal by category and stage ("save" or "connect"): both labels have a fixed set of values."""
    REFUSED.labels(reason=exc.refusal.value, stage=stage).inc()


def _looks_numeric(host: str) -> bool:
    # The rule URL parsers use: a host whose last label is a number is an IPv4 address in some form.
    labels = host.removesuffix(".").split(".")
    return bool(_NUMERIC_LABEL.match(labels[-1]))


def _normalized_name(host: str) -> str | None:
    name = host.lower().removesuffix(".")
    if not name or len(name) > 253 or not all(_DNS_LABEL.match(label) for label in name.split(".")):
        return None
    return name
