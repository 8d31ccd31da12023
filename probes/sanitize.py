"""The last step of every probe: the record keeps the schema's promises whatever was sent.

``docs/fields.md`` promises that no number is ``inf``, NaN, negative or absurd and that text
is valid, printable, redacted and short. Providers do not promise anything: a header
``x-ratelimit-remaining-requests: inf``, a count of ``10**20``, ``usage.cost: 1e400`` or a
lone surrogate in a message arrive as ordinary values. :func:`sanitize_record` nulls every
number out of range and names it in ``out_of_range_fields``, and cleans every string, so the
record can always be stored (SQLite integers are 64-bit), written as JSON (no ``Infinity``)
and printed (no terminal escapes).
"""

from __future__ import annotations

import dataclasses
import typing

from probes.errors import redact
from probes.record import ProbeRecord
from probes.text import cap, printable, valid_text

#: Largest number a record holds; above it a provider value is out of range. 10**15 is far
#: above any real count, duration or charge, and exact in a float, JSON and SQLite integer.
MAX_NUMBER = 1e15

#: Server-provided text fields and their length caps (characters).
SERVER_TEXT_CAPS: dict[str, int] = {
    "error_message": 300,
    "request_id": 200,
    "finish_reason": 64,
    "upstream_provider": 100,
    "response_model": 200,
}
#: Config-provided or our own text fields and their caps (config validation keeps them
#: shorter; the cap is for records built from older or hand-made configs).
OWN_TEXT_CAPS: dict[str, int] = {
    "target": 64,
    "provider": 64,
    "model": 200,
    "error_kind": 64,
    "usage_source": 32,
    "cost_source": 100,
}

_HINTS = typing.get_type_hints(ProbeRecord)
_NUMERIC = tuple(
    f.name
    for f in dataclasses.fields(ProbeRecord)
    if bool not in typing.get_args(_HINTS[f.name])
    and _HINTS[f.name] is not bool
    and ({int, float} & {_HINTS[f.name], *typing.get_args(_HINTS[f.name])})
)


def in_range(value: float) -> bool:
    """True for a finite number in ``0..MAX_NUMBER`` (what a record field may hold); False
    for NaN, infinities, negatives and integers too large for a float."""
    return 0 <= value <= MAX_NUMBER


def sanitize_record(
    record: ProbeRecord, secrets: tuple[str, ...] = (), flagged: tuple[str, ...] = ()
) -> ProbeRecord:
    """Make ``record`` storable, serialisable and printable, in place; returns it.

    Args:
        record: a finished record.
        secrets: the target's key (and base_url credentials), redacted from server text.
        flagged: field names already found out of range upstream (header parsing, usage),
            added to ``out_of_range_fields``.

    Returns:
        The same record: numbers out of range (not finite, negative, above
        :data:`MAX_NUMBER`) set to None and listed, comma-separated and in schema order, in
        ``out_of_range_fields`` (None when none); server text redacted, made valid and
        printable and capped (:data:`SERVER_TEXT_CAPS`); other text made printable and capped.
    """
    names = set(flagged)
    for name in _NUMERIC:
        value = getattr(record, name)
        if value is None or isinstance(value, bool):
            continue
        if not 0 <= value <= MAX_NUMBER:  # False for nan, inf, negatives and huge ints
            names.add(name)
            setattr(record, name, 0 if name == "token_events" else None)
    for name, limit in SERVER_TEXT_CAPS.items():
        value = getattr(record, name)
        if value is not None:
            setattr(record, name, redact(str(value), secrets, limit) or None)
    for name, limit in OWN_TEXT_CAPS.items():
        value = getattr(record, name)
        if value is not None:
            setattr(record, name, cap(printable(valid_text(str(value))), limit))
    order = {n: i for i, n in enumerate(_NUMERIC)}
    record.out_of_range_fields = (
        ",".join(sorted(names, key=lambda n: (order.get(n, len(order)), n))) or None
    )
    return record
