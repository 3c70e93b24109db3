"""The step-size sweep task: one step along -grad per step size, on the toy set and beyond."""

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.datasets import load_builtin
from worker.engine.losses import make_loss
from worker.engine.preprocess import Preprocessor
from worker.engine.stepsweep import step_size_sweep

Array = NDArray[Any]
REAL_CIFAR10 = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar-10-batches-py"


def toy(dtype: str = "float64") -> tuple[Array, Array]:
    dataset = load_builtin("toy")
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    return pre.transform(dataset.X_train, dtype), dataset.y_train


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_toy_sweep_has_the_notes_ten_step_sizes_and_small_steps_lower_the_loss(loss: str) -> None:
    X, y = toy()
    result = step_size_sweep(X, y, 3, loss=loss)
    assert [step.step_size for step in result.steps] == [10.0**k for k in range(-10, 0)]
    # W = 0.001 rand is almost 0: the SVM loss is about C - 1, softmax about ln C.
    expected = 2.0 if loss == "svm" else math.log(3.0)
    assert result.loss_original == pytest.approx(expected, abs=0.01)
    losses = [step.loss for step in result.steps]
    assert all(isinstance(value, float) for value in losses)
    assert all(b <= a for a, b in zip([result.loss_original, *losses], losses, strict=False))
    assert losses[-1] < result.loss_original


@pytest.mark.parametrize("reg", [0.0, 0.7])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_each_loss_is_the_loss_after_that_step(loss: str, reg: float) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 4, 40).astype(np.int64)
    W = 0.2 * rng.standard_normal((4, 5))
    loss_fn = make_loss(loss, reg)
    result = step_size_sweep(X, y, 4, loss=loss, reg=reg, W=W, exponents=[-3, -1, 0, 1])
    original, grad = loss_fn.loss_grad(W, X, y)
    assert result.loss_original == pytest.approx(original, rel=1e-12)
    for step in result.steps:
        assert step.loss == pytest.approx(loss_fn.loss(W - step.step_size * grad, X, y), rel=1e-10)


def test_the_start_is_init_scale_times_uniform_from_the_seed() -> None:
    X, y = toy()
    W = 0.001 * np.random.default_rng(7).random((3, 2))
    assert step_size_sweep(X, y, 3, seed=7) == step_size_sweep(X, y, 3, W=W)
    assert step_size_sweep(X, y, 3, seed=7) != step_size_sweep(X, y, 3, seed=8)


def test_float32_data_and_overflowing_steps_give_plain_floats() -> None:
    X, y = toy("float32")
    result = step_size_sweep(X, y, 3, loss="softmax", exponents=[-2, 300])
    assert math.isfinite(result.steps[0].loss)
    assert isinstance(result.steps[1].loss, float)  # huge or inf: the caller maps inf/NaN to None
    with pytest.raises(ValueError, match="exponents"):
        step_size_sweep(X, y, 3, exponents=[])
    with pytest.raises(ValueError, match="shape"):
        step_size_sweep(X, y, 3, W=np.zeros((3, 3), dtype=np.float32))


@pytest.mark.cifar
def test_real_cifar10_sweep_has_the_notes_shape() -> None:
    """Falls to a minimum near 1e-6, then grows about 10x per decade (the note's table)."""
    directory = Path(os.environ.get("DESCENT_CIFAR10_DIR") or REAL_CIFAR10)
    if not (directory / "data_batch_5").is_file():
        pytest.skip(f"real CIFAR-10 batches not found in {directory} (set DESCENT_CIFAR10_DIR)")
    dataset = load_builtin("cifar10", cifar10_dir=directory, n_val=0, n_test=0)
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    X = pre.transform(dataset.X_train, "float32")
    result = step_size_sweep(X, dataset.y_train, 10)
    losses = np.array([step.loss for step in result.steps])
    assert 1e-7 <= result.steps[int(np.argmin(losses))].step_size <= 1e-5
    assert losses.min() < result.loss_original
    growth = losses[-3:] / losses[-4:-1]
    assert np.all((growth > 5.0) & (growth < 15.0))


class Stop(Exception):
    pass


def test_progress_counts_the_step_sizes_and_can_stop_the_sweep() -> None:
    X, y = toy()
    seen: list[int] = []
    step_size_sweep(X, y, 3, exponents=[-6, -5, -4], progress=seen.append)
    assert seen == [1, 2, 3]

    def stop_after_two(done: int) -> None:
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        step_size_sweep(X, y, 3, exponents=[-6, -5, -4, -3], progress=stop_after_two)
