"""Read an `.npz` upload into its arrays, priced before anything is decompressed.

Nothing a user sent is ever unpickled: members whose headers declare Python objects are refused,
and the rest are read with `allow_pickle=False`. ingest.clean then checks the arrays and carves
the missing splits, as for a CSV upload.
"""

from __future__ import annotations

import math
import zipfile
from typing import IO

import numpy as np

from service.datasets.ingest import (
    FILE_LOC,
    BadFile,
    Problem,
    TooLarge,
    bad_file,
    check_working_size,
)
from service.datasets.storage import ARRAY_NAMES


def read_npz(stream: IO[bytes], max_bytes: int) -> dict[str, np.ndarray]:
    """The archive's arrays, checked for size, from the archive's directory and the arrays'
    headers, before anything is decompressed."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise bad_file(None, f"not a valid .npz archive: {exc}") from None
    with archive:
        _check_members(archive, max_bytes)
    stream.seek(0)
    arrays: dict[str, np.ndarray] = {}
    problems: list[Problem] = []
    with np.load(stream, allow_pickle=False) as loaded:
        for name in loaded.files:
            try:
                arrays[name] = np.asarray(loaded[name])
            except Exception as exc:  # object arrays were refused from their headers
                problems.append(((*FILE_LOC, name), f"cannot be read as a numeric array: {exc}"))
    if problems:
        raise BadFile(problems)
    return arrays


def _check_members(archive: zipfile.ZipFile, max_bytes: int) -> None:
    """BadFile unless the members are distinct arrays of ARRAY_NAMES, none of Python objects;
    TooLarge if they, or reading them (`check_working_size`), would take more than max_bytes."""
    members = archive.infolist()
    problems: list[Problem] = []
    seen: set[str] = set()
    for member in members:
        if not member.filename.endswith(".npy") or member.filename[:-4] not in ARRAY_NAMES:
            expected = ", ".join(ARRAY_NAMES)
            problems.append(((*FILE_LOC, member.filename), f"unexpected; expected {expected}"))
        elif member.filename in seen:
            problems.append(((*FILE_LOC, member.filename[:-4]), "appears more than once"))
        seen.add(member.filename)
    if problems:
        raise BadFile(problems)
    if sum(member.file_size for member in members) > max_bytes:
        raise TooLarge(f"the arrays take more than {max_bytes} bytes uncompressed")
    shapes = {m.filename[:-4]: _declared(archive, m) for m in members}
    feature_bytes = sum(math.prod(shape) * size for name, (shape, size) in shapes.items()
                        if name.startswith("X"))  # fmt: skip
    rows = sum(shape[0] if shape else 1 for name, (shape, _) in shapes.items()
               if name.startswith("y"))  # fmt: skip
    check_working_size(feature_bytes, rows, max_bytes)


def _declared(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[tuple[int, ...], int]:
    """A member's shape and item size, from its .npy header alone (nothing else is read)."""
    name = member.filename[:-4]
    try:
        with archive.open(member) as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise bad_file(name, f"is not a readable .npy array: {exc}") from None
    if dtype.hasobject:
        raise bad_file(name, "holds Python objects (a pickled object array): only numeric arrays")
    return tuple(shape), dtype.itemsize
