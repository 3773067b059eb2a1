"""Local sampling rules (xray-protocol §7.1-7.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluoroscope.sdk import (
    InMemoryEmitter,
    LocalSampler,
    SamplingRequest,
    SamplingRulesError,
    Tracer,
)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _count(sampler: LocalSampler, n: int, request: SamplingRequest | None = None) -> int:
    req = request or SamplingRequest()
    return sum(sampler.should_sample(req).sampled for _ in range(n))


def test_default_is_one_per_second_plus_five_percent() -> None:
    clock = Clock()
    never = LocalSampler(clock=clock, random=lambda: 0.99)
    assert _count(never, 100) == 1  # the reservoir only
    clock.now += 0.5
    assert _count(never, 10) == 0  # same second
    clock.now += 0.6
    assert _count(never, 10) == 1  # a new second refills it
    draws = iter([0.049, 0.051] * 50)
    rate = LocalSampler(clock=Clock(), random=lambda: next(draws))
    assert _count(rate, 101) == 1 + 50  # reservoir, then every draw below 0.05


def test_first_matching_rule_wins_and_default_applies_otherwise() -> None:
    rules = {
        "version": 2,
        "rules": [
            {
                "description": "moves",
                "host": "*",
                "http_method": "POST",
                "url_path": "/api/move/*",
                "fixed_target": 0,
                "rate": 1.0,
            },
            {
                "description": "all-api",
                "host": "*.example.com",
                "http_method": "*",
                "url_path": "/api/*",
                "fixed_target": 0,
                "rate": 0.0,
            },
        ],
        "default": {"fixed_target": 0, "rate": 0.0},
    }
    sampler = LocalSampler(rules, clock=Clock(), random=lambda: 0.5)
    move = SamplingRequest(host="shop.example.com", method="post", path="/API/move/up")
    decision = sampler.should_sample(move)
    assert decision.sampled
    assert decision.rule == "moves"
    other = sampler.should_sample(
        SamplingRequest(host="shop.example.com", method="GET", path="/api/x")
    )
    assert not other.sampled
    assert other.rule == "all-api"
    fallback = sampler.should_sample(SamplingRequest(host="other.org", method="GET", path="/"))
    assert not fallback.sampled
    assert fallback.rule == "Default"
    # unknown request attributes match any pattern (the Python SDK's behaviour)
    assert sampler.should_sample(SamplingRequest(method="POST", path="/api/move/x")).rule == "moves"


def test_wildcards_question_mark_and_reservoir_per_rule() -> None:
    rules = {
        "version": 1,
        "rules": [
            {
                "service_name": "svc-?",
                "http_method": "*",
                "url_path": "*",
                "fixed_target": 2,
                "rate": 0,
            }
        ],
        "default": {"fixed_target": 0, "rate": 0},
    }
    clock = Clock()
    sampler = LocalSampler(rules, clock=clock, random=lambda: 0.0)
    assert _count(sampler, 10, SamplingRequest(host="svc-a")) == 2
    assert _count(sampler, 10, SamplingRequest(host="svc-ab")) == 0
    clock.now += 1
    assert _count(sampler, 10, SamplingRequest(host="SVC-B")) == 2


def test_rules_from_file_and_json_text(tmp_path: Path) -> None:
    doc = {"version": 2, "default": {"fixed_target": 0, "rate": 1}, "rules": []}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    assert LocalSampler(path).should_sample(SamplingRequest()).sampled
    assert LocalSampler(str(path)).should_sample(SamplingRequest()).sampled
    assert LocalSampler(json.dumps(doc)).should_sample(SamplingRequest()).sampled


@pytest.mark.parametrize(
    "doc",
    [
        {"version": 3, "default": {"fixed_target": 1, "rate": 0.1}},
        {"version": 2},
        {"version": 2, "default": {"fixed_target": 1, "rate": 0.1, "host": "*"}},
        {"version": 2, "default": {"fixed_target": -1, "rate": 0.1}},
        {"version": 2, "default": {"fixed_target": 1, "rate": "x"}},
        {
            "version": 2,
            "default": {"fixed_target": 1, "rate": 0.1},
            "rules": [{"http_method": "*", "url_path": "*", "fixed_target": 1, "rate": 0.1}],
        },
        {
            "version": 1,
            "default": {"fixed_target": 1, "rate": 0.1},
            "rules": [
                {"host": "*", "http_method": "*", "url_path": "*", "fixed_target": 1, "rate": 0.1}
            ],
        },
    ],
)
def test_invalid_rules_are_refused_with_a_reason(doc: dict[str, object]) -> None:
    with pytest.raises(SamplingRulesError, match="sampling rules"):
        LocalSampler(doc)


def test_unreadable_rules_file(tmp_path: Path) -> None:
    with pytest.raises(SamplingRulesError, match="cannot read"):
        LocalSampler(tmp_path / "missing.json")


def test_tracer_uses_rules_and_unsampled_segments_emit_nothing() -> None:
    emitter = InMemoryEmitter()
    rules = {
        "version": 2,
        "rules": [
            {"host": "*", "http_method": "*", "url_path": "/health", "fixed_target": 0, "rate": 0}
        ],
        "default": {"fixed_target": 0, "rate": 1},
    }
    tracer = Tracer(service="svc", emitter=emitter, sampling_rules=rules)
    with tracer.segment(request=SamplingRequest(path="/health")) as seg:
        assert not seg.sampled
        with tracer.subsegment("child") as sub:
            assert not sub.sampled
    with tracer.segment(request=SamplingRequest(path="/orders")) as seg2:
        assert seg2.sampled
    assert [d["id"] for d in emitter.documents] == [seg2.id]
    # the upstream decision wins over the rules
    with tracer.segment(
        trace_header=f"Root={seg.trace_id};Sampled=1", request=SamplingRequest(path="/health")
    ) as seg3:
        assert seg3.sampled
