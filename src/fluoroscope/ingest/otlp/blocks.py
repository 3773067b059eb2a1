"""The ``http``, ``aws``, ``sql`` and ``cause`` blocks of a segment made from a span.

These follow the OpenTelemetry Collector's awsxray exporter (its ``http``, ``aws``,
``sql`` and ``cause`` translators), so OpenTelemetry data reads as it does in X-Ray.
Old and new semantic conventions are both read (``http.method`` and
``http.request.method``, ``http.url`` and ``url.full``, ...).

Each builder takes the span's attributes as a plain dict (``attrs``); what a block
consumes is named by :data:`HTTP_KEYS`, :data:`AWS_KEYS` and :data:`SQL_KEYS` (the
translator leaves those out of annotations and metadata). Pure functions apart from
the random exception ids; thread-safe.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "AWS_KEYS",
    "HTTP_KEYS",
    "SQL_KEYS",
    "ResourceFacts",
    "make_cause",
    "make_http",
    "make_span_aws",
    "make_sql",
    "resource_facts",
    "status_flags",
]

SERVER: Final = 2
CLIENT: Final = 3
PRODUCER: Final = 4
STATUS_ERROR: Final = 2

_SQL_SYSTEMS: Final = frozenset(
    {"db2", "derby", "hive", "mariadb", "mssql", "mysql", "oracle", "postgresql", "sqlite",
     "teradata", "other_sql"}
)  # fmt: skip

_HTTP_TRIGGERS: Final = frozenset((
    "http.method", "http.request.method", "http.status_code", "http.response.status_code",
    "http.url", "url.full", "http.scheme", "url.scheme", "http.host", "http.target",
    "http.server_name", "net.host.port", "url.path", "http.user_agent", "user_agent.original",
    "http.client_ip",
))  # fmt: skip

HTTP_KEYS: Final = _HTTP_TRIGGERS | frozenset((
    "client.address", "net.peer.ip", "network.peer.address", "net.host.name",
    "host.name", "server.address", "server.port", "net.peer.name", "net.peer.port", "url.query",
    "http.response.body.size", "http.response_content_length",
))  # fmt: skip

AWS_KEYS: Final = frozenset((
    "aws.operation", "rpc.method", "aws.account_id", "aws.region", "aws.request_id",
    "aws.requestId", "aws.queue_url", "aws.queue.url", "aws.table_name", "aws.table.name",
))  # fmt: skip


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _ip(value: object) -> str:
    if not isinstance(value, str) or not _is_ip(value):
        return ""
    return value


@functools.lru_cache(maxsize=4096)
def _is_ip(value: str) -> bool:
    """Whether ``value`` is an IP address (cached: a service sees the same few clients,
    and parsing one takes ``ipaddress`` microseconds)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# -- http ------------------------------------------------------------------------------


def make_http(attrs: Mapping[str, Any], kind: int) -> dict[str, Any] | None:
    """The ``http`` block (consuming :data:`HTTP_KEYS`), or None when the span has no
    HTTP attribute."""
    if _HTTP_TRIGGERS.isdisjoint(attrs):
        return None
    get = attrs.get
    request: dict[str, Any] = {}
    response: dict[str, Any] = {}
    method = get("http.method", get("http.request.method"))
    if method is not None:
        request["method"] = _str(method)
    agent = get("http.user_agent", get("user_agent.original"))
    if agent is not None:
        request["user_agent"] = _str(agent)
    peer_ip = _ip(get("net.peer.ip")) or _ip(get("network.peer.address"))
    client_ip = _str(get("http.client_ip")) or peer_ip
    forwarded = _ip(get("client.address"))
    if forwarded:
        client_ip = forwarded
    if client_ip:
        request["client_ip"] = client_ip
        if not peer_ip:
            request["x_forwarded_for"] = True
    url = get("http.url", get("url.full"))
    if url is not None:
        request["url"] = _str(url)
    else:
        scheme = _str(get("http.scheme", get("url.scheme"))) or "http"
        if kind == SERVER:
            host = get("http.host")
            for key in ("http.server_name", "net.host.name", "host.name", "server.address"):
                if host is None:
                    host = get(key)
            port = get("net.host.port", get("server.port"))
            target = get("http.target")
            if target is None and get("url.path") is not None:
                target = _str(get("url.path"))
                query = get("url.query")
                if query:
                    target += "?" + _str(query)
        else:
            host = get("http.host", get("net.peer.name", get("net.peer.ip")))
            if host is None:
                host = get("server.address")
            port = get("net.peer.port", get("server.port"))
            target = get("http.target")
        if host is not None:
            text = f"{scheme}://{_str(host)}"
            number = _int(port)
            if number is not None and not (
                (scheme == "http" and number == 80) or (scheme == "https" and number == 443)
            ):
                text += f":{number}"
            request["url"] = text + (_str(target) if target is not None else "/")
    status = _int(get("http.status_code", get("http.response.status_code")))
    if status is not None and 0 <= status <= 999:
        response["status"] = status
    length = 0
    if attrs.get("message.type") == "RECEIVED":
        length = _int(get("messaging.message.payload_size_bytes")) or 0
    response["content_length"] = length
    block: dict[str, Any] = {}
    if request:
        block["request"] = request
    block["response"] = response
    return block


# -- fault, error, throttle and cause ---------------------------------------------------


def status_flags(attrs: Mapping[str, Any], status_code: int) -> tuple[bool, bool, bool]:
    """``(error, fault, throttle)`` from the HTTP status, else the span's status."""
    code = _int(attrs.get("http.status_code", attrs.get("http.response.status_code")))
    if code is None or code < 400 or code > 599:
        return False, status_code == STATUS_ERROR, False
    if code < 500:
        return True, False, code == 429
    return False, True, False


def make_cause(
    span: Any,
    kind: int,
    status_code: int,
    attrs: Mapping[str, Any],
    language: str,
    values: Any,
) -> tuple[dict[str, Any] | None, bool]:
    """The ``cause`` block: ``exception`` events (with stacks parsed by ``language``),
    failed AWS SDK HTTP attempts, else the status message of an ERROR span; and whether
    it consumed ``http.status_text``. ``values`` turns an event's attributes into a dict."""
    aws_sdk = attrs.get("rpc.system") == "aws-api"
    exceptions: list[dict[str, Any]] = []
    found = False
    for event in span.events:
        name = event.name
        if name == "exception":
            found = True
            eattrs = values(event.attributes)
            exceptions.extend(
                _parse_exception(
                    _str(eattrs.get("exception.type")),
                    _str(eattrs.get("exception.message")),
                    _str(eattrs.get("exception.stacktrace")),
                    kind in (CLIENT, PRODUCER),
                    language,
                )
            )
        elif aws_sdk and name == "HTTP request failure":
            found = True
            eattrs = values(event.attributes)
            code = eattrs.get("http.response.status_code")
            message = eattrs.get("aws.http.error_message")
            if code is not None and message is not None:
                when = event.time_unix_nano // 1000 / 1_000_000
                exceptions.append(
                    {
                        "id": os.urandom(8).hex(),
                        "type": "aws.http.error.event",
                        "remote": True,
                        "message": f"{_str(code)}@{when:.6f}@{_str(message)}",
                    }
                )
    if found:
        return {"exceptions": exceptions}, False
    if status_code != STATUS_ERROR:
        return None, False
    message = span.status.message
    text = attrs.get("http.status_text")
    if not message and text is not None:
        message = _str(text)
    if not message:
        return None, text is not None
    return {"exceptions": [{"id": os.urandom(8).hex(), "message": message}]}, text is not None


def _parse_exception(
    kind: str, message: str, stack: str, remote: bool, language: str
) -> list[dict[str, Any]]:
    first: dict[str, Any] = {
        "id": os.urandom(8).hex(), "type": kind, "remote": remote, "message": message,
    }  # fmt: skip
    exceptions = [first]
    if not stack:
        return exceptions
    if language in ("java", "php"):
        _java_stack(stack, exceptions)
    elif language == "python":
        _python_stack(stack, exceptions)
    elif language in ("javascript", "nodejs", "webjs"):
        _javascript_stack(stack, exceptions)
    return exceptions


def _chain(exceptions: list[dict[str, Any]], kind: str, message: str) -> dict[str, Any]:
    new = {
        "id": os.urandom(8).hex(),
        "type": kind,
        "remote": exceptions[0]["remote"],
        "message": message,
    }
    exceptions[-1]["cause"] = new["id"]
    exceptions.append(new)
    return new


def _java_stack(stack: str, exceptions: list[dict[str, Any]]) -> None:
    lines = stack.splitlines()[1:]
    current = exceptions[0]
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("\tat ") and "(" in line and line.endswith(")"):
            paren = line.index("(")
            label = line[4:paren]
            if "/" in label:
                label = label[label.index("/") + 1 :]
            path = line[paren + 1 : -1]
            number = 0
            if ":" in path:
                path, _, digits = path.partition(":")
                number = int(digits) if digits.isdigit() else 0
            current.setdefault("stack", []).append({"path": path, "line": number, "label": label})
        elif line.startswith("Caused by: "):
            kind, _, message = line[len("Caused by: ") :].partition(": ")
            while index < len(lines) and not lines[index].startswith("\tat "):
                message += lines[index]
                index += 1
            current = _chain(exceptions, kind, message)


def _python_stack(stack: str, exceptions: list[dict[str, Any]]) -> None:
    lines = stack.split("\n")
    index = len(lines) - 2
    current = exceptions[0]
    while index >= 0:
        line = lines[index]
        if line.startswith("  File "):
            parts = line.split(",")
            if len(parts) == 3:
                path = parts[0][8:-1]
                number = 0
                if parts[1].startswith(" line ") and parts[1][6:].isdigit():
                    number = int(parts[1][6:])
                label = parts[2][4:] if parts[2].startswith(" in ") else ""
                current.setdefault("stack", []).append(
                    {"path": path, "line": number, "label": label}
                )
        elif line.startswith("During handling of the above exception, another exception"):
            previous = index - 1
            while previous >= 0 and not lines[previous].startswith("  File "):
                previous -= 1
            if previous < 0:
                return
            message = "\n".join(lines[previous + 2 : index - 1])
            if ":" not in message:
                return
            kind, _, text = message.partition(":")
            current = _chain(exceptions, kind, text[1:])
            index = previous
            continue
        index -= 1


def _javascript_stack(stack: str, exceptions: list[dict[str, Any]]) -> None:
    current = exceptions[0]
    for line in stack.splitlines()[1:]:
        if not line.startswith("    at "):
            continue
        label, path, number = "", "", 0
        paren = line.find("(")
        if paren >= 0 and line.endswith(")"):
            label, path = line[7:paren].strip(), line[paren + 1 : -1]
        elif paren < 0:
            path = line[7:]
        pieces = path.rsplit(":", 2)
        if len(pieces) == 3 and pieces[1].isdigit():
            path, number = pieces[0], int(pieces[1])
        elif ":" not in path and "native" in path:
            path = "native"
        if path or label or number:
            current.setdefault("stack", []).append({"path": path, "line": number, "label": label})


# -- aws -----------------------------------------------------------------------------


class ResourceFacts:
    """What a resource contributes to each of its spans' segments, worked out once."""

    __slots__ = ("account", "aws", "language", "origin", "service")

    def __init__(
        self,
        aws: dict[str, Any] | None,
        account: str,
        origin: str,
        service: dict[str, Any] | None,
        language: str,
    ) -> None:
        self.aws = aws  # the resource's part of the aws block; None when not on AWS
        self.account = account
        self.origin = origin
        self.service = service
        self.language = language


_ORIGINS: Final = {
    "aws_app_runner": "AWS::AppRunner::Service",
    "aws_eks": "AWS::EKS::Container",
    "aws_elastic_beanstalk": "AWS::ElasticBeanstalk::Environment",
    "aws_ec2": "AWS::EC2::Instance",
}


def _log_groups(value: object) -> list[str]:
    if isinstance(value, str):
        return [part for part in value.split("&") if part]
    if isinstance(value, list):
        return [_str(part) for part in value]
    return []


def resource_facts(res: Mapping[str, Any], log_groups: tuple[str, ...] = ()) -> ResourceFacts:
    """The resource's origin, ``aws`` block part, ``service`` block and SDK language."""
    get = res.get
    provider = _str(get("cloud.provider"))
    platform = _str(get("cloud.platform"))
    origin = ""
    if res and provider in ("", "aws"):
        if platform == "aws_ecs":
            origin = {"ec2": "AWS::ECS::EC2", "fargate": "AWS::ECS::Fargate"}.get(
                _str(get("aws.ecs.launchtype")), "AWS::ECS::Container"
            )
        else:
            origin = _ORIGINS.get(platform, "")
    version = get("service.version", get("container.image.tag"))
    service = {"version": _str(version)} if version is not None else None
    language = _str(get("telemetry.sdk.language"))
    account = _str(get("cloud.account.id"))
    if provider not in ("", "aws"):
        return ResourceFacts(None, account, origin, service, language)
    aws: dict[str, Any] = {}
    zone = _str(get("cloud.availability_zone"))
    host_id = _str(get("host.id"))
    if platform == "aws_ec2" or host_id:
        aws["ec2"] = _compact(
            instance_id=host_id, availability_zone=zone, instance_size=_str(get("host.type")),
            ami_id=_str(get("host.image.id")),
        )  # fmt: skip
    if platform == "aws_ecs":
        aws["ecs"] = _compact(
            container=_str(get("container.name")), container_id=_str(get("container.id")),
            availability_zone=zone, container_arn=_str(get("aws.ecs.container.arn")),
            cluster_arn=_str(get("aws.ecs.cluster.arn")), task_arn=_str(get("aws.ecs.task.arn")),
            task_family=_str(get("aws.ecs.task.family")),
            launch_type=_str(get("aws.ecs.launchtype")),
        )  # fmt: skip
    deploy = _str(get("service.instance.id"))
    if platform == "aws_elastic_beanstalk" and deploy:
        aws["elastic_beanstalk"] = {
            "environment_name": _str(get("service.namespace")),
            "deployment_id": int(deploy) if deploy.isdigit() else 0,
            "version_label": _str(get("service.version")),
        }
    cluster = _str(get("k8s.cluster.name"))
    if platform == "aws_eks" or cluster:
        aws["eks"] = _compact(
            cluster_name=cluster, pod=_str(get("k8s.pod.name")),
            container_id=_str(get("container.id")),
        )  # fmt: skip
    arns = _log_groups(get("aws.log.group.arns"))
    names = _log_groups(get("aws.log.group.names"))
    if arns:
        aws["cloudwatch_logs"] = [
            {"log_group": arn.split(":")[6] if arn.count(":") >= 6 else arn, "arn": arn}
            for arn in arns
        ]
    elif names or log_groups:
        aws["cloudwatch_logs"] = [{"log_group": name} for name in names or log_groups]
    sdk_name = _str(get("telemetry.sdk.name"))
    sdk = f"{sdk_name} for {language}" if sdk_name and language else sdk_name
    xray: dict[str, Any] = {}
    if sdk:
        xray["sdk"] = sdk
    sdk_version = _str(get("telemetry.sdk.version"))
    if sdk_version:
        xray["sdk_version"] = sdk_version
    xray["auto_instrumentation"] = bool(_str(get("telemetry.auto.version")))
    aws["xray"] = xray
    return ResourceFacts(aws, account, origin, service, language)


def _compact(**fields: str) -> dict[str, str]:
    return {key: value for key, value in fields.items() if value}


_SPAN_AWS_KEYS: Final = AWS_KEYS | frozenset(("messaging.url", "aws.dynamodb.table_names"))


def make_span_aws(attrs: Mapping[str, Any], facts: ResourceFacts) -> dict[str, Any] | None:
    """The ``aws`` block: the resource's part plus the span's AWS call attributes
    (:data:`AWS_KEYS` are consumed even when the resource is on another cloud)."""
    if facts.aws is None:
        return None
    aws = dict(facts.aws)
    if _SPAN_AWS_KEYS.isdisjoint(attrs):  # most spans: the resource's part alone
        if facts.account:
            aws["account_id"] = facts.account
        return aws
    get = attrs.get
    account = get("aws.account_id")
    account_text = _str(account) if account is not None else facts.account
    if account_text:
        aws["account_id"] = account_text
    operation = get("aws.operation", get("rpc.method"))
    if operation is not None:
        aws["operation"] = _str(operation)
    region = get("aws.region")
    if region is not None:
        aws["region"] = _str(region)
    request_id = get("aws.request_id", get("aws.requestId"))
    if request_id is not None:
        aws["request_id"] = _str(request_id)
    queue = get("messaging.url", get("aws.queue_url", get("aws.queue.url")))
    if queue is not None:
        aws["queue_url"] = _str(queue)
    tables = get("aws.dynamodb.table_names")
    table = get("aws.table_name", get("aws.table.name"))
    if isinstance(tables, list):
        if len(tables) == 1:
            table = tables[0]
        elif len(tables) > 1:
            table = None
            aws["table_names"] = [_str(t) for t in tables]
    elif isinstance(tables, str):
        table = tables
    if table is not None:
        aws["table_name"] = _str(table)
    return aws


# -- sql -----------------------------------------------------------------------------


SQL_KEYS: Final = frozenset(
    ("db.system", "db.connection_string", "db.name", "db.user", "db.statement", "db.query.text")
)


def make_sql(attrs: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The ``sql`` block of a call to an SQL database (``db.system`` one of them),
    consuming :data:`SQL_KEYS`."""
    system = attrs.get("db.system")
    if system not in _SQL_SYSTEMS:
        return None
    connection = _str(attrs.get("db.connection_string")) or "localhost"
    sql: dict[str, Any] = {
        "url": name,
        "connection_string": f"{connection}/{_str(attrs.get('db.name'))}",
        "database_type": system,
    }
    user = attrs.get("db.user")
    if user is not None:
        sql["user"] = _str(user)
    statement = attrs.get("db.statement", attrs.get("db.query.text"))
    if statement is not None:
        sql["sanitized_query"] = _str(statement)
    return sql
