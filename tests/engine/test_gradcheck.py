"""The gradient-check task: passes for correct gradients, flags wrong ones, reports kinks."""

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.datasets import load_builtin
from worker.engine.gradcheck import GradientCheckResult, gradient_check
from worker.engine.losses import make_loss
from worker.engine.nonfinite import NonFinite
from worker.engine.preprocess import Preprocessor

Array = NDArray[Any]


def problem(seed: int = 0, n: int = 50, d: int = 6, c: int = 4) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, -1] = 1.0
    return X, rng.integers(0, c, n).astype(np.int64)


def toy() -> tuple[Array, Array]:
    dataset = load_builtin("toy")
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    return pre.transform(dataset.X_train, "float64"), dataset.y_train


@pytest.mark.parametrize("num_checks", [10, None])
@pytest.mark.parametrize("reg", [0.0, 0.5])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_correct_gradients_pass(loss: str, reg: float, num_checks: int | None) -> None:
    X, y = problem()
    result = gradient_check(X, y, 4, loss=loss, reg=reg, num_checks=num_checks, init_scale=0.5)
    assert result.passed
    assert result.max_relative_error < 1e-7
    assert len(result.checks) == (10 if num_checks else 4 * 6)
    assert result.threshold == 1e-7
    assert result.kink_threshold == (1e-4 if loss == "svm" else None)
    assert result.kink_entries == []


def test_checks_are_distinct_entries_including_the_bias_column() -> None:
    X, y = problem(d=30)
    for seed in range(20):
        result = gradient_check(X, y, 4, num_checks=7, seed=seed)
        indices = [check.index for check in result.checks]
        assert len(set(indices)) == 7
        assert any(d == 29 for _, d in indices)
        assert all(0 <= c < 4 and 0 <= d < 30 for c, d in indices)
    assert gradient_check(X, y, 4, seed=3) == gradient_check(X, y, 4, seed=3)


def test_each_check_reports_the_analytic_and_numerical_values_at_the_given_W() -> None:
    X, y = problem(1)
    W = 0.3 * np.random.default_rng(9).standard_normal((4, 6))
    result = gradient_check(X, y, 4, loss="softmax", reg=0.1, W=W, num_checks=None)
    _, grad = make_loss("softmax", 0.1).loss_grad(W, X, y)
    for check in result.checks:
        c, d = check.index
        assert check.analytic == grad[c, d]
        assert check.numerical == pytest.approx(grad[c, d], rel=1e-7)
        scale = max(abs(check.analytic), abs(check.numerical))
        assert check.relative_error == pytest.approx(abs(check.analytic - check.numerical) / scale)
    assert result.max_relative_error == max(check.relative_error for check in result.checks)


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_a_wrong_gradient_is_flagged(loss: str) -> None:
    X, y = problem(2)
    loss_fn = make_loss(loss, 0.1)

    def off_by_one_percent(W: Array, X: Array, y: Array) -> tuple[float, Array]:
        value, grad = loss_fn.loss_grad(W, X, y)
        return value, 1.01 * grad

    def forgets_the_regularizer(W: Array, X: Array, y: Array) -> tuple[float, Array]:
        value, grad = loss_fn.loss_grad(W, X, y)
        return value, grad - 0.2 * W

    for wrong in (off_by_one_percent, forgets_the_regularizer):
        result = gradient_check(X, y, 4, loss=loss, reg=0.1, init_scale=0.5, analytic=wrong)
        assert not result.passed
        assert result.max_relative_error > 1e-3


def test_svm_steps_across_a_kink_are_reported() -> None:
    # Class 0 scores 1 everywhere: the toy point of class 0 has both its margins exactly at the
    # kink (0 - 1 + 1 = 0), so every entry's +-h step changes the side of a hinge.
    X, y = toy()
    W = np.zeros((3, 2))
    W[0, 1] = 1.0
    result: GradientCheckResult = gradient_check(X, y, 3, W=W, num_checks=None)
    assert sorted(result.kink_entries) == [(c, d) for c in range(3) for d in range(2)]
    assert all(check.crosses_kink for check in result.checks)
    assert not result.passed  # at the kink the difference averages two slopes: error ~ 0.5
    far = gradient_check(X, y, 3, W=0.01 * W, num_checks=None)
    assert far.kink_entries == [] and far.passed


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_toy_check_has_one_entry_per_parameter(loss: str) -> None:
    X, y = toy()
    result = gradient_check(X, y, 3, loss=loss, num_checks=None, init_scale=0.5)
    assert [check.index for check in result.checks] == [(c, d) for c in range(3) for d in range(2)]
    assert result.passed
    assert all(np.isfinite([check.analytic, check.numerical]).all() for check in result.checks)
    assert result.h == 1e-5


def test_bad_arguments_are_rejected() -> None:
    X, y = problem()
    with pytest.raises(ValueError, match="num_checks"):
        gradient_check(X, y, 4, num_checks=0)
    with pytest.raises(ValueError, match="shape"):
        gradient_check(X, y, 4, W=np.zeros((3, 6)))
    with pytest.raises(ValueError, match="h must be positive"):
        gradient_check(X, y, 4, h=0.0)


@pytest.mark.parametrize(
    ("loss", "reg", "delta", "init_scale"),
    [("svm", 0.0, 1e308, 0.001), ("softmax", 1e308, 1.0, 10.0)],
)
def test_a_loss_that_overflows_is_non_finite_not_a_pass(
    loss: str, reg: float, delta: float, init_scale: float
) -> None:
    """Its margins (and so its SVM gradient) can stay finite while the summed loss is inf."""
    X, y = problem()
    with pytest.raises(NonFinite, match="the loss is inf"):
        gradient_check(X, y, 4, loss=loss, reg=reg, delta=delta, init_scale=init_scale)


class Stop(Exception):
    pass


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_progress_rises_to_the_whole_pass_and_can_stop_the_check(
    loss: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.engine.numerical as numerical

    monkeypatch.setattr(numerical, "_BLOCK_ELEMENTS", 60)  # blocks of 10 rows of 6 features
    X, y = problem(n=200)
    shares: list[float] = []
    gradient_check(X, y, 4, loss=loss, init_scale=1.0, progress=shares.append)
    assert len(shares) > 3
    assert shares == sorted(shares) and shares[0] > 0 and shares[-1] == 1.0

    def stop_midway(share: float) -> None:
        if share > 0.5:
            raise Stop

    with pytest.raises(Stop):
        gradient_check(X, y, 4, loss=loss, init_scale=1.0, progress=stop_midway)
