"""Built-in data sets: shapes, dtypes, classes, seeded generation and clear errors."""

import sys
from pathlib import Path

import numpy as np
import pytest

from worker.engine.datasets import (
    BUILTIN_INFO,
    DIGITS_FILE,
    DatasetUnavailable,
    builtin_available,
    load_builtin,
)


def test_toy_is_the_notes_three_points_in_every_split() -> None:
    toy = load_builtin("toy")
    for X, y in ((toy.X_train, toy.y_train), (toy.X_val, toy.y_val), (toy.X_test, toy.y_test)):
        np.testing.assert_array_equal(X, [[-1.0], [0.0], [1.0]])
        np.testing.assert_array_equal(y, [0, 1, 2])
        assert X.dtype == np.float64
        assert y.dtype == np.int64
    assert (toy.n_classes, toy.n_features, toy.image_shape) == (3, 1, None)


@pytest.mark.parametrize("name", ["toy", "blobs", "spiral", "digits"])
def test_default_sizes_match_builtin_info(name: str) -> None:
    info = BUILTIN_INFO[name]
    data = load_builtin(name)
    assert (data.n_train, data.n_val, data.n_test) == (info.n_train, info.n_val, info.n_test)
    assert (data.n_features, data.n_classes) == (info.n_features, info.n_classes)
    assert len(data.class_names) == data.n_classes
    splits = ((data.X_train, data.y_train), (data.X_val, data.y_val), (data.X_test, data.y_test))
    for X, y in splits:
        assert X.dtype == np.float64
        assert y.dtype == np.int64
        assert X.shape == (len(y), info.n_features)
        assert set(np.unique(y)) <= set(range(info.n_classes))


def test_blobs_are_seeded_and_take_options() -> None:
    a = load_builtin("blobs", options={"seed": 3, "n_features": 5, "n_classes": 4})
    b = load_builtin("blobs", options={"seed": 3, "n_features": 5, "n_classes": 4})
    c = load_builtin("blobs", options={"seed": 4, "n_features": 5, "n_classes": 4})
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)
    assert a.X_train.shape == (360, 5)
    np.testing.assert_array_equal(np.unique(a.y_train), [0, 1, 2, 3])


def test_spiral_arms_lie_inside_the_unit_disc() -> None:
    spiral = load_builtin("spiral", n_train=150, n_val=0, n_test=0, options={"noise": 0.0})
    radius = np.hypot(spiral.X_train[:, 0], spiral.X_train[:, 1])
    assert radius.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(np.bincount(spiral.y_train), [50, 50, 50])


def test_digits_split_is_a_fixed_shuffle() -> None:
    digits = load_builtin("digits")
    again = load_builtin("digits", n_train=100, n_val=10, n_test=5)
    assert digits.image_shape == (8, 8)
    np.testing.assert_array_equal(again.X_train, digits.X_train[:100])
    np.testing.assert_array_equal(again.y_val, digits.y_train[100:110])
    assert digits.X_train.max() == 16.0
    np.testing.assert_array_equal(np.unique(digits.y_train), np.arange(10))


def test_the_shipped_digits_are_scikit_learns() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    expected = sklearn_datasets.load_digits()
    with np.load(DIGITS_FILE, allow_pickle=False) as shipped:
        X, y = shipped["X"], shipped["y"]

    assert (X.dtype, X.shape, y.dtype, y.shape) == (np.uint8, (1797, 64), np.uint8, (1797,))
    np.testing.assert_array_equal(X, expected.data)
    np.testing.assert_array_equal(y, expected.target)


def test_digits_are_scikit_learns_in_the_fixed_shuffle_split_in_blocks() -> None:
    """What the loader returned when it read scikit-learn itself: the same rows, dtypes, order."""
    expected = pytest.importorskip("sklearn.datasets").load_digits()
    order = np.random.default_rng(0).permutation(1797)
    X, y = expected.data.astype(np.float64)[order], expected.target.astype(np.int64)[order]

    digits = load_builtin("digits")

    splits = (digits.X_train, digits.y_train, digits.X_val, digits.y_val, digits.X_test,
              digits.y_test)  # fmt: skip
    wanted = (X[:1297], y[:1297], X[1297:1547], y[1297:1547], X[1547:], y[1547:])
    for got, want in zip(splits, wanted, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert digits.class_names == tuple(str(name) for name in expected.target_names)
    assert (digits.n_classes, digits.image_shape) == (10, (8, 8))


def test_digits_need_no_scikit_learn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # any import of it now fails
    with pytest.raises(ImportError):
        import sklearn.datasets  # noqa: F401

    digits = load_builtin("digits")

    assert builtin_available("digits")
    assert (digits.n_train, digits.n_val, digits.n_test) == (1_297, 250, 250)
    assert digits.X_train.dtype == np.float64
    assert digits.y_train.dtype == np.int64
    np.testing.assert_array_equal(np.unique(digits.y_train), np.arange(10))


@pytest.mark.parametrize(
    ("name", "sizes", "message"),
    [
        ("digits", {"n_train": 1700, "n_val": 100}, "digits has 1797 rows"),
        ("toy", {"n_train": 4}, "toy has 3 points"),
        ("cifar10", {"n_train": 49_500, "n_val": 1_000}, "cifar10 has 50000 training rows"),
        ("blobs", {"n_train": 0}, "n_train must be an integer >= 1"),
    ],
)
def test_asking_for_more_rows_than_exist_is_a_value_error(
    name: str, sizes: dict[str, int], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        load_builtin(name, cifar10_dir=tmp_path, **sizes)  # type: ignore[arg-type]


def test_unknown_names_and_options_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown built-in data set 'mnist'"):
        load_builtin("mnist")
    with pytest.raises(ValueError, match="spiral does not take cluster_std"):
        load_builtin("spiral", options={"cluster_std": 1.0})
    with pytest.raises(ValueError, match="toy does not take seed"):
        load_builtin("toy", options={"seed": 1})


def test_cifar10_without_batches_is_unavailable_and_says_where_to_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DatasetUnavailable, match="DESCENT_CIFAR10_DIR"):
        load_builtin("cifar10", cifar10_dir=tmp_path)
    monkeypatch.delenv("DESCENT_CIFAR10_DIR", raising=False)
    with pytest.raises(DatasetUnavailable, match="DESCENT_CIFAR10_DIR"):
        load_builtin("cifar10")
    assert not builtin_available("cifar10", cifar10_dir=tmp_path)
    assert builtin_available("toy")
    assert builtin_available("digits")
