"""Run a sweep's trials that differ only in learning rate and reg as one population.

The worker that claims such a trial claims up to DESCENT_POPULATION_SIZE - 1 queued trials of
the same sweep that can train with it (`joins`) in the same transaction, and trains them
together (worker.engine.population). Each trial stays a job of its own: its own lease, history,
metrics, checkpoints, weights and evaluation, written for all of them in one transaction per
flush. A trial leaves the population when it is cancelled, pruned, diverges or loses its lease;
the others go on. All of them checkpoint at the same steps, so that a population handed back
(a shutdown, a lost worker) is claimed and resumed as a population again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.jobs import queue
from service.jobs.queue import ClaimedJob, LeaseLost
from service.jobs.spec import JobSpec
from service.settings import Settings
from worker.context import JobContext, Outcome, Resume
from worker.engine.population import Population, can_share_steps, from_states, run_population
from worker.engine.population_chunks import PopulationChunk
from worker.engine.population_steps import predict_all
from worker.engine.train import TrainData
from worker.prepared_data import PreparedData
from worker.pruning import Pruner, pruner_for
from worker.train_job import History, Unscaled, initial_state, state_to_checkpoint, succeeded
from worker.training import train_config


def trains_in_population(spec: JobSpec) -> bool:
    """Whether a job can train in a population at all: a gradient-descent training run with
    analytic gradients."""
    return spec.task == "train" and not spec.is_search and can_share_steps(train_config(spec))


def _shared(spec: JobSpec) -> dict[str, Any]:
    """What trials of one population must share: the spec without its name, learning rate and
    reg."""
    shared = spec.model_dump(mode="json", exclude={"name"})
    shared["optimizer"].pop("learning_rate")
    shared["model"].pop("reg")
    return shared


def joins(leader: JobSpec) -> Callable[[dict[str, Any]], bool]:
    """A test of a stored spec: can its job train in a population with `leader`'s?"""
    key = _shared(leader)

    def test(stored: dict[str, Any]) -> bool:
        try:
            spec = JobSpec.model_validate(stored)
        except ValidationError:  # it fails on its own, alone
            return False
        return trains_in_population(spec) and _shared(spec) == key

    return test


def taken(found: int, running: int, size: int, threads: int, cores: int) -> int:
    """How many of `found` queued trials that can join a population a worker claims beside its
    first one, while `running` more of them train elsewhere: its share of the cores (threads of
    cores) of all of them, at most `size` in all.

    A worker given a share of the cores takes that share of the trials and leaves the rest to
    the other workers, so that a population never trains on fewer cores than the same trials as
    separate jobs would."""
    share = min(1.0, threads / max(1, cores))
    return max(0, min(size - 1, found, math.ceil((found + 1 + running) * share) - 1))


def companions(
    session: Session, leader: ClaimedJob, settings: Settings, owner: str, threads: int
) -> list[ClaimedJob]:
    """The trials claimed to train with `leader` (in its claim transaction), or none."""
    if leader.sweep_id is None or settings.population_size < 2:
        return []
    try:
        spec = JobSpec.model_validate(leader.spec)
    except ValidationError:  # the leader fails on its own, alone
        return []
    if not trains_in_population(spec):
        return []
    cores = os.cpu_count() or 1

    def how_many(found: int, running: int) -> int:
        return taken(found, running, settings.population_size, threads, cores)

    lease = settings.lease_seconds
    return queue.claim_companions(session, owner, lease, leader, how_many, joins(spec))


@dataclass
class _Member:
    context: JobContext
    history: History
    pruner: Pruner | None = None


class PopulationRun:
    """The trials of one population from their first step to their outcomes."""

    def __init__(
        self, contexts: list[JobContext], data: PreparedData, resumes: list[Resume | None]
    ) -> None:
        self.leader = contexts[0]
        self.data = data
        configs = [train_config(context.spec) for context in contexts]
        states, self.members = [], []
        unscaled: list[Unscaled | None] = []
        for context, config, resume in zip(contexts, configs, resumes, strict=True):
            state, history, held = initial_state(config, data, resume)
            states.append(state)
            unscaled.append(held)
            self.members.append(_Member(context, history))
        # Every trial's block and factor when a population's checkpoints hold them, else W.
        blocks = [u for u in unscaled if u is not None]
        self.population: Population = from_states(
            configs, states, blocks if len(blocks) == len(states) else None
        )
        for index, member in enumerate(self.members):
            member.pruner = pruner_for(
                member.context, start=self.population.step, step=lambda: self.population.step,
                weights=lambda i=index: self.population.member_state(i).W,  # type: ignore[misc]
                metrics=lambda m=member: m.history.metrics,  # type: ignore[misc]
            )  # fmt: skip
        self.outcomes: dict[int, Outcome] = {}
        self.lost: set[int] = set()  # trials another worker holds now: they get no outcome here
        self._in_flight: list[int] = []  # the trials whose flushes the write in flight holds

    def run(self) -> dict[str, Outcome]:
        """Train; each trial's Outcome by job id (none for a trial whose lease was lost)."""
        data, population = self.data, self.population
        train_data = TrainData(data.X_train, data.y_train, data.X_val, data.y_val)
        pruners = [m.pruner for m in self.members if m.pruner is not None]
        chunk_steps = pruners[0].chunk_steps if pruners else 100_000
        chunks = run_population(population, train_data, chunk_steps=chunk_steps,
                                chunk_seconds=self.leader.settings.flush_seconds)  # fmt: skip
        writes = self.leader.writes
        try:
            for chunk in chunks:
                self._write(chunk)
                for index, (step, loss) in chunk.diverged.items():
                    error = {"type": "diverged", "message": f"the loss became {loss} at step "
                             f"{step}", "step": step}  # fmt: skip
                    metrics = self.members[index].history.metrics
                    self.outcomes[index] = Outcome("failed", {"error": error, "metrics": metrics})
                if self.leader.stopping.is_set() and not chunk.done:
                    self._leave(list(population.members), Outcome("queued"))
                    break
                if not chunk.done and pruners:
                    self._seen(writes.settle())  # the pruners read this chunk's points back
                    self._prune()
            self._seen(writes.settle())
        finally:
            writes.settle()  # whatever ends the run, its last write is done (or raises) first
        # The test split, which training never scores, in one wide product for every trial
        # (each trial's own evaluation would predict it with a product of C columns).
        finishing = list(population.members)
        if finishing:
            test_labels = predict_all(population.Wt, data.X_test, data.n_classes)
        for position, index in enumerate(finishing):
            member, state = self.members[index], population.member_state(index)
            history = member.history
            predicted = {**(history.predictions or {}), "test": test_labels[:, position]}
            try:
                self.outcomes[index] = succeeded(member.context, data, state.W, state.step,
                                                 history.metrics, predicted)  # fmt: skip
            except LeaseLost:
                self._lost(index)
        return {
            self.members[index].context.job_id: outcome
            for index, outcome in self.outcomes.items()
            if index not in self.lost
        }

    def _write(self, chunk: PopulationChunk) -> None:
        """Hand this chunk's points of each trial (and a checkpoint of each, when due) to the
        writes, in one transaction."""
        step, training = self.population.step, set(self.population.members)
        due = not chunk.done and self.leader.checkpoint_due(step)
        flushes, sent = [], []
        for index in chunk.members:
            if index not in self.outcomes and self.members[index].context.lease_lost.is_set():
                self._lost(index)  # the heartbeat found another worker holding it
            if index in self.outcomes:
                continue
            member = self.members[index]
            points = member.history.add(chunk.of(index))
            checkpoint = weights = None
            if due and index in training:
                state = self.population.member_state(index)
                unscaled = self.population.member_unscaled(index)
                checkpoint = state_to_checkpoint(state, member.history.metrics, unscaled)
                weights = state.W
                member.context.checkpointed(step)
            # A trial that diverged stops at the step of its non-finite loss, as it would alone.
            at = step if index in training else chunk.diverged[index][0]
            flushes.append(member.context.flush_of(points, at, member.history.metrics,
                                                   checkpoint, weights))  # fmt: skip
            sent.append(index)
        self._seen(self.leader.writes.start(flushes))  # the previous write's answers
        self._in_flight = sent

    def _seen(self, results: list[bool | None]) -> None:
        """Act on a write's answers: a cancelled trial ends, one whose lease is lost leaves."""
        in_flight, self._in_flight = self._in_flight, []
        for index, result in zip(in_flight, results, strict=True):
            if result is None:
                self._lost(index)
            elif result and index not in self.outcomes:
                metrics = self.members[index].history.metrics
                self._leave([index], Outcome("cancelled", {"metrics": metrics}))

    def _prune(self) -> None:
        for index in list(self.population.members):
            pruner = self.members[index].pruner
            try:
                early = None if pruner is None else pruner.check()
            except LeaseLost:
                self._lost(index)
                continue
            if early is not None:
                self._leave([index], early)

    def _lost(self, index: int) -> None:
        """Another worker holds this trial now: it leaves, and nothing more is written to it."""
        self.lost.add(index)
        self._leave([index], Outcome("queued"))

    def _leave(self, indices: list[int], outcome: Outcome) -> None:
        for index in indices:
            self.outcomes.setdefault(index, outcome)
        self.population.remove([i for i in indices if i in self.population.members])
