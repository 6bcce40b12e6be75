"""The answer store: one SQLite file per study folder (answers.sqlite), and every SQL statement.

One connection per request; WAL so readers never block the writer, a busy timeout so concurrent
writers wait instead of failing, UNIQUE(rater, question) so an answer exists once. Every
statement takes its values as parameters, never formatted into the SQL
(tests/test_study.py::test_sql_is_only_parameterised checks).
"""
from __future__ import annotations

import datetime as _dt
import sqlite3
import time
from pathlib import Path

from frgan.data.errors import DatasetError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shown (
    rater TEXT NOT NULL, question TEXT NOT NULL, shown_at REAL NOT NULL,
    PRIMARY KEY (rater, question));
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rater TEXT NOT NULL, question TEXT NOT NULL,
    left_video TEXT NOT NULL, right_video TEXT NOT NULL,
    left_method TEXT NOT NULL, right_method TEXT NOT NULL,
    chosen_side TEXT NOT NULL CHECK (chosen_side IN ('left', 'right')),
    chosen_method TEXT NOT NULL,
    seconds REAL NOT NULL CHECK (seconds >= 0),
    answered_at TEXT NOT NULL,
    UNIQUE (rater, question));
"""
BUSY_TIMEOUT_S = 30.0   # a writer waits this long for the lock (also set as PRAGMA busy_timeout)


class Conflict(Exception):
    """An answer the store refuses: the question was not shown to the rater, or is answered."""


class _closing:
    """`with` for a sqlite3 connection that also closes it (sqlite3's own `with` only commits)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc) -> None:
        self.conn.close()


def connect(db_path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _read_only(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)


def init_db(db_path: Path, study_id: str) -> None:
    """Create the tables (WAL mode) or check that an existing file belongs to this study."""
    with _closing(connect(db_path)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT value FROM meta WHERE key = ?", ("study_id",)).fetchone()
        if row is None:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("study_id", study_id))
        conn.execute("COMMIT")
    if row is not None and row[0] != study_id:
        raise DatasetError(f"{db_path}: holds answers of study {row[0]}, the folder holds study "
                           f"{study_id} (expected the database of this draw; move the old one away)")


def count_answers(db_path: Path) -> int:
    """How many answers the file holds; 0 when it is absent or not a study database."""
    if not Path(db_path).is_file():
        return 0
    with _closing(_read_only(db_path)) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
        except sqlite3.DatabaseError:
            return 0


def show_next(db_path: Path, rater: str, order: list[str]) -> list[str]:
    """The rater's unanswered questions in `order`; the first is recorded as shown now (its
    answer's `seconds` count from here, and only a shown question may be answered)."""
    with _closing(connect(db_path)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        done = {r[0] for r in conn.execute("SELECT question FROM answers WHERE rater = ?", (rater,))}
        todo = [q for q in order if q not in done]
        if todo:
            conn.execute("INSERT INTO shown (rater, question, shown_at) VALUES (?, ?, ?) "
                         "ON CONFLICT (rater, question) DO UPDATE SET shown_at = excluded.shown_at",
                         (rater, todo[0], time.time()))
        conn.execute("COMMIT")
    return todo


def record_answer(db_path: Path, rater: str, question: str, videos: tuple[str, str],
                  methods: tuple[str, str], side: str, chosen_method: str) -> int:
    """Store one answer (videos and methods: (left, right)); returns the rater's answers so far.
    Conflict when the question was not shown to the rater or the rater has answered it."""
    with _closing(connect(db_path)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            shown = conn.execute("SELECT shown_at FROM shown WHERE rater = ? AND question = ?",
                                 (rater, question)).fetchone()
            if shown is None:
                conn.execute("ROLLBACK")
                raise Conflict(f"question {question}: not shown to rater {rater} yet")
            seconds = max(0.0, time.time() - float(shown[0]))
            conn.execute(
                "INSERT INTO answers (rater, question, left_video, right_video, left_method, "
                "right_method, chosen_side, chosen_method, seconds, answered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rater, question, *videos, *methods, side, chosen_method, seconds, _now_iso()))
            answered = conn.execute("SELECT COUNT(*) FROM answers WHERE rater = ?", (rater,)).fetchone()[0]
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            raise Conflict(f"question {question}: rater {rater} has answered it already") from None
    return answered


def answers(db_path: Path, study_id: str, source: Path) -> list[tuple]:
    """Every answer, oldest first: (rater, question, left_method, right_method, chosen_method,
    seconds, answered_at). DatasetError when the file belongs to another study than `source`'s."""
    if not Path(db_path).is_file():
        return []
    with _closing(_read_only(db_path)) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", ("study_id",)).fetchone()
        if row is not None and row[0] != study_id:
            raise DatasetError(f"{db_path}: holds answers of study {row[0]}, expected study {study_id} "
                               f"({source})")
        return conn.execute("SELECT rater, question, left_method, right_method, chosen_method, seconds, "
                            "answered_at FROM answers ORDER BY id").fetchall()


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
