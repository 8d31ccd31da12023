"""How an exception raised while probing becomes an error kind: a table, testable as data.

Like httpx's own map from httpcore's exceptions to its own (``httpx/_transports/default.py``),
classification is a table of (exception type, phase) -> :class:`~probes.errors.ErrorKind`,
read top to bottom; the first row whose type appears anywhere in the exception's chain
(``__cause__``/``__context__``: httpx wraps httpcore wraps ``OSError``) and whose phases
contain the phase the request was in wins. The phase comes from
:class:`probes.transport.ConnectionPhases`: it says whether the name had resolved, the TCP
connection was up, the TLS handshake was done, the request was out, the response had begun.

Deadlines of the runner's own (``asyncio.timeout``) are classified by :func:`timeout_kind`:
which deadline expired depends on the phase and on whether tokens had started.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import get_args

import httpx

from probes.errors import ErrorKind
from probes.transport import NameNotFound, Phase, ResolverTimeout

ANY: frozenset[Phase] = frozenset(get_args(Phase))
#: No connection yet: waiting for the pool, resolving, connecting, handshaking.
CONNECTING: frozenset[Phase] = frozenset({"pool", "dns", "connect", "tls"})
#: Connected and sending, or sent and waiting for the status line: no response yet.
REQUEST: frozenset[Phase] = frozenset({"request"})
RESPONSE: frozenset[Phase] = frozenset({"response"})


@dataclass(frozen=True, slots=True)
class Row:
    """One row of :data:`EXCEPTION_KINDS`.

    Attributes:
        exc_type: an exception type that must appear in the raised exception's chain.
        phases: the request phases the row applies to.
        kind: the resulting error kind.
        prefix: text put before the exception's own message.
    """

    exc_type: type[BaseException]
    phases: frozenset[Phase]
    kind: ErrorKind
    prefix: str = ""


EXCEPTION_KINDS: tuple[Row, ...] = (
    # Name resolution (our resolver, under its own deadline; probes.transport).
    Row(NameNotFound, ANY, ErrorKind.DNS, "host name not found: "),
    Row(ResolverTimeout, ANY, ErrorKind.DNS_TIMEOUT, "resolver: "),
    # Waiting for a free connection in our own pool.
    Row(httpx.PoolTimeout, ANY, ErrorKind.CONNECT_TIMEOUT, "no free connection in the pool: "),
    # TCP to the resolved address.
    Row(ConnectionRefusedError, CONNECTING, ErrorKind.CONNECT_REFUSED, "connection refused: "),
    Row(httpx.ConnectTimeout, CONNECTING, ErrorKind.CONNECT_TIMEOUT, "connect timed out: "),
    Row(ssl.SSLError, CONNECTING, ErrorKind.TLS, "TLS: "),
    Row(httpx.ConnectError, frozenset({"tls"}), ErrorKind.TLS, "TLS: "),
    Row(httpx.ConnectError, CONNECTING, ErrorKind.CONNECT_ERROR),
    # Connected, request sent or being sent, no response yet: the server dropped us.
    Row(httpx.RemoteProtocolError, REQUEST, ErrorKind.CONNECT_ERROR, "no response: "),
    Row(httpx.TransportError, REQUEST, ErrorKind.CONNECT_ERROR, "no response: "),
    Row(OSError, REQUEST | CONNECTING, ErrorKind.CONNECT_ERROR),
    # The response had begun: the stream broke.
    Row(httpx.RemoteProtocolError, RESPONSE, ErrorKind.TRUNCATED, "connection closed mid-stream: "),
    Row(httpx.TimeoutException, RESPONSE, ErrorKind.DEADLINE, "timed out mid-stream: "),
    Row(httpx.TransportError, RESPONSE, ErrorKind.TRUNCATED, "network error mid-stream: "),
    Row(OSError, RESPONSE, ErrorKind.TRUNCATED, "network error mid-stream: "),
    # Anything else httpx raises (invalid URL, stream misuse) before an answer.
    Row(httpx.HTTPError, ANY, ErrorKind.CONNECT_ERROR),
    Row(httpx.StreamError, ANY, ErrorKind.CONNECT_ERROR),
)


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8 and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def chain_text(exc: BaseException) -> str:
    """Each distinct message of the exception chain once (httpx wraps httpcore wraps OSError,
    often repeating one message at each level), joined by ``|``; the type name if none."""
    text = " | ".join(dict.fromkeys(str(e) for e in _chain(exc) if str(e)))
    return text or type(exc).__name__


def classify_exception(exc: BaseException, phase: Phase) -> tuple[ErrorKind, str] | None:
    """The error kind and message for ``exc`` raised in ``phase``, per :data:`EXCEPTION_KINDS`.

    Returns:
        ``(kind, message)``, or None when no row matches (a bug of ours: the runner records
        ``internal``).
    """
    chain = _chain(exc)
    for row in EXCEPTION_KINDS:
        if phase in row.phases and any(isinstance(e, row.exc_type) for e in chain):
            return row.kind, row.prefix + chain_text(exc)
    return None


def timeout_kind(
    phase: Phase, *, has_token: bool, terminal_seen: bool, total_deadline_reached: bool
) -> ErrorKind | None:
    """Which of the runner's deadlines expired, from where the probe was.

    Args:
        phase: the request's phase when the deadline expired.
        has_token: a token-bearing event had arrived (then it was the stall deadline).
        terminal_seen: the answer was complete; only the drain after it timed out.
        total_deadline_reached: the probe's whole ``timeout_s`` was spent.

    Returns:
        The kind, or None when the answer was complete (not a failure).
    """
    if terminal_seen:
        return None
    if phase == "dns":
        return ErrorKind.DNS_TIMEOUT
    if phase in CONNECTING:
        return ErrorKind.CONNECT_TIMEOUT
    if total_deadline_reached:
        return ErrorKind.DEADLINE
    if has_token:
        return ErrorKind.STALL
    return ErrorKind.FIRST_TOKEN_TIMEOUT
