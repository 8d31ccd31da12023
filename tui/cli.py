"""The ``inferwatch`` command line.

Heavy imports happen only in the commands that need them: Textual only where the dashboard
opens (the headless prober and ``probe --once`` never load the UI stack), and the config
models (pydantic) and sqlite-utils only once the dashboard has drawn its first table (see
:func:`_dashboard`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import difflib
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from probes.errors import ERROR_KIND_DOCS, SIDE_DOCS, SIDES
from probes.providers import PROVIDERS
from probes.record import ProbeRecord
from probes.text import printable, printable_tree
from store.paths import default_db_path

if TYPE_CHECKING:
    import sqlite_utils

    from probes.config import Config, ConfigError, ResolvedTarget
    from tui.prober_lock import ProberBusy

EXIT_OK, EXIT_PROBE_FAILED, EXIT_CONFIG = 0, 1, 2
#: ``run`` refused: another prober is probing into the database (or its database went away).
EXIT_BUSY = 3


def default_config_path() -> Path:
    """``config.toml`` under the user's config directory (platformdirs), or $INFERWATCH_CONFIG."""
    env = os.environ.get("INFERWATCH_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("inferwatch", appauthor=False)) / "config.toml"


def _err(message: str) -> None:
    """One line on stderr; provider, config and exception text in it is made printable."""
    print(f"inferwatch: {printable(message, newlines=True)}", file=sys.stderr)


def _add_common(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    # On subcommands the default is SUPPRESS, so `inferwatch --db X export` keeps the X given
    # before the subcommand instead of a subparser default silently replacing it.
    default = None if top else argparse.SUPPRESS
    p.add_argument(
        "--config",
        type=Path,
        default=default,
        help=f"config file (default: {default_config_path()})",
    )
    p.add_argument(
        "--db",
        type=Path,
        default=default,
        help=f"SQLite database (default: {default_db_path()})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (its help texts are tested against the README)."""
    parser = argparse.ArgumentParser(
        prog="inferwatch",
        description="Watch LLM inference providers live: TTFT, TPS, cost and outages. "
        "Without a command: open the dashboard, attached to the prober already running on the "
        "database, or starting one when none is.",
    )
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="run the built-in demo providers and open the dashboard")
    p.add_argument(
        "--db", type=Path, default=argparse.SUPPRESS, help="database (default: a temporary file)"
    )
    p.add_argument("--headless", action="store_true", help="probe the demo without a dashboard")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between probes (5)")

    p = sub.add_parser(
        "run",
        help="run the prober (and the dashboard unless --headless); refuses while another "
        "prober runs on the database",
    )
    _add_common(p)
    p.add_argument("--headless", action="store_true", help="prober only, no dashboard")
    p.add_argument(
        "--takeover",
        action="store_true",
        help="stop the prober running on the database (SIGTERM, then SIGKILL) and replace it",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="the prober's log on stderr: text lines or JSON lines (default: text)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="probe the built-in demo providers (into a temporary database unless --db)",
    )
    p.add_argument("--demo-port", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        default=None,
        help="serve Prometheus /metrics there (default: [metrics] listen; off)",
    )

    p = sub.add_parser(
        "view",
        help="open the dashboard without probing: on the database, or on Prometheus "
        "(every vantage it scrapes, side by side)",
    )
    _add_common(p)
    p.add_argument(
        "--prometheus",
        metavar="URL",
        help="read Prometheus at URL (http://127.0.0.1:9090) instead of a database",
    )

    p = sub.add_parser(
        "status",
        help="the current state of every target, from the database (for scripts and checks)",
        description="Print the current state of every target as the dashboard shows it, read "
        "from the database (no probing). Exit status, Nagios-style: 0 every probed target up; "
        "1 some degraded, config error, no data yet or probing its first time; 2 some down or "
        "stale, or the monitor blind (prober not running, no network); 3 the state cannot be "
        "read (no database yet). Paused, not configured and maintenance targets do not count.",
    )
    _add_common(p)
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")

    p = sub.add_parser("notify", help="send a test notification to a [[channels]] entry")
    _add_common(p)
    p.add_argument("--test", metavar="CHANNEL", required=True, help="the channel's name")

    p = sub.add_parser("probe", help="probe every target once and print the results")
    _add_common(p)
    p.add_argument("--once", action="store_true", help="one round (the only mode; kept explicit)")
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    p.add_argument("--demo", action="store_true", help="probe the built-in demo providers")
    p.add_argument("--no-store", action="store_true", help="do not write results to the database")

    p = sub.add_parser("export", help="export probe history as CSV or JSON Lines")
    _add_common(p)
    p.add_argument(
        "--table",
        choices=(
            "probes",
            "rollups-minute",
            "rollups-hour",
            "rollups-day",
            "incidents",
            "monitor-gaps",
        ),
        default="probes",
        help="what to export (default: probes)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV, RFC 4180, UTF-8 (default)")
    fmt.add_argument("--jsonl", action="store_true", help="JSON Lines")
    p.add_argument("--since", help="start: a duration back from now (30m, 24h, 7d) or ISO time")
    p.add_argument("--until", help="end (exclusive): a duration back from now or ISO time")
    p.add_argument("--target", action="append", default=[], help="only this target (repeatable)")
    p.add_argument(
        "--provider", action="append", default=[], help="only this provider (repeatable)"
    )
    p.add_argument("--status", choices=("ok", "error"), help="only ok or only failed probes")
    p.add_argument("-o", "--output", type=Path, help="write to this file (default: stdout)")

    p = sub.add_parser(
        "cost",
        help="what each [[features]] entry would cost and feel like per target, whether "
        "each group's fallback takes the primary's load, and what monitoring costs",
    )
    _add_common(p)
    p.add_argument("--feature", help="only this feature (a [[features]] name)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument(
        "--window",
        default="24h",
        help="use measurements from this far back: 30m, 24h, 7d (default 24h)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="the built-in demo's targets and features (measured by `inferwatch demo --db FILE`)",
    )

    p = sub.add_parser("check-config", help="validate a config file and explain it")
    p.add_argument("path", nargs="?", type=Path, help="config file (default: --config's default)")
    p.add_argument("--providers", action="store_true", help="list known provider names")
    p.add_argument("--error-kinds", action="store_true", help="list failure classes")
    return parser


def _config_error() -> type[ConfigError]:
    """``probes.config.ConfigError``, imported when an exception is matched against it."""
    from probes.config import ConfigError

    return ConfigError


def _load(path: Path | None) -> Config:
    from probes.config import ConfigError, load_config

    path = path or default_config_path()
    if not path.exists():
        raise ConfigError(
            [
                f"{path}: no config file here. Copy config.example.toml there, pass --config, "
                "or try `inferwatch demo`."
            ]
        )
    return load_config(path)


@contextlib.contextmanager
def _demo_servers(interval_s: float) -> Iterator[Config]:
    from probes.simulator import SimulatorProcess
    from tui.demo import demo_config

    with SimulatorProcess() as sim:
        yield demo_config(sim.port, interval_s)


def _print_record(record: ProbeRecord, as_json: bool) -> None:
    if as_json:
        # Records are sanitised (probes.sanitize): finite numbers, escaped control characters.
        print(json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False), flush=True)
        return
    name = printable(record.target)
    if record.status == "ok":
        tps = f"{record.decode_tps:.0f} tok/s" if record.decode_tps is not None else "tps n/a"
        cost = f"${record.cost_usd:.6f}" if record.cost_usd is not None else "price unknown"
        ttft = f"{record.ttft_ms:.0f} ms" if record.ttft_ms is not None else "n/a"
        print(f"{name:<20} ok     TTFT {ttft:>8}  {tps:>12}  {cost}", flush=True)
    else:
        kind, message = printable(record.error_kind or ""), printable(record.error_message or "")
        print(f"{name:<20} {kind:<16} {message}", flush=True)


def _not_configured_record(target: ResolvedTarget) -> ProbeRecord:
    """The record ``probe --once`` prints for a target whose key variable is unset (not
    probed, not stored): every target gets a line."""
    from probes.errors import ErrorKind
    from probes.timestamps import iso, utc_now

    return ProbeRecord(
        started_at=iso(utc_now()),
        target=target.name,
        provider=target.config.provider,
        model=target.config.model,
        status="error",
        error_kind=ErrorKind.NOT_CONFIGURED.value,
        error_message=f"{target.config.api_key_env} is unset: not probed",
    )


def cmd_probe(args: argparse.Namespace) -> int:
    """``inferwatch probe --once``: a record per target (not configured ones included), in
    config order as they end; exit 1 when a probe failed, 2 on a config error, 130 when
    interrupted (what finished is printed, and which targets did not finish)."""
    from probes.arrival import new_stamping_loop
    from tui.prober import probe_once

    def report(config: Config, db: Path | None) -> int:
        targets = config.resolved()
        # Printed in config order, each as soon as it and every target before it ended;
        # interrupted, what finished is printed anyway (still in config order).
        order = [t.name for t in targets]
        ready = {t.name: _not_configured_record(t) for t in targets if not t.is_configured()}
        done: list[ProbeRecord] = []
        shown = 0

        def flush(everything: bool = False) -> None:
            nonlocal shown
            while shown < len(order):
                record = ready.pop(order[shown], None)
                if record is not None:
                    _print_record(record, args.json)
                elif not everything:
                    return
                shown += 1

        def finished(record: ProbeRecord) -> None:
            done.append(record)
            ready[record.target] = record
            flush()

        flush()
        try:
            with asyncio.Runner(loop_factory=new_stamping_loop) as runner:
                runner.run(probe_once(config, db, finished))
        except KeyboardInterrupt:
            flush(everything=True)
            ended = {r.target for r in done}
            left = [t.name for t in targets if t.is_configured() and t.name not in ended]
            _err(
                f"interrupted: {len(done)} probe(s) finished"
                + (f"; not finished: {', '.join(left)}" if left else "")
            )
            return 130
        flush(everything=True)
        return EXIT_PROBE_FAILED if any(r.status != "ok" for r in done) else EXIT_OK

    if args.demo:
        db = None if args.no_store else args.db
        with _demo_servers(5.0) as config:
            return report(config, db)
    config = _load(args.config)
    return report(config, None if args.no_store else (args.db or default_db_path()))


def _busy_message(exc: ProberBusy) -> str:
    """Why ``run`` refuses: who probes into the database, since when, its last heartbeat."""
    from tui.prober_lock import ProberBusy

    assert isinstance(exc, ProberBusy)
    beat = ""
    with contextlib.suppress(sqlite3.Error, ValueError):
        conn = sqlite3.connect(f"file:{exc.db}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT heartbeat_at FROM prober WHERE id = 1").fetchone()
        finally:
            conn.close()
        if row and row[0]:
            from datetime import UTC, datetime

            from probes.timestamps import parse_iso

            age = (datetime.now(UTC) - parse_iso(row[0])).total_seconds()
            beat = f", last heartbeat {max(0.0, age):.0f} s ago"
    return (
        f"{exc}{beat}. One prober per database: watch it with `inferwatch` or `inferwatch view`, "
        "or replace it with `inferwatch run --takeover`."
    )


def _restart_command(config_path: Path | None, db: Path, log_format: str) -> str:
    """The command line that starts this headless prober again (absolute paths)."""
    argv = ["inferwatch", "run", "--headless", "--db", str(db.absolute())]
    if config_path is not None:
        argv += ["--config", str(config_path.absolute())]
    if log_format != "text":
        argv += ["--log-format", log_format]
    return shlex.join(argv)


def cmd_run_headless(
    config: Config,
    db: Path,
    label: str,
    parent_pid: int | None = None,
    metrics: str | None = None,
    *,
    takeover: bool = False,
    log_format: str = "text",
    restart: str = "",
) -> int:
    """Run the prober in this process until SIGINT/SIGTERM/SIGHUP (or its parent exits, or
    its database is deleted or replaced), holding the database's prober lock."""
    from tui.metrics import parse_listen
    from tui.prober import run_prober
    from tui.prober_lock import ProberBusy, ProberLock, take_over
    from tui.prober_log import log, set_format

    set_format("json" if log_format == "json" else "text")
    listen = metrics or config.metrics.listen
    if listen:
        try:
            parse_listen(listen)
        except ValueError as exc:
            _err(str(exc))
            return EXIT_CONFIG
    lock = ProberLock(db, restart)
    try:
        if takeover:
            old = take_over(db)
            if old is not None:
                log(f"took over from the prober {old.where()}", "lifecycle", pid=old.pid)
        lock.acquire()
    except ProberBusy as exc:
        _err(_busy_message(exc))
        return EXIT_BUSY
    served = f"; /metrics on {listen}" if listen else ""
    log(
        f"probing {len(config.resolved())} targets into {db} (pid {os.getpid()}; Ctrl-C "
        f"stops){served}",
        "lifecycle",
        pid=os.getpid(),
        db=str(db),
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            ended = asyncio.run(
                run_prober(
                    config, db, config_label=label, parent_pid=parent_pid, metrics_listen=metrics
                )
            )
            if ended is not None and "database" in ended:
                return EXIT_BUSY
    except OSError as exc:
        if listen and exc.filename is None:
            _err(f"cannot serve /metrics on {listen}: {exc.strerror or exc}")
            return EXIT_CONFIG
        raise
    finally:
        lock.release()
    return EXIT_OK


def _spawn_prober(argv: list[str], db: Path) -> subprocess.Popen[bytes]:
    log = db.with_suffix(".prober.log")
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *argv, "--parent-pid", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
            # Its own session: the terminal's SIGHUP and ctrl+c reach the dashboard, which
            # stops it; if the dashboard dies, the prober sees its parent change and stops.
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _dashboard(
    db: Path,
    label: str,
    *,
    config: Config | None = None,
    config_path: Path | None = None,
    prober_argv: list[str] | None = None,
) -> int:
    """Open the dashboard on ``db`` until the user quits (or SIGHUP/SIGTERM).

    The table of published targets is drawn first; what is slow runs after it, on the
    dashboard's reader thread: creating and migrating the database (before the prober, so two
    processes never race to do it), starting the prober (``prober_argv``), and loading the
    config from ``config_path`` when ``config`` is not given (its window and refresh then
    apply). An error there closes the dashboard and is raised here, as if it came first.
    The prober started here ends with the dashboard.
    """
    from tui.app import InferwatchApp

    probers: list[subprocess.Popen[bytes]] = []

    def prepare() -> Config | None:
        from store.db import open_db

        open_db(db).close()
        if prober_argv is not None:
            probers.append(_spawn_prober(prober_argv, db))
        return _load(config_path) if config is None and config_path is not None else None

    def terminate() -> None:
        for proc in probers:
            if proc.poll() is None:
                proc.terminate()

    app = InferwatchApp(
        db_path=db,
        window_s=config.dashboard.window_s if config else 3600.0,
        refresh_s=config.dashboard.refresh_s if config else 1.0,
        source_label=label,
        config=config,
        prepare=prepare,
        on_exit_signal=terminate,
    )
    try:
        app.run()
        app.disarm()
    finally:
        for proc in probers:
            _stop(proc)
    if app.prepare_error is not None:
        raise app.prepare_error
    return EXIT_OK


def _demo_db(given: Path | None) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """The demo's database: ``given`` (an explicit ``--db``), else a temporary file, never the
    user's real database."""
    if given is not None:
        return given, None
    tmpdir = tempfile.TemporaryDirectory(prefix="inferwatch-demo-")
    return Path(tmpdir.name) / "demo.db", tmpdir


def cmd_demo(args: argparse.Namespace) -> int:
    """``inferwatch demo``: simulators + prober (+ dashboard unless --headless), into a
    temporary database unless ``--db`` is given."""
    from probes.simulator import SimulatorProcess
    from tui.demo import demo_config

    db, tmpdir = _demo_db(getattr(args, "db", None))
    try:
        with SimulatorProcess() as sim:
            config = demo_config(sim.port, args.interval)
            if args.headless:
                return cmd_run_headless(
                    config,
                    db,
                    "demo",
                    metrics=getattr(args, "metrics", None),
                    takeover=getattr(args, "takeover", False),
                    log_format=getattr(args, "log_format", "text"),
                )
            argv = ["run", "--headless", "--demo-port", str(sim.port), "--db", str(db)]
            if getattr(args, "takeover", False):
                argv.append("--takeover")
            return _dashboard(db, "demo", config=config, prober_argv=argv)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def cmd_run(args: argparse.Namespace, *, attach: bool = False) -> int:
    """``inferwatch run``: prober (+ dashboard unless --headless); it refuses while another
    prober holds the database, unless ``--takeover``. With ``attach`` (``inferwatch``
    without a command) the dashboard attaches to a live prober instead of refusing."""
    from tui.demo import demo_config
    from tui.prober_lock import ProberBusy, is_held, read_info, take_over

    metrics = getattr(args, "metrics", None)
    takeover = getattr(args, "takeover", False)
    log_format = getattr(args, "log_format", "text")
    if args.demo:
        return cmd_demo(
            argparse.Namespace(
                db=args.db,
                headless=args.headless,
                interval=5.0,
                metrics=metrics,
                takeover=takeover,
                log_format=log_format,
            )
        )
    db = args.db or default_db_path()
    if not args.headless and not attach and not takeover and is_held(db):
        # Before the config is read: the answer does not depend on it.
        _err(_busy_message(ProberBusy(db, read_info(db))))
        return EXIT_BUSY
    path: Path | None = None
    if args.demo_port is not None:
        config, label = demo_config(args.demo_port), "demo"
    else:
        path = args.config or default_config_path()
        config, label = _load(path), str(path)
    if args.headless:
        return cmd_run_headless(
            config,
            db,
            label,
            getattr(args, "parent_pid", None),
            metrics,
            takeover=takeover,
            log_format=log_format,
            restart=_restart_command(path, db, log_format) if path is not None else "",
        )
    if is_held(db) and not takeover:
        info = read_info(db)
        if attach:
            who = f"prober pid {info.pid}" if info else "a running prober"
            return _dashboard(db, f"{label} (attached to {who})", config=config)
        _err(_busy_message(ProberBusy(db, info)))
        return EXIT_BUSY
    if takeover:
        try:
            take_over(db)
        except ProberBusy as exc:
            _err(_busy_message(exc))
            return EXIT_BUSY
    argv = ["run", "--headless", "--db", str(db)]
    if args.config:
        argv += ["--config", str(args.config)]
    if metrics:
        argv += ["--metrics", metrics]
    if log_format != "text":
        argv += ["--log-format", log_format]
    return _dashboard(db, label, config=config, prober_argv=argv)


def cmd_view(args: argparse.Namespace) -> int:
    """``inferwatch view``: the dashboard without a prober, on the database or on Prometheus."""
    from tui.app import InferwatchApp

    if args.prometheus:
        from tui.prometheus_source import PrometheusSource

        source = PrometheusSource(args.prometheus)
        try:
            source.check()
        except ConnectionError as exc:
            _err(str(exc))
            return EXIT_CONFIG
        app = InferwatchApp(
            db_path=Path(os.devnull),
            window_s=900.0,
            refresh_s=5.0,
            source_label=f"prometheus {source.label}",
            reader=source,
        )
        app.run()
        return EXIT_OK
    db = args.db or default_db_path()
    if not db.exists():
        _err(f"no database at {db}")
        return EXIT_CONFIG
    path = args.config or default_config_path()
    return _dashboard(db, f"{db} (view only)", config_path=path if path.exists() else None)


def cmd_notify(args: argparse.Namespace) -> int:
    """``inferwatch notify --test CHANNEL``: send one test notification, record it, exit 1 on
    failure."""
    from datetime import UTC, datetime

    from store.alerting import trial_notice
    from store.db import open_db
    from store.notifications import queue_notice
    from tui.notify import send_test, where

    config = _load(args.config)
    names = [c.name for c in config.channels]
    conf = next((c for c in config.channels if c.name == args.test), None)
    if conf is None:
        close = difflib.get_close_matches(args.test, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        _err(f"no channel {args.test!r}{hint} (channels: {', '.join(names) or 'none configured'})")
        return EXIT_CONFIG
    now = datetime.now(UTC)
    notice = trial_notice(conf.name, config.prober.vantage_name(), now)
    payload = notice.payload()
    db_path = args.db or default_db_path()
    row_id = 0
    if db_path.exists():
        db = open_db(db_path)
        try:
            row_id = queue_notice(db, notice, {conf.name: conf.type}, now)[0]
            db.execute("UPDATE notifications SET status = 'sending' WHERE id = ?", [row_id])
            db.conn.commit()
        finally:
            db.close()
    payload["id"] = row_id
    result = send_test(conf, config.alerts, payload)
    if row_id:
        from probes.timestamps import iso

        db = open_db(db_path)
        try:
            db.execute(
                "UPDATE notifications SET status = ?, attempts = 1, last_attempt_at = ?, "
                "result = ?, sent_at = ? WHERE id = ?",
                [
                    "sent" if result.ok else "failed",
                    iso(datetime.now(UTC)),
                    result.detail,
                    iso(datetime.now(UTC)) if result.ok else None,
                    row_id,
                ],
            )
            db.conn.commit()
        finally:
            db.close()
    verdict = "sent" if result.ok else "FAILED"
    # result.detail may quote the receiver's reply: shown printable, like all outside text.
    print(printable(f"{conf.name} ({conf.type}, {where(conf)}): {verdict}: {result.detail}"))
    return EXIT_OK if result.ok else EXIT_PROBE_FAILED


def cmd_export(args: argparse.Namespace) -> int:
    """``inferwatch export``: stream rows to a file or stdout (progress on a terminal stderr)."""
    from store.db import SchemaNotReady, open_reader
    from store.export import ExportFilter, export, parse_since

    db_path = args.db or default_db_path()
    if not db_path.exists():
        _err(f"no database at {db_path}")
        return EXIT_CONFIG
    try:
        flt = ExportFilter(
            since=parse_since(args.since) if args.since else None,
            until=parse_since(args.until) if args.until else None,
            targets=tuple(args.target),
            providers=tuple(args.provider),
            status=args.status,
        )
    except ValueError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    try:
        db = open_reader(db_path)
    except SchemaNotReady as exc:
        _err(f"{db_path}: {exc}")
        return EXIT_CONFIG
    unknown = _unknown_targets(db, args.target)
    if unknown:
        db.close()
        for line in unknown:
            _err(line)
        return EXIT_CONFIG
    fmt = "jsonl" if args.jsonl else "csv"
    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                count = export(db, out, table=args.table, fmt=fmt, flt=flt, progress=sys.stderr)
            _err(f"wrote {count} rows to {args.output}")
        else:
            sys.stdout.reconfigure(newline="", encoding="utf-8")  # type: ignore[union-attr]
            export(db, sys.stdout, table=args.table, fmt=fmt, flt=flt, progress=sys.stderr)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    finally:
        db.close()
    return EXIT_OK


#: ``inferwatch status`` exit codes (Nagios plugin convention: OK, WARNING, CRITICAL, UNKNOWN).
STATUS_OK, STATUS_WARNING, STATUS_CRITICAL, STATUS_UNKNOWN = 0, 1, 2, 3


def cmd_status(args: argparse.Namespace) -> int:
    """``inferwatch status [--json]``: every target's displayed state; exit 0/1/2/3 (see
    :func:`tui.status.exit_code`)."""
    from tui.status import read_status

    db_path = args.db or default_db_path()
    report = read_status(db_path)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, allow_nan=False))
    else:
        for line in report.lines():
            print(printable(line))
    return report.exit_code


def _unknown_targets(db: sqlite_utils.Database, wanted: Sequence[str]) -> list[str]:
    """One message per ``--target`` name the database has never heard of, with the nearest
    known names ("did you mean ..."): a typo must not export an empty file silently."""
    if not wanted:
        return []
    known = {r[0] for r in db.conn.execute("SELECT name FROM targets")}
    known |= {r[0] for r in db.conn.execute("SELECT target FROM target_state")}
    out = []
    for name in wanted:
        if (
            name in known
            or db.conn.execute("SELECT 1 FROM probes WHERE target = ? LIMIT 1", [name]).fetchone()
        ):
            continue  # a current target, or one whose history outlived its config
        close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listed = f" (known: {', '.join(sorted(known))})" if not close and known else ""
        out.append(f"--target {name!r}: no such target in this database{hint}{listed}")
    return out


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window_s(text: str) -> float:
    """A duration like ``30m``, ``24h`` or ``7d`` in seconds.

    Raises:
        ValueError: for anything else, or a zero duration.
    """
    match = _DURATION.match(text)
    seconds = float(match.group(1)) * _DURATION_S[match.group(2)] if match else 0.0
    if seconds <= 0:
        raise ValueError(f"cannot read window {text!r}: use a duration like 30m, 24h or 7d")
    return seconds


def cmd_cost(args: argparse.Namespace) -> int:
    """``inferwatch cost``: feature projections, fallback capacity and the cost of monitoring,
    table or JSON."""
    from store.costs import feature_projections, monitoring_report
    from store.db import SchemaNotReady, open_reader
    from store.fallback import fallback_report

    if args.demo:
        from tui.demo import demo_config

        config = demo_config(0)
    else:
        config = _load(args.config)
    try:
        window_s = parse_window_s(args.window)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    names = [f.name for f in config.features]
    if args.feature is not None and args.feature not in names:
        close = difflib.get_close_matches(args.feature, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(names) or "none configured"
        _err(f"no feature {args.feature!r}{hint} (features: {known})")
        return EXIT_CONFIG
    db_path = args.db or default_db_path()
    try:
        db = open_reader(db_path)
    except SchemaNotReady as exc:
        db = None
        where = f"no database at {db_path}" if not exc.schema.exists else f"{db_path}: {exc}"
        _err(f"{where}: costs without measured latency")
    try:
        projections = (
            feature_projections(db, config, window_s, feature=args.feature) if names else None
        )
        monitoring = (
            monitoring_report(db, window_s) if db is not None and args.feature is None else None
        )
        fallbacks = fallback_report(db, config, window_s) if args.feature is None else []
    finally:
        if db is not None:
            db.close()
    if not names:
        _err("no [[features]] in the config: showing the cost of monitoring only")
    # Target names and models come from config and database: printable before printing.
    projections, monitoring, fallbacks = printable_tree((projections, monitoring, fallbacks))
    if args.json:
        doc = {
            "window_s": window_s,
            "projections": dataclasses.asdict(projections) if projections else None,
            "monitoring": dataclasses.asdict(monitoring) if monitoring else None,
            "fallbacks": [dataclasses.asdict(f) for f in fallbacks],
        }
        print(json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=2))
        return EXIT_OK
    from rich.console import Console

    from tui.cost_panel import render_cost_panel

    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    console.print(render_cost_panel(projections, monitoring, fallbacks))
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    """``inferwatch check-config``: validate and explain, exit 2 when invalid."""
    from probes.config import config_warnings, display_url, key_problem

    if args.providers:
        for p in PROVIDERS.values():
            base = p.base_url or "(base_url required)"
            print(f"{p.name:<18} {p.dialect:<17} {base}")
        return EXIT_OK
    if args.error_kinds:
        for kind, doc in ERROR_KIND_DOCS.items():
            print(f"{kind.value:<20} {SIDES[kind].value:<9} {doc}")
        print()
        for side, side_doc in SIDE_DOCS.items():
            print(f"{side.value:<9} {side_doc}")
        return EXIT_OK
    path = args.path or args.config or default_config_path()
    config = _load(path)
    targets = config.resolved()
    print(f"{printable(str(path))}: OK, {len(config.targets)} targets ({len(targets)} enabled)")
    for t in targets:
        key = t.config.api_key_env
        value = t.api_key()
        if key is None:
            key_state = "no key needed"
        elif not t.is_configured():
            key_state = f"NOT CONFIGURED: ${key} is unset"
        elif value is not None and key_problem(value):
            key_state = f"UNUSABLE KEY: ${key} {key_problem(value)} (value not shown)"
        else:
            key_state = f"key from ${key} (set)"
        s = t.settings
        print(
            f"  {printable(t.name)}: {t.config.provider} {printable(t.config.model)} at "
            f"{display_url(t.base_url)} every {s.interval_s:g}s, timeout {s.timeout_s:g}s, "
            f"max_tokens {s.max_tokens}; {key_state}"
        )
        print(f"    prices: {_explain_prices(t)}")
        if s.daily_budget_usd is not None:
            print(f"    probing budget: ${s.daily_budget_usd:g}/day")
        for line in _explain_questions(config, t):
            print(f"    {printable(line)}")
    if config.prober.daily_budget_usd is not None:
        print(f"  prober budget: ${config.prober.daily_budget_usd:g}/day for all targets")
    for f in config.features:
        scope = ", ".join(f.targets) if f.targets else "all targets"
        print(
            printable(
                f"  feature {f.name}: {f.input_tokens} in ({f.cached_input_tokens} cached) / "
                f"{f.output_tokens} out, {f.requests_per_day:,.0f} requests/day on {scope}"
            )
        )
    from tui.oncall import explain

    for line in explain(config):
        print(printable(line))
    for warning in config_warnings(config):
        print(f"  warning: {warning}")
    return EXIT_OK


def _explain_questions(config: Config, target: ResolvedTarget) -> list[str]:
    """What issue #13's checks will do for ``target`` (docs/questions.md), one line each."""
    from probes.cache_check import cache_shape
    from probes.official_status import resolve_source
    from probes.questions import QuestionChecks

    lines = []
    for sched in QuestionChecks(config).schedules():
        if sched.target != target.name:
            continue
        if sched.kind == "cache_check":
            shape = cache_shape(target.config.provider)
            how = f"{shape.mode}, prefix >= {shape.min_prefix_tokens} tokens" if shape else ""
            what = (
                f"prompt-caching check ({how})" if shape else "prompt-caching check: not supported"
            )
        elif sched.kind == "workload":
            what = f"workload {sched.workload}"
        else:
            what = "cold-start probe"
        lines.append(f"{what} every {sched.interval_s:g}s")
    if target.config.scaledown_window_s is not None:
        window = target.config.scaledown_window_s
        lines.append(f"scales to zero after {window:g}s idle: probes after longer idle are cold")
    source = resolve_source(
        target.config.provider,
        target.config.status_url,
        target.config.status_component,
        config.status,
    )
    if source is not None and config.status.enabled:
        part = f" ({source.component})" if source.component else ""
        lines.append(f"official status: {source.url}{part} every {config.status.interval_s:g}s")
    return lines


def _explain_prices(target: ResolvedTarget) -> str:
    """The rates a target's requests are priced at (short context, USD per million tokens)."""
    from datetime import UTC, datetime

    from probes.dialects.base import Usage
    from probes.pricing import price_usage

    cost = price_usage(Usage(1, 0, 0, 1), target.config, target.prices_id, datetime.now(UTC))
    if cost is None or cost.rates is None:
        return "price unknown (no genai-prices entry and no input/output override)"
    r = cost.rates
    reasoning = f", reasoning {r.reasoning:g}" if r.reasoning is not None else ""
    return (
        f"USD per 1M tokens: input {r.input:g}, cache read {r.cache_read:g}, "
        f"cache write {r.cache_write:g}, output {r.output:g}{reasoning} [{r.source}]"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``inferwatch`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "probe":
            return cmd_probe(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "check-config":
            return cmd_check_config(args)
        if args.command == "cost":
            return cmd_cost(args)
        if args.command == "view":
            return cmd_view(args)
        if args.command == "notify":
            return cmd_notify(args)
        if args.command == "status":
            return cmd_status(args)
        args.headless, args.demo, args.demo_port = False, False, None
        return cmd_run(args, attach=True)
    except _config_error() as exc:
        for problem in exc.problems:
            print(printable(problem), file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        return EXIT_OK
    except sqlite3.Error as exc:
        _err(f"database error: {exc} (check --db and that its folder is writable)")
        return EXIT_CONFIG
    except OSError as exc:
        # A file we were asked to read or write (-o, --db, --config) is not usable.
        _err(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
