"""docker-compose.yml stays valid: Docker does not run here, so its structure is checked instead."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath
from typing import Any

import yaml

from service.settings import Settings
from tests.conftest import REPO

APP_SERVICES = ("migrate", "api", "worker")


def load() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def test_services_start_in_order_postgres_migrate_api_worker() -> None:
    services = load()["services"]

    assert set(services) == {"postgres", "migrate", "api", "worker"}
    assert services["postgres"]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    done = {"migrate": {"condition": "service_completed_successfully"}}
    assert services["api"]["depends_on"] == done
    assert services["worker"]["depends_on"] == done
    assert services["migrate"]["command"] == ["descent", "migrate"]
    assert services["worker"]["command"][:2] == ["descent", "worker"]
    assert "--workers" in services["api"]["command"]


def test_the_app_services_share_an_image_a_database_url_and_a_data_volume() -> None:
    document = load()
    for name in ("migrate", "api", "worker"):
        service = document["services"][name]
        url = service["environment"]["DESCENT_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
        assert service["image"] == "descent:latest"
        assert any(volume.startswith("descent-data:") for volume in service["volumes"])
    assert "descent-data" in document["volumes"]


def test_the_inline_dockerfile_copies_what_the_package_needs() -> None:
    dockerfile = load()["services"]["api"]["build"]["dockerfile_inline"]

    for part in ("service", "worker", "migrations", "pyproject.toml"):
        assert f"COPY {part}" in dockerfile or part in dockerfile
    for path in ("service", "worker", "migrations"):
        assert (REPO / path).is_dir()


def test_the_worker_can_be_scaled() -> None:
    worker = load()["services"]["worker"]

    # `--scale worker=N` needs no fixed container name or host port on the worker.
    assert "container_name" not in worker
    assert "ports" not in worker


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The inline Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = load()["services"]["api"]["build"]["dockerfile_inline"].replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def owned_paths(user: str) -> list[PurePosixPath]:
    """The directories the Dockerfile hands to `user` with `chown [-R] user[:group] PATH...`."""
    owned: list[PurePosixPath] = []
    for keyword, rest in dockerfile_instructions():
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", rest):
            words = shlex.split(command)
            if words[:1] != ["chown"]:
                continue
            operands = [w for w in words[1:] if not w.startswith("-")]
            if operands and operands[0].split(":")[0] == user:
                owned += [PurePosixPath(path) for path in operands[1:]]
    return owned


def within(path: PurePosixPath, roots: list[PurePosixPath]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def test_the_image_runs_as_an_unprivileged_user_that_owns_the_writable_volumes() -> None:
    users = [rest for keyword, rest in dockerfile_instructions() if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    user = users[-1]
    owned = owned_paths(user)
    assert owned, f"the Dockerfile gives {user} no directory"

    for name in APP_SERVICES:
        service = load()["services"][name]
        writable = []
        for volume in service["volumes"]:
            # SOURCE:TARGET[:MODE], where SOURCE may hold a ${VAR:-default} with a colon.
            _source, target, *mode = volume.rsplit(":", 2)
            if mode == ["ro"]:
                continue
            target_path = PurePosixPath(target)
            # A new named volume takes the ownership of the image's directory it is mounted on.
            assert within(target_path, owned), f"{name}: {target} is not writable by {user}"
            writable.append(target_path)
        environment = service["environment"]
        for setting in ("DESCENT_DATA_DIR", "DESCENT_KERNEL_CACHE_DIR"):
            path = PurePosixPath(environment[setting])
            assert within(path, writable), f"{name}: {setting} is not on a writable volume"
            assert within(path, owned), f"{name}: {setting} is not owned by {user}"


def test_every_descent_variable_in_the_compose_file_is_a_setting() -> None:
    fields = {f"DESCENT_{name.upper()}" for name in Settings.model_fields}
    for name in APP_SERVICES:
        variables = {v for v in load()["services"][name]["environment"] if v.startswith("DESCENT_")}
        assert variables <= fields, variables - fields


def test_the_image_installs_the_locked_versions_with_the_makefiles_uv() -> None:
    runs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    copies = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "COPY")

    assert "uv.lock" in copies.split()
    assert "uv export --frozen" in runs and "--require-hashes" in runs
    assert "--no-deps ." in runs  # the project itself adds no unlocked dependency
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert makefile_uv is not None
    assert f"uv=={makefile_uv.group(1)}" in runs


def test_the_api_and_the_database_have_healthchecks_the_others_wait_for() -> None:
    services = load()["services"]
    for name in ("postgres", "api"):
        check = services[name]["healthcheck"]
        assert check["test"] and check["retries"] >= 1
    # The api's healthcheck asks /readyz, which is ready only once the database is migrated.
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["migrate"]["restart"] == "no"


def test_scaling_the_workers_is_documented() -> None:
    command = "docker compose up --build --scale worker=4"
    assert command in (REPO / "docker-compose.yml").read_text()
    assert command in (REPO / "README.md").read_text()
