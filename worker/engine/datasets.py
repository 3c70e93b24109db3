"""Built-in data sets (cifar10, digits, toy, blobs, spiral) split into train / val / test.

Features are raw: uint8 (N, 3072) for CIFAR-10, float64 (N, D) otherwise; labels int64 (N,).
Preprocessing (centring, bias column) is preprocess.py's job.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from worker.engine import cifar10, synthetic
from worker.engine.arrays import AnyArray, IntArray

CIFAR10_ENV = "DESCENT_CIFAR10_DIR"
DIGITS_SEED = 0
# scikit-learn's digits, shipped with the package so the built-in needs no test-only dependency;
# data/README.md names its source and licence.
DIGITS_FILE = Path(__file__).resolve().parent / "data" / "digits.npz"
DIGITS_CLASS_NAMES = tuple(str(digit) for digit in range(10))


class DatasetUnavailable(Exception):
    """A built-in data set whose files are not on this machine; the message says why."""


@dataclass(frozen=True)
class Dataset:
    name: str
    X_train: AnyArray
    y_train: IntArray
    X_val: AnyArray
    y_val: IntArray
    X_test: AnyArray
    y_test: IntArray
    n_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...] | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.X_val.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])


@dataclass(frozen=True)
class BuiltinInfo:
    """Default split sizes and shape of a built-in (blobs/spiral: with their default options)."""

    name: str
    n_train: int
    n_val: int
    n_test: int
    n_features: int
    n_classes: int
    description: str
    byte_values: bool = False  # features loaded as uint8 (prepared as worker.engine.byte_rows)


def _info(
    name: str,
    sizes: tuple[int, int, int],
    n_features: int,
    n_classes: int,
    text: str,
    byte_values: bool = False,
) -> BuiltinInfo:
    n_train, n_val, n_test = sizes
    return BuiltinInfo(name, n_train, n_val, n_test, n_features, n_classes, text, byte_values)


BUILTIN_INFO: Mapping[str, BuiltinInfo] = MappingProxyType(
    {
        info.name: info
        for info in (
            _info(
                "cifar10", (49_000, 1_000, 1_000), 3072, 10,
                "CIFAR-10 32x32 colour images, raw pixels; the course split", byte_values=True,
            ),
            _info(
                "digits", (1_297, 250, 250), 64, 10,
                "scikit-learn's 8x8 handwritten digits (1,797 images), fixed shuffle (seed 0)",
            ),
            _info(
                "toy", (3, 3, 3), 1, 3,
                "The note's three 1-D points x = -1, 0, 1 of classes 0, 1, 2 (every split)",
            ),
            _info(
                "blobs", (360, 120, 120), 2, 3,
                "Seeded Gaussian blobs; options n_features, n_classes, cluster_std, seed",
            ),
            _info(
                "spiral", (180, 60, 60), 2, 3,
                "The CS231n spiral, not linearly separable; options n_classes, noise, seed",
            ),
        )
    }
)  # fmt: skip

DEFAULT_OPTIONS: Mapping[str, Mapping[str, float | int]] = MappingProxyType(
    {
        "cifar10": {},
        "digits": {},
        "toy": {},
        "blobs": {"n_features": 2, "n_classes": 3, "cluster_std": 1.0, "seed": 0},
        "spiral": {"n_classes": 3, "noise": 0.2, "seed": 0},
    }
)


def _cifar10_root(cifar10_dir: str | os.PathLike[str] | None) -> Path:
    location = cifar10_dir if cifar10_dir is not None else os.environ.get(CIFAR10_ENV)
    if not location:
        raise DatasetUnavailable(
            f"CIFAR-10 location not configured: set {CIFAR10_ENV} to the cifar-10-batches-py dir"
        )
    root = Path(location)
    missing = cifar10.missing_files(root)
    if missing:
        raise DatasetUnavailable(
            f"CIFAR-10 batches not found in {root} (missing {', '.join(missing)}): "
            f"set {CIFAR10_ENV}"
        )
    return root


def builtin_available(name: str, *, cifar10_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether `load_builtin(name)` can find its data, without loading it."""
    if name not in BUILTIN_INFO:
        raise ValueError(f"unknown built-in data set {name!r}")
    if name == "cifar10":
        try:
            _cifar10_root(cifar10_dir)
        except DatasetUnavailable:
            return False
    return True


def _options(name: str, options: Mapping[str, float | int] | None) -> dict[str, float]:
    merged = {key: float(value) for key, value in DEFAULT_OPTIONS[name].items()}
    unknown = sorted(set(options or {}) - set(merged))
    if unknown:
        accepted = ", ".join(merged) or "none"
        raise ValueError(f"{name} does not take {', '.join(unknown)} (accepted: {accepted})")
    merged.update({key: float(value) for key, value in (options or {}).items()})
    return merged


def _whole(key: str, value: float, minimum: int) -> int:
    if value != int(value) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}, got {value}")
    return int(value)


def _split(name: str, X: AnyArray, y: IntArray, sizes: tuple[int, int, int]) -> tuple[
    AnyArray, IntArray, AnyArray, IntArray, AnyArray, IntArray
]:  # fmt: skip
    """Consecutive train / val / test blocks of (X, y) in row order."""
    n_train, n_val, n_test = sizes
    if n_train + n_val + n_test > X.shape[0]:
        raise ValueError(
            f"{name} has {X.shape[0]} rows; n_train + n_val + n_test = "
            f"{n_train + n_val + n_test} asked"
        )
    a, b, c = n_train, n_train + n_val, n_train + n_val + n_test
    return X[:a], y[:a], X[a:b], y[a:b], X[b:c], y[b:c]


def _load_cifar10(directory: str | os.PathLike[str] | None, sizes: tuple[int, int, int]) -> Dataset:
    n_train, n_val, n_test = sizes
    if n_train + n_val > 50_000:
        raise ValueError(f"cifar10 has 50000 training rows; n_train + n_val = {n_train + n_val}")
    root = _cifar10_root(directory)
    X, y = cifar10.read_rows([root / batch for batch in cifar10.TRAIN_BATCHES], n_train + n_val)
    X_test, y_test = cifar10.read_rows([root / cifar10.TEST_BATCH], n_test)
    return Dataset(
        "cifar10", X[:n_train], y[:n_train], X[n_train:], y[n_train:], X_test, y_test,
        n_classes=10, class_names=cifar10.CLASS_NAMES, image_shape=cifar10.IMAGE_SHAPE,
    )  # fmt: skip


def _load_digits(sizes: tuple[int, int, int]) -> Dataset:
    # X uint8 (1797, 64) in 0..16 and y uint8, in scikit-learn's row order.
    with np.load(DIGITS_FILE, allow_pickle=False) as archive:
        pixels, labels = archive["X"], archive["y"]
    order = np.random.default_rng(DIGITS_SEED).permutation(len(labels))
    X = np.asarray(pixels, dtype=np.float64)[order]
    y = np.asarray(labels, dtype=np.int64)[order]
    return Dataset("digits", *_split("digits", X, y, sizes), 10, DIGITS_CLASS_NAMES, (8, 8))


def _load_generated(name: str, sizes: tuple[int, int, int], opts: dict[str, float]) -> Dataset:
    n_rows = sum(sizes)
    n_classes = _whole("n_classes", opts["n_classes"], 2)
    seed = _whole("seed", opts["seed"], 0)
    if name == "blobs":
        if not opts["cluster_std"] >= 0.0:
            raise ValueError(f"cluster_std must be >= 0, got {opts['cluster_std']}")
        n_features = _whole("n_features", opts["n_features"], 1)
        X, y = synthetic.blobs(
            n_rows, n_features=n_features, n_classes=n_classes,
            cluster_std=opts["cluster_std"], seed=seed,
        )  # fmt: skip
    else:
        X, y = synthetic.spiral(n_rows, n_classes=n_classes, noise=opts["noise"], seed=seed)
    names = tuple(f"class {k}" for k in range(n_classes))
    return Dataset(name, *_split(name, X, y, sizes), n_classes, names)


def _load_toy(sizes: tuple[int, int, int]) -> Dataset:
    X, y = synthetic.toy()
    if max(sizes) > X.shape[0]:
        raise ValueError(f"toy has {X.shape[0]} points; each split can hold at most all of them")
    (a, b, c), names = sizes, ("class 0", "class 1", "class 2")
    return Dataset("toy", X[:a], y[:a], X[:b], y[:b], X[:c], y[:c], 3, names)


def load_builtin(
    name: str,
    *,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    cifar10_dir: str | os.PathLike[str] | None = None,
    options: Mapping[str, float | int] | None = None,
) -> Dataset:
    """Load built-in `name` with the given split sizes (defaults from BUILTIN_INFO).

    cifar10 reads `cifar10_dir`, else $DESCENT_CIFAR10_DIR; train = first n_train training rows in
    batch order, val = the next n_val, test = the first n_test test rows. digits: one fixed
    shuffle, then consecutive train / val / test blocks. blobs and spiral generate
    n_train + n_val + n_test rows from their seed, then split them the same way.
    Raises DatasetUnavailable when the data is not on this machine and ValueError for bad sizes
    or options.
    """
    info = BUILTIN_INFO.get(name)
    if info is None:
        raise ValueError(f"unknown built-in data set {name!r}: expected one of "
                         f"{', '.join(BUILTIN_INFO)}")  # fmt: skip
    sizes = (
        _whole("n_train", info.n_train if n_train is None else n_train, 1),
        _whole("n_val", info.n_val if n_val is None else n_val, 0),
        _whole("n_test", info.n_test if n_test is None else n_test, 0),
    )
    opts = _options(name, options)
    loaders: dict[str, Callable[[], Dataset]] = {
        "cifar10": lambda: _load_cifar10(cifar10_dir, sizes),
        "digits": lambda: _load_digits(sizes),
        "toy": lambda: _load_toy(sizes),
        "blobs": lambda: _load_generated("blobs", sizes, opts),
        "spiral": lambda: _load_generated("spiral", sizes, opts),
    }
    return loaders[name]()
