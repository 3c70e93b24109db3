"""CSV uploads are parsed a block of rows at a time, into arrays of their final size: the memory
an upload takes stays proportional to the arrays it stores, and the result is what a single
np.loadtxt over the whole text gives (values, labels, carved splits, error messages)."""

from __future__ import annotations

import io
import tracemalloc
import warnings

import numpy as np
import pytest

from service.datasets import csv_reader, ingest

SMALL_BLOCK_VALUES = 64  # 16 rows a block for the 4 columns of `mixed_csv`
LIMIT = 512 * 1024**2  # the default DESCENT_MAX_UPLOAD_BYTES


def digit_csv(n_rows: int, n_features: int) -> bytes:
    """Single-digit features and labels 0..2 in the last column, built without formatting
    each value (so that a large file is quick to make)."""
    values = np.random.default_rng(0).integers(0, 10, size=(n_rows, n_features + 1))
    values[:, -1] = np.arange(n_rows) % 3
    cells = np.empty((n_rows, 2 * (n_features + 1)), dtype=np.uint8)
    cells[:, 0::2] = values + ord("0")
    cells[:, 1::2] = ord(",")
    cells[:, -1] = ord("\n")
    header = ",".join([*(f"f{i}" for i in range(n_features)), "label"])
    return header.encode() + b"\n" + cells.tobytes()


def mixed_csv(n_rows: int) -> bytes:
    """Full-precision floats, the label in the second column, and what np.loadtxt skips or
    unquotes (blank lines, comment lines, quoted values) scattered over the rows."""
    rng = np.random.default_rng(n_rows)
    lines = ["a,label,b,c"]
    for i in range(n_rows):
        a, b, c = rng.normal(size=3).tolist()
        lines.append(f'{a!r},{i % 3},"{b!r}",{c!r}')
        if i % 7 == 3:
            lines.append("")
        if i % 11 == 5:
            lines.append("# a comment")
    return ("\r\n".join(lines) + "\r\n").encode()


def whole_text(content: bytes) -> np.ndarray:
    """The data rows as the upload read them before blocks: one np.loadtxt over the text."""
    text = content.decode().split("\n", 1)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return np.loadtxt(io.StringIO(text, newline=""), delimiter=",", ndmin=2, quotechar='"')


def test_a_csv_is_parsed_in_memory_proportional_to_the_arrays_it_stores() -> None:
    stream = io.BytesIO(digit_csv(10_000, 100))
    # What a process pays once (numpy's lazy imports) is paid first.
    ingest.clean(csv_reader.read_csv(io.BytesIO(digit_csv(30, 2)), None, LIMIT))

    tracemalloc.start()
    try:
        data = ingest.clean(csv_reader.read_csv(stream, None, LIMIT))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    stored = sum(array.nbytes for array in data.arrays.values())
    assert data.rows("train") + data.rows("val") + data.rows("test") == 10_000
    assert peak <= 1.6 * stored, f"the peak took {peak / stored:.2f}x the stored arrays"


@pytest.mark.parametrize(
    "n_rows",
    [5, 16, 32, 37],
    ids=["under-a-block", "one-block", "two-blocks", "a-partial-last-block"],
)
def test_a_csv_gives_what_one_loadtxt_over_the_whole_text_gives(
    monkeypatch: pytest.MonkeyPatch, n_rows: int
) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_VALUES", SMALL_BLOCK_VALUES)
    content = mixed_csv(n_rows)
    table = whole_text(content)
    X, y = np.delete(table, 1, axis=1), table[:, 1].astype(np.int64)

    data = ingest.clean(csv_reader.read_csv(io.BytesIO(content), "label", LIMIT))

    assert (data.n_classes, data.carved, data.n_features) == (3, ("val", "test"), 3)
    for split, rows in ingest.carve(n_rows, ("val", "test")).items():
        assert data.arrays[f"X_{split}"].dtype == np.float64
        assert data.arrays[f"y_{split}"].dtype == np.int64
        np.testing.assert_array_equal(data.arrays[f"X_{split}"], X[rows])
        np.testing.assert_array_equal(data.arrays[f"y_{split}"], y[rows])


def test_a_bad_row_in_a_later_block_is_refused_with_the_whole_text_message() -> None:
    n_features = 20
    assert csv_reader.BLOCK_VALUES // (n_features + 1) < 10_000  # row 10,000: past the 1st block
    lines = digit_csv(12_000, n_features).split(b"\n")
    lines[10_000] = lines[10_000].rsplit(b",", 1)[0]  # data row 10,000 (line 0 is the header)
    content = b"\n".join(lines)
    with pytest.raises(ValueError, match="at row 10000") as whole:
        whole_text(content)

    with pytest.raises(ingest.BadFile) as refused:
        csv_reader.read_csv(io.BytesIO(content), None, LIMIT)

    assert refused.value.problems == [
        (ingest.FILE_LOC, f"data rows (counted after the header): {whole.value}")
    ]


@pytest.mark.parametrize("bad", ["1,2,x,0", "1,2,3,0,4", "1,2,0", "  "], ids=repr)
def test_a_bad_row_is_named_by_its_place_in_the_whole_text(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    """Messages name rows as np.loadtxt over the whole text does (the message of a row that is
    not the first of its block would otherwise count from the block)."""
    monkeypatch.setattr(csv_reader, "BLOCK_VALUES", SMALL_BLOCK_VALUES)
    rows = [f"{i},{i + 1},{i + 2},{i % 2}" for i in range(40)]
    content = ("a,b,c,label\n" + "\n".join([*rows[:21], bad, *rows[21:]]) + "\n").encode()
    with pytest.raises(ValueError) as whole:
        whole_text(content)

    with pytest.raises(ingest.BadFile) as refused:
        csv_reader.read_csv(io.BytesIO(content), None, LIMIT)

    assert str(refused.value) == f"data rows (counted after the header): {whole.value}"


def test_a_later_block_whose_rows_all_lack_a_value_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_VALUES", SMALL_BLOCK_VALUES)
    rows = [f"{i},{i + 1},{i + 2},{i % 2}" for i in range(16)]  # the first block, whole
    short = [f"{i},{i + 1},{i % 2}" for i in range(16)]  # the second block, a value short
    content = ("a,b,c,label\n" + "\n".join(rows + short) + "\n").encode()

    with pytest.raises(ingest.BadFile) as refused:
        csv_reader.read_csv(io.BytesIO(content), None, LIMIT)

    assert refused.value.problems == [(ingest.FILE_LOC, "rows have 3 values, the header names 4")]


def test_text_that_is_not_utf8_past_the_first_block_is_named_as_such() -> None:
    content = b"a,label\n" + b"1,0\n" * 40_000 + b"\xff,1\n"  # past what the header line read

    with pytest.raises(ingest.BadFile) as refused:
        csv_reader.read_csv(io.BytesIO(content), None, LIMIT)

    assert refused.value.problems == [(ingest.FILE_LOC, "is not UTF-8 text")]


@pytest.mark.parametrize("writeable", [True, False], ids=["writeable", "read-only"])
def test_carving_in_place_takes_the_rows_fancy_indexing_takes(
    monkeypatch: pytest.MonkeyPatch, writeable: bool
) -> None:
    monkeypatch.setattr(ingest, "BLOCK_VALUES", 8)  # rows moved a few at a time
    rng = np.random.default_rng(1)
    X = rng.normal(size=(103, 3)).astype(np.float32)
    y = np.arange(103) % 4
    X_given, y_given = X.copy(), y.copy()
    X_given.flags.writeable = writeable

    data = ingest.clean({"X_train": X_given, "y_train": y_given})

    for split, rows in ingest.carve(103, ("val", "test")).items():
        np.testing.assert_array_equal(data.arrays[f"X_{split}"], X[rows])
        np.testing.assert_array_equal(data.arrays[f"y_{split}"], y[rows])
