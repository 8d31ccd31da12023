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
import operator
import re
import sys
import typing
from collections.abc import Callable
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


class CleanMemo:
    """What :func:`printable_tree` found clean in its previous call, skipped in the next.

    A dashboard snapshot carries most of its strings, trends and verdicts over from the one
    a second earlier (unchanged summaries are copies that share them): looking at them again
    was most of the dashboard's idle work at 200 targets. Only objects taken as immutable
    are remembered (strings, tuples, frozen dataclasses and dicts: a snapshot's are never
    changed once built), and each is held while remembered, so its id cannot be reused by
    another object; one memo per caller and ``newlines`` setting.
    """

    __slots__ = ("_before", "_now")

    def __init__(self) -> None:
        self._before: dict[int, object] = {}
        self._now: dict[int, object] = {}

    def _rotate(self) -> None:
        self._before, self._now = self._now, {}


def printable_tree(value: T, *, newlines: bool = True, memo: CleanMemo | None = None) -> T:
    """Apply :func:`printable` to every string in ``value``: dataclass fields (frozen or not),
    lists, tuples and dict keys and values, recursively.

    Args:
        value: e.g. the dashboard's ``Snapshot``.
        newlines: passed to :func:`printable`.
        memo: what the previous call with it found clean (not looked at again), updated.

    Returns:
        ``value`` itself when nothing needed escaping (the usual case, no copy); otherwise a
        copy in which only the containers on the way to a changed string are new. Dataclass
        fields typed as numbers, flags, times or enums are never looked at.
    """
    out = _clean(value, newlines, memo)
    if memo is not None:
        memo._rotate()
    return out  # type: ignore[no-any-return]


_SAFE_TYPES = (int, float, bool, type(None), datetime.datetime, datetime.date, enum.Enum)


@functools.cache
def _text_fields(cls: type) -> tuple[str, ...]:
    """The fields of dataclass ``cls`` whose type may hold text (numbers, flags, times and
    enums cannot), so a snapshot's many figures are never looked at."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # some annotation does not resolve: resolve them one by one
        hints = _field_hints(cls)
    return tuple(n for n in names if _may_hold_text(hints.get(n, Any)))


@functools.cache
def _text_values(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving the values of :func:`_text_fields` of a ``cls`` object, in one call."""
    names = _text_fields(cls)
    if len(names) == 1:
        return lambda obj: (getattr(obj, names[0]),)
    return operator.attrgetter(*names) if names else lambda obj: ()


def _field_hints(cls: type) -> dict[str, Any]:
    """The field types of ``cls`` that resolve on their own, in their class's module (a
    module may import some types for type checkers only, to load them later); the others
    are left out, so their fields are looked at."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        scope = vars(sys.modules[klass.__module__]) if klass.__module__ in sys.modules else {}
        for name, hint in vars(klass).get("__annotations__", {}).items():
            try:
                hints[name] = eval(hint, dict(scope)) if isinstance(hint, str) else hint
            except Exception:
                hints.pop(name, None)
    return hints


def _may_hold_text(hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, _SAFE_TYPES):
        return False
    args = typing.get_args(hint)
    if typing.get_origin(hint) is not None and args:
        return any(_may_hold_text(a) for a in args if a is not Ellipsis)
    return True


def _clean(value: Any, newlines: bool, memo: CleanMemo | None) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if memo is None:
        return _walk(value, newlines, None)
    remember = _REMEMBERED.get(kind)
    if remember is None:
        params = getattr(kind, "__dataclass_params__", None)
        remember = _REMEMBERED[kind] = kind in (str, tuple, dict) or bool(
            params is not None and params.frozen
        )
    if not remember:
        return _walk(value, newlines, memo)
    key = id(value)
    if memo._before.get(key) is value or memo._now.get(key) is value:
        memo._now[key] = value
        return value
    out = _walk(value, newlines, memo)
    if out is value:
        memo._now[key] = value
    return out


#: Whether a :class:`CleanMemo` remembers objects of a type (immutable ones), by type.
_REMEMBERED: dict[type, bool] = {}


def _walk(value: Any, newlines: bool, memo: CleanMemo | None) -> Any:
    kind = type(value)
    if kind is str:
        pattern = _PATTERNS[newlines, False]
        return value if pattern.search(value) is None else pattern.sub(_escape, value)
    if kind in _PLAIN:
        return value
    if kind is list or kind is tuple:
        # Series of figures are never reached: _text_fields skips fields typed as numbers.
        items = [_clean(v, newlines, memo) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if kind is list else tuple(items)
    if kind is dict:
        pairs = [(_clean(k, newlines, memo), _clean(v, newlines, memo)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    if isinstance(value, str):  # a str subclass (StrEnum states are fixed words)
        return printable(value, newlines=newlines)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        names = _text_fields(typing.cast(type, kind))
        before, now = (memo._before, memo._now) if memo is not None else ({}, {})
        for name, old in zip(names, _text_values(typing.cast(type, kind))(value), strict=True):
            if type(old) in _PLAIN:
                continue
            key = id(old)
            if before.get(key) is old or now.get(key) is old:  # found clean before (inlined)
                now[key] = old
                continue
            new = _clean(old, newlines, memo)
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
