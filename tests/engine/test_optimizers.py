"""Update rules follow the course's formulas, keep W's dtype and descend; schedules decay."""

import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.losses import softmax_loss_grad
from worker.engine.lr_schedules import make_schedule
from worker.engine.optimizers import make_rule, rule_params

Array = NDArray[Any]


def separable_problem() -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(0)
    centers = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = np.repeat(np.arange(3), 20)
    X = centers[y] + 0.5 * rng.standard_normal((60, 2))
    X = np.hstack([X, np.ones((60, 1))])
    return X, y.astype(np.int64), 0.001 * rng.standard_normal((3, 3))


@pytest.mark.parametrize(
    ("name", "lr"),
    [
        ("sgd", 0.1),
        ("momentum", 0.05),
        ("nesterov", 0.05),
        ("adagrad", 0.5),
        ("rmsprop", 0.01),
        ("adam", 0.05),
    ],
)
def test_every_rule_decreases_the_loss_on_a_separable_problem(name: str, lr: float) -> None:
    X, y, W = separable_problem()
    rule = make_rule(name)
    state = rule.init(W)
    first, _ = softmax_loss_grad(W, X, y, 1e-3)
    for _ in range(50):
        _, grad = softmax_loss_grad(W, X, y, 1e-3)
        W, state = rule.update(grad, state, W, lr)
    final, _ = softmax_loss_grad(W, X, y, 1e-3)
    assert final < 0.25 * first


def start() -> Array:
    return np.array([[1.0, -2.0, 0.5]])


def two_steps(name: str, **params: float) -> tuple[Array, list[Array]]:
    """Apply a rule twice from start() with gradients g1, g2 (float64)."""
    W = start()
    grads = [np.array([[0.3, -0.1, 2.0]]), np.array([[-0.2, 0.4, 1.0]])]
    rule = make_rule(name, **params)
    state = rule.init(W)
    for grad in grads:
        W, state = rule.update(grad, state, W, 0.1)
    return W, grads


def test_sgd_steps_against_the_gradient() -> None:
    W, (g1, g2) = two_steps("sgd")
    np.testing.assert_allclose(W, start() - 0.1 * (g1 + g2))


def test_momentum_is_the_course_form() -> None:
    W, (g1, g2) = two_steps("momentum", momentum=0.8)
    v1 = -0.1 * g1
    v2 = 0.8 * v1 - 0.1 * g2
    np.testing.assert_allclose(W, start() + v1 + v2)


def test_nesterov_is_the_neural_networks_3_form() -> None:
    W, (g1, g2) = two_steps("nesterov", momentum=0.9)
    x, v = start(), np.zeros((1, 3))
    for g in (g1, g2):
        v_prev = v
        v = 0.9 * v - 0.1 * g
        x = x - 0.9 * v_prev + 1.9 * v
    np.testing.assert_allclose(W, x)


def test_adagrad_and_rmsprop_scale_by_the_gradient_history() -> None:
    W, (g1, g2) = two_steps("adagrad")
    x, cache = start(), np.zeros((1, 3))
    for g in (g1, g2):
        cache = cache + g**2
        x = x - 0.1 * g / (np.sqrt(cache) + 1e-8)
    np.testing.assert_allclose(W, x)

    W, (g1, g2) = two_steps("rmsprop", decay_rate=0.9)
    x, cache = start(), np.zeros((1, 3))
    for g in (g1, g2):
        cache = 0.9 * cache + 0.1 * g**2
        x = x - 0.1 * g / (np.sqrt(cache) + 1e-8)
    np.testing.assert_allclose(W, x)


def test_adam_uses_bias_correction_with_its_step_count() -> None:
    W, (g1, g2) = two_steps("adam")
    x, m, v = start(), np.zeros((1, 3)), np.zeros((1, 3))
    for t, g in enumerate((g1, g2), start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        x = x - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(W, x)
    # The first bias-corrected Adam step has size lr in every coordinate.
    W1: Array = np.zeros((1, 3))
    rule = make_rule("adam")
    W1, state = rule.update(g1, rule.init(W1), W1, 0.1)
    np.testing.assert_allclose(np.abs(W1), 0.1, rtol=1e-6)
    assert int(state["t"]) == 1


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_rules_keep_float32_in_weights_and_state(name: str) -> None:
    W = np.ones((2, 3), dtype=np.float32)
    rule = make_rule(name)
    state = rule.init(W)
    W, state = rule.update(np.full((2, 3), 0.5, dtype=np.float32), state, W, 0.01)
    assert W.dtype == np.float32
    assert all(value.dtype == np.float32 for key, value in state.items() if key != "t")


def test_make_rule_checks_names_and_parameters() -> None:
    assert rule_params("adam") == ("beta1", "beta2", "eps")
    assert rule_params("sgd") == ()
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        make_rule("lbfgs")
    with pytest.raises(ValueError, match="does not take beta1"):
        make_rule("momentum", beta1=0.9)
    with pytest.raises(ValueError, match="momentum must be in"):
        make_rule("momentum", momentum=1.5)


def test_schedules_return_the_documented_rates() -> None:
    constant = make_schedule("constant", 0.1)
    assert [constant(t) for t in (0, 10, 1000)] == [0.1, 0.1, 0.1]
    step = make_schedule("step", 0.1, step_size=10)
    assert [step(t) for t in (0, 9, 10, 25)] == [0.1, 0.1, 0.05, 0.025]
    step_gamma = make_schedule("step", 1.0, step_size=2, gamma=0.1)
    assert step_gamma(5) == pytest.approx(1e-2)
    exponential = make_schedule("exponential", 0.1, k=0.5)
    assert exponential(0) == 0.1
    assert exponential(4) == pytest.approx(0.1 * math.exp(-2.0))
    inverse = make_schedule("inverse_time", 0.1, k=0.5)
    assert inverse(0) == 0.1
    assert inverse(2) == pytest.approx(0.05)


def test_schedules_reject_unknown_types_and_parameters() -> None:
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        make_schedule("cosine", 0.1)
    with pytest.raises(ValueError, match="needs 'step_size'"):
        make_schedule("step", 0.1)
    with pytest.raises(ValueError, match="does not take gamma"):
        make_schedule("exponential", 0.1, k=0.1, gamma=0.5)
