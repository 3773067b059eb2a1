#!/usr/bin/env python3
"""Write ``src/fluoroscope/server/openapi.json``: the OpenAPI description of the HTTP API.

Every X-Ray operation the server routes (``fluoroscope.server.app.OPERATIONS``) is
described from botocore's own X-Ray service model (``xray`` 2016-04-12, vendored in
``scripts/models/`` at the version its README names, so that a newer botocore's added
shapes do not change what this server is said to answer): its path and
method, its input and output shapes as JSON Schema (constraints included), and its
errors in the server's error shape; ``GET /api/status``, ``/metrics`` and
``/openapi.json`` are described here. The model is a development file only, so the
result is shipped as a data file, and ``tests/server/test_openapi.py`` checks it
matches what this script writes.

Usage: ``PYTHONPATH=src python scripts/generate_openapi.py [--check]``; ``--check``
exits 1 (writing nothing) when the file is out of date.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path
from typing import Any

from fluoroscope.model.groups import group_arn
from fluoroscope.server.app import OPERATIONS
from fluoroscope.server.openapi import OPENAPI_PATH

Schema = dict[str, Any]

MODEL_PATH = Path(__file__).resolve().parent / "models" / "xray-2016-04-12.service-2.json"

_ERROR_STATUS = {"InvalidRequestException": 400, "RuleLimitExceededException": 400}
# the model gives the others' statuses

_GROUP_NAME = r"^[A-Za-z0-9_.\-]{1,32}$"


def _literal(text: str) -> str:
    """``text`` as a regular expression both Python and ECMA 262 read alike."""
    if not re.fullmatch(r"[\w:/-]*", text):
        raise ValueError(f"not a plain literal: {text!r}")
    return text


# Where the server differs from the model's constraints: it answers as X-Ray itself does,
# or takes less.
_OVERRIDES: dict[str, Schema] = {
    # X-Ray's Default sampling rule has priority 10000 (the model says at most 9999).
    "Priority": {"maximum": 10000},
    # What the server takes as a group's name and ARN (fluoroscope.model.groups).
    "GroupName": {"pattern": _GROUP_NAME},
    "GroupARN": {"pattern": f"^{_literal(group_arn(''))}{_GROUP_NAME[1:]}"},
}

# Members the server always answers (the model marks no output member required).
_ANSWERED: dict[str, list[str]] = {
    "PutTraceSegmentsResult": ["UnprocessedTraceSegments"],
    "GetTraceSummariesResult": ["TraceSummaries", "ApproximateTime", "TracesProcessedCount"],
    "BatchGetTracesResult": ["Traces", "UnprocessedTraceIds"],
    "GetServiceGraphResult": ["StartTime", "EndTime", "Services", "ContainsOldGroupVersions"],
    "GetTraceGraphResult": ["Services"],
    "GetTimeSeriesServiceStatisticsResult": [
        "TimeSeriesServiceStatistics",
        "ContainsOldGroupVersions",
    ],
    "GetSamplingRulesResult": ["SamplingRuleRecords"],
    "GetSamplingTargetsResult": [
        "SamplingTargetDocuments",
        "LastRuleModification",
        "UnprocessedStatistics",
    ],
    "CreateGroupResult": ["Group"],
    "GetGroupResult": ["Group"],
    "UpdateGroupResult": ["Group"],
    "GetGroupsResult": ["Groups"],
    "Group": ["GroupName", "GroupARN", "InsightsConfiguration"],
    "GroupSummary": ["GroupName", "GroupARN", "InsightsConfiguration"],
    "Trace": ["Id", "Duration", "LimitExceeded", "Segments"],
    "Segment": ["Id", "Document"],
    "TraceSummary": ["Id", "StartTime", "Duration", "HasFault", "HasError", "HasThrottle",
                     "IsPartial", "ServiceIds", "Revision"],
    "Service": ["ReferenceId", "Name", "Names", "State", "StartTime", "EndTime", "Edges"],
    "Edge": ["ReferenceId", "StartTime", "EndTime", "SummaryStatistics"],
    "UnprocessedTraceSegment": ["Id", "ErrorCode", "Message"],
}  # fmt: skip


def _first_sentence(documentation: str) -> str:
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", documentation)).split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _schema(shape: Schema, shapes: dict[str, Schema]) -> Schema:
    """One botocore shape as JSON Schema; members refer to other shapes by ``$ref``."""
    kind = shape["type"]
    out: Schema
    if kind == "structure":
        members = shape.get("members", {})
        out = {
            "type": "object",
            "properties": {name: _ref(m["shape"]) for name, m in members.items()},
            "additionalProperties": False,
        }
        if shape.get("required"):
            out["required"] = list(shape["required"])
    elif kind == "list":
        out = {"type": "array", "items": _ref(shape["member"]["shape"])}
        if "min" in shape:
            out["minItems"] = shape["min"]
        if "max" in shape:
            out["maxItems"] = shape["max"]
    elif kind == "map":
        out = {
            "type": "object",
            "additionalProperties": _ref(shape["value"]["shape"]),
            "propertyNames": _ref(shape["key"]["shape"]),
        }
        if "min" in shape:
            out["minProperties"] = shape["min"]
        if "max" in shape:
            out["maxProperties"] = shape["max"]
    elif kind == "string":
        out = {"type": "string"}
        if "enum" in shape:
            out["enum"] = list(shape["enum"])
        if "min" in shape:
            out["minLength"] = shape["min"]
        if "max" in shape:
            out["maxLength"] = shape["max"]
    elif kind in ("integer", "long", "double", "float"):
        out = {"type": "integer" if kind in ("integer", "long") else "number"}
        if "min" in shape:
            out["minimum"] = shape["min"]
        if "max" in shape:
            out["maximum"] = shape["max"]
    elif kind == "boolean":
        out = {"type": "boolean"}
    elif kind == "timestamp":
        # rest-json: epoch seconds as a number; the server also accepts ISO-8601
        # strings on the way in, and always answers numbers.
        out = {"type": "number", "description": "epoch seconds"}
    else:
        raise ValueError(f"no JSON Schema for botocore shape type {kind!r}")
    return out


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _closure(roots: list[str], shapes: dict[str, Schema]) -> list[str]:
    """Every shape ``roots`` reach, in a stable order."""
    seen: dict[str, None] = {}
    stack = list(reversed(roots))
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen[name] = None
        shape = shapes[name]
        children = [m["shape"] for m in shape.get("members", {}).values()]
        children += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
        stack.extend(reversed(children))
    return sorted(seen)


def _error_response(code: str) -> Schema:
    return {
        "description": code,
        "headers": {
            "x-amzn-ErrorType": {"schema": {"type": "string"}},
            "x-amzn-RequestId": {"schema": {"type": "string"}},
        },
        "content": {"application/json": {"schema": _ref("Error")}},
    }


def build() -> Schema:
    """The OpenAPI document (module docstring)."""
    model = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    shapes: dict[str, Schema] = model["shapes"]
    operations: dict[str, Schema] = model["operations"]
    paths: Schema = {}
    roots: list[str] = []
    for path, name in sorted(OPERATIONS.items()):
        operation = operations[name]
        http = operation["http"]
        if (http["method"], http["requestUri"]) != ("POST", path):
            raise SystemExit(f"{name}: the model routes {http}, the server {path}")
        request, result = operation["input"]["shape"], operation["output"]["shape"]
        roots += [request, result]
        responses: Schema = {
            "200": {
                "description": f"{name} answered",
                "headers": {"x-amzn-RequestId": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": _ref(result)}},
            }
        }
        for error in [{"shape": "InvalidRequestException"}, *operation.get("errors", [])]:
            code = error["shape"]
            status = shapes[code].get("error", {}).get("httpStatusCode") or _ERROR_STATUS[code]
            responses[str(status)] = _error_response(code)
        paths[path] = {
            "post": {
                "operationId": name,
                "summary": _first_sentence(operation.get("documentation", name)),
                "requestBody": {
                    "required": bool(shapes[request].get("required")),
                    "content": {"application/json": {"schema": _ref(request)}},
                },
                "responses": dict(sorted(responses.items())),
            }
        }
    components = {name: _schema(shapes[name], shapes) for name in _closure(roots, shapes)}
    for name, changes in _OVERRIDES.items():
        components[name].update(changes)
    for name, members in _ANSWERED.items():
        if not set(members) <= components[name]["properties"].keys():
            raise SystemExit(f"{name} has no member {set(members) - components[name].keys()}")
        components[name]["required"] = members
    components["Error"] = {
        "type": "object",
        "properties": {"__type": {"type": "string"}, "message": {"type": "string"}},
        "required": ["__type", "message"],
    }
    components["Status"] = {
        "type": "object",
        "properties": {
            "counters": {"type": "object", "additionalProperties": {"type": "integer"}},
            "cached_traces": {"type": "integer", "minimum": 0},
            "auth_failures": {"type": "object", "additionalProperties": {"type": "integer"}},
            "sampling": {
                "type": "object",
                "description": "The sampling API's calls by operation, statistics documents "
                "by rule, active clients by rule, polls of the busiest clients, refused "
                "documents by error code.",
            },
            "log_writer": {
                "type": "object",
                "description": "The CloudWatch Logs writer's counters since start: batches "
                "and events stored, refused (buffer full: ThrottlingException) and failed; "
                "inserts made (events stored per insert is what sustained ingest costs "
                "follow); bytes queued now; seconds spent reading batches into rows and "
                "inserting them.",
                "additionalProperties": {"type": "number"},
            },
        },
        "required": ["counters", "cached_traces", "auth_failures", "sampling", "log_writer"],
        "additionalProperties": False,
    }
    paths["/api/status"] = {
        "get": {
            "operationId": "GetStatus",
            "summary": "The ingest counters, the number of traces cached by ingest, "
            "the requests access control refused, by reason, the sampling API's counters "
            "and the log writer's.",
            "responses": {
                "200": {
                    "description": "the status",
                    "content": {"application/json": {"schema": _ref("Status")}},
                }
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "GetMetrics",
            "summary": "The server's metrics in the Prometheus text exposition format.",
            "responses": {
                "200": {
                    "description": "the metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "GetOpenApi",
            "summary": "This description of the HTTP API.",
            "responses": {
                "200": {
                    "description": "the description",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Fluoroscope HTTP API",
            "version": model["metadata"]["apiVersion"],
            "description": (
                "The AWS X-Ray API operations this server answers (rest-json: POST with a "
                "JSON body at a fixed path; SigV4 signatures optional on loopback), with "
                "shapes from botocore's X-Ray service model, plus the server's status, "
                "metrics and this description. Generated by scripts/generate_openapi.py."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(components.items()))},
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = render()
    current = OPENAPI_PATH.read_text(encoding="utf-8") if OPENAPI_PATH.exists() else ""
    if args.check:
        if current != text:
            print(f"{OPENAPI_PATH} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        OPENAPI_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {OPENAPI_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
