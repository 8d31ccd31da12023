"""Where the database lives by default (a module of its own: the command line reads it for
its help before it knows whether it needs sqlite-utils at all)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def default_db_path() -> Path:
    """``$INFERWATCH_DB`` when set, else ``inferwatch.db`` under the user's data directory
    (platformdirs). Every command and the prober use this one default."""
    env = os.environ.get("INFERWATCH_DB")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("inferwatch", appauthor=False)) / "inferwatch.db"
