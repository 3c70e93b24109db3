"""The app under fuzzing: create_app(settings) on its own SQLite database, with small limits.

schemathesis reads the schema when the test module is imported, so the app is built then; its
database file is a copy of the migrated template, put in place by the `fuzz_database` fixture
before the first request.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from service.app import create_app
from tests.conftest import make_settings

HOME = Path(tempfile.mkdtemp(prefix="descent-fuzz-"))
atexit.register(shutil.rmtree, HOME, True)  # also when the fuzz tests were deselected
DATABASE = HOME / "descent.db"
SETTINGS = make_settings(
    f"sqlite:///{DATABASE}",
    HOME,
    max_sweep_trials=8,  # a generated sweep creates at most this many jobs
    max_upload_bytes=256 * 1024,
    max_predict_rows=64,
)
APP = create_app(SETTINGS)
