"""Build the Dockerfile with podman and check the running container's ``/health``, its own
HEALTHCHECK and its non-root user. End-to-end (``-m e2e``): a cached run takes about a minute,
a first one about ten (the base, then the dependency layer). Skipped, saying so, where podman
(with ``runc``) or ``debootstrap`` is not installed: ``.ci/run`` installs neither, for that
first build's sake; the checks without an engine are ``tests/test_container_files.py``.

No registry of images is reachable from the machines this runs on, so ``python:3.11-slim``
cannot be pulled: the base is made from Debian's packages instead (``debootstrap`` of bookworm,
whose Python is 3.11, with a virtual environment providing ``python`` and ``pip`` on PATH as
the official image does, trusting this machine's CA bundle) and passed as the Dockerfile's ``BASE``. Everything after ``FROM`` is
the real Dockerfile. The engine's settings are those that work in a VM without
``CAP_SYS_RESOURCE`` and with hybrid cgroups: ``runc`` (``crun`` refuses hybrid cgroups),
resource limits no higher than the host's, overlay storage in a directory of its own (which
also caches the base image and the dependency layer between runs).
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from backend.local.label_studio_server import free_port
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[1]
PODMAN, RUNC, DEBOOTSTRAP = (shutil.which(name) for name in ("podman", "runc", "debootstrap"))
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    not (PODMAN and RUNC and DEBOOTSTRAP), reason="no container engine here (podman with runc, and debootstrap for the base)")]

STORAGE = Path(os.environ.get("LABELQUEUE_CI_CONTAINERS", "/var/lib/labelqueue-ci/containers"))
BASE = "localhost/labelqueue-ci-base:bookworm"
IMAGE = "localhost/labelqueue:ci"
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
PATH = "/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def engine(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    command = [PODMAN, "--runtime", RUNC, "--root", str(STORAGE / "storage"), "--runroot", str(STORAGE / "run"),
               "--storage-driver", "overlay", *args]
    found = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and found.returncode != 0:
        raise AssertionError(f"{' '.join(args[:2])} failed ({found.returncode}):\n{found.stderr[-3000:]}")
    return found


def limits() -> list[str]:
    """Resource limits at most the host's: podman's defaults are higher, and raising one needs
    ``CAP_SYS_RESOURCE``."""
    found = []
    for name, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        soft, hard = resource.getrlimit(limit)
        value = min(v for v in (soft, hard, 65536) if v != resource.RLIM_INFINITY)
        found += ["--ulimit", f"{name}={value // 2}:{value // 2}"]
    return found


def ensure_base() -> None:
    """Debian bookworm (minbase, Python 3.11) with a venv as ``python``/``pip``, imported once."""
    if engine("image", "exists", BASE, check=False).returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="labelqueue-base-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run([DEBOOTSTRAP, "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                        "bookworm", str(root), "http://deb.debian.org/debian"],
                       check=True, capture_output=True, timeout=1200)
        subprocess.run(["chroot", str(root), "python3", "-m", "venv", "/opt/python"], check=True, timeout=300)
        # This machine's trust store, through which it reaches the package registries, for pip too.
        shutil.copy(HOST_CA, root / "etc/ssl/certs/ca-certificates.crt")
        (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        tarball = Path(tmp) / "base.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True, timeout=600)
        engine("import", "--change", f"ENV PATH={PATH}", "--change", 'CMD ["python"]', str(tarball), BASE)


@pytest.fixture(scope="module")
def image() -> str:
    ensure_base()
    # Docker's image format: the OCI format has no HEALTHCHECK, and podman would drop it.
    engine("build", "--format", "docker", "--network", "host", *limits(), "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(REPO),
           timeout=1800)
    return IMAGE


@pytest.fixture()
def container(image: str):
    port = free_port()
    name = f"labelqueue-ci-{os.getpid()}"
    engine("run", "-d", "--name", name, *limits(), "-p", f"127.0.0.1:{port}:9090", image)
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        logs = engine("logs", name, check=False)
        engine("rm", "-f", name, check=False, timeout=120)
        print(logs.stdout[-2000:], logs.stderr[-2000:])


def health(url: str) -> dict | None:
    try:
        response = httpx.get(f"{url}/health", timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def test_the_image_serves_health_as_a_non_root_user_and_passes_its_own_healthcheck(container):
    name, url = container
    wait_for(lambda: health(url) is not None, timeout=180, what="/health of the labelqueue container")
    assert health(url)["status"] == "UP"
    assert engine("healthcheck", "run", name, check=False).returncode == 0  # the Dockerfile's HEALTHCHECK
    assert engine("exec", name, "id", "-u").stdout.strip() == "10001"
    assert httpx.get(f"{url}/openapi.json", timeout=5).json()["openapi"].startswith("3.1")
