"""The SQLite store (stdlib sqlite3): one file in the output directory, one row per semantic identity.

Columns hold what a reader queries (operator JSON, structural hash, fingerprint, status, error, reward, metrics,
timings, evaluator versions); the strategy state is one row replaced in the same transaction as each result.
SQLite's rollback journal makes each transaction all-or-nothing under ``kill -9``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..candidate import Candidate, Result
from ...ir.graph import Operator
from .database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL UNIQUE,
    op_hash TEXT NOT NULL,
    operator TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL,
    reward REAL NOT NULL,
    metrics TEXT NOT NULL,
    timings TEXT NOT NULL,
    versions TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), blob BLOB NOT NULL, updated REAL NOT NULL);
"""

COLUMNS = "fingerprint, op_hash, operator, path, source, status, error, reward, metrics, timings, versions"


class SqliteDatabase(Database):
    def __init__(self, path: "str | Path") -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    def _row(self, row: tuple) -> Result:
        fp, _, op, path, source, status, error, reward, metrics, timings, versions = row
        cand = Candidate(Operator.from_json(op), fp, tuple(json.loads(path)), source)
        return Result(cand, status, json.loads(metrics), error, json.loads(timings), json.loads(versions), reward)

    def get(self, fingerprint: str) -> Result | None:
        row = self.conn.execute(f"SELECT {COLUMNS} FROM results WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return self._row(row) if row else None

    def commit(self, result: Result, state: bytes | None) -> None:
        c = result.candidate
        values = (c.fingerprint, c.operator.hash, c.operator.dumps(), json.dumps(list(c.path)), c.source,
                  result.status, result.error, float(result.reward), json.dumps(result.metrics),
                  json.dumps(result.timings), json.dumps(result.versions))
        with self._transaction():
            self.conn.execute(f"INSERT INTO results ({COLUMNS}, created) VALUES ({', '.join('?' * 11)}, ?)",
                              values + (time.time(),))
            if state is not None:
                self._put_state(state)

    def _put_state(self, state: bytes) -> None:
        self.conn.execute("INSERT OR REPLACE INTO state (id, blob, updated) VALUES (1, ?, ?)", (state, time.time()))

    def save_state(self, state: bytes) -> None:
        with self._transaction():
            self._put_state(state)

    def load_state(self) -> bytes | None:
        row = self.conn.execute("SELECT blob FROM state WHERE id = 1").fetchone()
        return bytes(row[0]) if row else None

    def results(self) -> list[Result]:
        return [self._row(r) for r in self.conn.execute(f"SELECT {COLUMNS} FROM results ORDER BY seq")]

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        with self._transaction():
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        self.conn.close()

    def _transaction(self):
        return _Transaction(self.conn)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on an exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, tb) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
