"""Text from outside (providers, exceptions, config) made safe to store and to show.

A provider controls the bytes of its error bodies, ids and reasons; a config file controls
names and models. Before any of it reaches the database, a CSV file, stdout or the dashboard
it is made *valid* (no lone surrogates, which UTF-8 cannot encode) and *printable*: control
characters are replaced by a visible escape (``\\x1b``, ``\\x9b``, ``\\u202e``), so an
``ESC ] 0 ; title BEL`` from a 500 body can neither retitle the terminal nor clear the screen,
and bidi overrides cannot reorder what is shown, while the value stays readable.

:func:`printable` is the one function every printing path uses (the CLI, the dashboard's
snapshot, CSV export, the prober log); :func:`printable_tree` applies it to every string in a
dataclass tree, which is how the dashboard cleans a whole snapshot in one call.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import re
import typing
from typing import Any, TypeVar

T = TypeVar("T")

#: Characters that may change what a terminal does or how text is ordered, never shown raw:
#: C0 controls and DEL, C1 controls (``\x9b`` is a one-byte CSI on some terminals), Unicode
#: bidi embeddings, overrides and isolates, the line/paragraph separators, the BOM and lone
#: surrogates (which cannot be encoded). Tab and line feed may be kept on request.
_UNSAFE_CLASS = (
    "\x00-\x08{tab}\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2066-\u2069\ufeff\ud800-\udfff{newline}"
)
_PATTERNS = {
    (newlines, tabs): re.compile(
        "[" + _UNSAFE_CLASS.format(tab="" if tabs else "\t", newline="" if newlines else "\n") + "]"
    )
    for newlines in (False, True)
    for tabs in (False, True)
}
_UNSAFE = _PATTERNS[False, False]
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = False, tabs: bool = False) -> str:
    """``text`` with every control, bidi and unencodable character replaced by a visible escape.

    Args:
        text: any string (a provider message, a request id, a target name).
        newlines: keep ``\\n`` as a line break (multi-line messages); otherwise it becomes
            ``\\n`` like the other controls.
        tabs: keep tabs (a CSV cell may hold one); otherwise they become ``\\t``.

    Returns:
        The text with ``ESC`` as ``\\x1b``, ``CSI`` (U+009B) as ``\\x9b``, U+202E as
        ``\\u202e``, a lone surrogate as ``\\ud800``, tab/CR/LF as ``\\t``/``\\r``/``\\n``.
        Idempotent (escapes are plain ASCII) and O(len(text)); the same object when nothing
        needed escaping.
    """
    pattern = _PATTERNS[newlines, tabs]
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def is_printable(text: str) -> bool:
    """True when :func:`printable` would leave ``text`` unchanged (no control, bidi, ...)."""
    return _UNSAFE.search(text) is None


def valid_text(text: str) -> str:
    """``text`` with lone surrogates (from a JSON ``"\\ud800"`` escape) replaced by U+FFFD,
    so it can be encoded as UTF-8 (SQLite, files, stdout)."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


def cap(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, ``…`` marking a cut."""
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)] + "…"


def printable_tree(value: T, *, newlines: bool = True) -> T:
    """Apply :func:`printable` to every string in ``value``: dataclass fields (frozen or not),
    lists, tuples and dict keys and values, recursively.

    Args:
        value: e.g. the dashboard's ``Snapshot``.
        newlines: passed to :func:`printable`.

    Returns:
        ``value`` itself when nothing needed escaping (the usual case, no copy); otherwise a
        copy in which only the containers on the way to a changed string are new. Dataclass
        fields typed as numbers, flags, times or enums are never looked at.
    """
    return _clean(value, newlines)  # type: ignore[no-any-return]


_SAFE_TYPES = (int, float, bool, type(None), datetime.datetime, datetime.date, enum.Enum)


@functools.cache
def _text_fields(cls: type) -> tuple[str, ...]:
    """The fields of dataclass ``cls`` whose type may hold text (numbers, flags, times and
    enums cannot), so a snapshot's many figures are never looked at."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: look at every field
        return names
    return tuple(n for n in names if _may_hold_text(hints.get(n, Any)))


def _may_hold_text(hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, _SAFE_TYPES):
        return False
    args = typing.get_args(hint)
    if typing.get_origin(hint) is not None and args:
        return any(_may_hold_text(a) for a in args if a is not Ellipsis)
    return True


def _clean(value: Any, newlines: bool) -> Any:
    kind = type(value)
    if kind is str:
        pattern = _PATTERNS[newlines, False]
        return value if pattern.search(value) is None else pattern.sub(_escape, value)
    if kind in _PLAIN:
        return value
    if kind is list or kind is tuple:
        # Series of figures are never reached: _text_fields skips fields typed as numbers.
        items = [_clean(v, newlines) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if kind is list else tuple(items)
    if kind is dict:
        pairs = [(_clean(k, newlines), _clean(v, newlines)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    if isinstance(value, str):  # a str subclass (StrEnum states are fixed words)
        return printable(value, newlines=newlines)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for name in _text_fields(typing.cast(type, kind)):
            old = getattr(value, name)
            new = _clean(old, newlines)
            if new is not old:
                changes[name] = new
        if not changes:
            return value
        if not any(f.init is False for f in dataclasses.fields(value)):
            return dataclasses.replace(value, **changes)
        copy = dataclasses.replace(value)
        for name, new in changes.items():
            object.__setattr__(copy, name, new)
        return copy
    return value


_PLAIN = frozenset({int, float, bool, type(None)})
