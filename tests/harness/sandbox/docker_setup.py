"""The Docker engine and sandbox image for the tests that need them: started and built here when missing
(`docker_engine.ensure_engine`, `build_image`: about a minute once per machine, cached by Docker after that).
A test is skipped, with the reason, only when no engine can be reached or started here."""

from __future__ import annotations

import pytest
from execrl.harness.sandbox import docker_engine


def docker_image_or_skip() -> str:
    """The sandbox image's tag, the engine started and the image built if needed; skips when impossible."""
    try:
        docker_engine.ensure_engine()
    except docker_engine.DockerUnavailable as e:
        pytest.skip(f"no Docker engine can be started here: {e}")
    return docker_engine.build_image()
