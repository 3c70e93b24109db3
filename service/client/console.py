"""Terminal output of the `descent` client commands: the job table, the live progress bar,
summaries. Tables and bars go through rich; data meant for pipes (ids, JSON, CSV) does not."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from service.client._base import Event
from service.client.sync import DescentClient
from service.jobs.schemas import JobOut, LossPoint

SPARKS = "▁▂▃▄▅▆▇█"


def _number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def job_table(jobs: Iterable[JobOut]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True, min_width=32)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("TASK", no_wrap=True)
    table.add_column("NAME", overflow="ellipsis", max_width=24)
    table.add_column("STEP", justify="right", no_wrap=True)
    table.add_column("LOSS", justify="right", no_wrap=True)
    table.add_column("VAL ACC", justify="right", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for job in jobs:
        table.add_row(
            job.id,
            job.status,
            job.task,
            job.name or "",
            f"{job.progress.step}/{job.progress.total}",
            _number(job.metrics.loss),
            _number(job.metrics.val_accuracy, 3),
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


def summary(job: JobOut) -> str:
    """`succeeded in 1.2 s: loss 0.31, val_accuracy 0.94` or `failed (diverged): ...`."""
    if job.error is not None:
        where = f" at step {job.error.step}" if job.error.step is not None else ""
        return f"{job.status} ({job.error.type}{where}): {job.error.message}"
    metrics = job.metrics.model_dump(exclude_none=True)
    shown = ", ".join(f"{k} {_number(v)}" for k, v in metrics.items() if isinstance(v, float))
    took = ""
    if job.started_at is not None and job.finished_at is not None:
        took = f" in {(job.finished_at - job.started_at).total_seconds():.1f} s"
    return f"{job.status}{took}" + (f": {shown}" if shown else "")


def sparkline(values: Sequence[float | None], width: int = 60) -> str:
    """The curve in block characters, on a log scale when it spans over two decades."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    if min(finite) > 0 and max(finite) / min(finite) > 100:
        values = [None if v is None or not 0 < v < math.inf else math.log10(v) for v in values]
        finite = [v for v in values if v is not None]
    step = max(1, math.ceil(len(values) / width))
    buckets = [values[i : i + step] for i in range(0, len(values), step)]
    lo, hi = min(finite), max(finite)
    line = []
    for bucket in buckets:
        seen = [v for v in bucket if v is not None and math.isfinite(v)]
        if not seen:
            line.append(" ")
            continue
        mean = sum(seen) / len(seen)
        level = 0 if hi == lo else round((mean - lo) / (hi - lo) * (len(SPARKS) - 1))
        line.append(SPARKS[level])
    return "".join(line)


def loss_summary(points: Sequence[LossPoint]) -> str:
    if not points:
        return "no loss points yet"
    finite = [p for p in points if p.loss is not None]
    text = f"{len(points)} points, steps {points[0].step}..{points[-1].step}"
    if finite:
        best = min(finite, key=lambda p: p.loss if p.loss is not None else math.inf)
        text += (
            f"\nloss {_number(points[0].loss)} -> {_number(points[-1].loss)}"
            f" (min {_number(best.loss)} at step {best.step})"
        )
    return text + "\n" + sparkline([p.loss for p in points])


class Follower:
    """A live progress bar of one job, fed by its event stream: step/total and the latest loss."""

    def __init__(self, console: Console) -> None:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
        )
        self.progress = Progress(*columns, console=console, transient=False)
        self.task: TaskID | None = None

    def _update(self, job: JobOut) -> None:
        assert self.task is not None
        total = job.progress.total or None
        self.progress.update(
            self.task,
            description=job.status,
            total=total,
            completed=job.progress.step,
            loss=_number(job.metrics.loss),
        )

    def on_event(self, event: Event) -> JobOut | None:
        """Apply one event; the final Job at `end`, else None."""
        assert self.task is not None
        if event.event in ("status", "end"):
            self._update(event.job)
            return event.job if event.event == "end" else None
        if event.event == "progress":
            progress = event.data.get("progress", {})
            metrics = event.data.get("metrics", {})
            self.progress.update(
                self.task,
                description=event.data.get("status", ""),
                total=progress.get("total") or None,
                completed=progress.get("step", 0),
                loss=_number(metrics.get("loss")),
            )
        elif event.event == "loss" and event.points:
            last = event.points[-1]
            task = self.progress.tasks[self.task]
            self.progress.update(
                self.task, completed=max(task.completed, last.step + 1), loss=_number(last.loss)
            )
        return None

    def follow(self, client: DescentClient, job: JobOut) -> JobOut:
        """Show the bar until the job ends; the final Job."""
        with self.progress:
            self.task = self.progress.add_task(
                job.status, total=job.progress.total or None, loss="–"
            )
            self._update(job)
            for event in client.events(job.id):
                final = self.on_event(event)
                if final is not None:
                    return final
        return client.get(job.id)  # the stream gave up without an end: report what there is
