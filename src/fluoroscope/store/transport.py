"""Transports: how SQL reaches the ClickHouse engine.

Both transports take the same SQL with ``{name:Type}`` server-side parameters, so user
values are never pasted into statements; they differ only in where the engine runs.

* :class:`ChdbTransport` - the engine embedded in this process (chDB) under a data
  directory. One process can open one chDB path, and a path cannot be shared by two
  processes; statements within the process are serialized by the engine.
* :class:`HttpTransport` - a ClickHouse server or cluster over HTTP (clickhouse-connect).

Contract for every method: called from worker threads (never the event loop: calls
block for the duration of the statement; chDB releases the GIL meanwhile); raises
:class:`~fluoroscope.model.errors.StoreError` on failure - its subclass
:class:`~fluoroscope.model.errors.StoreUnwritable` when the engine's disk is full or
read-only (:func:`store_error`); returned objects are owned by the caller.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from fluoroscope.model.errors import StoreError, StoreUnavailable, StoreUnwritable
from fluoroscope.store.arrowstreams import ArrowStreams

__all__ = [
    "COMPRESSION_CONFIG",
    "ENGINE_CONFIG",
    "MERGE_NICE",
    "ChdbTransport",
    "HttpTransport",
    "Transport",
    "open_transport",
    "store_error",
]


# How the engine says it cannot write, as seen here: chDB on a full tmpfs says
# "Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)",
# on a read-only mount "filesystem error: in create_directories: Read-only file system";
# a write that runs out of room midway names the system error (ENOSPC, EDQUOT, EROFS).
_FULL: Final = ("NOT_ENOUGH_SPACE", "No space left on device", "Disk quota exceeded")
_READ_ONLY: Final = ("Read-only file system", "(TABLE_IS_READ_ONLY)", "(READONLY)")


def store_error(message: str) -> StoreError:
    """The error to raise for the engine's failure ``message``: StoreUnwritable when it
    says its disk is full or read-only, else StoreError."""
    if any(marker in message for marker in _FULL):
        return StoreUnwritable(message, reason="disk full")
    if any(marker in message for marker in _READ_ONLY):
        return StoreUnwritable(message, reason="read-only")
    return StoreError(message)


class Transport(Protocol):
    """What the store needs from the engine."""

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER, OPTIMIZE)."""

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a SELECT and return the whole result as an Arrow table."""

    def insert_arrow(self, table: str, data: pa.Table | ArrowStreams) -> None:
        """Append ``data`` (a table, or an Arrow IPC stream's pieces) to ``table``,
        matching columns by name (columns ``data`` lacks take their defaults, DEFAULT
        expressions included; a null takes its type's default); returns when written."""

    def close(self) -> None:
        """Release the engine; further calls fail. Idempotent."""

    @property
    def compression_configured(self) -> bool:
        """True when the engine compresses columns without a codec of their own by
        :data:`COMPRESSION_CONFIG` (LZ4 in small parts, ZSTD(1) in large ones): the
        embedded engine started with Fluoroscope's configuration. A server's configuration
        is its operator's: False."""


# Where columns have no codec of their own, the engine compresses a part by the <case> of
# this section that it matches, the last one matching when several do (none: LZ4), judged
# by the compressed bytes of the parts a merge reads (an insert's part counts 0: every
# insert writes LZ4, measured up to 8 MB parts). The columns the ingest writes carry no plain ZSTD(1) codec
# since migration 33: their inserts and small merges write LZ4, a part once merged past
# min_part_size ZSTD(1), as the codecs wrote them before. LZ4 compresses ~3x faster;
# compression was 35-40 % of the insert statements' CPU.
COMPRESSION_MIN_PART_BYTES: Final = 4_000_000
"""Parts merged from at least this many compressed bytes are written in ZSTD(1)."""

_COMPRESSION_SECTION: Final = f"""\
  <compression>
    <case>
      <min_part_size>{COMPRESSION_MIN_PART_BYTES}</min_part_size>
      <min_part_size_ratio>0</min_part_size_ratio>
      <method>zstd</method>
      <level>1</level>
    </case>
  </compression>
"""

COMPRESSION_CONFIG: Final = f"<clickhouse>\n{_COMPRESSION_SECTION}</clickhouse>\n"
"""The embedded engine's ``<compression>`` section (part of :data:`ENGINE_CONFIG`), and
what a ClickHouse server's operator may install as a ``config.d`` file (docs/scaling.md)."""

MERGE_NICE: Final = 10
"""The Linux nice value of the embedded engine's merge threads while they merge
(``os_threads_nice_value_merge_mutate``; no capability needed to raise it).

The engine gives no merge thread a nice value of its own by default, and a new thread
takes its creator's: measured with chDB 26.5, the server merged at -20 (as the engine's
``MemoryWorker`` thread runs), 26-27 CPU-seconds of merges at -20 in 120 seconds at
10,000 segments/s. Linux schedules a session's processes as one group
(``sched_autogroup``), so on a busy machine a merge at -20 took nearly all of the
group's share: the UDP receiver starved and the socket overflowed (2-15 % of the
documents lost in 4 of 5 benchmark runs beside other sessions' work), and at 20,000/s a
probe of the workers' rounds showed ~2,000 documents merged in 0.99 s instead of 0.08,
then a backlog for the rest of the run. At 10 the merges take the idle CPU and yield it
to ingest (the engine resets the thread to 0 after each merge)."""

ENGINE_CONFIG: Final = (
    f"<clickhouse>\n{_COMPRESSION_SECTION}"
    f"  <os_threads_nice_value_merge_mutate>{MERGE_NICE}</os_threads_nice_value_merge_mutate>\n"
    "</clickhouse>\n"
)
"""The embedded engine's configuration, written as ``engine.xml`` in its data directory:
:data:`COMPRESSION_CONFIG`'s section and the merge threads' :data:`MERGE_NICE`."""

_CONFIG_NAME: Final = "engine.xml"


def _own_config(path: Path) -> Path | None:
    """The embedded engine's configuration file under ``path`` (:data:`ENGINE_CONFIG`),
    written when missing or different; None when it cannot be (a read-only directory
    without it): the engine then starts on its defaults."""
    config = path / _CONFIG_NAME
    try:
        if config.read_text() == ENGINE_CONFIG:
            return config
    except OSError:
        pass
    fresh = path / f".{_CONFIG_NAME}.{os.getpid()}"
    try:
        fresh.write_text(ENGINE_CONFIG)
        os.replace(fresh, config)
    except OSError:
        with contextlib.suppress(OSError):
            fresh.unlink()
        return config if config.is_file() else None
    return config


def has_compression(config_file: Path | None) -> bool:
    """True when the server configuration ``config_file`` has a ``<compression>``
    section (its ``config.d`` files are not read)."""
    if config_file is None:
        return False
    try:
        return ElementTree.parse(config_file).getroot().find("compression") is not None
    except (OSError, ElementTree.ParseError):
        return False


# Rows replaced within one insert are left for the background merge, like rows replaced
# across inserts: every read collapses them (FINAL, or sums), so deduplicating at insert is
# work done twice. Measured with benchmarks/ingest_cpu.py: ~40 % of the traces insert.
# insert_distributed_sync: an insert into a cluster's Distributed table (store/cluster.py)
# returns once every shard holds its rows, so "stored" means readable, as on one node;
# it changes nothing for a local table.
# input_format_defaults_for_omitted_fields = 0: a null in a column given takes its type's
# default, not the column's DEFAULT expression (a column left out still takes that: the
# insert fills it). With 1, every insert into traces planned the DEFAULT of
# service_accounts (computed from details, for rows of schema 5) whatever it held, and the
# other tables' inserts cost a little more too. No table written through here has a DEFAULT
# but that Array column, whose null rows the engine stores empty either way (checked), and
# ingest writes no nulls. Measured on one round's tables (2,500 documents, each inserted
# 60 times, interleaved; CPU of the inserting thread, medians): traces 14.98 -> 13.32 ms,
# spans 12.34 -> 12.11, graph_stats 3.84 -> 3.34; a 1-row insert into a Null copy of
# traces 3.66 -> 2.41 ms. benchmarks/engine_write.py (rounds of 2,500 at 15,000/s, 3
# pairs against the code before): the inserting thread 15.8 -> 14.7 us a document, all
# of the process 37.9 -> 36.7; bytes stored the same.
_INSERT_SETTINGS: Final = (
    "optimize_on_insert = 0, insert_distributed_sync = 1, "
    "input_format_defaults_for_omitted_fields = 0"
)

# Set on every embedded session as it opens. output_format_arrow_parallel_encoding: chDB
# (chdb-core-lite 26.5) encodes Arrow results in a pool of worker threads whose backpressure
# wait never ends once the query's thread is 4 x max_threads chunks ahead of the workers
# (chdb-core issue #212, fixed upstream by PR #213 after 26.5): under CPU contention a
# query whose result spans more than ~8 chunks then hangs for good at 0 % CPU, holding the
# statement lock, so every later statement of the process waits too. Found as a test run
# that hung 18 minutes in LogStore.events on a loaded machine; reproduced here at load 5-8
# in 3 of 21 runs of tests/ingest/test_logs.py (0 of 20 serial), and by
# benchmarks/arrow_encoding.py: a 1M-row result hung 3 times of 3 (serial: 0.27-0.41 s).
# Serial costs nothing measurable up to 100k rows (same run, load 5.4, median ms serial vs
# parallel: 1k rows 2.0-4.6 vs 1.9-2.2, 100k rows 22.9-60.1 vs 25.6-38.2).
_SESSION_SETTINGS: Final = "SET output_format_arrow_parallel_encoding = 0"


@contextlib.contextmanager
def _memory_file() -> Iterator[str]:
    """The path of a new, empty file held in memory (an anonymous memory file on Linux,
    a temporary file elsewhere), removed on leaving."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("fluoroscope-insert", os.MFD_CLOEXEC)
        try:
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="fluoroscope-insert-") as where:  # pragma: no cover
        yield os.path.join(where, "rows.arrows")


@contextlib.contextmanager
def _arrow_file(data: pa.Table | ArrowStreams) -> Iterator[str]:
    """The path of a memory file (:func:`_memory_file`) holding ``data`` as an Arrow
    IPC stream (a stream's pieces as they are), for the engine to read as
    ``ArrowStream``; removed on leaving."""
    with _memory_file() as path:
        if isinstance(data, ArrowStreams):
            with open(path, "wb") as out:
                for part in data.parts:
                    out.write(part)
        else:
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, data.schema) as writer:
                writer.write_table(data)
        yield path


def _arrow_table(result: Any) -> pa.Table:
    """The Arrow table in chDB's result of an "Arrow" query; an empty result (no
    bytes) is a table without columns, as chDB's "ArrowTable" format returns it."""
    if len(result) == 0:
        return pa.Table.from_batches([], schema=pa.schema([]))
    return pa.ipc.open_file(result.get_memview().view()).read_all()


_ESCAPES: Final = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
)


def _quoted(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.translate(_ESCAPES).replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    raise TypeError(f"unsupported query parameter type {type(value).__name__}")


def chdb_param(value: object) -> str:
    """A parameter value in the text form the embedded engine parses for ``{name:Type}``:
    escaped for scalars (``String`` reads backslash escapes), quoted literals in arrays."""
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, list | tuple | bool | int | float):
        return _quoted(value)
    raise TypeError(f"unsupported query parameter type {type(value).__name__}")


@contextlib.contextmanager
def _engine_stderr() -> Iterator[list[str]]:
    """Hold what the engine writes to file descriptor 2 meanwhile; on leaving, the list
    yielded holds that text (the caller shows it or keeps it)."""
    said: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to borrow
        yield said
        return
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        os.dup2(held.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            said.append(held.read().decode(errors="replace"))


class ChdbTransport:
    """The embedded engine (chDB) keeping its data under ``path``; ``config_file``: a
    ClickHouse server configuration the engine reads at start (disks, clusters, macros),
    by default :data:`ENGINE_CONFIG`, written under ``path``. The first transport of
    the process starts the engine: its configuration holds for every later one
    (:attr:`compression_configured` says whether it has a ``<compression>`` section).

    Statements run one at a time, process-wide (a lock held for each call). chDB serializes them
    anyway, but it resolves ``Python(name)`` (which inserts used before they went through
    a memory file, see :meth:`insert_arrow`) through interpreter state that a concurrent
    statement from another thread disturbs: measured here, an insert next to a read
    either failed with PY_OBJECT_NOT_FOUND or deadlocked the process (the insert's lazy
    import waiting for the GIL held by the read waiting for the engine).
    Waiting on the lock releases the GIL, so the event loop keeps running. Each session
    opens with :data:`_SESSION_SETTINGS` (Arrow results encoded serially: chDB's parallel
    encoder can hang a query forever).
    """

    _lock = threading.Lock()
    _opened: str | None = None
    _compression = False  # the engine, as the first transport started it
    _statement = threading.Lock()  # one engine per process: one statement at a time

    def __init__(self, path: Path, config_file: Path | None = None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if config_file is None:
            config_file = _own_config(path)
        where = str(path) if config_file is None else f"{path}?config-file={config_file}"
        try:
            from chdb import session
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise StoreUnavailable(
                "chDB is not installed: pip install 'fluoroscope[server]'"
            ) from exc
        with ChdbTransport._lock:
            if ChdbTransport._opened not in (None, str(path)):
                raise StoreUnavailable(
                    f"this process already opened the embedded store at {ChdbTransport._opened}; "
                    "chDB allows one data path per process"
                )
            failure: Exception | None = None
            with _engine_stderr() as said:
                try:
                    self._session = session.Session(where)  # type: ignore[no-untyped-call]
                except Exception as exc:
                    failure = exc
            engine_text = "".join(said).strip()
            if failure is not None:  # the engine's own words go in __cause__ (--debug)
                raise StoreUnavailable(
                    f"cannot open the embedded store at {path}: the engine refused it "
                    "(is another process using it?)"
                ) from StoreError(f"{engine_text}\n{failure}".strip())
            if engine_text:
                print(engine_text, file=sys.stderr)
            if ChdbTransport._opened is None:
                ChdbTransport._compression = has_compression(config_file)
            ChdbTransport._opened = str(path)
            with self._statement:
                try:
                    self._session.query(_SESSION_SETTINGS, "CSV")  # type: ignore[no-untyped-call]
                except Exception as exc:  # a later chDB without the setting has no such encoder
                    if "UNKNOWN_SETTING" not in str(exc):
                        raise store_error(str(exc).strip()) from exc
        self._closed = False

    @property
    def compression_configured(self) -> bool:
        return ChdbTransport._compression

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        result = self._run(sql, "ArrowTable", params)
        if not isinstance(result, pa.Table):  # pragma: no cover - chDB contract
            raise StoreError(f"chDB returned {type(result).__name__}, expected an Arrow table")
        return result

    def insert_arrow(self, table: str, data: pa.Table | ArrowStreams) -> None:
        # The rows reach the engine as an Arrow IPC stream in an anonymous memory file
        # rather than through chDB's Python() table function: Python() imports pandas at
        # its first use (~38 MB of anonymous memory and ~30 MB of file pages in the
        # server, kept for the life of the process), even for a pyarrow table. The stream
        # is the table's buffers copied once; the memory file is freed when the insert
        # returns. The engine reads it as the insert's own input (FROM INFILE), parsed
        # straight into the table's columns as named, rather than as SELECT * FROM file():
        # that read the file twice (its schema inferred, then its rows), planned a query
        # over it and cast every column to the table's type: 0.6-0.7 ms more of engine CPU
        # per insert, whatever its rows (1-row inserts into a Null table of the columns
        # written, interleaved: traces' 52 4.2 -> 3.6 ms, spans' 14 2.0 -> 1.3 ms).
        # On full rounds of 2,000 documents the difference is within the noise of a shared
        # machine (the five inserts, interleaved in one process: 33.9 -> 32.1 and
        # 45.3 -> 37.8 us a document; benchmarks/engine_write.py against the code before,
        # 4 pairs: 58.7 -> 55.8, ratio 1.00). The parsing and the part's writing now run in
        # the calling thread (the GIL released, as before) instead of the engine's pool
        # threads. The rows stored are the same (every table of those rounds compared row
        # by row); no schema is inferred, so none is cached for a path the next insert
        # reuses. The path has no glob characters (/proc/self/fd/N, or a temporary
        # directory's), which FROM INFILE would expand.
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        with _arrow_file(data) as path:
            self._run(
                f"INSERT INTO {table} ({columns}) FROM INFILE '{path}' "
                f"SETTINGS {_INSERT_SETTINGS} FORMAT ArrowStream",
                "CSV",
                None,
            )

    def query_arrow_over(
        self, sql: str, data: pa.Table, structure: str, params: Mapping[str, Any] | None = None
    ) -> pa.Table:
        """Run a SELECT reading ``data`` where ``sql`` says ``{rows}``, as rows of
        ``structure`` (``name Type, ...``: each of ``data``'s columns and its type in the
        engine), and return the result as :meth:`query_arrow` does. One statement: the
        rows are read from a memory file (as :meth:`insert_arrow` writes it) instead of
        being inserted into a table first; embedded engine only."""
        if "'" in structure:
            raise ValueError("a structure is names and types, no quotes")
        with _arrow_file(data) as path:
            source = f"file('{path}', 'ArrowStream', '{structure}')"
            return self.query_arrow(sql.replace("{rows}", source), params)

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        try:
            with self._statement:
                try:
                    return self._query(sql, fmt, params)
                except Exception:
                    if fmt == "ArrowTable":
                        self._recover()
                    raise
        except Exception as exc:
            raise store_error(str(exc).strip()) from exc

    def _recover(self) -> None:
        """Run a statement in another format after an Arrow statement failed while it
        executed (a time limit, ``throwIf``): measured with chDB 4.x, the next Arrow
        result is otherwise corrupt - an error ("Invalid flatbuffers message") or,
        worse, an empty table where there are rows."""
        with contextlib.suppress(Exception):
            self._session.query("SELECT 1", "CSV")  # type: ignore[no-untyped-call]

    def _query(self, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        # An Arrow table is read here from the engine's Arrow file, as chDB's own
        # "ArrowTable" format does, but without that format's import of pandas (~38 MB
        # of anonymous memory and ~30 MB of file pages, unused).
        engine_format = "Arrow" if fmt == "ArrowTable" else fmt
        if params:
            result = self._session.query(  # type: ignore[no-untyped-call]
                sql, engine_format, params={k: chdb_param(v) for k, v in params.items()}
            )
        else:
            result = self._session.query(sql, engine_format)  # type: ignore[no-untyped-call]
        return _arrow_table(result) if fmt == "ArrowTable" else result

    def release_memory(self) -> None:
        """Return the engine's freed memory to the OS now. The engine's allocator
        (jemalloc, inside chDB) keeps freed pages for 5 s before returning them, so at
        a steady ingest its resident memory stays at about twice what it holds: measured
        at 10,000 segments/s, ~45 MB held and 80-115 MB resident. A purge takes ~3-5 ms
        after an insert, ~0.2 ms when nothing was freed. Best effort: an engine that
        cannot purge is left as it is."""
        with contextlib.suppress(Exception):
            self._run("SYSTEM JEMALLOC PURGE", "CSV", None)

    def close(self) -> None:
        # chDB keeps one embedded server per process; the session stays usable by a
        # later transport on the same path, so closing only stops this object.
        self._closed = True


class HttpTransport:
    """A ClickHouse server or cluster reached over HTTP with clickhouse-connect.

    ``url`` is ``clickhouse://user:pass@host:8123/db`` (``clickhouses://`` for TLS, port 8443
    by default). Connecting checks the server: nothing listening, or a server older than
    :data:`~fluoroscope.store.http_check.MIN_SERVER_VERSION`, raises StoreUnavailable naming
    host:port (and the found and required versions). Parameters are bound server-side: our
    ``{name:Type}`` placeholders make clickhouse-connect send them as ``param_name``.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("clickhouse", "clickhouses"):
            raise StoreUnavailable(f"unsupported store URL scheme {parts.scheme!r}")
        try:
            import clickhouse_connect
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise StoreUnavailable("clickhouse-connect is not installed") from exc
        from fluoroscope.store import http_check

        secure = parts.scheme == "clickhouses"
        host = parts.hostname or "127.0.0.1"
        try:
            port = parts.port or (8443 if secure else 8123)
        except ValueError as exc:  # a port that is not a number or out of range
            raise StoreUnavailable(f"bad port in store URL: {exc}") from None
        username = unquote(parts.username or "default")
        password = unquote(parts.password or "")
        # the client's and urllib3's retry warnings: the failure is raised below instead
        quiet = [logging.getLogger(name) for name in ("clickhouse_connect", "urllib3")]
        levels = [logger.level for logger in quiet]
        for logger in quiet:
            logger.setLevel(logging.CRITICAL)
        try:
            client = clickhouse_connect.get_client(
                host=host,
                port=port,
                username=username,
                password=password,
                secure=secure,
                autogenerate_session_id=False,
            )
        except Exception as exc:
            raise http_check.setup_failure(
                exc, host, port, secure=secure, username=username, password=password
            ) from exc
        finally:
            for logger, level in zip(quiet, levels, strict=True):
                logger.setLevel(level)
        try:
            http_check.check_version(str(client.server_version), f"{host}:{port}")
        except StoreUnavailable:
            client.close()
            raise
        self._client = client
        self.database = parts.path.strip("/") or "fluoroscope"

    @staticmethod
    def _params(params: Mapping[str, Any] | None) -> dict[str, Any]:
        # clickhouse-connect would send a bool as "True"; send 1/0 as chdb_param does.
        return {k: int(v) if isinstance(v, bool) else v for k, v in (params or {}).items()}

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            self._client.command(sql, parameters=self._params(params))
        except Exception as exc:
            raise store_error(str(exc).strip()) from exc

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        # use_strings: String columns come back as Arrow strings, as chDB returns them.
        try:
            return self._client.query_arrow(sql, parameters=self._params(params), use_strings=True)
        except Exception as exc:
            raise store_error(str(exc).strip()) from exc

    def insert_arrow(self, table: str, data: pa.Table | ArrowStreams) -> None:
        # Sent as INSERT INTO table (data's column names) FORMAT Arrow: matched by name, as
        # in ChdbTransport; columns left out take their defaults.
        try:
            self._client.insert_arrow(
                table,
                data if isinstance(data, pa.Table) else data.table(),
                settings={
                    "optimize_on_insert": 0,
                    "insert_distributed_sync": 1,
                    "input_format_defaults_for_omitted_fields": 0,
                },
            )
        except Exception as exc:
            raise store_error(str(exc).strip()) from exc

    @property
    def compression_configured(self) -> bool:
        return False  # the server's configuration is its operator's (docs/scaling.md)

    def close(self) -> None:
        self._client.close()


def open_transport(store_url: str, data_dir: Path) -> tuple[Transport, str]:
    """Open the transport named by ``store_url`` and return it with its database name.

    ``chdb`` (or ``chdb://``) selects the embedded engine under ``data_dir/chdb``;
    ``clickhouse://user:pass@host:8123/db`` a server (database ``db``, default
    ``fluoroscope``).
    """
    if store_url in ("chdb", "chdb://", ""):
        return ChdbTransport(data_dir / "chdb"), "fluoroscope"
    transport = HttpTransport(store_url)
    return transport, transport.database
