"""The README's "Trace your own app" is true: its snippet traces a Flask app's request
with its boto3 and HTTP calls into a real server, where ``fluoroscope traces`` and
``fluoroscope trace`` show it; it links every page under ``docs/`` and every file under
``examples/``; and each example runs as written against a real local server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from fluoroscope.model.ids import new_trace_id
from tests.support import ServerProcess, get_documents, wait_for

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _env(server: ServerProcess, **extra: str) -> dict[str, str]:
    """This environment for a user's process: no proxies, segments to ``server``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if "proxy" not in k.lower() and not k.startswith(("FLUOROSCOPE_", "AWS_"))
    }
    return {**env, "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{server.port}", **extra}


def _entities(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = list(docs)
    while stack:
        entity = stack.pop()
        found.append(entity)
        stack.extend(entity.get("subsegments") or [])
    return found


def test_the_readme_links_every_doc_and_example() -> None:
    links = set(re.findall(r"\]\(((?:docs|examples)/[^)#\s]+)\)", README))
    files = {
        str(p.relative_to(ROOT))
        for folder in ("docs", "examples")
        for p in (ROOT / folder).iterdir()
        if p.is_file()
    }
    assert files - links == set(), "not linked from the README"
    missing = {link for link in links if not (ROOT / link).exists()}
    assert missing == set(), "linked but absent"
    section = _section("Trace your own app")
    for name in sorted(files):
        assert name in section, f"{name} is not linked from 'Trace your own app'"


def test_the_docs_say_only_what_is_true_today() -> None:
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    assert "being written" not in docs
    # the daemon command is documented on its own page, linked wherever else it is named
    others = [p for p in (ROOT / "docs").glob("*.md") if p.name != "daemon.md"]
    for line in "\n".join(p.read_text(encoding="utf-8") for p in others).splitlines():
        if "`fluoroscope daemon`" in line:
            assert "(daemon.md)" in line, line


def test_the_readme_snippet_traces_a_flask_app_and_its_calls(server: ServerProcess) -> None:
    (snippet,) = re.findall(r"```python\n(.*?)```", _section("Trace your own app"), re.S)
    trace_id = new_trace_id(time.time())
    app = (
        "import urllib.request\n\nimport boto3\nfrom flask import Flask\n\n"
        "app = Flask(__name__)\n\n"
        + snippet
        + textwrap.dedent(f"""
        @app.get("/")
        def index() -> str:
            xray = boto3.client("xray", endpoint_url={server.url!r}, region_name="us-east-1",
                                aws_access_key_id="test", aws_secret_access_key="test")
            xray.get_groups()
            with urllib.request.urlopen({server.url + "/api/status"!r}) as response:
                response.read()
            return "ok"

        with app.test_client() as client:
            reply = client.get("/", headers={{"X-Amzn-Trace-Id": "Root={trace_id};Sampled=1"}})
            print(reply.status_code, reply.headers["X-Amzn-Trace-Id"])
            reply.close()  # the request, and its segment, end with the body
        tracer.flush()
        """)
    )
    result = subprocess.run(
        [sys.executable, "-c", app], env=_env(server), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"200 Root={trace_id}"), result.stdout
    client = server.xray()

    seen: list[set[Any]] = [set()]

    def recorded() -> list[dict[str, Any]] | None:
        docs = get_documents(client, trace_id)
        seen[0] = {e.get("name") for e in _entities(docs or [])}
        return docs if docs and {"my-app", "XRay", "127.0.0.1"} <= seen[0] else None

    try:
        entities = _entities(wait_for(recorded, timeout=60))
    except AssertionError:
        pytest.fail(f"recorded entities: {seen[0]}")
    (aws_call,) = [e for e in entities if e.get("namespace") == "aws"]
    assert aws_call["aws"]["operation"] == "GetGroups"
    (http_call,) = [e for e in entities if e.get("namespace") == "remote"]
    assert http_call["http"]["request"]["url"].endswith("/api/status")
    # ... and the terminal shows it, as the section says
    listed = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "traces", "--server", server.url, "--since", "10m"],
        env=_env(server), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0 and trace_id in listed.stdout, listed.stdout + listed.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "trace", trace_id, "--server", server.url],
        env=_env(server), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0 and "GetGroups" in shown.stdout, shown.stdout + shown.stderr


def _run_example(server: ServerProcess, *args: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT, env=_env(server, **env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _services(server: ServerProcess, trace_id: str, expected: set[str]) -> list[dict[str, Any]]:
    """The stored documents of ``trace_id`` once segments of every ``expected`` service
    arrived."""
    client = server.xray()

    def arrived() -> list[dict[str, Any]] | None:
        docs = get_documents(client, trace_id) or []
        return docs if expected <= {d.get("name") for d in docs} else None

    return wait_for(arrived, timeout=60)


@pytest.mark.parametrize(("script", "service"), [
    ("examples/flask_app.py", "orders-web"),
    ("examples/fastapi_app.py", "orders-api"),
])  # fmt: skip
def test_the_web_app_examples_trace_into_a_server(
    server: ServerProcess, script: str, service: str
) -> None:
    out = _run_example(server, script, "--self-test")
    (trace_id,) = set(re.findall(r"Root=(1-[0-9a-f]{8}-[0-9a-f]{24})", out))
    docs = [d for d in _services(server, trace_id, {service}) if d.get("name") == service]
    assert any(e.get("name") == "load" for e in _entities(docs))


def test_the_lambda_example_traces_into_a_server(server: ServerProcess) -> None:
    root = new_trace_id(time.time())
    header = f"Root={root};Parent=53995c3f42cd8ad8;Sampled=1"
    _run_example(server, "examples/lambda_handler.py", _X_AMZN_TRACE_ID=header)
    client = server.xray()

    def both_invocations() -> list[dict[str, Any]] | None:
        docs = get_documents(client, root) or []
        found = [e for e in _entities(docs) if e.get("name") == "orders-fn"]
        return found if len(found) == 2 else None

    invocations = wait_for(both_invocations, timeout=60)
    cold = sorted(bool(e["annotations"]["cold_start"]) for e in invocations)
    assert cold == [False, True]


def test_the_asyncio_example_traces_into_a_server(server: ServerProcess) -> None:
    started = time.time() - 5
    _run_example(server, "examples/asyncio_worker.py")
    client = server.xray()

    def jobs() -> set[int] | None:
        found = client.get_trace_summaries(
            StartTime=started, EndTime=time.time() + 60, FilterExpression='service("worker")'
        )["TraceSummaries"]
        values = {
            int(value["AnnotationValue"]["NumberValue"])
            for summary in found
            for value in summary.get("Annotations", {}).get("job", [])
        }
        return values if len(values) == 5 else None

    assert wait_for(jobs, timeout=60) == {0, 1, 2, 3, 4}
