"""The probing HTTP client: connection phases timed per probe, start-up cost paid before any clock.

Two things a plain ``httpx.AsyncClient`` gets wrong for a monitor (docs/metrics.md §1.1 and
§1.2):

* **Start-up cost inside the first timing.** httpx, httpcore and anyio load their async
  backend, spawn the resolver's thread and run their first-use paths on the first request of a
  process or event loop: 20-45 ms that land in ``ttfb_ms``/``ttft_ms`` of the first probe.
  :func:`warm_up` runs one complete HTTP exchange against a throwaway server on 127.0.0.1 and
  one local name lookup before the first clock starts. It never contacts a provider, so no
  real network cost (DNS, TCP, TLS to the provider) is hidden: those stay in the timings and
  are reported separately below.
* **One number for a new connection.** :class:`PhasedBackend` is an httpcore network backend
  that resolves the host itself, under its own deadline (a share of the probe's budget, so a
  slow resolver is not reported as a connect timeout), connects to the resolved address and
  times the TLS handshake. httpcore hands the origin host to ``connect_tcp`` and the SNI name
  separately to ``start_tls``, so connecting to an address keeps certificate checks on the
  host name. The durations go to the :class:`ConnectionPhases` of the probe that opened the
  connection, found through a context variable (httpcore connects inside the requesting task).
* **The HTTP stack's own time inside a stamp.** Its streams (:class:`StampedStream`) stand on
  asyncio's streams directly: each block of bytes is stamped when it arrived (at the loop's
  poll, :mod:`probes.arrival`), before h11 and httpx process it, and a request's bytes go to
  the socket without the loop turns httpcore's anyio backend adds.

:func:`make_client` builds the client every probe uses; the scheduler decides how many exist
and their pool size.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any, Literal

import httpcore
import httpx

from probes.arrival import ArrivalStampingReader, open_stamped_connection

#: Where a probe's request is: waiting for a pooled connection, resolving, connecting, in the
#: TLS handshake, request sent (no response headers yet), or reading the response.
Phase = Literal["pool", "dns", "connect", "tls", "request", "response"]

#: Resolves a host name to IP address strings (IPv6 first when the system prefers it).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_USER_AGENT = "inferwatch/0.1"
#: A request's writes are sent as one once the response is read, or at this size.
_COALESCE_MAX_BYTES = 64 * 1024
#: Threads for blocking ``getaddrinfo`` calls. A lookup that hangs keeps its thread until the
#: system resolver gives up; several threads keep one stuck name from blocking the others.
_RESOLVER_THREADS = 8
#: ``getaddrinfo`` errors that mean "this name has no address": a configuration error.
_NO_SUCH_NAME = frozenset(
    getattr(socket, name)
    for name in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY")
    if hasattr(socket, name)
)


class ResolveError(Exception):
    """The host name could not be resolved (raised by :class:`PhasedBackend`)."""


class NameNotFound(ResolveError):
    """The resolver answered that the name does not exist (NXDOMAIN / no address)."""


class ResolverTimeout(ResolveError):
    """The resolver did not answer in time, or answered "try again" (``EAI_AGAIN``)."""


@dataclass(slots=True)
class ConnectionPhases:
    """One probe's connection: phase durations (seconds) and where the request is now.

    Attributes:
        dns_timeout_s: deadline for resolving the host (None: only the connect timeout).
        phase: the current :data:`Phase`; the runner classifies a failure by it.
        new_connection: True once this probe opened a connection (else a pooled one was used).
        dns_s: name resolution time; 0.0 for an IP address; None when not resolved here.
        connect_s: TCP connect time to the resolved address.
        tls_s: TLS handshake time (None for plain HTTP).
    """

    dns_timeout_s: float | None = None
    phase: Phase = "pool"
    new_connection: bool = False
    dns_s: float | None = None
    connect_s: float | None = None
    tls_s: float | None = None

    def restart(self) -> None:
        """Forget a previous attempt (the runner re-sends once on a stale pooled connection)."""
        self.phase = "pool"
        self.new_connection = False
        self.dns_s = self.connect_s = self.tls_s = None


_CURRENT: ContextVar[ConnectionPhases | None] = ContextVar("inferwatch_phases", default=None)


@contextlib.contextmanager
def tracking(phases: ConnectionPhases) -> Iterator[ConnectionPhases]:
    """Attribute connections opened inside this block (same task) to ``phases``."""
    token = _CURRENT.set(phases)
    try:
        yield phases
    finally:
        _CURRENT.reset(token)


_resolver_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _resolver_pool
    if _resolver_pool is None:
        _resolver_pool = ThreadPoolExecutor(_RESOLVER_THREADS, thread_name_prefix="iw-resolve")
    return _resolver_pool


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (``getaddrinfo``) on a dedicated thread pool.

    Returns:
        The distinct addresses in the order the system prefers them.

    Raises:
        NameNotFound: the name has no address (``EAI_NONAME``/``EAI_NODATA``).
        ResolverTimeout: the resolver failed temporarily (``EAI_AGAIN`` and other errors).
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            _pool(), socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            raise NameNotFound(f"{host}: {exc.strerror or exc}") from exc
        raise ResolverTimeout(f"{host}: resolver failed: {exc.strerror or exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class StampedStream(httpcore.AsyncNetworkStream):
    """httpcore's network stream on asyncio's own streams, stamping every socket read.

    * ``last_read_s`` is when the bytes the latest read returned arrived (``time.perf_counter``
      seconds): the poll that found them, on a stamping loop (:mod:`probes.arrival`), else
      their hand-over by the transport; always before h11 parses them and httpx hands them
      on. A read returns bytes of one arrival block at most, so two tokens that came apart
      keep their own stamps even when the reader runs late. The runner finds this stream in
      ``response.extensions["network_stream"]`` and stamps each body chunk with it, so the
      HTTP stack's own processing and the loop's queue never count as the provider's latency
      (docs/metrics.md §1).
    * A request goes to the socket in one write (headers and body together), without the loop
      turn httpcore's anyio backend takes after every send (0.4 ms each here): time inside
      every TTFT that no provider spent.
    * The TLS handshake (``start_tls``, in place) is timed into the opening probe's phases.

    Errors are raised as httpcore's exceptions, as its anyio backend raises them.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        phases: ConnectionPhases | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._phases = phases
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        # Bytes read from the reader past the end of the block they arrived in.
        self._held = b""
        self.last_read_s: float | None = None

    async def read(
        self,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> bytes:
        """Read up to ``max_bytes`` of one arrival block (``b""`` at the end); stamp their
        arrival in ``last_read_s``."""
        if self._pending:
            await self._flush(timeout, httpcore.ReadError)
        reader = self._reader
        if self._held:
            data, self._held = self._held, b""
        else:
            try:
                if timeout is None:
                    data = await reader.read(max_bytes)
                else:
                    async with asyncio.timeout(timeout):
                        data = await reader.read(max_bytes)
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(str(exc) or "read timed out") from exc
            except OSError as exc:
                raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc
        stamp = None
        if data and isinstance(reader, ArrivalStampingReader):
            block = reader.next_block_size()
            cut = min(max_bytes, block) if block else max_bytes
            if len(data) > cut:
                self._held = data[cut:]
                data = data[:cut]
            stamp = reader.take_stamp(len(data))
        self.last_read_s = time.perf_counter() if stamp is None else stamp
        return data

    async def write(
        self,
        buffer: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> None:
        """Queue ``buffer``; it goes out with the rest of the request when the response is read.

        httpcore writes a request's headers and body separately: as two segments the server
        must wake up twice before it can start (here 0.3-0.5 ms more until the request was
        seen). One write per request, as other clients send it. More than 64 KiB goes out at
        once.
        """
        if not buffer:
            return
        self._pending.append(buffer)
        self._pending_bytes += len(buffer)
        if self._pending_bytes >= _COALESCE_MAX_BYTES:
            await self._flush(timeout, httpcore.WriteError)

    async def _flush(self, within_s: float | None, error: type[Exception]) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        writer = self._writer
        if writer.is_closing():
            raise error("the connection is closed")
        try:
            writer.write(data)
            if writer.transport.get_write_buffer_size():  # the kernel did not take it all
                async with asyncio.timeout(within_s):
                    await writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "write timed out") from exc
        except OSError as exc:
            raise error(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Close without waiting (a TLS peer need not answer our close_notify)."""
        self._writer.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS in place, checking the certificate against ``server_hostname`` (the
        origin's host name, not the address connected to); timed into ``tls_s``."""
        phases = self._phases
        if phases is not None:
            phases.phase = "tls"
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._writer.transport.abort()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except OSError as exc:  # ssl.SSLError included
            self._writer.transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if phases is not None:
            phases.tls_s = time.perf_counter() - start
            phases.phase = "request"
        self._phases = None  # the connection outlives the probe that opened it
        return self

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks about the connection (``ssl_object``, ``is_readable``...)."""
        writer = self._writer
        if info == "ssl_object":
            return writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return writer.get_extra_info("sockname")
        if info == "server_addr":
            return writer.get_extra_info("peername")
        if info == "socket":
            return writer.get_extra_info("socket")
        if info == "is_readable":
            # An idle pooled connection that the server closed (or wrote to) is not reusable.
            reader = self._reader
            if self._held or reader.at_eof() or reader.exception() is not None:
                return True
            if writer.is_closing():
                return True
            return is_socket_readable(writer.get_extra_info("socket"))
        return None


def is_socket_readable(sock: Any) -> bool:
    """Whether a read on ``sock`` would return at once (data or the end): an idle pooled
    connection in that state must not be reused. A missing socket counts as readable."""
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _is_address(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


class PhasedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend: resolve under a deadline, connect, time each phase.

    Args:
        resolver: name resolution (default :func:`system_resolver`); tests inject their own.
    """

    def __init__(self, resolver: Resolver | None = None) -> None:
        self._resolver: Resolver = resolver or system_resolver

    async def _resolve(self, host: str, port: int, within_s: float | None) -> Sequence[str]:
        try:
            async with asyncio.timeout(within_s):
                addresses = await self._resolver(host, port)
        except TimeoutError:
            raise ResolverTimeout(
                f"{host}: no answer from the resolver in {within_s or 0:g} s"
            ) from None
        if not addresses:
            raise NameNotFound(f"{host}: no address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host`` (own deadline), connect to its addresses in order, time both.

        Raises:
            NameNotFound, ResolverTimeout: resolution failed (see :func:`system_resolver`).
            httpcore.ConnectError, httpcore.ConnectTimeout: no address accepted the connection.
        """
        phases = _CURRENT.get()
        dns_timeout = timeout
        if phases is not None:
            phases.new_connection = True
            phases.phase = "dns"
            if phases.dns_timeout_s is not None:
                dns_timeout = min(phases.dns_timeout_s, timeout or phases.dns_timeout_s)
        start = time.perf_counter()
        addresses = [host] if _is_address(host) else await self._resolve(host, port, dns_timeout)
        resolved = time.perf_counter()
        if phases is not None:
            phases.dns_s = resolved - start
            phases.phase = "connect"
        remaining = None if timeout is None else max(timeout - (resolved - start), 0.001)
        local = (local_address, 0) if local_address else None
        for i, address in enumerate(addresses):
            try:
                async with asyncio.timeout(remaining):
                    reader, writer = await open_stamped_connection(address, port, local)
                break
            except TimeoutError as exc:
                if i == len(addresses) - 1:
                    raise httpcore.ConnectTimeout(str(exc) or "connect timed out") from exc
            except OSError as exc:
                if i == len(addresses) - 1:
                    raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        if phases is not None:
            phases.connect_s = time.perf_counter() - resolved
            phases.phase = "request"
        return StampedStream(reader, writer, phases)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are not used by probes."""
        raise httpcore.ConnectError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retry back-off)."""
        await asyncio.sleep(seconds)


class PhasedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its exception mapping included) over a :class:`PhasedBackend`."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
        resolver: Resolver | None = None,
    ) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else None
        if context is None:
            context = httpx.create_ssl_context(verify=bool(verify), trust_env=False)
        super().__init__(verify=context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PhasedBackend(resolver),
        )


#: Seconds an idle pooled connection is kept (httpx's default).
KEEPALIVE_EXPIRY_S = 5.0


def make_client(
    max_connections: int = 100,
    *,
    resolver: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
    keep_alive: bool = True,
) -> httpx.AsyncClient:
    """The httpx client every probe uses.

    ``Accept-Encoding: identity`` because a compressed stream is released in blocks by the
    decompressor (docs/metrics.md, ``buffered``). Read timeouts are off: the runner enforces its
    own first-token, stall and total deadlines, which keep-alive bytes cannot re-arm.

    Args:
        max_connections: pool size; keep-alive connections are kept up to 20 (or fewer).
        resolver: name resolution (default: the system resolver on its own threads).
        verify: TLS verification: an ``ssl.SSLContext`` to share between clients (building
            one per client costs milliseconds and a copy of the CA bundle) or to trust a
            private CA, as tests do.
        keep_alive: keep idle connections (for :data:`KEEPALIVE_EXPIRY_S`); False closes each
            one when its response ends (the scheduler's choice for targets probed less often
            than that: their connection would expire unused anyway).
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=min(20, max_connections) if keep_alive else 0,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(
        transport=PhasedTransport(limits=limits, verify=verify, resolver=resolver),
        timeout=httpx.Timeout(connect=10.0, read=None, write=10.0, pool=10.0),
        headers={"Accept-Encoding": "identity", "User-Agent": _USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )


# --- warm-up ---------------------------------------------------------------------------------

_warm_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_warming: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[None]] = (
    weakref.WeakKeyDictionary()
)

_WARM_BODY = (
    b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


async def _answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal HTTP/1.1 server: read one request, stream a chunked SSE answer, close."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip() or 0)
        if length:
            await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        for part in (_WARM_BODY[:40], _WARM_BODY[40:]):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _exchange() -> None:
    server = await asyncio.start_server(_answer_once, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with contextlib.suppress(ResolveError):
            await system_resolver("localhost", port)
        phases = ConnectionPhases(dns_timeout_s=5.0)
        async with make_client(1, verify=False) as client:
            with tracking(phases):
                async with client.stream(
                    "POST",
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={"model": "warm-up", "stream": True},
                    extensions={"trace": _ignore_trace},
                ) as response:
                    async for _ in response.aiter_bytes():
                        pass
    finally:
        server.close()
        await server.wait_closed()


async def _ignore_trace(name: str, info: dict[str, Any]) -> None:
    return None


async def warm_up() -> None:
    """Pay this event loop's one-time client start-up cost now, outside every timing.

    Runs once per event loop (concurrent callers wait for the same run): one HTTP exchange
    through a client built like :func:`make_client` against a throwaway server on 127.0.0.1,
    and a lookup of ``localhost`` on the resolver's threads. Never raises: a failed warm-up only
    leaves the first probe a little slower.
    """
    loop = asyncio.get_running_loop()
    if loop in _warm_loops:
        return
    running = _warming.get(loop)
    if running is not None:
        await asyncio.shield(running)
        return
    future: asyncio.Future[None] = loop.create_future()
    _warming[loop] = future
    try:
        async with asyncio.timeout(10.0):
            await _exchange()
    except Exception:  # best effort by design, see the docstring
        pass
    finally:
        _warm_loops.add(loop)
        _warming.pop(loop, None)
        future.set_result(None)
