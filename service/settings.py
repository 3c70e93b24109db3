"""Configuration: every setting is a DESCENT_* environment variable (or a line in `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESCENT_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///./var/descent.db",
        description="SQLAlchemy URL; postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    data_dir: Path = Field(Path("./var/data"), description="Where uploaded data sets live.")
    kernel_cache_dir: Path | None = Field(
        None,
        description="Where worker processes cache the engine's compiled kernels (numba's disk "
        "cache), so that a restarted worker loads them instead of compiling them again; "
        "default: `kernels` under data_dir. It must be writable by the workers; if it is not, "
        "they warn and compile the kernels at every start.",
    )
    fused_kernels: bool = Field(
        True,
        description="Whether worker processes run the engine's loss passes on its compiled "
        "kernels (numba); false (0, no, off) keeps every pass on NumPy, the path the kernels "
        "are tested against. Read once, when a worker process starts.",
    )
    cifar10_dir: Path | None = Field(
        None,
        description="Directory holding the CIFAR-10 python batches (data_batch_1..5, test_batch).",
    )
    api_token: str | None = Field(None, description="Bearer token required by the API when set.")
    lease_seconds: float = Field(
        30.0, gt=0, description="How long a claim lasts without a heartbeat."
    )
    heartbeat_seconds: float = Field(5.0, gt=0, description="How often a worker renews its lease.")
    flush_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How often a running job writes its new history points, progress and metrics "
        "(how soon watchers see them); each write costs the job a fixed amount, so shorter costs "
        "more (docs/BENCHMARKS.md).",
    )
    history_writer: Literal["process", "thread"] = Field(
        "process",
        description="Where a running job's writes run: `process`, a writer process per running "
        "job (spawned once and kept by the worker), so the writes never hold the engine's GIL; "
        "`thread`, a thread of the worker (an in-memory SQLite database always uses it).",
    )
    checkpoint_seconds: float = Field(
        2.0, gt=0, description="Checkpoint a running job (and its latest W) at least this often."
    )
    checkpoint_steps: int = Field(
        10_000, ge=0, description="Also checkpoint every this many steps (0 = by time only)."
    )
    max_worker_losses: int = Field(
        3, ge=1, description="Times a job's worker may be lost before the job fails (worker_lost)."
    )
    poll_seconds: float = Field(
        0.2, gt=0, description="How often an idle worker looks for queued jobs."
    )
    idempotency_ttl_seconds: float = Field(
        86_400.0, gt=0, description="How long an Idempotency-Key and its response are kept."
    )
    retention_days: float | None = Field(
        None, gt=0, description="Downsample finished jobs' history after this many days."
    )
    max_upload_bytes: int = Field(512 * 1024 * 1024, gt=0, description="Largest accepted upload.")
    max_json_bytes: int = Field(
        4 * 1024**2,
        gt=0,
        description="Largest JSON request body (a spec, a sweep, rows to predict); 413 before "
        "it is parsed.",
    )
    request_body_timeout_seconds: float = Field(
        60.0, gt=0, description="Longest a client may take to send a request body (then 408)."
    )
    storage_quota_bytes: int = Field(
        10 * 1024**3,
        gt=0,
        description="Disk the uploaded data sets may take together, as stored; an upload past "
        "it (or past the disk's free space) is a 507 and nothing of it is kept.",
    )
    max_job_data_bytes: int = Field(
        4 * 1024**3,
        gt=0,
        description="Memory a job's data may take in its dtype: all its rows x (features + "
        "bias) x 4 or 8 bytes; a larger job is a 422 at submit.",
    )
    max_weights_values: int = Field(
        4_000_000,
        gt=0,
        description="Most entries of W (classes x (features + bias)) a job or an upload may have.",
    )
    max_result_entries: int = Field(
        50_000,
        gt=0,
        description="Most entries of a task's result: gradient-check entries, landscape grid "
        "points, step sizes.",
    )
    max_job_history_points: int = Field(
        2_500_000,
        gt=0,
        description="Most points a job may store in its history: loss and learning rate (or best "
        "loss) every log_every steps and at the last, accuracies every eval_every steps; enough "
        "for max_iterations steps logged at every step and evaluated every 100. A larger job is "
        "a 422 at submit.",
    )
    max_sweep_history_points: int = Field(
        20_000_000,
        gt=0,
        description="Most history points the trials of one sweep may store together (each "
        "counted as for max_job_history_points); a larger sweep is a 422 at submit.",
    )
    dataset_cache_bytes: int = Field(
        3 * 1024**3, ge=0, description="Memory a worker may keep prepared data sets in."
    )
    prepared_cache_dir: Path | None = Field(
        None,
        description="Where worker processes keep large prepared data sets (preprocessed, in the "
        "job's dtype) as files that all of them memory-map, so that the workers of one machine "
        "prepare such a set once and share one copy of it; default: `prepared` under data_dir. "
        "If it is not writable, workers warn and prepare in memory, each for itself.",
    )
    prepared_cache_bytes: int = Field(
        8 * 1024**3,
        ge=0,
        description="Disk the prepared data sets of prepared_cache_dir may take; past it, the "
        "least recently used go first (0 = no files: each worker prepares in memory).",
    )
    prepared_cache_min_bytes: int = Field(
        64 * 1024**2,
        ge=0,
        description="Smallest prepared data set kept in prepared_cache_dir; smaller ones "
        "prepare quickly and stay in each worker's memory only.",
    )
    max_iterations: int = Field(
        1_000_000, gt=0, description="Upper bound on iterations and trials."
    )
    max_generated_values: int = Field(
        50_000_000, gt=0, description="Largest blobs/spiral data set, in rows x features."
    )
    max_page_limit: int = Field(10_000, gt=0, description="Upper bound on a page's `limit`.")
    max_sweep_trials: int = Field(
        1_000, gt=0, description="Most trials a sweep may create (grid size or random trials)."
    )
    max_predict_rows: int = Field(10_000, gt=0, description="Most rows one /predict call takes.")
    max_queued_jobs: int = Field(
        10_000,
        gt=0,
        description="Most jobs that may wait in the queue; a job or sweep that would take it "
        "past this is a 503 (Retry-After) and creates nothing.",
    )
    max_event_streams: int = Field(
        100,
        gt=0,
        description="Most event streams (GET /jobs/{id}/events) the API process serves at "
        "once; one more is a 503 (Retry-After) before it starts.",
    )
    sqlite_busy_timeout_ms: int = Field(
        30_000, ge=0, description="SQLite lock wait before failing."
    )
    blas_threads: int | None = Field(
        None,
        ge=1,
        description="Threads per running job, for OpenBLAS and the engine's own (pass threads, "
        "minibatch prefetch); default: the cores divided among the worker processes that "
        "`descent serve` / `descent worker --concurrency` start.",
    )
    population_size: int = Field(
        64,
        ge=1,
        le=1_024,
        description="Most trials of a sweep one worker trains together as a population: trials "
        "whose specs differ only in learning_rate and reg share each step's minibatch and "
        "products (1 = every trial on its own).",
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="Niceness the worker processes of `descent serve` / `descent worker` give "
        "themselves, so the API answers promptly while jobs keep the cores busy (0 = unchanged).",
    )
    poll_cache_bytes: int = Field(
        16 * 1024**2,
        ge=0,
        description="Memory the API may keep answers of GET /jobs/{id}, /loss and /metrics in, "
        "shared by all clients and emptied whenever the database changes (0 = no cache).",
    )
    poll_cache_staleness_seconds: float = Field(
        0.1,
        gt=0,
        le=10,
        description="With the poll cache: the longest a cached answer may lag a commit made by "
        "another process (the database is checked twice per period); the API process's own "
        "commits are seen at once.",
    )
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="text, or json: one JSON object per line (with job_id where known)."
    )
    access_log: bool = Field(
        False,
        description="Log one line per HTTP request, in DESCENT_LOG_FORMAT. Off by default: a "
        "dashboard's polls alone make hundreds a second, and /metrics counts and times every "
        "route.",
    )

    @field_validator(
        "cifar10_dir", "api_token", "retention_days", "blas_threads", "kernel_cache_dir",
        "prepared_cache_dir", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _kernels_under_data_dir(self) -> Self:
        if self.kernel_cache_dir is None:
            self.kernel_cache_dir = self.data_dir / "kernels"
        return self

    @model_validator(mode="after")
    def _prepared_under_data_dir(self) -> Self:
        if self.prepared_cache_dir is None:
            self.prepared_cache_dir = self.data_dir / "prepared"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
