"""The server_load_ms column reaches databases created before it existed (m002)."""

from __future__ import annotations

from pathlib import Path

from probes.record import ProbeRecord
from store.db import insert_probe, open_db


def test_m002_adds_server_load_ms_to_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = open_db(path)
    # Make it look like a database from before the column: m001 only.
    db.execute("ALTER TABLE probes DROP COLUMN server_load_ms")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm002_server_load_ms'")
    db.conn.commit()
    db.conn.close()

    db = open_db(path)
    assert "server_load_ms" in db["probes"].columns_dict
    record = ProbeRecord("2026-10-21T12:00:00.000Z", "t", "ollama-native", "m", "ok")
    record.server_load_ms = 1.334875
    insert_probe(db, record)
    assert [r["server_load_ms"] for r in db.query("SELECT server_load_ms FROM probes")] == [
        1.334875
    ]
    db.conn.close()


def test_m006_adds_the_issue_9_columns_to_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = open_db(path)
    added = ("response_model", "dns_ms", "connect_ms", "tls_ms", "cost_estimate_usd", "cold_load")
    for name in added:
        db.execute(f"ALTER TABLE probes DROP COLUMN {name}")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_numbers'")
    db.conn.commit()
    db.conn.close()

    db = open_db(path)
    assert set(added) <= set(db["probes"].columns_dict)
    record = ProbeRecord("2026-10-21T12:00:00.000Z", "t", "openrouter", "m", "ok")
    record.response_model = "served-model"
    record.dns_ms, record.connect_ms, record.tls_ms = 12.5, 3.25, 40.0
    record.cost_estimate_usd, record.cold_load = 0.000837, True
    insert_probe(db, record)
    row = next(iter(db.query(f"SELECT {', '.join(added)} FROM probes")))
    assert row == {
        "response_model": "served-model",
        "dns_ms": 12.5,
        "connect_ms": 3.25,
        "tls_ms": 40.0,
        "cost_estimate_usd": 0.000837,
        "cold_load": 1,
    }
    db.conn.close()
