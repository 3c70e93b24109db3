"""Check an uploaded data set, read by npz_reader or csv_reader, into six clean arrays.

The rules (each broken one is reported, by array, as a 422):
- `X_train` and `y_train` are required; `X_val`/`y_val` and `X_test`/`y_test` come in pairs.
- X is 2-D (rows, features) of a numeric dtype (bool, integer or floating), finite, with rows;
  every split has the same number of features. y is 1-D with one label per row of its X.
- Labels are integers (integer dtype, or floats with whole values) in 0..C-1 with C >= 2, and
  every class 0..C-1 has training rows. C is the largest label + 1.
- A missing validation or test split is carved from the training rows (see `carve`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.datasets.storage import SPLITS

MAX_CLASSES = 1_000
CARVE_FRACTION = 0.1
CARVE_SEED = 0
FILE_LOC = ("body", "file")
# What checking and carving an upload costs per row beside its features: its labels as int64,
# the carve's shuffled order of the rows and the index of the training rows, 8 bytes each. With
# the features, priced from the arrays' shapes before they are read (`check_working_size`): a
# small file of many rows (a compressed archive, a CSV of one short column) costs what it holds
# once read, not what it weighs.
ROW_WORKING_BYTES = 24
# Values moved at a time when rows are carved in place: the scratch space beside the arrays
# themselves stays this small, whatever the size of the upload.
BLOCK_VALUES = 1 << 16

Problem = tuple[tuple[str, ...], str]
Kind = Literal["npz", "csv", "tsv"]  # tsv: a CSV whose values are separated by tabs


class BadFile(Exception):
    """The file can be read but is not a valid data set; `problems` name what is wrong."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = list(problems)


class UnsupportedFile(Exception):
    """Neither an `.npz` archive nor a CSV file."""


class TooLarge(Exception):
    """The arrays would take more than the upload limit once decompressed, or checking them
    more memory than that."""


def check_working_size(feature_bytes: int, n_rows: int, max_bytes: int) -> None:
    """Raise TooLarge if the features read (`feature_bytes`) and what checking and carving
    `n_rows` rows costs besides would take more than `max_bytes` (the upload limit)."""
    working = feature_bytes + ROW_WORKING_BYTES * n_rows
    if working > max_bytes:
        raise TooLarge(
            f"reading this data set would take {working} bytes of memory (its features, and "
            f"{ROW_WORKING_BYTES} bytes for each of its {n_rows} rows), over the {max_bytes}-byte "
            "upload limit (DESCENT_MAX_UPLOAD_BYTES)"
        )


@dataclass(frozen=True)
class CleanData:
    arrays: dict[str, np.ndarray]  # every name of ARRAY_NAMES; y as int64
    n_classes: int
    carved: tuple[str, ...]  # the splits carved from train

    def rows(self, split: str) -> int:
        return int(self.arrays[f"y_{split}"].shape[0])

    @property
    def n_features(self) -> int:
        return int(self.arrays["X_train"].shape[1])


def bad_file(name: str | None, msg: str) -> BadFile:
    """A problem with one array (`name`) or with the file as a whole (None)."""
    return BadFile([((*FILE_LOC, name) if name else FILE_LOC, msg)])


def detect(filename: str | None, content_type: str | None, head: bytes) -> Kind:
    """What kind of file this is, from its first bytes, then its name and media type."""
    suffix = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if head.startswith(b"PK") or suffix == "npz":
        return "npz"
    media = (content_type or "").split(";")[0].strip().lower()
    if suffix == "tsv" or media == "text/tab-separated-values":
        return "tsv"
    if suffix in ("csv", "txt") or media in ("text/csv", "application/csv"):
        return "csv"
    hint = " (save arrays with numpy.savez)" if suffix in ("npy", "pkl", "pickle") else ""
    raise UnsupportedFile(
        f"{filename or 'the file'}: upload an .npz archive or a .csv file with a header row{hint}"
    )


def _array_problems(name: str, array: np.ndarray) -> list[str]:
    kind = array.dtype.kind
    if name.startswith("X"):
        if kind not in "biuf":
            return [f"has dtype {array.dtype}: features must be numeric (bool, int, float)"]
        if array.ndim != 2:
            return [f"must be 2-D (rows, features), got shape {array.shape}"]
        if array.shape[1] == 0:
            return ["has no feature columns"]
    else:
        if kind not in "iuf":
            return [f"has dtype {array.dtype}: labels must be integers"]
        if array.ndim != 1:
            return [f"must be 1-D (one label per row), got shape {array.shape}"]
    if array.shape[0] == 0:
        return ["has no rows"]
    if kind == "f" and not np.isfinite(array).all():
        return ["holds NaN or infinite values"]
    if name.startswith("y") and kind == "f" and not (array == np.round(array)).all():
        return ["holds non-integer labels"]
    return []


def _labels(arrays: dict[str, np.ndarray], present: list[str]) -> tuple[dict[str, np.ndarray], int]:
    labels = {split: arrays[f"y_{split}"].astype(np.int64) for split in present}
    problems: list[Problem] = [
        ((*FILE_LOC, f"y_{split}"), "holds negative labels: classes are 0..C-1")
        for split, y in labels.items()
        if y.min() < 0
    ]
    if problems:
        raise BadFile(problems)
    n_classes = max(int(y.max()) for y in labels.values()) + 1
    if n_classes < 2:
        raise bad_file("y_train", "has a single class: a classifier needs at least 2")
    if n_classes > MAX_CLASSES:
        raise bad_file("y_train", f"has {n_classes} classes; at most {MAX_CLASSES} are supported")
    return labels, n_classes


def carve(n_rows: int, missing: Sequence[str]) -> dict[str, np.ndarray]:
    """Row indices of train and of each missing split, deterministically.

    The rows are shuffled with numpy.random.default_rng(0).permutation(n); the last ceil(n/10)
    of that order become the validation split (if missing), the ceil(n/10) before them the test
    split (if missing); the remaining rows stay training rows, in their original order.
    """
    size = math.ceil(n_rows * CARVE_FRACTION)
    order = np.random.default_rng(CARVE_SEED).permutation(n_rows)
    parts: dict[str, np.ndarray] = {}
    end = n_rows
    for split in ("val", "test"):
        if split in missing:
            parts[split] = order[end - size : end]
            end -= size
    parts["train"] = np.sort(order[:end])
    return parts


def clean(arrays: dict[str, np.ndarray]) -> CleanData:
    """Check the arrays against the rules above; fill in missing splits. Raises BadFile.

    The arrays are taken over: carving a split moves the training rows of X_train (and y_train)
    up in place, and the X_train returned is then a view of the first rows of that buffer.
    """
    problems: list[Problem] = []
    for name in ("X_train", "y_train"):
        if name not in arrays:
            problems.append(((*FILE_LOC, name), "is required"))
    for split in ("val", "test"):
        if (f"X_{split}" in arrays) != (f"y_{split}" in arrays):
            problems.append(((*FILE_LOC, f"X_{split}"), f"X_{split} and y_{split} come together"))
    for name, array in arrays.items():
        problems += [((*FILE_LOC, name), msg) for msg in _array_problems(name, array)]
    if problems:
        raise BadFile(problems)
    present = [split for split in SPLITS if f"X_{split}" in arrays]
    n_features = arrays["X_train"].shape[1]
    for split in present:
        X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if X.shape[1] != n_features:
            msg = f"has {X.shape[1]} features, X_train has {n_features}"
            problems.append(((*FILE_LOC, f"X_{split}"), msg))
        if y.shape[0] != X.shape[0]:
            msg = f"has {y.shape[0]} labels for the {X.shape[0]} rows of X_{split}"
            problems.append(((*FILE_LOC, f"y_{split}"), msg))
    if problems:
        raise BadFile(problems)
    labels, n_classes = _labels(arrays, present)
    out = {f"X_{split}": _native(arrays[f"X_{split}"]) for split in present}
    out.update({f"y_{split}": labels[split] for split in present})
    missing = tuple(split for split in ("val", "test") if split not in present)
    if missing:
        n_train = out["y_train"].shape[0]
        if n_train - len(missing) * math.ceil(n_train * CARVE_FRACTION) < 1:
            raise bad_file(
                "X_train", f"has too few rows ({n_train}) to carve {' and '.join(missing)}"
            )
        X, y = out["X_train"], out["y_train"]
        parts = carve(n_train, missing)
        for split in missing:  # copied out before the training rows overwrite theirs
            out[f"X_{split}"], out[f"y_{split}"] = X[parts[split]], y[parts[split]]
        out["X_train"] = _keep_rows(X, parts["train"])
        out["y_train"] = _keep_rows(y, parts["train"])
    absent = np.flatnonzero(np.bincount(out["y_train"], minlength=n_classes) == 0)
    if absent.size:
        listed = ", ".join(str(c) for c in absent[:10].tolist())
        raise bad_file(
            "y_train", f"has no rows of class {listed} (labels must be 0..{n_classes - 1})"
        )
    return CleanData(out, n_classes, missing)


def _keep_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`array[rows]` for ascending `rows`, built in place in `array` (whose rows it overwrites).

    A copy of the training rows would need as much memory again as the upload itself. In place,
    row rows[i] moves to i <= rows[i]: moving them a chunk at a time, in order, never overwrites
    a row still to be moved.
    """
    if not array.flags.writeable:
        return np.take(array, rows, axis=0)
    chunk = max(1, BLOCK_VALUES // math.prod(array.shape[1:]))
    for start in range(0, len(rows), chunk):
        moving = rows[start : start + chunk]
        array[start : start + len(moving)] = array[moving]
    return array[: len(rows)]


def _native(array: np.ndarray) -> np.ndarray:
    """In native byte order (a big-endian upload is stored the way workers compute)."""
    if array.dtype.byteorder not in ("=", "|"):
        return array.astype(array.dtype.newbyteorder("="))
    return array
