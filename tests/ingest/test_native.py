"""The ingest merge compiled by mypyc writes exactly what its Python source writes.

``setup.py`` compiles the modules of :data:`fluoroscope.native.COMPILED` into C
extensions where it can; where it cannot they run as Python. Both must store the same
rows: the same seeded stream of documents (in-progress copies, streamed subsegments,
re-sends, late documents whose traces are evicted and reloaded from a real store) goes
through each in a process of its own, and every Arrow table the merge encodes must be
byte-identical. (A change to one line of the summary's arithmetic, run as Python, made
20 of the 100 tables differ.)
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from fluoroscope.native import COMPILED, compiled, stale

ROOT = Path(__file__).resolve().parents[2]


def _run(mode: str, seed: int, *more: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.ingest.nativediff", mode, str(seed), *more],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def _built() -> list[str]:
    """The modules built as C extensions; the test is skipped where none was."""
    built = [name for name, is_compiled in compiled().items() if is_compiled]
    if not built:
        pytest.skip("no C extension was built (FLUOROSCOPE_PURE_PYTHON=1, or no compiler)")
    return built


@pytest.mark.slow
def test_compiled_and_pure_python_write_the_same_rows() -> None:
    built = _built()
    native = _run("compiled", 7)
    pure = _run("pure", 7)
    assert [n for n, c in native["compiled"].items() if c] == built
    assert not any(pure["compiled"].values())
    assert native["reloaded"] == pure["reloaded"] > 100  # evictions and reloads exercised
    assert len(native["digests"]) == len(pure["digests"]) >= 60
    for ours, theirs in zip(native["digests"], pure["digests"], strict=True):
        assert ours == theirs, f"batch {ours[0]}, table {ours[1]} differs"


def _value(rng: random.Random, depth: int = 0) -> Any:
    """An attribute value of any OTLP type, nested a little."""
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -0.0, float("inf"), float("nan"), 1e300, rng.random()])
    if kind == 4:
        return rng.randbytes(rng.randrange(8))
    if kind == 5:
        return "".join(rng.choice('aZ/é 💡"\\<>{}') for _ in range(rng.randrange(12)))
    if kind in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {f"k{i}": _value(rng, depth + 1) for i in range(rng.randrange(3))}


_KEYS = (
    "http.request.method", "http.method", "url.full", "http.url", "url.path", "http.target",
    "server.address", "http.response.status_code", "http.status_code", "rpc.system",
    "rpc.service", "rpc.method", "aws.region", "aws.dynamodb.table_names", "db.system",
    "db.statement", "db.name", "peer.service", "user_agent.original", "client.address",
    "exception.type", "exception.message", "aws.xray.annotations", "enduser.id", "x",
)  # fmt: skip


_GOOD: tuple[dict[str, Any], ...] = (
    {},
    {"http.request.method": "POST", "url.scheme": "https", "server.address": "shop.example.com",
     "url.path": "/orders", "http.response.status_code": 201, "http.route": "/orders"},
    {"rpc.system": "aws-api", "rpc.service": "DynamoDB", "rpc.method": "PutItem",
     "aws.region": "us-east-1", "aws.dynamodb.table_names": ["orders"]},
    {"http.request.method": "GET", "url.full": "http://payments:8080/charge?x=1",
     "http.response.status_code": 503, "peer.service": "payments"},
    {"db.system": "postgresql", "db.statement": "SELECT 1", "db.name": "shop",
     "server.address": "db", "db.user": "app"},
    {"http.method": "GET", "http.url": "https://api.example.com/v1/users/7",
     "http.status_code": 429, "net.peer.name": "api.example.com"},
)  # fmt: skip
"""Attributes of real spans by the conventions the translation reads."""


def _requests(rng: random.Random, count: int) -> bytes:
    """``count`` OTLP requests of good and odd spans, length-prefixed."""
    from tests.ingest.test_otlp_translate import request

    out = bytearray()
    for _ in range(count):
        trace = rng.randbytes(16)
        spans: list[dict[str, Any]] = []
        for _ in range(rng.randrange(1, 6)):
            start = int((1_800_000_000 + rng.random()) * 1e9)
            span: dict[str, Any] = {
                "trace_id": trace if rng.random() < 0.9 else rng.randbytes(rng.randrange(17)),
                "span_id": rng.randbytes(8 if rng.random() < 0.95 else rng.randrange(9)),
                "parent": spans[-1]["span_id"] if spans and rng.random() < 0.7 else b"",
                "kind": rng.randrange(6),
                "name": rng.choice(["GET /orders", "DynamoDB.PutItem", "", "x" * 300, "SELECT"]),
                "start": start,
                "end": start + rng.randrange(-5, 10**9),
                "attrs": {
                    **rng.choice(_GOOD),
                    **{rng.choice(_KEYS): _value(rng) for _ in range(rng.randrange(4))},
                },
            }
            if rng.random() < 0.3:
                span["status"] = (rng.randrange(3), "boom")
            if rng.random() < 0.2:
                span["events"] = [("exception", {"exception.type": "E", "exception.message": "m"})]
            spans.append(span)
        resource = {"service.name": rng.choice(["shop", "pay", ""]), "cloud.provider": "aws"}
        body = request(*spans, resource=resource).SerializeToString()
        out += len(body).to_bytes(4, "little") + body
    return bytes(out)


@pytest.mark.slow
def test_compiled_and_pure_python_translate_otlp_alike(tmp_path: Path) -> None:
    _built()
    corpus = tmp_path / "requests.bin"
    corpus.write_bytes(_requests(random.Random(11), 400))
    native = _run("compiled", 0, str(corpus))
    pure = _run("pure", 0, str(corpus))
    assert native["compiled"]["fluoroscope.ingest.otlp.translate"]
    assert not any(pure["compiled"].values())
    assert len(native["digests"]) == len(pure["digests"]) == 800
    for index, (ours, theirs) in enumerate(zip(native["digests"], pure["digests"], strict=True)):
        assert ours == theirs, f"request {index // 2} translates differently"


@pytest.mark.slow
def test_compiled_and_pure_python_screen_and_route_datagrams_alike() -> None:
    _built()
    native = _run("compiled", 5, "datagrams")
    pure = _run("pure", 5, "datagrams")
    assert native["compiled"]["fluoroscope.ingest.udp"]
    assert native["compiled"]["fluoroscope.ingest.shards"]
    assert not any(pure["compiled"].values())
    assert len(native["digests"]) == len(pure["digests"]) == 3_001
    for index, (ours, theirs) in enumerate(zip(native["digests"], pure["digests"], strict=True)):
        assert ours == theirs, f"datagram {index} is screened or routed differently"


def test_every_compiled_module_is_built_where_a_compiler_is() -> None:
    """An install made with the README's command builds every module; a partial build
    would run part of the merge as Python without a word."""
    found = compiled()
    assert set(found) == set(COMPILED)
    if os.environ.get("FLUOROSCOPE_PURE_PYTHON") != "1" and any(found.values()):
        assert all(found.values()), found


def test_a_source_edited_after_its_build_is_reported(tmp_path: Path) -> None:
    name = COMPILED[0]
    *package, module = name.split(".")
    where = tmp_path.joinpath(*package)
    where.mkdir(parents=True)
    source = where / f"{module}.py"
    extension = where / f"{module}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    source.write_text("x = 1\n")
    extension.write_bytes(b"")
    assert stale(tmp_path) == []  # no record of a build: nothing to judge
    built = {name: hashlib.sha256(b"x = 1\n").hexdigest()}
    (tmp_path / "fluoroscope" / "native.sha256").write_text(json.dumps(built))
    assert stale(tmp_path) == []
    source.write_text("x = 2\n")  # edited after the build
    assert stale(tmp_path) == [name]
    source.write_text("x = 1\n")  # back as built (its time is newer: no matter)
    assert stale(tmp_path) == []
    source.write_text("x = 2\n")
    extension.unlink()  # no extension for it: it runs as Python, nothing stale
    assert stale(tmp_path) == []
