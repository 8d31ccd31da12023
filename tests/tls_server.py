"""A TLS server on 127.0.0.1, in its own process, that holds its handshake back by a set delay.

Run: ``python -m tests.tls_server CERT_PEM KEY_PEM DELAY_MS``; prints ``PORT <n>``. Each
connection is accepted at once (the kernel completes TCP), then the server waits ``DELAY_MS``
before reading the ClientHello (it stays in the kernel's buffer), so the client's TLS
handshake takes that long; it then answers every request on the connection with one
OpenAI-style streamed chat completion (one token, usage, ``[DONE]``). Blocking sockets, one
thread per connection: nothing reads the ClientHello early.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time

BODY = (
    b'data: {"model":"served-model","choices":[{"index":0,"delta":{"content":"Hi"},'
    b'"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    b"data: [DONE]\n\n"
)


def _serve_connection(conn: socket.socket, context: ssl.SSLContext, delay_s: float) -> None:
    time.sleep(delay_s)
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = tls.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buffer) < length:
                    data = tls.recv(65536)
                    if not data:
                        return
                    buffer += data
                buffer = buffer[length:]
                tls.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
                )
    except (OSError, ssl.SSLError):
        pass


def serve(cert: str, key: str, delay_s: float) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(
            target=_serve_connection, args=(conn, context, delay_s), daemon=True
        ).start()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000.0)
