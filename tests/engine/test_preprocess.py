"""Preprocessing statistics come from the training rows only; the bias column is appended."""

import numpy as np
import pytest

from worker.engine.preprocess import Preprocessor


def test_centering_uses_the_training_mean_and_appends_ones() -> None:
    X_train = np.array([[0, 10], [2, 30]], dtype=np.uint8)
    X_other = np.array([[100, 100]], dtype=np.uint8)
    pre = Preprocessor.fit(X_train, center=True, standardize=False, bias=True)
    np.testing.assert_array_equal(pre.mean, [1.0, 20.0])
    assert pre.std is None
    out = pre.transform(X_other, np.float32)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, [[99.0, 80.0, 1.0]])
    assert (pre.n_features_in, pre.n_features_out) == (2, 3)


def test_standardizing_divides_by_the_training_std_and_keeps_constant_features() -> None:
    rng = np.random.default_rng(0)
    X_train = np.column_stack([rng.normal(5.0, 3.0, 200), np.full(200, 7.0)])
    pre = Preprocessor.fit(X_train, center=True, standardize=True, bias=False)
    assert pre.std is not None
    np.testing.assert_allclose(pre.std, [X_train[:, 0].std(), 1.0])
    out = pre.transform(X_train, np.float64)
    np.testing.assert_allclose(out.mean(axis=0), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[:, 0].std(), 1.0)
    assert out.shape == (200, 2)


def test_blockwise_std_matches_numpy_on_more_rows_than_one_block() -> None:
    rng = np.random.default_rng(1)
    X_train = rng.integers(0, 256, size=(9000, 3), dtype=np.uint8)
    pre = Preprocessor.fit(X_train, center=False, standardize=True, bias=True)
    assert pre.std is not None
    np.testing.assert_allclose(pre.std, X_train.astype(np.float64).std(axis=0), rtol=1e-12)
    assert pre.mean is None
    out = pre.transform(X_train[:2], np.float64)
    np.testing.assert_allclose(out[:, :3], X_train[:2] / pre.std)


def test_identity_preprocessor_copies_into_the_requested_dtype() -> None:
    X = np.array([[1.5, -2.0]])
    pre = Preprocessor.fit(X, center=False, standardize=False, bias=False)
    out = pre.transform(X, np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, X.astype(np.float32))
    out[0, 0] = 0.0
    assert X[0, 0] == 1.5


def test_a_stored_preprocessor_can_be_rebuilt_from_its_arrays() -> None:
    pre = Preprocessor(mean=np.array([1.0, 2.0]), std=None, bias=True)
    np.testing.assert_array_equal(pre.transform(np.array([[1, 2]]), np.float64), [[0, 0, 1]])


def test_transform_rejects_the_wrong_width() -> None:
    pre = Preprocessor.fit(np.zeros((3, 4)), center=True, standardize=False, bias=True)
    with pytest.raises(ValueError, match=r"expected X of shape \(N, 4\)"):
        pre.transform(np.zeros((2, 5)), np.float32)
