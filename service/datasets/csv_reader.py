"""Read a CSV upload (a header row, then one row of numbers per example) into X_train and
y_train, in blocks of rows, in memory proportional to the arrays it returns.

ingest.clean then checks the arrays and carves the missing splits, as for an `.npz` upload.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import numpy as np

from service.datasets.ingest import BadFile, bad_file, check_working_size

# Values parsed at a time: the float64 scratch space beside X and y stays this small.
BLOCK_VALUES = 1 << 16
ROW_NUMBER = re.compile(r"\bat row (\d+)")


def read_csv(
    stream: IO[bytes], label_column: str | None, max_bytes: int, delimiter: str = ","
) -> dict[str, np.ndarray]:
    """X_train and y_train from a CSV with a header row, its values separated by `delimiter` (a
    comma, or a tab); labels in `label_column` (default the last column). TooLarge if the arrays
    and their checking would take more than `max_bytes` of memory.

    The stream is read twice, so it must be seekable: once to count the data rows, then to parse
    blocks of rows straight into X and y of that length. Parsing the whole text at once would
    hold a float64 copy of the table beside the arrays cut from it.
    """
    try:
        with _text(stream) as text:
            header = next(csv.reader([text.readline()], delimiter=delimiter), [])
            names = [name.strip() for name in header]
            if len(names) < 2:
                msg = "needs a header row naming at least one feature and the label column"
                raise bad_file(None, msg)
            if label_column is None:
                index = len(names) - 1
            elif label_column in names:
                index = names.index(label_column)
            else:
                msg = f"no column {label_column!r} in the header"
                raise BadFile([(("body", "label_column"), msg)])
            block_rows = max(1, BLOCK_VALUES // len(names))
            # One character of the first column is enough to count rows by np.loadtxt's own
            # rules (blank and comment lines skipped, quoted newlines joined) and never fails.
            counted = _blocks(text, block_rows, delimiter, "U1", usecols=0)
            n_rows = sum(len(block) for _, block in counted)
        if n_rows == 0:
            raise bad_file(None, "has a header but no data rows")
        # float64 features and labels as parsed, then what checking them costs
        check_working_size(n_rows * len(names) * 8, n_rows, max_bytes)
        X = np.empty((n_rows, len(names) - 1), dtype=np.float64)
        y = np.empty(n_rows, dtype=np.float64)
        with _text(stream) as text:
            text.readline()
            for start, block in _blocks(text, block_rows, delimiter, np.float64):
                if block.shape[1] != len(names):
                    msg = f"rows have {block.shape[1]} values, the header names {len(names)}"
                    raise bad_file(None, msg)
                rows = slice(start, start + len(block))
                X[rows, :index] = block[:, :index]
                X[rows, index:] = block[:, index + 1 :]
                y[rows] = block[:, index]
    except UnicodeDecodeError:
        raise bad_file(None, "is not UTF-8 text") from None
    except ValueError as exc:
        raise bad_file(None, f"data rows (counted after the header): {exc}") from None
    return {"X_train": X, "y_train": y}


def _rows_after(before: int, message: str) -> str:
    """np.loadtxt's message, its row number counted `before` rows further on."""
    return ROW_NUMBER.sub(lambda row: f"at row {before + int(row[1])}", message)


@contextmanager
def _text(stream: IO[bytes]) -> Iterator[io.TextIOWrapper]:
    """The stream from its start as text; the stream itself is left open."""
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield text
    finally:
        text.detach()


def _blocks(
    lines: Iterator[str], block_rows: int, delimiter: str, dtype: Any, **options: Any
) -> Iterator[tuple[int, np.ndarray]]:
    """Blocks of up to `block_rows` data rows (2-D), each with the number of rows before it.

    np.loadtxt reads no further than the last row it returns, so each call resumes where the
    previous one stopped. Its errors name a row counted from the start of the call: they are
    reworded to count from the first data row, as a single call over the whole text would.
    """
    start = 0
    while True:
        try:
            with warnings.catch_warnings():
                # "input contained no data" once the lines run out, and a note that blank lines
                # do not count towards max_rows (which is what we want).
                warnings.simplefilter("ignore", UserWarning)
                block = np.loadtxt(
                    lines,
                    delimiter=delimiter,
                    dtype=dtype,
                    ndmin=2,
                    quotechar='"',
                    max_rows=block_rows,
                    **options,
                )
        except UnicodeDecodeError:
            raise  # a ValueError too, but about the text, not a row
        except ValueError as exc:
            raise ValueError(_rows_after(start, str(exc))) from None
        if block.shape[0] == 0:
            return
        yield start, block
        start += block.shape[0]
