"""The container files, checked without a container engine (none runs on the CI machine):
the Dockerfile's contract and the compose file's wiring, read as plain text and YAML."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def dockerfile_instructions() -> dict[str, list[str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.setdefault(keyword.upper(), []).append(rest.strip())
    return found


def test_dockerfile_is_slim_non_root_with_health_check_and_serve_entrypoint():
    found = dockerfile_instructions()
    assert found["FROM"][0].endswith("-slim")
    assert found["USER"] and found["USER"][-1] not in ("root", "0")
    assert "/health" in found["HEALTHCHECK"][0]
    assert found["ENTRYPOINT"] == ['["labelqueue"]'] and found["CMD"][0].startswith('["serve"')


def test_compose_wires_label_studio_backend_redis_and_a_worker_by_documented_settings():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"label-studio", "redis", "labelqueue", "worker"}
    assert services["worker"]["command"] == ["worker"]
    assert services["labelqueue"]["volumes"] == services["worker"]["volumes"]  # one shared data dir
    env = services["labelqueue"]["environment"]
    assert env == services["worker"]["environment"]
    assert env["LABELQUEUE_REDIS_URL"].startswith("redis://redis:")
    assert env["LABEL_STUDIO_URL"] == "http://label-studio:8080"
    readme = (REPO / "README.md").read_text()
    for name in env:
        assert re.search(rf"`{name}`", readme), f"{name} is not documented in the README"
