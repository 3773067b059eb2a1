"""The tracing switches of the demo app's SAM template (``template.yaml``, shipped here).

:func:`load_template` reads a SAM-style template as AWS users write it and returns what
the local API Gateway and Lambda runtime honour, as AWS does:

* ``api_tracing``: ``TracingEnabled`` of the ``AWS::Serverless::Api`` resource, else of
  ``Globals.Api`` (default false, as in SAM). Off: the stage starts no trace and emits no
  segment; the caller's ``X-Amzn-Trace-Id`` header (if any) goes on to Lambda unchanged.
* ``function_tracing``: per function (by ``FunctionName``, else the logical id),
  ``Tracing`` of the function, else of ``Globals.Function`` (default ``PassThrough``, as
  Lambda's ``TracingConfig``). ``Active``: the function traces on its own (the sampler
  decides when no header decided); ``PassThrough``: only when the incoming header says
  ``Sampled=1``.

Intrinsic functions (``!Ref``, ``!Sub``, ...) are read as plain values (they do not decide
any switch). Raises :class:`TemplateError` (with the file and the key) for an unreadable
file or a switch of the wrong type or value. Pure; no AWS call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = ["DEFAULT_TEMPLATE", "Template", "TemplateError", "load_template"]

DEFAULT_TEMPLATE: Final = Path(__file__).with_name("template.yaml")
MODES: Final = ("Active", "PassThrough")


class TemplateError(ValueError):
    """The template cannot be read or one of its tracing switches is wrong."""


@dataclass(frozen=True, slots=True)
class Template:
    api_tracing: bool = False
    function_tracing: dict[str, str] = field(default_factory=dict)
    default_function_tracing: str = "PassThrough"

    def tracing_of(self, function: str) -> str:
        """``Active`` or ``PassThrough`` for the function named ``function``."""
        return self.function_tracing.get(function, self.default_function_tracing)


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsic tags read as plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _intrinsic)


def _section(value: object, where: str, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TemplateError(f"{path}: {where} must be a mapping")
    return value


def _flag(value: object, where: str, path: Path) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TemplateError(f"{path}: {where} must be true or false, got {value!r}")


def _mode(value: object, where: str, path: Path) -> str:
    if value not in MODES:
        raise TemplateError(f"{path}: {where} must be Active or PassThrough, got {value!r}")
    return str(value)


def load_template(path: str | Path = DEFAULT_TEMPLATE) -> Template:
    """The tracing switches of the template at ``path`` (see the module docstring)."""
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: cannot read the template: {exc}") from None
    doc = _section(doc, "the template", path)
    globals_ = _section(doc.get("Globals"), "Globals", path)
    api_globals = _section(globals_.get("Api"), "Globals.Api", path)
    fn_globals = _section(globals_.get("Function"), "Globals.Function", path)
    api_tracing = False
    if "TracingEnabled" in api_globals:
        api_tracing = _flag(api_globals["TracingEnabled"], "Globals.Api.TracingEnabled", path)
    default = "PassThrough"
    if "Tracing" in fn_globals:
        default = _mode(fn_globals["Tracing"], "Globals.Function.Tracing", path)
    functions: dict[str, str] = {}
    for name, resource in _section(doc.get("Resources"), "Resources", path).items():
        resource = _section(resource, f"Resources.{name}", path)
        props = _section(resource.get("Properties"), f"Resources.{name}.Properties", path)
        kind = resource.get("Type")
        if kind in ("AWS::Serverless::Api", "AWS::ApiGateway::Stage") and "TracingEnabled" in props:
            api_tracing = _flag(props["TracingEnabled"], f"Resources.{name}.TracingEnabled", path)
        elif kind == "AWS::Serverless::Function":
            mode = default
            if "Tracing" in props:
                mode = _mode(props["Tracing"], f"Resources.{name}.Properties.Tracing", path)
            functions[str(props.get("FunctionName") or name)] = mode
    return Template(api_tracing, functions, default)
