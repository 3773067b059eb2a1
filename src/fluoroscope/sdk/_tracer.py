"""The tracer: starts segments, opens subsegments, captures functions.

A :class:`Tracer` is an explicit object holding configuration (service name,
emitter, sampler, ``context_missing`` policy); the current entity lives in a
``ContextVar`` shared by all tracers (:mod:`fluoroscope.sdk._context`). A set-once
global tracer (:func:`set_tracer` / :func:`get_tracer`) is a convenience on top.

Everything here runs on application threads. Nothing blocks (emission is queued),
and nothing raises into application code except, by request, the
``context_missing="raise"`` policy and bad explicit arguments at construction.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar, cast, overload

from fluoroscope.model.ids import new_trace_id
from fluoroscope.model.trace_header import (
    NOT_SAMPLED,
    SAMPLED,
    SAMPLING_REQUESTED,
    TraceHeader,
    parse_trace_header,
)
from fluoroscope.sdk import _env
from fluoroscope.sdk._context import CURRENT
from fluoroscope.sdk._emitters import (
    DEFAULT_DAEMON_ADDRESS,
    Emitter,
    UDPEmitter,
    parse_daemon_address,
)
from fluoroscope.sdk._entities import Entity, Segment, Subsegment, sanitize_name
from fluoroscope.sdk._errors import ConfigurationError, ContextMissingError
from fluoroscope.sdk._inert import NOOP, UnsampledSegment
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._recording import RECORDING
from fluoroscope.sdk._sampling import ConstantSampler, LocalSampler, Sampler, SamplingRequest
from fluoroscope.sdk._serialize import python_runtime

__all__ = ["Capture", "Tracer", "get_tracer", "open_subsegment", "set_tracer"]

F = TypeVar("F", bound=Callable[..., Any])

_POLICIES: Final = {
    "log": "log",
    "raise": "raise",
    "ignore": "ignore",
    "log_error": "log",
    "runtime_error": "raise",
    "ignore_error": "ignore",
}


def _policy(value: str | None, *, explicit: bool) -> str | None:
    if value is None:
        return None
    policy = _POLICIES.get(value.strip().lower())
    if policy is None:
        message = f"context_missing must be log, raise or ignore (or LOG_ERROR, RUNTIME_ERROR, IGNORE_ERROR), got {value!r}"
        if explicit:
            raise ConfigurationError(message)
        warn_once("env-context-missing", "%s; using 'log'", message)
    return policy


def _header(value: str | TraceHeader | None) -> TraceHeader | None:
    if value is None or isinstance(value, TraceHeader):
        return value
    parsed = parse_trace_header(value)
    if parsed is None and value:
        warn_once(
            "malformed-trace-header",
            "malformed X-Amzn-Trace-Id header ignored (a new trace is started): %r",
            value[:200],
        )
    return parsed


class Tracer:
    """Records segments and subsegments for one service and sends them to an emitter.

    Arguments (explicit > environment > default):

    - ``service``: segment name; else ``AWS_XRAY_TRACING_NAME``, else
      ``AWS_LAMBDA_FUNCTION_NAME``, else ``"python-app"``.
    - ``emitter``: where closed segments go; else a :class:`UDPEmitter` to
      ``daemon_address`` / ``AWS_XRAY_DAEMON_ADDRESS`` / ``127.0.0.1:2000``.
    - ``sampler``: a :class:`Sampler`; else ``sampling=False`` samples everything;
      else a :class:`LocalSampler` over ``sampling_rules`` (default 1/s + 5 %).
    - ``context_missing``: ``"log"`` (once), ``"raise"`` or ``"ignore"``, what to do
      when there is no current segment; else ``AWS_XRAY_CONTEXT_MISSING``; else log.
    - ``streaming_threshold``: closed subsegments buffered per segment before
      they are streamed as independent documents (100).
    - ``enabled``: False records nothing; else ``AWS_XRAY_SDK_ENABLED``; else True.

    Construction reads the environment and may raise :class:`ConfigurationError`
    for bad explicit arguments; it starts no thread and opens no socket.
    """

    def __init__(
        self,
        service: str | None = None,
        *,
        emitter: Emitter | None = None,
        daemon_address: str | None = None,
        sampler: Sampler | None = None,
        sampling: bool = True,
        sampling_rules: Mapping[str, Any] | str | Path | None = None,
        context_missing: str | None = None,
        streaming_threshold: int = 100,
        max_stack_frames: int = 10,
        origin: str | None = None,
        service_version: str | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.service = sanitize_name(
            service
            or _env.env(_env.AWS_XRAY_TRACING_NAME)
            or _env.env(_env.AWS_LAMBDA_FUNCTION_NAME)
            or "python-app"
        )
        self.enabled = _env.env_enabled() if enabled is None else bool(enabled)
        if emitter is None:
            if daemon_address is not None:
                address = parse_daemon_address(daemon_address)
            else:
                raw = _env.env(_env.AWS_XRAY_DAEMON_ADDRESS)
                try:
                    address = parse_daemon_address(raw or DEFAULT_DAEMON_ADDRESS)
                except ConfigurationError as exc:
                    warn_once("env-daemon-address", "%s; using %s", exc, DEFAULT_DAEMON_ADDRESS)
                    address = parse_daemon_address(DEFAULT_DAEMON_ADDRESS)
            emitter = UDPEmitter(address)
        self.emitter: Emitter = emitter
        if sampler is not None:
            self.sampler: Sampler = sampler
        elif not sampling:
            self.sampler = ConstantSampler(True)
        else:
            self.sampler = LocalSampler(sampling_rules)
        self.context_missing: str = (
            _policy(context_missing, explicit=True)
            or _policy(_env.env(_env.AWS_XRAY_CONTEXT_MISSING), explicit=False)
            or "log"
        )
        if not isinstance(streaming_threshold, int) or streaming_threshold < 0:
            raise ConfigurationError("streaming_threshold must be a non-negative integer")
        self.streaming_threshold = streaming_threshold
        self.max_stack_frames = max_stack_frames
        self.origin = origin
        block: dict[str, str] = python_runtime()
        if service_version:
            block["version"] = service_version
        self._service_block = block

    # -- segments ----------------------------------------------------------------

    def segment(
        self,
        name: str | None = None,
        *,
        trace_header: str | TraceHeader | None = None,
        request: SamplingRequest | None = None,
        sampled: bool | None = None,
        start_time: float | None = None,
    ) -> Segment | UnsampledSegment:
        """Begin a segment; use it as ``with``/``async with`` to make it current.

        ``trace_header`` (the incoming ``X-Amzn-Trace-Id``, parsed or not) continues
        the caller's trace: its ``Root``, ``Parent`` and ``Sampled=1/0`` are obeyed;
        ``Sampled=?`` or none lets the sampler decide (given ``request``, default
        the segment name). A malformed header counts as absent (logged once).
        ``sampled`` overrides everything. The segment is sent when closed.
        """
        name = self.service if name is None else sanitize_name(name)
        header = _header(trace_header)
        flag = header.sampled if header is not None else None
        if RECORDING:  # a test records everything (fluoroscope.sdk.testing)
            decision = True
        elif not self.enabled:
            decision = False
        elif sampled is not None:
            decision = sampled
        elif flag == SAMPLED:
            decision = True
        elif flag == NOT_SAMPLED:
            decision = False
        else:
            try:
                decision = self.sampler.should_sample(
                    request if request is not None else SamplingRequest(service=name)
                ).sampled
            except Exception as exc:  # a broken custom sampler must not break the app
                warn_once("sampler-failed", "sampler failed (%r); not sampling", exc)
                decision = False
        if header is not None:
            trace_id, parent_id, extra = header.root, header.parent, header.extra
        else:
            trace_id, parent_id, extra = new_trace_id(), None, ()
        requested = flag == SAMPLING_REQUESTED
        if not decision:
            return UnsampledSegment(
                name,
                trace_id=trace_id,
                parent_id=parent_id,
                header_extra=extra,
                sampling_requested=requested,
            )
        return Segment(
            name,
            trace_id=trace_id,
            emitter=self.emitter,
            parent_id=parent_id,
            start_time=start_time,
            origin=self.origin,
            service_block=self._service_block,
            header_extra=extra,
            sampling_requested=requested,
            streaming_threshold=self.streaming_threshold,
            max_stack_frames=self.max_stack_frames,
        )

    # -- subsegments -------------------------------------------------------------

    def subsegment(self, name: str, namespace: str | None = None) -> Entity:
        """Open a subsegment of the current entity; use it as ``with``/``async with``.

        ``namespace`` is ``None`` for custom code, ``"remote"`` or ``"aws"`` for
        downstream calls. Without a current segment the ``context_missing`` policy
        applies and a stand-in that records nothing is returned.
        """
        parent = CURRENT.get()
        if parent is None:
            self._missing(f"open subsegment {name!r}")
            return NOOP
        return open_subsegment(sanitize_name(name), namespace, parent)

    @overload
    def capture(self, name: F) -> F: ...
    @overload
    def capture(self, name: str | None = None) -> Capture: ...
    def capture(self, name: str | Callable[..., Any] | None = None) -> Any:
        """Trace each call of a function as a subsegment: ``@tracer.capture("getFile")``.

        Works on plain functions, coroutine functions, generator and async generator
        functions (the subsegment is current only while the body runs and ends when
        the generator does). Also usable bare (``@tracer.capture``) and as a context
        manager (``with tracer.capture("block"):``).
        """
        if callable(name):
            return Capture(self, None)(name)
        return Capture(self, name)

    # -- the current entity ------------------------------------------------------

    def current_entity(self) -> Entity | None:
        """The innermost open segment or subsegment (no policy applied)."""
        return CURRENT.get()

    def current_segment(self) -> Entity | None:
        """The segment the current entity belongs to, or None."""
        entity = CURRENT.get()
        return None if entity is None else entity.segment

    def put_annotation(self, key: str, value: str | int | float | bool) -> None:
        """Annotate the current entity (policy applies when there is none)."""
        entity = CURRENT.get()
        if entity is None:
            self._missing("put an annotation")
        else:
            entity.put_annotation(key, value)

    def put_metadata(self, key: str, value: object, namespace: str = "default") -> None:
        """Add metadata to the current entity (policy applies when there is none)."""
        entity = CURRENT.get()
        if entity is None:
            self._missing("put metadata")
        else:
            entity.put_metadata(key, value, namespace)

    # -- delivery ----------------------------------------------------------------

    def flush(self, timeout: float | None = 2.0) -> bool:
        """Send everything emitted so far, waiting at most ``timeout`` s; True if all went."""
        try:
            return self.emitter.flush(timeout)
        except Exception:  # a custom emitter misbehaving
            return False

    def close(self, timeout: float | None = 2.0) -> None:
        """Flush and release the emitter."""
        with contextlib.suppress(Exception):
            self.emitter.close(timeout)

    @overload
    def lambda_handler(self, fn: F, *, name: str | None = None) -> F: ...
    @overload
    def lambda_handler(self, fn: None = None, *, name: str | None = None) -> Callable[[F], F]: ...
    def lambda_handler(self, fn: F | None = None, *, name: str | None = None) -> Any:
        """Decorate a Lambda handler; see :func:`fluoroscope.sdk.lambda_handler`."""
        from fluoroscope.sdk._lambda import lambda_handler

        return lambda_handler(fn, tracer=self, name=name)

    def _missing(self, what: str) -> None:
        policy = self.context_missing
        if policy == "raise":
            raise ContextMissingError(f"cannot {what}: no segment is active in this context")
        if policy == "log":
            warn_once(
                "context-missing",
                "cannot %s: no segment is active in this context (logged once; "
                "set context_missing='ignore' to silence)",
                what,
            )

    def __repr__(self) -> str:
        return f"Tracer(service={self.service!r}, emitter={self.emitter!r})"


def open_subsegment(name: str, namespace: str | None, parent: Entity | None = None) -> Entity:
    """Open a subsegment under ``parent`` (default: the current entity); never raises.

    The building block for instrumentations: returns a real :class:`Subsegment` when
    the parent is sampled, a shared stand-in when it is not, and :data:`NOOP` when
    there is no current entity (no policy, no log). ``name`` must already be valid
    (see ``sanitize_name``). The caller enters it (``with``) or closes it.
    """
    if parent is None:
        parent = CURRENT.get()
        if parent is None:
            return NOOP
    if parent.sampled:
        return Subsegment(name, parent, namespace)  # type: ignore[arg-type]
    if isinstance(parent, UnsampledSegment):
        return parent.child()
    return parent  # an unsampled child or NOOP stands for its own children


class Capture:
    """The result of :meth:`Tracer.capture`: a decorator and a context manager.

    As a decorator it may wrap any number of functions. As a context manager one
    instance serves one ``with`` block at a time (write ``with tracer.capture("x"):``
    at the point of use rather than sharing an instance between threads or tasks).
    """

    __slots__ = ("_scope", "name", "tracer")

    def __init__(self, tracer: Tracer, name: str | None) -> None:
        self.tracer = tracer
        self.name = None if name is None else sanitize_name(name)
        self._scope: Entity | None = None

    def __call__(self, fn: F) -> F:
        name = self.name or sanitize_name(getattr(fn, "__name__", "function"))
        if inspect.isasyncgenfunction(fn):
            return cast(F, _wrap_async_generator(self.tracer, fn, name))
        if inspect.iscoroutinefunction(fn):
            return cast(F, _wrap_coroutine(self.tracer, fn, name))
        if inspect.isgeneratorfunction(fn):
            return cast(F, _wrap_generator(self.tracer, fn, name))
        return cast(F, _wrap_function(self.tracer, fn, name))

    def __enter__(self) -> Entity:
        scope = self._scope = self.tracer.subsegment(self.name or "block")
        return scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Entity:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


_get = CURRENT.get
_set = CURRENT.set
_reset = CURRENT.reset


def _wrap_function(tracer: Tracer, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def captured(*args: Any, **kwargs: Any) -> Any:
        parent = _get()
        if parent is None:
            tracer._missing(f"capture {name!r}")
            return fn(*args, **kwargs)
        if not parent.sampled:
            return fn(*args, **kwargs)
        sub = Subsegment(name, parent, None)  # type: ignore[arg-type]
        token = _set(sub)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            sub.add_exception(exc)
            raise
        finally:
            _reset(token)
            sub.close()

    return captured


def _wrap_coroutine(tracer: Tracer, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def captured(*args: Any, **kwargs: Any) -> Any:
        parent = _get()
        if parent is None:
            tracer._missing(f"capture {name!r}")
            return await fn(*args, **kwargs)
        if not parent.sampled:
            return await fn(*args, **kwargs)
        sub = Subsegment(name, parent, None)  # type: ignore[arg-type]
        token = _set(sub)
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            sub.add_exception(exc)
            raise
        finally:
            _reset(token)
            sub.close()

    return captured


def _wrap_generator(tracer: Tracer, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def captured(*args: Any, **kwargs: Any) -> Any:
        parent = _get()
        if parent is None:
            tracer._missing(f"capture {name!r}")
            return fn(*args, **kwargs)
        if not parent.sampled:
            return fn(*args, **kwargs)
        sub = Subsegment(name, parent, None)  # type: ignore[arg-type]
        token = _set(sub)
        try:
            gen = fn(*args, **kwargs)
        finally:
            _reset(token)
        return _traced_generator(gen, sub)

    return captured


def _traced_generator(gen: Generator[Any, Any, Any], sub: Subsegment) -> Generator[Any, Any, Any]:
    sent: Any = None
    thrown: BaseException | None = None
    try:
        while True:
            token = _set(sub)
            try:
                item = gen.send(sent) if thrown is None else gen.throw(thrown)
            finally:
                _reset(token)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:
                token = _set(sub)
                try:
                    gen.close()
                finally:
                    _reset(token)
                raise
            except BaseException as exc:
                thrown, sent = exc, None
    except StopIteration as stop:
        return stop.value
    except Exception as exc:
        sub.add_exception(exc)
        raise
    finally:
        sub.close()


def _wrap_async_generator(tracer: Tracer, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def captured(*args: Any, **kwargs: Any) -> Any:
        parent = _get()
        if parent is None:
            tracer._missing(f"capture {name!r}")
            return fn(*args, **kwargs)
        if not parent.sampled:
            return fn(*args, **kwargs)
        sub = Subsegment(name, parent, None)  # type: ignore[arg-type]
        return _traced_async_generator(fn(*args, **kwargs), sub)

    return captured


async def _traced_async_generator(
    agen: AsyncGenerator[Any, Any], sub: Subsegment
) -> AsyncGenerator[Any, Any]:
    sent: Any = None
    thrown: BaseException | None = None
    try:
        while True:
            token = _set(sub)
            try:
                item = await (agen.asend(sent) if thrown is None else agen.athrow(thrown))
            finally:
                _reset(token)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:
                token = _set(sub)
                try:
                    await agen.aclose()
                finally:
                    _reset(token)
                raise
            except BaseException as exc:
                thrown, sent = exc, None
    except StopAsyncIteration:
        return
    except Exception as exc:
        sub.add_exception(exc)
        raise
    finally:
        sub.close()


_global: list[Tracer] = []
_global_lock = threading.Lock()


def set_tracer(tracer: Tracer) -> bool:
    """Install ``tracer`` as the process-wide default, once.

    Returns True when installed; a later call with a different tracer is ignored
    (logged once) and returns False. Thread-safe.
    """
    with _global_lock:
        if not _global:
            _global.append(tracer)
            return True
        if _global[0] is tracer:
            return True
    warn_once("set-tracer-twice", "a global tracer is already set; set_tracer() ignored")
    return False


def get_tracer() -> Tracer:
    """The global tracer; on first use without :func:`set_tracer`, a default ``Tracer()``."""
    if _global:
        return _global[0]
    with _global_lock:
        if not _global:
            _global.append(Tracer())
        return _global[0]
