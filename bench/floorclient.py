"""The floor: a bare blocking-socket client timing the first token of a scripted server.

Run: .venv/bin/python bench/floorclient.py --port P --seconds S [--every 0.25]
Prints one JSON object: ``{"errors_ms": [...]}``, each the measured TTFT minus the server's
scripted first-token delay.

No event loop, no HTTP library, no parsing beyond finding the first ``data:`` line: a thread
blocked in ``recv`` wakes when the bytes arrive, so its error is what the server, the kernel
and the loopback add by themselves. A prober sampling the same server in the same run can do
no better; the benchmarks print the prober's error minus this one.
"""

from __future__ import annotations

import argparse
import gc
import json
import socket
import threading
import time

BODY = json.dumps(
    {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "max_tokens": 64,
    }
).encode()


def request(path: str) -> bytes:
    """The POST the floor sends, keep-alive."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


def sample(sock: socket.socket, req: bytes) -> float:
    """One request; returns the seconds from send to the first token bytes."""
    t0 = time.perf_counter()
    sock.sendall(req)
    buf = b""
    t_first = None
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        now = time.perf_counter()
        buf += data
        if t_first is None and b"data: " in buf:
            t_first = now
        if buf.endswith(b"0\r\n\r\n"):
            break
    assert t_first is not None
    return t_first - t0


def sampler(
    port: int, end: float, every: float, ttft_ms: float, out: list[tuple[float, float]]
) -> None:
    """One connection: a request every ``every`` seconds until ``end`` (monotonic)."""
    req = request("/ok/v1/chat/completions")
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    next_at = time.monotonic()
    while time.monotonic() < end:
        ttft = sample(sock, req)
        out.append((ttft * 1000 - ttft_ms, time.time()))
        next_at += every
        time.sleep(max(0.0, next_at - time.monotonic()))
    sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--every", type=float, default=0.25, help="seconds between samples")
    parser.add_argument("--ttft-ms", type=float, default=300.0)
    args = parser.parse_args()
    gc.disable()
    # A sample takes the whole stream (~1.3 s): several connections in their own threads,
    # staggered, give one sample every ``every`` seconds. Each thread sleeps in recv().
    threads = max(1, round(2.0 / args.every))
    end = time.monotonic() + args.seconds
    out: list[tuple[float, float]] = []
    workers = []
    for _ in range(threads):
        w = threading.Thread(
            target=sampler, args=(args.port, end, args.every * threads, args.ttft_ms, out)
        )
        w.start()
        workers.append(w)
        time.sleep(args.every)
    for w in workers:
        w.join()
    print(json.dumps({"errors_ms": [e for e, _ in out], "at": [a for _, a in out]}))


if __name__ == "__main__":
    main()
