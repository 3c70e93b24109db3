"""Runs trained as one population follow the path each takes alone (worker.engine.train.run), up to
the rounding of the wider products."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from worker.engine.byte_rows import as_float
from worker.engine.losses import make_loss
from worker.engine.population import (
    Population,
    check_configs,
    from_states,
    run_population,
)
from worker.engine.population_loss import data_losses
from worker.engine.train import Chunk, Diverged, TrainData, TrainState, init_state, run
from worker.engine.train_config import TrainConfig
from worker.population_job import taken

N, D, C = 400, 30, 5
RTOL = 1e-4  # float32 products of other widths round differently


@pytest.fixture(scope="module")
def data() -> TrainData:
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((C, D)) * 2
    y = rng.integers(0, C, N + 100)
    X = (centers[y] + rng.standard_normal((N + 100, D))).astype(np.float32)
    X[:, -1] = 1.0  # the bias column
    return TrainData(X[:N], y[:N], X[N:], y[N:])


def configs(**common: Any) -> list[TrainConfig]:
    base: dict[str, Any] = {"iterations": 200, "batch_size": 40, "eval_every": 50,
                            "eval_sample": 60} | common  # fmt: skip
    return [TrainConfig(**base, learning_rate=lr, reg=reg)
            for lr in (1e-3, 1e-2) for reg in (0.0, 0.3)]  # fmt: skip


def alone(config: TrainConfig, data: TrainData) -> tuple[TrainState, list[Chunk]]:
    state = init_state(config, C, D)
    return state, list(run(state, config, data, chunk_steps=50))


def together(cfgs: list[TrainConfig], data: TrainData) -> tuple[Population, list[Any]]:
    population = from_states(cfgs, [init_state(config, C, D) for config in cfgs])
    return population, list(run_population(population, data, chunk_steps=50))


@pytest.mark.parametrize(
    "common",
    [
        {"loss": "svm"},
        {"loss": "softmax"},
        {"loss": "svm", "optimizer": "momentum", "optimizer_params": {"momentum": 0.9}},
        {"loss": "softmax", "optimizer": "adam"},
        {"loss": "svm", "lr_schedule": {"type": "step", "step_size": 50, "gamma": 0.5}},
        {"loss": "softmax", "sampling": "epoch"},
        {"loss": "svm", "batch_size": None, "iterations": 60},
        {"loss": "softmax", "dtype": "float64"},
    ],
    ids=lambda common: "-".join(str(v) for v in common.values()),
)
def test_each_member_follows_its_run_alone(data: TrainData, common: dict[str, Any]) -> None:
    cfgs = configs(**common)
    if cfgs[0].dtype == "float64":
        data = TrainData(as_float(data.X_train).astype(np.float64), data.y_train,
                         as_float(data.X_val).astype(np.float64), data.y_val)  # fmt: skip
    population, chunks = together(cfgs, data)
    assert chunks[-1].done and [len(chunk.members) for chunk in chunks] == [4] * len(chunks)
    for member, config in enumerate(cfgs):
        state, solo = alone(config, data)
        own = [chunk.of(member) for chunk in chunks]
        assert population.member_state(member).step == state.step == config.iterations
        W = population.member_state(member).W
        assert W.dtype == state.W.dtype and W.shape == state.W.shape
        np.testing.assert_allclose(W, state.W, rtol=RTOL, atol=RTOL * np.abs(state.W).max())
        steps = np.concatenate([c.steps for c in own])
        assert steps.tolist() == np.concatenate([c.steps for c in solo]).tolist()
        losses = np.concatenate([c.losses for c in solo])
        np.testing.assert_allclose(np.concatenate([c.losses for c in own]), losses, rtol=RTOL,
                                   atol=RTOL * np.abs(losses).max())  # fmt: skip
        np.testing.assert_array_equal(np.concatenate([c.learning_rates for c in own]),
                                      np.concatenate([c.learning_rates for c in solo]))  # fmt: skip
        assert [e.step for c in own for e in c.evals] == [e.step for c in solo for e in c.evals]
        final = own[-1].predictions
        assert final is not None and solo[-1].predictions is not None
        assert np.mean(final["val"] != solo[-1].predictions["val"]) <= 0.02  # near-ties only


def test_members_whose_weight_decay_is_strong_follow_their_runs_alone(data: TrainData) -> None:
    # A plain-SGD member's W is a factor times its block of Wt; the factor shrinks by
    # 1 - 2 lr reg a step and is multiplied into the block when it gets small (here every few
    # steps), zero (lr reg = 0.5) or negative.
    cfgs = [
        TrainConfig(
            loss="svm", iterations=120, batch_size=40, learning_rate=lr, reg=reg, eval_every=0
        )
        for lr, reg in ((1e-2, 10.0), (0.1, 5.0), (0.1, 7.5))
    ]
    population, _ = together(cfgs, data)
    for member, config in enumerate(cfgs):
        state, _ = alone(config, data)
        W = population.member_state(member).W
        np.testing.assert_allclose(W, state.W, rtol=RTOL, atol=RTOL * np.abs(state.W).max())
        np.testing.assert_array_equal(population.member_state(member).W, W)  # reading is pure


def test_a_member_taken_out_leaves_the_others_on_their_path(data: TrainData) -> None:
    cfgs = configs(loss="svm")
    population = from_states(cfgs, [init_state(config, C, D) for config in cfgs])
    chunks = run_population(population, data, chunk_steps=50)
    first = next(chunks)
    assert first.members == (0, 1, 2, 3)
    population.remove([1])
    rest = list(chunks)
    assert all(chunk.members == (0, 2, 3) for chunk in rest)
    with pytest.raises(ValueError):
        population.member_state(1)
    for member in (0, 2, 3):
        state, _ = alone(cfgs[member], data)
        np.testing.assert_allclose(population.member_state(member).W, state.W, rtol=RTOL,
                                   atol=RTOL * np.abs(state.W).max())  # fmt: skip


def test_a_diverging_member_leaves_at_the_step_it_leaves_alone(data: TrainData) -> None:
    cfgs = [TrainConfig(loss="softmax", iterations=100, batch_size=40, learning_rate=lr, reg=reg)
            for lr, reg in ((1e-2, 1e-3), (1e3, 1e6))]  # fmt: skip
    population, chunks = together(cfgs, data)
    diverged = {m: at for chunk in chunks for m, at in chunk.diverged.items()}
    assert list(diverged) == [1]
    step, loss = diverged[1]
    with pytest.raises(Diverged) as raised:
        list(run(init_state(cfgs[1], C, D), cfgs[1], data, chunk_steps=50))
    assert raised.value.step == step and not np.isfinite(loss)
    own = np.concatenate([chunk.of(1).steps for chunk in chunks if 1 in chunk.members])
    assert own.tolist() == list(range(step))  # its history stops before that step
    assert population.members == [0] and population.step == 100


def test_the_population_losses_equal_each_runs_own(data: TrainData) -> None:
    rng = np.random.default_rng(3)
    Ws = [rng.standard_normal((C, D)).astype(np.float32) for _ in range(3)]
    X, y = as_float(data.X_train)[:50], data.y_train[:50]
    for name in ("svm", "softmax"):
        S = X @ np.concatenate([W.T for W in Ws], axis=1)
        sums = data_losses(name, 1.0, S, y, C)
        dS = S.reshape(50, 3, C)
        for k, W in enumerate(Ws):
            loss, grad = make_loss(name, 0.0).loss_grad(W, X, y)
            assert sums[k] / 50 == pytest.approx(loss, rel=1e-5)
            np.testing.assert_allclose(dS[:, k, :].T @ X / 50, grad, rtol=1e-4, atol=1e-5)


def test_a_worker_claims_its_share_of_the_cores_of_a_population() -> None:
    assert taken(63, 0, 64, threads=2, cores=2) == 63  # every core: the whole population
    assert taken(100, 0, 64, threads=2, cores=2) == 63  # at most the population size
    # Half the cores: half of the 64 trials, then the other worker the other half.
    assert taken(63, 0, 64, threads=1, cores=2) == 31
    assert taken(31, 32, 64, threads=1, cores=2) == 31
    assert taken(3, 0, 64, threads=1, cores=2) == 1
    assert taken(0, 0, 64, threads=1, cores=2) == 0
    assert taken(5, 0, 1, threads=2, cores=2) == 0  # populations off


def test_runs_that_differ_in_more_than_lr_and_reg_cannot_train_together() -> None:
    with pytest.raises(ValueError, match="only in learning_rate and reg"):
        check_configs([TrainConfig(batch_size=20), TrainConfig(batch_size=40)])
    with pytest.raises(ValueError, match="numerical"):
        check_configs([TrainConfig(gradient="numerical")])
    check_configs([TrainConfig(learning_rate=0.1, reg=0.0), TrainConfig(learning_rate=1.0, reg=2)])
