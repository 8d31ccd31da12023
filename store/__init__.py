"""Persisting and querying side of inferwatch: one SQLite file in WAL mode via sqlite-utils.

The prober (writer) and the dashboard (reader) are separate processes that meet here. Nothing
in this package imports textual or rich.
"""
