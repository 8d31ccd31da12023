"""How late an idle asyncio client wakes when data arrives on loopback, by idle time.

Run: .venv/bin/python bench/loopback_wakeup.py

A separate process waits exactly D seconds (perf_counter) after each request, then answers
one byte over TCP_NODELAY; the client measures the round trip minus D. This is the floor of
any TTFT measurement on the machine: it contains no HTTP, SSE or inferwatch code. The server
waits two ways: spinning (one core stays busy) and sleeping until the last 4 ms (the whole
machine idles, as when a real provider is thinking); on a VM the second wakes up later.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import textwrap
import time

SERVER = textwrap.dedent(
    """
    import socket, time
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    print(s.getsockname()[1], flush=True)
    c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while (chunk := c.recv(100)):
        buf += chunk
        if buf[-1:] != bytes([10]): continue
        mode, d = buf.split(); buf = b""
        mode = mode.decode()
        t, d = time.perf_counter(), float(d)
        if mode == "sleep" and d > 0.004: time.sleep(d - 0.004)
        while time.perf_counter() - t < d: pass
        c.send(b"x")
    """
)


async def main() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    port = int(await proc.stdout.readline())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for mode in ("spin", "sleep"):
        for delay in (0.0, 0.05, 0.25, 1.0):
            late = []
            for _ in range(15):
                t = time.perf_counter()
                writer.write(f"{mode} {delay}\n".encode())
                await writer.drain()
                await reader.readexactly(1)
                late.append((time.perf_counter() - t - delay) * 1000)
            print(
                f"server {mode:<5} {delay * 1000:>6.0f} ms: wake-up + round trip median "
                f"{statistics.median(late):.2f} ms, max {max(late):.2f} ms"
            )
    writer.close()
    proc.kill()


if __name__ == "__main__":
    asyncio.run(main())
