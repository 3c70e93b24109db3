"""A train checkpoint restores the run's state; a population member's restores its population's."""

from __future__ import annotations

import numpy as np

from worker.engine.population import from_states, run_population
from worker.engine.train import TrainData, init_state
from worker.engine.train_config import TrainConfig
from worker.train_job import state_from_checkpoint, state_to_checkpoint


def test_a_population_members_checkpoint_restores_its_w_and_its_population_form() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 8)).astype(np.float32)
    y = rng.integers(0, 3, 120)
    data = TrainData(X[:100], y[:100], X[100:], y[100:])
    configs = [TrainConfig(iterations=30, batch_size=20, learning_rate=lr, reg=5.0)
               for lr in (1e-3, 1e-2)]  # fmt: skip
    population = from_states(configs, [init_state(config, 3, 8) for config in configs])
    list(run_population(population, data, chunk_steps=30))
    assert population.scales[1] != 1.0  # the decay is held in the factor

    state = population.member_state(1)
    payload = state_to_checkpoint(state, {"loss": 1.0}, population.member_unscaled(1))
    restored, metrics, found = state_from_checkpoint(payload)
    assert metrics == {"loss": 1.0} and restored.step == 30
    np.testing.assert_array_equal(restored.W, state.W)  # a run resumed alone starts from W
    block, scale = population.member_unscaled(1)
    assert found is not None and found[1] == scale
    np.testing.assert_array_equal(found[0], block)

    restored, _, found = state_from_checkpoint(state_to_checkpoint(state, {}))
    assert found is None
    np.testing.assert_array_equal(restored.W, state.W)
