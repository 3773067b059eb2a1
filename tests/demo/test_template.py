"""The demo's SAM template: its tracing switches read as AWS reads them, and the local
API Gateway and Lambda runtime honouring them (segments caught by a UDP listener)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluoroscope.demo.apigateway import ApiGatewayStage, Route
from fluoroscope.demo.lambda_runtime import FunctionConfig, LambdaService
from fluoroscope.demo.template import DEFAULT_TEMPLATE, TemplateError, load_template
from tests.sdk.conftest import UDPDaemon, flatten

ROOT = str(Path(__file__).resolve().parents[2])


def test_the_shipped_template() -> None:
    template = load_template(DEFAULT_TEMPLATE)
    assert template.api_tracing is True
    assert template.tracing_of("orders-api-createOrder") == "Active"
    assert template.tracing_of("orders-api-notify") == "PassThrough"


def test_globals_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Globals:\n  Api: {TracingEnabled: false}\n  Function: {Tracing: PassThrough}\n"
        "Resources:\n"
        "  A: {Type: AWS::Serverless::Function, Properties: {FunctionName: a, Tracing: Active}}\n"
        "  B: {Type: AWS::Serverless::Function, Properties: {CodeUri: !Ref X}}\n"
    )
    template = load_template(path)
    assert (template.api_tracing, template.tracing_of("a"), template.tracing_of("B")) == (
        False, "Active", "PassThrough",
    )  # fmt: skip
    path.write_text("Globals:\n  Function: {Tracing: Sometimes}\n")
    with pytest.raises(
        TemplateError, match=r"Globals\.Function\.Tracing must be Active or PassThrough"
    ):
        load_template(path)
    path.write_text("Globals: [1\n")
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(path)


@pytest.fixture
def daemon() -> Iterator[UDPDaemon]:
    d = UDPDaemon()
    yield d
    d.close()


def _deploy(
    daemon: UDPDaemon, *, api_tracing: bool, mode: str
) -> tuple[LambdaService, ApiGatewayStage]:
    lambdas = LambdaService(
        [FunctionConfig("echo-fn", "tests.demo.handlers:echo", tracing=mode)],
        daemon_address=daemon.address, standby=0, task_root=ROOT,
    )  # fmt: skip
    lambdas.start()
    api = ApiGatewayStage(
        "api", "prod", [Route("GET", "/echo", "echo-fn")], lambda_url=lambdas.url,
        daemon_address=daemon.address, tracing=api_tracing,
    )  # fmt: skip
    api.start()
    return lambdas, api


def _get(api: ApiGatewayStage, header: str | None = None) -> int:
    request = urllib.request.Request(f"{api.url}/echo")
    if header:
        request.add_header("X-Amzn-Trace-Id", header)
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


@pytest.mark.parametrize(
    ("api_tracing", "mode", "header", "origins"),
    [
        (True, "PassThrough", None, {"AWS::ApiGateway::Stage", "AWS::Lambda", "AWS::Lambda::Function"}),
        (False, "Active", None, {"AWS::Lambda", "AWS::Lambda::Function"}),
        (False, "PassThrough", None, set()),
        (False, "PassThrough", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
         {"AWS::Lambda", "AWS::Lambda::Function"}),
    ],
)  # fmt: skip
def test_the_switches_decide_who_traces(
    daemon: UDPDaemon, api_tracing: bool, mode: str, header: str | None, origins: set[str]
) -> None:
    lambdas, api = _deploy(daemon, api_tracing=api_tracing, mode=mode)
    try:
        assert _get(api, header) == 200
    finally:
        api.close()  # both flush what they hold; the function's process has stopped too
        lambdas.close()
    if origins:
        docs = daemon.documents(
            1, timeout=30, until=lambda d: {e.get("origin") for e in flatten(d).values()} >= origins
        )
    else:
        docs = daemon.quiet(0.5)
    seen = {e.get("origin") for e in flatten(docs).values() if e.get("origin")}
    assert seen == origins, json.dumps(docs)[:500]
    if header and origins:
        assert {d["trace_id"] for d in docs} == {header[5:40]}
