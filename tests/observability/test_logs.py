"""DESCENT_LOG_FORMAT=json: one JSON object per line, job ids kept as fields."""

from __future__ import annotations

import json
import logging

import pytest

from service.observability import logs


def test_json_logs_are_one_object_per_line_with_the_job_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("INFO", "json")
        logging.getLogger("descent.worker").info("job %s claimed", "abc", extra={"job_id": "abc"})
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)

    record = json.loads(line)
    assert record["message"] == "job abc claimed"
    assert record["job_id"] == "abc"
    assert record["level"] == "INFO" and record["logger"] == "descent.worker"
