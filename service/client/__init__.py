"""The typed Python client of the Descent API (sync and async, on httpx).

```python
from service.client import DescentClient

with DescentClient() as descent:  # DESCENT_URL, DESCENT_API_TOKEN
    job = descent.submit({"dataset": {"name": "blobs"}, "optimizer": {"type": "sgd"}})
    job = descent.wait(job.id)
    W = descent.weights(job.id)
```
"""

from service.client._base import (
    DEFAULT_URL,
    TERMINAL,
    DescentConnectionError,
    DescentError,
    Event,
)
from service.client.aio import AsyncDescentClient
from service.client.sync import DescentClient
from service.jobs.schemas import JobOut as Job
from service.jobs.schemas import LossPoint, SeriesPoint

__all__ = [
    "DEFAULT_URL",
    "TERMINAL",
    "AsyncDescentClient",
    "DescentClient",
    "DescentConnectionError",
    "DescentError",
    "Event",
    "Job",
    "LossPoint",
    "SeriesPoint",
]
