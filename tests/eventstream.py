"""A minimal AWS event-stream *encoder* for tests (the probe decodes with botocore).

Layout (AWS's "Event stream encoding" documentation): ``[total_len u32][headers_len u32]
[prelude CRC32][headers][payload][message CRC32]``, big-endian; each header is
``[name_len u8][name][type u8 = 7 (string)][value_len u16][value]``.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """Encode one event-stream message with string headers and both CRCs."""
    raw_headers = b""
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        raw_headers += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, body: dict[str, Any]) -> bytes:
    """A Bedrock ``:message-type: event`` frame with a JSON payload."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return frame(headers, json.dumps(body, separators=(",", ":")).encode())


def exception(exception_type: str, message: str) -> bytes:
    """A Bedrock ``:message-type: exception`` frame."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, json.dumps({"message": message}).encode())
