"""Many-row INSERTs as plain driver statements: no per-row objects, few statements to prepare.

The statements are built apart from running them (a `Statement` is SQL and its parameters), so
that a writer thread can be handed them ready-made. SQLite: one INSERT ... SELECT over a VALUES
list binds a whole batch and runs in one call into the driver, which releases the GIL meanwhile.
Batches are padded with NULL rows (skipped) to a power of two, so every statement is one of a
few the driver has prepared and cached already. PostgreSQL: each column goes as one array
literal, unnested server-side.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache
from itertools import chain

from sqlalchemy import Connection

# SQLite: at most this many rows per INSERT (within SQLite's 32,766 bound values).
SQLITE_BATCH_ROWS = 8192


@cache
def _sqlite_statement(head: str, fixed: int, width: int, rows: int, tail: str) -> str:
    # Plain "?" placeholders: SQLite prepares numbered ones ("?NNN") in quadratic time.
    row = "(" + ",".join("?" * width) + ")"
    columns = ", ".join(f"column{i + 1}" for i in range(width))
    constants = "?, " * fixed
    return (
        f"{head} SELECT {constants}{columns} FROM (VALUES {','.join([row] * rows)}) "
        f"WHERE column1 IS NOT NULL{tail}"
    )


@cache
def _sqlite_variable_limit() -> int:
    """How many values one statement may bind: set when the SQLite library this process loaded
    was compiled (32,766 since 3.32, 999 before)."""
    connection = sqlite3.connect(":memory:")
    try:
        return connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        connection.close()


def _sqlite_batch_rows(fixed: int, width: int) -> int:
    """SQLITE_BATCH_ROWS, or fewer (a power of two) where this SQLite binds fewer values."""
    limit = _sqlite_variable_limit()
    return min(SQLITE_BATCH_ROWS, 1 << ((limit - fixed) // width).bit_length() - 1)


Statement = tuple[str, tuple[object, ...]]  # SQL for the driver, and its parameters


def sqlite_inserts(
    head: str,
    constants: Sequence[object],
    columns: Sequence[Sequence[object]],
    tail: str = "",
) -> list[Statement]:
    """`head` (INSERT INTO t (...)) of the rows constants + (columns[0][i], columns[1][i], ...).

    `tail` follows each statement (an ON CONFLICT clause). Column 1 must hold no NULL. Building
    the parameters is Python work: a writer thread can be handed the finished statements, so
    that it holds the GIL only to bind them (see `execute`).
    """
    width = len(columns)
    flat = list(chain.from_iterable(zip(*columns, strict=True)))
    most = width * _sqlite_batch_rows(len(constants), width)
    statements: list[Statement] = []
    for start in range(0, len(flat), most):
        batch = flat[start : start + most]
        rows = 1 << (len(batch) // width - 1).bit_length()
        padding = (None,) * (width * rows - len(batch))
        sql = _sqlite_statement(head, len(constants), width, rows, tail)
        statements.append((sql, (*constants, *batch, *padding)))
    return statements


def execute(connection: Connection, statements: Sequence[Statement]) -> None:
    for sql, parameters in statements:
        connection.exec_driver_sql(sql, parameters)


def pg_array(numbers: Sequence[float]) -> str:
    """A PostgreSQL array literal, built in a third of the time the driver takes to adapt a list.

    repr() gives the shortest text that reads back as the same float, and PostgreSQL reads it
    back exactly (tests/worker/test_points.py).
    """
    return "{" + ",".join(map(repr, numbers)) + "}"


def pg_text_array(words: Sequence[str]) -> str:
    """A PostgreSQL array literal of strings, each quoted."""
    quoted = (word.replace("\\", "\\\\").replace('"', '\\"') for word in words)
    return "{" + ",".join(f'"{word}"' for word in quoted) + "}"


def pg_unnest(head: str, constants: int, types: Sequence[str], tail: str = "") -> str:
    """`head` SELECT of `constants` parameters and one unnested array parameter per column."""
    arrays = ", ".join(f"unnest(%s::{kind}[])" for kind in types)
    return f"{head} SELECT {'%s, ' * constants}{arrays}{tail}"
