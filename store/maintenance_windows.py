"""Maintenance windows: which targets are in maintenance at a given moment. Pure, no clock.

A window is one-off (a local date and time) or recurring (a local time of day, every day or
on some weekdays), always in an IANA time zone. Local times are turned into instants with
:mod:`zoneinfo` on the day itself, so a daily 23:00 Europe/Berlin window is 22:00Z in winter
and 21:00Z in summer (Uptime Kuma's windows stayed on one UTC offset across DST:
louislam/uptime-kuma#6233). A local time that a spring-forward change skips (02:30 on the
last Sunday of March in Berlin) is read with the offset before the change, so it starts at
the first valid moment after (03:30 CEST); a local time that occurs twice in the autumn
starts at its first occurrence. Durations are elapsed seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from probes.config import MaintenanceConfig, patterns_match

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class ActiveWindow:
    """A window in force now.

    Attributes:
        name: the window's name.
        start: its UTC start.
        end: its UTC end (exclusive).
        targets: the targets it covers, in config order.
    """

    name: str
    start: datetime
    end: datetime
    targets: tuple[str, ...]


def _utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in ``zone`` as a UTC instant (fold 0: the earlier reading)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def occurrence(window: MaintenanceConfig, now: datetime) -> tuple[datetime, datetime] | None:
    """The UTC ``(start, end)`` of the occurrence of ``window`` that contains ``now``, if any.

    Args:
        window: the configured window.
        now: an aware datetime.
    """
    zone = ZoneInfo(window.timezone)
    length = timedelta(seconds=window.duration_s)
    if isinstance(window.start, datetime):
        start = window.start
        begin = start.astimezone(UTC) if start.tzinfo else _utc(start, zone)
        return (begin, begin + length) if begin <= now < begin + length else None
    assert isinstance(window.start, time)
    today = now.astimezone(zone).date()
    # A window that started on an earlier day may still be running.
    back = int(window.duration_s // 86400) + 1
    for days_ago in range(back + 1):
        day = today - timedelta(days=days_ago)
        if window.days and _WEEKDAYS[day.weekday()] not in window.days:
            continue
        begin = _utc(datetime.combine(day, window.start.replace(tzinfo=None)), zone)
        if begin <= now < begin + length:
            return begin, begin + length
    return None


def covered(
    window: MaintenanceConfig, targets: Sequence[str], groups: Mapping[str, str | None]
) -> tuple[str, ...]:
    """The targets a window covers: by name pattern or group pattern; all when it names none."""
    if not window.targets and not window.groups:
        return tuple(targets)
    out = []
    for name in targets:
        group = groups.get(name)
        if patterns_match(window.targets, name) or (
            group is not None and patterns_match(window.groups, group)
        ):
            out.append(name)
    return tuple(out)


def active_windows(
    windows: Iterable[MaintenanceConfig],
    now: datetime,
    targets: Sequence[str],
    groups: Mapping[str, str | None],
) -> list[ActiveWindow]:
    """Every window in force at ``now`` (aware), with the targets it covers.

    Args:
        windows: the config's ``[[maintenance]]`` entries.
        now: the moment to evaluate.
        targets: every monitored target name.
        groups: target name -> its group (or None).
    """
    out = []
    for w in windows:
        span = occurrence(w, now)
        if span is not None:
            out.append(ActiveWindow(w.name, span[0], span[1], covered(w, targets, groups)))
    return out


def in_maintenance(active: Iterable[ActiveWindow]) -> set[str]:
    """Targets covered by at least one active window."""
    return {name for w in active for name in w.targets}


def next_start(window: MaintenanceConfig, now: datetime) -> datetime | None:
    """The UTC start of the window's next occurrence after ``now`` (None for a past one-off)."""
    zone = ZoneInfo(window.timezone)
    if isinstance(window.start, datetime):
        start = window.start
        begin = start.astimezone(UTC) if start.tzinfo else _utc(start, zone)
        return begin if begin > now else None
    assert isinstance(window.start, time)
    today = now.astimezone(zone).date()
    for ahead in range(9):
        day = today + timedelta(days=ahead)
        if window.days and _WEEKDAYS[day.weekday()] not in window.days:
            continue
        begin = _utc(datetime.combine(day, window.start.replace(tzinfo=None)), zone)
        if begin > now:
            return begin
    return None
