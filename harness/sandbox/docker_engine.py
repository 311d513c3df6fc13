"""The Docker engine and the sandbox image: start `dockerd` where none runs, build the image locally.

There is no image registry to pull from, so the image is built here from Debian packages:
`debootstrap --variant=minbase --include=python3` of the host's Debian suite into a temporary folder, the
package caches and documentation removed, then `docker import` of that root filesystem (Docker's documented
way to make a base image from a tarball: docs.docker.com/build/building/base-images). The image holds
Debian's python3 and nothing of ours: the container gets `harness/` and `benchmarks/` mounted read-only.

The tag names a digest of the recipe (suite, packages, the pruning), so a build is done once per machine
and reused by every later run; `execrl sandbox build-image --force` rebuilds it. Building takes about a
minute (most of it debootstrap downloading and unpacking ~90 packages) and the image is ~200 MB.

Run `execrl sandbox build-image` once before `--sandbox docker`; the backend refuses a missing image with
that command in its message instead of building behind the user's back.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from execrl.benchmarks.errors import UserError

IMAGE_NAME = "execrl-sandbox"
PACKAGES = ("python3",)
"""Installed on top of debootstrap's minbase (python3 brings the standard library the sandbox needs)."""
PRUNED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")
"""Folders emptied before the import: nothing in the sandbox reads them."""
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ENGINE_START_TIMEOUT = 60.0
DOCKERD_LOG = Path(tempfile.gettempdir()) / "execrl-dockerd.log"
BUILD_LOCK = Path(tempfile.gettempdir()) / "execrl-image-build.lock"


class DockerUnavailable(UserError, RuntimeError):
    """No Docker engine can be reached or started, or the sandbox image is missing: one line and exit 2."""


def host_suite() -> str:
    """The Debian suite of this machine (`VERSION_CODENAME` in /etc/os-release), e.g. `bookworm`.

    The container's python3 is then the same minor version as the host's Debian python3.
    """
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or "bookworm"
    except OSError:
        pass
    return "bookworm"


def image_tag(suite: str | None = None) -> str:
    """`execrl-sandbox:<suite>-<digest of the recipe>`: a changed recipe gets a new tag, so a stale image is never
    used for a new recipe."""
    suite = suite or host_suite()
    recipe = "\n".join([suite, "minbase", *PACKAGES, *PRUNED, "import-v1"])
    return f"{IMAGE_NAME}:{suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def _docker(*args: str, timeout: float = 30.0, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, timeout=timeout, **kwargs)


def engine_running() -> bool:
    """Whether `docker info` reaches an engine."""
    if shutil.which("docker") is None:
        return False
    try:
        return _docker("info", "--format", "{{.ServerVersion}}", timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_engine(timeout: float = ENGINE_START_TIMEOUT) -> None:
    """Make sure an engine answers: start `dockerd` (as root, in its own session, logging to DOCKERD_LOG) when
    none runs. Raises DockerUnavailable saying why when there is none and none can be started."""
    if engine_running():
        return
    if shutil.which("docker") is None:
        raise DockerUnavailable("no `docker` command (Debian: apt-get install docker.io)")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise DockerUnavailable("no Docker engine runs and there is no `dockerd` to start (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise DockerUnavailable("no Docker engine runs, and only root can start `dockerd`")
    # No bridge and no iptables rules: sandbox containers run with --network none, so the engine needs neither,
    # and a machine whose kernel lacks netfilter can still run it.
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(
            [dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_running():
            return
        time.sleep(0.5)
    raise DockerUnavailable(f"dockerd did not answer within {timeout:.0f}s (its log: {DOCKERD_LOG})")


def image_exists(tag: str) -> bool:
    return _docker("image", "inspect", tag).returncode == 0


def build_image(force: bool = False, suite: str | None = None, mirror: str = DEFAULT_MIRROR) -> str:
    """Build the sandbox image unless it exists (or `force`); returns its tag. Builds are serialised machine-wide
    (a lock file), so two processes that need the image at once (pytest-xdist workers) build it once."""
    import fcntl

    suite = suite or host_suite()
    tag = image_tag(suite)
    ensure_engine()
    if image_exists(tag) and not force:
        return tag
    with open(BUILD_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_exists(tag) and not force:  # built by whoever held the lock before us
            return tag
        return _build(tag, suite, mirror)


def _build(tag: str, suite: str, mirror: str) -> str:
    if shutil.which("debootstrap") is None:
        raise DockerUnavailable("building the sandbox image needs `debootstrap` (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise DockerUnavailable("building the sandbox image needs root (debootstrap makes device nodes and chroots)")
    work = Path(tempfile.mkdtemp(prefix="execrl-image-", dir="/var/tmp"))
    try:
        root = work / "root"
        run = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(root), mirror],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise DockerUnavailable(f"debootstrap {suite} failed: {(run.stderr or run.stdout)[-500:]}")
        for folder in PRUNED:
            shutil.rmtree(root / folder, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise DockerUnavailable(f"docker import failed: {imported.stderr[-500:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tag


def ready_image() -> str:
    """The sandbox image's tag, with the engine started if needed; DockerUnavailable (naming the command that
    builds it) when the image was never built."""
    ensure_engine()
    tag = image_tag()
    if not image_exists(tag):
        raise DockerUnavailable(f"the sandbox image {tag} is not built yet: run `execrl sandbox build-image`")
    return tag


@dataclass(kw_only=True)
class BuildImage:
    """Build the docker backend's image from Debian packages (debootstrap + docker import); done once per machine."""

    force: bool = False
    """Rebuild even when the image of the current recipe exists."""
    suite: str | None = None
    """Debian suite to bootstrap (default: this machine's, so the container's python3 matches the host's)."""
    mirror: str = DEFAULT_MIRROR
    """Debian mirror debootstrap downloads from."""


def build_image_main(argv: list[str]) -> int:
    from execrl.harness.flags import parse

    cfg = parse(BuildImage, argv)
    start = time.monotonic()
    tag = build_image(force=cfg.force, suite=cfg.suite, mirror=cfg.mirror)
    print(f"{tag} ready ({time.monotonic() - start:.0f}s)", file=sys.stderr)
    return 0


COMMANDS = {"build-image": ("execrl.harness.sandbox.docker_engine:build_image_main", BuildImage.__doc__ or "")}


def main(argv: list[str]) -> int:
    from execrl.harness.cli import dispatch

    return dispatch("execrl sandbox", COMMANDS, argv)
