"""What each panel says, as pure functions of store data and a width, returning Rich ``Text``.

The widgets only decide *when* to redraw; these decide *what* (docs/architecture.md, "The
dashboard"), so they can be tested with a plain ``rich.Console`` and never see a terminal.
Every line fits the width it is given (cut, never wrapped), and every state is a word plus a
symbol, never colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text

from probes.timestamps import day_of, iso, minute_text, parse_iso
from store.health import State
from store.summary import TargetSummary, observed_share, success_rate
from tui import format as fmt
from tui.charts import LogAxis, hbar, histogram_marked, time_chart
from tui.incident_list import BLIP_S, SEVERITIES, IncidentEntry, arrange
from tui.table import state_of

if TYPE_CHECKING:
    # Loaded by the reader's thread after the first paint (store/preview.py says why).
    from store.detail import RecentProbe, TargetDetail
    from store.incidents import Incident
    from store.official_status import StoredOfficial
    from store.reader import Snapshot

#: A heartbeat older than this means the prober is not running.
PROBER_DEAD_AFTER_S = 10.0


def cut(text: Text, width: int) -> Text:
    """Every line of ``text`` cut to ``width`` cells (``…`` marks a cut), never wrapped."""
    out = Text(no_wrap=True, end="")
    for i, line in enumerate(text.split("\n", allow_blank=True)):
        if i:
            out.append("\n")
        if line.cell_len > width:
            line.truncate(max(width, 1), overflow="ellipsis")
        out.append_text(line)
    return out


def flow(parts: Sequence[Text | str], width: int, sep: str = " · ") -> Text:
    """Join ``parts`` with ``sep``, breaking lines only between parts (never inside one)."""
    out = Text(no_wrap=True, end="")
    used = 0
    for part in parts:
        piece = Text(part) if isinstance(part, str) else part
        if used and used + len(sep) + piece.cell_len > width:
            out.append("\n")
            used = 0
        elif used:
            out.append(sep, style="dim")
            used += len(sep)
        out.append_text(piece)
        used += piece.cell_len
    return cut(out, width)


def state_text(state: State, style: str = "") -> Text:
    """A state as its word and symbol (``✖ down``), styled."""
    return Text(fmt.STATE_LABELS[state], style=style or "bold")


# ---- status line -----------------------------------------------------------------------------


@dataclass(slots=True)
class StatusContext:
    """What the status line needs beside the snapshot.

    Attributes:
        source: where the targets come from (config path or ``demo``).
        window_s: the current window.
        sort_label: current sort order ("" for config order).
        filter_text: current filter ("" for none).
        pending: commands sent and not yet taken by the prober.
        done: commands the prober confirmed recently.
        notice: what the app knows about its files that the snapshot cannot say (the
            database deleted or replaced, where a dead prober's log is); "" for nothing.
    """

    source: str = ""
    window_s: float = 3600.0
    sort_label: str = ""
    filter_text: str = ""
    pending: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    notice: str = ""


def prober_state(snap: Snapshot | None) -> tuple[Text, bool]:
    """The prober part of the status line, and whether the monitor is blind."""
    now_iso = iso(snap.taken_at) if snap else None
    if snap is None:
        return Text("reading the database…"), False
    if snap.prober is None:
        if snap.targets:
            return Text("✖ MONITOR BLIND: no prober ever ran on this database", style="bold"), True
        return Text("no prober has run on this database yet"), False
    age = snap.prober_age_s if snap.prober_age_s is not None else 0.0
    if age > PROBER_DEAD_AFTER_S:
        since = fmt.clock(snap.prober.heartbeat_at, now_iso)
        return Text(f"✖ MONITOR BLIND: prober not running since {since}", style="bold"), True
    started = fmt.clock(snap.prober.started_at, now_iso)
    if snap.blind_since:
        blind = fmt.clock(snap.blind_since, now_iso)
        return (
            Text(f"✖ MONITOR BLIND since {blind} ({snap.blind_reason})", style="bold"),
            True,
        )
    if snap.prober.paused:
        return Text(f"‖ prober PAUSED (all targets), up since {started}", style="bold"), False
    return Text(f"● prober up since {started}"), False


def status_key(snap: Snapshot | None, ctx: StatusContext) -> tuple[object, ...]:
    """Everything :func:`status_text` depends on (redraw only when it changes)."""
    if snap is None:
        return (None, ctx.source, ctx.window_s)
    dead = snap.prober_age_s is not None and snap.prober_age_s > PROBER_DEAD_AFTER_S
    return (
        snap.prober.started_at if snap.prober else None,
        snap.prober.heartbeat_at if dead and snap.prober else None,
        snap.prober.paused if snap.prober else None,
        snap.prober.problem if snap.prober else None,
        bool(snap.targets),
        snap.blind_since,
        snap.blind_reason,
        round(snap.probes_per_minute),
        fmt.megabytes(snap.db_bytes),
        day_of(iso(snap.taken_at)),
        ctx.source,
        ctx.window_s,
        ctx.sort_label,
        ctx.filter_text,
        tuple(ctx.pending),
        tuple(ctx.done),
        ctx.notice,
    )


def status_text(snap: Snapshot | None, ctx: StatusContext, width: int) -> tuple[Text, bool]:
    """The one-line status: source, window, prober alive and since when, commands in flight,
    probes per minute, database size, filter and sort; lower-priority parts drop first.

    Returns:
        The line and whether the monitor is blind (the line is then shown as an alarm).
    """
    prober, blind = prober_state(snap)
    parts: list[tuple[int, Text]] = [
        (2, Text(f"inferwatch {ctx.source}".strip(), style="bold")),
        (0, Text(f"window {fmt.window(ctx.window_s)}")),
        (0, prober),
    ]
    if snap is not None and snap.prober is not None and snap.prober.problem:
        # Storage failing, a worker restarted, a probe loop error: the prober says what.
        parts.append((0, Text(f"⚠ {snap.prober.problem}", style="bold")))
    if ctx.notice:
        parts.append((0, Text(f"⚠ {ctx.notice}", style="bold")))
    # Short enough to fit beside the prober's state at 80 columns.
    for what in ctx.pending:
        parts.append((1, Text(f"⧗ {what}: sent")))
    if ctx.done:
        parts.append((1, Text(f"✔ {ctx.done[-1]}: done")))
    if snap is not None and snap.prober is not None:
        parts.append((2, Text(f"{snap.probes_per_minute:.0f} probes/min")))
    if snap is not None:
        parts.append((3, Text(f"db {fmt.megabytes(snap.db_bytes)}")))
    if ctx.filter_text:
        parts.append((1, Text(f"filter “{ctx.filter_text}”")))
    if ctx.sort_label:
        parts.append((4, Text(f"sort: {ctx.sort_label}")))
    keep = list(parts)
    while any(priority > 0 for priority, _ in keep):
        length = sum(p.cell_len for _, p in keep) + 3 * (len(keep) - 1)
        if length <= width:
            break
        worst = max(range(len(keep)), key=lambda i: (keep[i][0], i))
        keep.pop(worst)
    line = Text(" · ").join(p for _, p in keep)
    return cut(line, width), blind


def summary_text(states: Sequence[State], styles: Sequence[str], width: int) -> Text:
    """The one-line count of targets per state (``5 up · 1 degraded · 1 down``), each count in
    its state's style (``styles`` in :data:`tui.format.SUMMARY_ORDER`); empty without targets."""
    if not states:
        return Text("")
    line = Text(no_wrap=True)
    counts = {st: sum(1 for s in states if s is st) for st in fmt.SUMMARY_ORDER}
    for st, style in zip(fmt.SUMMARY_ORDER, styles, strict=True):
        if counts[st]:
            if line:
                line.append(" · ")
            line.append(f"{fmt.STATE_SYMBOLS[st]} {counts[st]} {st.value}", style=style or "bold")
    return cut(line, width)


# ---- overview: selected target and incidents -------------------------------------------------


def reason_text(s: TargetSummary, now_iso: str) -> str:
    """The verdict's reason without repeating the state word, with a short clock time
    (``since 11:55:01Z: 3 consecutive failures (server_error)``)."""
    v = s.verdict
    if v is None or not v.reason:
        return ""
    reason = v.reason
    if v.since:
        reason = reason.replace(minute_text(v.since), fmt.clock(v.since, now_iso))
    word = f"{v.state.value} since "
    if reason.startswith(word):
        reason = reason[len(v.state.value) + 1 :]
    return reason


def figures(s: TargetSummary, window_s: float, all_uptimes: bool = False) -> list[Text]:
    """The window's figures of one target as short parts for :func:`flow` (with
    ``all_uptimes``, the 24h/7d/30d uptimes beside the window's)."""
    parts = [
        Text(
            f"TTFT P50 {fmt.duration(s.ttft_p50_ms)}  P95 {fmt.duration(s.ttft_p95_ms)}  "
            f"P99 {fmt.duration(s.ttft_p99_ms)}"
        ),
        Text(f"total P50 {fmt.duration(s.total_p50_ms)}  P99 {fmt.duration(s.total_p99_ms)}"),
        Text(f"{fmt.tps(s.decode_tps_p50)} tok/s"),
        Text(f"{fmt.usd(s.cost_per_request_usd)}/req"),
    ]
    rate = f"{fmt.pct(s.error_rate)} failed" if s.count else "no probe"
    top = f", mostly {s.top_error_kind}" if s.top_error_kind else ""
    probes = "1 probe" if s.count == 1 else f"{s.count} probes"
    parts.append(Text(f"{probes}, {rate}{top} in {fmt.window(window_s)}"))
    # Uptime is a share of the *observed* time: say how much of the window that was, and the
    # probes' success rate beside it ("uptime 100%" beside "100% err" is true and misleading).
    up = s.window_uptime.pct if s.window_uptime else None
    seen = fmt.share(observed_share(s.window_uptime))
    uptime = f"uptime {fmt.uptime_pct(up)} over {seen} of {fmt.window(window_s)} seen"
    if all_uptimes:
        uptime = f"uptime {fmt.window(window_s)} {fmt.uptime_pct(up)} ({seen} seen)" + "".join(
            f", {label} {fmt.uptime_pct(u.pct)} ({fmt.share(observed_share(u))} seen)"
            for label, u in s.uptime.items()
        )
    parts.append(Text(uptime))
    parts.append(Text(f"success {fmt.share(success_rate(s))} of probes"))
    head = fmt.headroom(s.ratelimit_remaining_requests, s.ratelimit_remaining_tokens)
    if head != "–":
        parts.append(Text(f"rate limit left {head}"))
    if s.cache_hit_share:
        parts.append(Text(f"cache {fmt.pct(s.cache_hit_share)}"))
    return parts


def title_parts(s: TargetSummary) -> list[Text]:
    """Name, model, provider, group and interval."""
    parts = [Text(s.name, style="bold"), Text(s.model), Text(s.provider)]
    if s.group_name:
        parts.append(Text(f"group {s.group_name}"))
    parts.append(Text(f"every {s.interval_s:g}s"))
    return parts


def official_text(s: TargetSummary, official: StoredOfficial | None) -> Text | None:
    """``measured ✖ down · official ✔ operational`` (docs/questions.md, "Official status
    beside measured state"), with the provider's open incident or why the page is unknown;
    None when the target has no status page (nothing to put beside the measurement)."""
    if official is None:
        return None
    # Loaded by the reader with the first reading (it brings the status formats' httpx).
    from store.official_status import status_line

    text = Text(status_line(state_of(s), official))
    if official.incidents:
        text.append(f" · {official.incidents[0].title}", style="dim")
    elif official.state == "unknown" and official.description:
        text.append(f" ({official.description})", style="dim")
    return text


def questions_lines(detail: TargetDetail | None, now: datetime) -> list[Text]:
    """The detail's answers to "is prompt caching working?" and "how cold does it start?"
    (docs/questions.md): the newest cache check's verdict and its age, the cold-start rate
    and penalty; nothing for a target with neither (no check configured, no scale-down
    window)."""
    if detail is None:
        return []
    lines = []
    if detail.cache is not None:
        from store.cache_checks import cache_text

        c = detail.cache
        line = Text("prompt caching: ")
        line.append(cache_text(c), style="bold")
        line.append(f"  checked {fmt.clock(c.started_at, iso(now))}", style="dim")
        lines.append(line)
    if detail.cold is not None:
        from store.coldstart import cold_text

        lines.append(Text(f"cold starts: {cold_text(detail.cold)}"))
    return lines


def selected_text(
    s: TargetSummary | None,
    window_s: float,
    width: int,
    now: datetime,
    style: str = "",
    height: int = 0,
    official: StoredOfficial | None = None,
) -> Text:
    """The overview's panel for the target under the cursor: who it is, its state with since
    and cause (and the official status beside it, when the provider has a page), the window's
    figures, a TTFT histogram with percentile marks and a trend.

    With a known ``height`` the two charts grow to share the rows left by the text (the
    panel fills a 200x50 terminal); otherwise they take two rows each and the panel's
    bottom is cut first (the charts are the least important part at 80x24).
    """
    if s is None:
        return Text(
            "No targets yet: the prober publishes its targets when it starts "
            "(try `inferwatch demo`).",
            style="dim",
        )
    lines = [flow(title_parts(s), width)]
    state = Text()
    state.append(fmt.STATE_LABELS[state_of(s)], style=style or "bold")
    reason = reason_text(s, iso(now))
    if reason:
        state.append(f"  {reason}")
    lines.append(cut(state, width))
    beside = official_text(s, official)
    if beside is not None:
        lines.append(cut(beside, width))
    if s.last_status and s.last_status != "ok":
        lines.append(
            cut(
                Text(f"last failure: {s.last_error_kind}: {s.last_error_message or ''}"),
                width,
            )
        )
    lines.append(flow(figures(s, window_s), width))
    used = sum(line.plain.count("\n") + 1 for line in lines)
    # Each chart has a title, an axis row and (histogram) a mark row around its bars.
    chart_rows = max(2, (height - used - 6) // 2) if height else 2
    if s.ttft_values_ms:
        lines.append(Text("TTFT distribution in the window, ms, log axis", style="dim"))
        marks = [("P50", s.ttft_p50_ms), ("P95", s.ttft_p95_ms), ("P99", s.ttft_p99_ms)]
        lines.append(histogram_marked(s.ttft_values_ms, width, chart_rows, marks))
    elif s.count:
        lines.append(Text("no successful probe in the window: no TTFT to draw", style="dim"))
    else:
        lines.append(Text("no data yet in this window", style="dim"))
    tr = s.trend
    if tr is not None and (any(tr.ok) or any(tr.failed)):
        lines.append(Text("TTFT over the window (× = only failures)", style="dim"))
        lines.append(
            time_chart(
                tr.ttft_ms, tr.ok, tr.failed, width, chart_rows, "ms", f"-{fmt.window(window_s)}"
            )
        )
    return cut(Text("\n").join(lines), width)


def incident_line(i: Incident, now: datetime, width: int, show_target: bool = True) -> Text:
    """One incident: state word + symbol, target, start, how long, cause."""
    now_iso = iso(now)
    line = Text(no_wrap=True)
    line.append(f"{fmt.STATE_LABELS[i.to_state]:<11}", style="bold")
    if show_target:
        line.append(f" {i.target:<15.15}")
    line.append(f" {fmt.clock(i.started_at, now_iso):>11}")
    if i.open:
        ongoing = (now - parse_iso(i.started_at)).total_seconds()
        line.append(f"  OPEN {fmt.span(ongoing):>4}", style="bold")
    else:
        line.append(f"  {fmt.duration_s(i.duration_s):>9}")
    cause = i.cause_message or i.cause_kind or ""
    if cause and width - line.cell_len >= 40:
        line.append(f"  {cause}")
    elif cause:
        # Narrow panel: the cause gets its own indented line instead of a few cut words.
        line.append("\n   " + cause, style="dim")
    return cut(line, width)


def notifications_line(snap: Snapshot, width: int) -> Text:
    """One line on alert notifications: counts and the newest (channel, what, result)."""
    n = snap.notifications
    if n is None or n.newest is None:
        return Text("Notifications: none sent yet", style="dim")
    last = n.newest
    when = fmt.clock(last.created_at, iso(snap.taken_at))
    line = Text(no_wrap=True)
    line.append("Notifications: ", style="bold")
    line.append(f"{n.sent} sent")
    if n.failed:
        line.append(f" · {n.failed} failed", style="bold")
    if n.waiting:
        line.append(f" · {n.waiting} waiting")
    line.append(
        f" · last {when} {last.event} {last.alert_key} → {last.channel}: "
        f"{last.status}{' (' + last.result + ')' if last.result else ''}"
    )
    return cut(line, width)


def incidents_text(
    incidents: Sequence[Incident],
    now: datetime,
    window_s: float,
    width: int,
    severity: str = "all",
) -> Text:
    """The incidents panel: open down incidents pinned first, then open and recent
    degraded/down periods across targets newest first ("OPEN" with how long so far, else how
    long it lasted), a target's short blips folded into one line (:mod:`tui.incident_list`);
    ``severity`` shows one kind only (the ``i`` screen's filter)."""
    label = dict(SEVERITIES).get(severity, "")
    scope = "" if severity == "all" else f" · {label}"
    title = Text(
        f"Incidents · open and recent ({fmt.window(window_s)}){scope}, open outages first",
        style="bold",
    )
    entries = arrange(incidents, severity)
    if not entries:
        what = {"down": "down", "degraded": "degraded"}.get(severity, "degraded or down")
        body = Text(f"none: no target was {what} in the last {fmt.window(window_s)}", style="dim")
        return cut(title + Text("\n") + body, width)
    header = Text(
        f"{'state':<11} {'target':<15} {'started':>11}  {'lasted':>9}  cause", style="dim"
    )
    lines = [title, header]
    for e in entries:
        if e.folded:
            lines.append(blips_line(e, now, window_s, width))
        else:
            lines.append(incident_line(e.incident, now, width))
    return cut(Text("\n").join(lines), width)


def blips_line(entry: IncidentEntry, now: datetime, window_s: float, width: int) -> Text:
    """A target's short incidents as one line: worst state, target, the newest's start,
    ``12 blips in 15m``."""
    i = entry.incident
    line = Text(no_wrap=True)
    line.append(f"{fmt.STATE_LABELS[entry.worst]:<11}", style="bold")
    line.append(f" {i.target:<15.15}")
    line.append(f" {fmt.clock(i.started_at, iso(now)):>11}")
    line.append(f"  {entry.blips} blips in {fmt.window(window_s)}", style="bold")
    line.append(f", each under {BLIP_S:.0f}s", style="dim")
    return cut(line, width)


# ---- detail screen ---------------------------------------------------------------------------


def detail_head(
    s: TargetSummary,
    window_s: float,
    width: int,
    now: datetime,
    style: str = "",
    *,
    official: StoredOfficial | None = None,
    detail: TargetDetail | None = None,
) -> Text:
    """Detail screen header: identity, state with since and cause, the official status beside
    it, the window's figures (canary probes), then the prompt-caching verdict and the cold
    starts (:func:`questions_lines`)."""
    state = Text()
    state.append(fmt.STATE_LABELS[state_of(s)], style=style or "bold")
    reason = reason_text(s, iso(now))
    if reason:
        state.append(f"  {reason}")
    lines = [flow(title_parts(s), width), cut(state, width)]
    beside = official_text(s, official)
    if beside is not None:
        lines.append(cut(beside, width))
    parts = figures(s, window_s, all_uptimes=True)
    if s.ratelimit_reset_requests_s is not None:
        parts.append(Text(f"rate window resets in {s.ratelimit_reset_requests_s:.0f}s"))
    lines.append(flow(parts, width))
    lines.extend(cut(line, width) for line in questions_lines(detail, now))
    return Text("\n").join(lines)


def histogram_panel(
    title: str,
    values: Sequence[float],
    marks: Sequence[tuple[str, float | None]],
    width: int,
    height: int = 5,
) -> Text:
    """A titled histogram with its percentile values spelled out under it."""
    legend = "  ".join(f"{label} {fmt.duration(v)}" for label, v in marks)
    head = Text(title, style="bold")
    head.append(f"   {legend}   n={len(values)}", style="dim")
    return cut(head + Text("\n") + histogram_marked(values, width, height, marks), width)


def trend_panel(
    title: str,
    detail: TargetDetail | None,
    which: str,
    width: int,
    height: int = 4,
) -> Text:
    """TTFT (``which="ttft"``) or decode TPS (``"tps"``) over the window."""
    head = Text(title, style="bold")
    if detail is None:
        return cut(head + Text("\nreading…", style="dim"), width)
    tr = detail.trend
    values = tr.ttft_ms if which == "ttft" else tr.tps
    unit = "ms" if which == "ttft" else "tok/s"
    head.append(f"   mean per {fmt.duration_s(tr.step_s)}, × = only failures", style="dim")
    chart = time_chart(
        values, tr.ok, tr.failed, width, height, unit, f"-{fmt.window(detail.window_s)}"
    )
    return cut(head + Text("\n") + chart, width)


def errors_panel(detail: TargetDetail | None, s: TargetSummary, width: int) -> Text:
    """Failures in the window by kind, most frequent first, each with its newest message."""
    head = Text("Errors by kind", style="bold")
    if s.count:
        head.append(f"   {s.errors} of {s.count} probes failed ({fmt.pct(s.error_rate)})")
    if detail is None:
        return cut(head + Text("\nreading…", style="dim"), width)
    if not detail.errors:
        tail = "none in the window" if s.count else "no probe in the window yet"
        return cut(head + Text("\n" + tail, style="dim"), width)
    lines = [head]
    for e in detail.errors:
        line = Text(f"{e.count:>5}  {e.kind:<18}", no_wrap=True)
        if e.last_message:
            message = f"last: {e.last_message}"
            if line.cell_len + 2 + len(message) <= width:
                line.append("  " + message, style="dim")
            else:  # narrow: the message on its own line rather than cut short
                line.append("\n       " + message, style="dim")
        lines.append(line)
    return cut(Text("\n").join(lines), width)


def recent_panel(detail: TargetDetail | None, now: datetime, width: int) -> Text:
    """The newest probes: time, outcome, TTFT, total, tok/s, tokens, cost, error message."""
    head = Text("Recent probes, newest first", style="bold")
    if detail is None:
        return cut(head + Text("\nreading…", style="dim"), width)
    if not detail.recent:
        return cut(head + Text("\nno probe yet", style="dim"), width)
    now_iso = iso(now)
    cols = Text(
        f"{'started':>11}  {'result':<14} {'TTFT':>8} {'total':>8} {'tok/s':>6} "
        f"{'tokens':>6} {'$':>10}",
        style="dim",
    )
    lines = [head, cols]
    for p in detail.recent:
        line = Text(no_wrap=True)
        line.append(f"{fmt.clock(p.started_at, now_iso):>11}  ")
        what = _kind_word(p)
        if p.status == "ok":
            line.append(f"{'✔ ' + (what or 'ok'):<14.14}")
            line.append(
                f" {fmt.duration(p.ttft_ms):>8} {fmt.duration(p.total_ms):>8} "
                f"{fmt.tps(p.decode_tps):>6} {fmt.short_count(p.output_tokens):>6} "
                f"{fmt.usd(p.cost_usd):>10}"
            )
        else:
            kind = f"✖ {p.error_kind or 'error'}"
            line.append(f"{kind:<14.14}", style="bold")
            status = f"HTTP {p.http_status}: " if p.http_status else ""
            message = p.error_message or ""
            if status and message.startswith("HTTP"):
                status = ""
            line.append(f" {f'({what}) ' if what else ''}{status}{message}")
        lines.append(line)
    return cut(Text("\n").join(lines), width)


def _kind_word(p: RecentProbe) -> str:
    """ "" for a canary; the other kinds by name (a workload by its own) in the recent list."""
    if p.kind == "canary":
        return ""
    if p.kind == "workload":
        return f"workload {p.workload}" if p.workload else "workload"
    return {"cache_check": "cache check", "cold_start": "cold sched."}.get(p.kind, p.kind)


def history_panel(detail: TargetDetail | None, now: datetime, width: int) -> Text:
    """The target's state changes (incidents of every state), newest first."""
    head = Text("State history, newest first", style="bold")
    if detail is None:
        return cut(head + Text("\nreading…", style="dim"), width)
    if not detail.incidents:
        return cut(head + Text("\nno state recorded yet", style="dim"), width)
    lines = [head] + [incident_line(i, now, width, show_target=False) for i in detail.incidents]
    return cut(Text("\n").join(lines), width)


# ---- comparison ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bests:
    """The targets to mark: fastest P50 TTFT, highest decode TPS, cheapest per request.

    Only targets answering right now (up or degraded) with a figure in the window compete.
    """

    fastest: str | None
    most_tps: str | None
    cheapest: str | None


def bests(targets: Sequence[TargetSummary]) -> Bests:
    """Pick the fastest, highest-throughput and cheapest live targets."""
    live = [s for s in targets if state_of(s) in (State.UP, State.DEGRADED)]
    ttft = [s for s in live if s.ttft_p50_ms is not None]
    tps = [s for s in live if s.decode_tps_p50 is not None]
    cost = [s for s in live if s.cost_per_request_usd is not None]
    return Bests(
        min(ttft, key=lambda s: s.ttft_p50_ms or 0).name if ttft else None,
        max(tps, key=lambda s: s.decode_tps_p50 or 0).name if tps else None,
        min(cost, key=lambda s: s.cost_per_request_usd or 0).name if cost else None,
    )


def compare_text(
    targets: Sequence[TargetSummary], window_s: float, width: int, styles: dict[State, str]
) -> Text:
    """Targets side by side on shared axes: TTFT distribution (one log axis for all), decode
    TPS and cost per request (bars from zero on one scale), with the fastest, the highest
    throughput and the cheapest marked in words."""
    if not targets:
        return Text("No targets yet: nothing to compare.", style="dim")
    name_w = min(max(len(s.name) for s in targets) + 1, 18)
    state_w = fmt.STATE_WIDTH + 1
    figure_w = 24  # "  65/87    ◆ fastest", " $0.000525 ◆ cheapest"
    bar_w = max(width - name_w - state_w - figure_w - 2, 10)
    best = bests(targets)
    out: list[Text] = []

    def label(s: TargetSummary) -> Text:
        line = Text(no_wrap=True)
        line.append(f"{s.name[: name_w - 1]:<{name_w}}")
        st = state_of(s)
        line.append(f"{fmt.STATE_SHORT[st]:<{state_w}}", style=styles.get(st, "bold"))
        return line

    # TTFT distributions on one log axis.
    every = [v for s in targets for v in s.ttft_values_ms]
    out.append(
        Text(
            f"TTFT distribution, ms, one log axis for all (successful probes, "
            f"{fmt.window(window_s)}); ┃ = P50",
            style="bold",
        )
    )
    if every:
        axis = LogAxis.around(every, bar_w)
        for s in targets:
            line = label(s)
            counts = axis.counts(s.ttft_values_ms)
            top = max(counts) if any(counts) else 0
            p50_col = axis.column(s.ttft_p50_ms) if s.ttft_p50_ms is not None else -1
            strip = Text(no_wrap=True)
            for col, c in enumerate(counts):
                if col == p50_col:
                    strip.append("┃", style="bold")
                elif c:
                    level = "▁▂▃▄▅▆▇█"[min(7, max(0, int(c / top * 7 + 0.5)))]
                    strip.append(level)
                else:
                    strip.append(" ")
            line.append_text(strip)
            fig = (
                f" {fmt.ms(s.ttft_p50_ms):>5}/{fmt.ms(s.ttft_p99_ms):<5}"
                if s.ttft_values_ms
                else " no data"
            )
            line.append(fig)
            if best.fastest == s.name:
                line.append(" ◆ fastest", style="bold")
            out.append(line)
        axis_line = Text(" " * (name_w + state_w), no_wrap=True)
        axis_line.append_text(axis.labels("ms"))
        axis_line.append(" P50/P99 ms", style="dim")
        out.append(axis_line)
    else:
        out.append(Text("no successful probe in the window yet", style="dim"))

    # Decode TPS from zero (no blank lines between sections: all three fit 80x24 with six
    # targets).
    out.append(Text("Decode speed, tok/s (median), bars from 0 on one scale", style="bold"))
    top_tps = max((s.decode_tps_p50 or 0.0) for s in targets)
    for s in targets:
        line = label(s)
        line.append(hbar(s.decode_tps_p50, top_tps, bar_w) or " " * bar_w)
        line.append(f" {fmt.tps(s.decode_tps_p50):>5}")
        if best.most_tps == s.name:
            line.append(" ◆ most tok/s", style="bold")
        out.append(line)

    # Cost per request from zero.
    out.append(Text("Cost per request, USD (mean), bars from 0 on one scale", style="bold"))
    top_cost = max((s.cost_per_request_usd or 0.0) for s in targets)
    for s in targets:
        line = label(s)
        known = s.cost_per_request_usd is not None and s.count > 0
        line.append(hbar(s.cost_per_request_usd, top_cost, bar_w) or " " * bar_w)
        line.append(f" {fmt.usd(s.cost_per_request_usd) if known else 'unknown':>9}")
        if best.cheapest == s.name:
            line.append(" ◆ cheapest", style="bold")
        out.append(line)
    out.append(Text(""))
    out.append(
        Text(
            "◆ marks the best target answering now (up or degraded); down, stale and "
            "paused targets do not compete.",
            style="dim",
        )
    )
    return cut(Text("\n").join(out), width)
