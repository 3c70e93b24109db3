"""Checkpoints as bytes: named arrays plus JSON metadata in one .npz (read with allow_pickle=False).

The metadata carries the random generator's full state, so a resumed run draws exactly the numbers
an uninterrupted one would have.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

META = "__meta__"


def pack(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    encoded = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **{**arrays, META: encoded})
    return buffer.getvalue()


def unpack(payload: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name != META}
        meta = json.loads(archive[META].tobytes().decode())
    if not isinstance(meta, dict):
        raise ValueError("checkpoint metadata is not an object")
    return arrays, meta


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    state = rng.bit_generator.state
    return dict(state)


def restore_generator(state: Mapping[str, Any]) -> np.random.Generator:
    name = state["bit_generator"]
    bit_generator_type = getattr(np.random, name, None)
    if bit_generator_type is None or not isinstance(bit_generator_type, type):
        raise ValueError(f"unknown bit generator {name!r} in checkpoint")
    bit_generator = bit_generator_type()
    bit_generator.state = dict(state)
    return np.random.Generator(bit_generator)
