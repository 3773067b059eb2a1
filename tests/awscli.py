"""The AWS CLI (``awscli`` from PyPI) for tests: installed into a virtual environment of
its own by ``scripts/install-awscli`` (its exact botocore pin must not replace ours), and
run against a test server with throwaway credentials and no user configuration."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


def install() -> str:
    """The ``aws`` command of the CLI's own environment (installed on first use)."""
    made = subprocess.run(
        [str(ROOT / "scripts" / "install-awscli")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert made.returncode == 0, f"scripts/install-awscli failed:\n{made.stderr[-3000:]}"
    return made.stdout.strip().splitlines()[-1]


def run(
    aws: str, server: ServerProcess, service: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``aws SERVICE ARGS --endpoint-url <server> --output json``, one attempt."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_MAX_ATTEMPTS="1",
    )
    return subprocess.run(
        [aws, service, *args, "--endpoint-url", server.url, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
