"""The command line: the composition root that wires config, store, ingest, query and server.

Each command imports what it needs when it runs, so ``fluoroscope --help`` is fast and
the SDK-only install never touches server dependencies.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from fluoroscope import __version__
from fluoroscope.cliutil import consoles, fail, server_url
from fluoroscope.democli import demo
from fluoroscope.logcli import logs_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="fluoroscope",
    help="Self-hosted, live AWS X-Ray: ingest, store, query and view traces.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


app.add_typer(logs_app, name="logs")


@app.callback()
def _root() -> None:
    """Self-hosted, live AWS X-Ray: ingest, store, query and view traces."""


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)


@app.command()
def server(
    listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for the HTTP API and console (and UDP segments when loopback); beyond loopback it needs credentials. \\[env: FLUOROSCOPE_LISTEN] \\[default: 127.0.0.1:2000]"
        ),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(
            help="Where the embedded store keeps its data. \\[env: FLUOROSCOPE_DATA_DIR] \\[default: ./fluoroscope-data]"
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="'chdb' (embedded) or clickhouse://user:pass@host:8123/db. \\[env: FLUOROSCOPE_STORE]"
        ),
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            help="Days traces are kept. \\[env: FLUOROSCOPE_RETENTION_DAYS] \\[default: 30]"
        ),
    ] = None,
    cached_traces: Annotated[
        int | None,
        typer.Option(
            help="Traces whose merge state ingest keeps in memory (~4-6 KB each): fewer use "
            "less memory, and a segment arriving after its trace left is merged after a store "
            "read. \\[env: FLUOROSCOPE_CACHED_TRACES] \\[default: 20000]"
        ),
    ] = None,
    ingest_workers: Annotated[
        int | None,
        typer.Option(
            help="Processes that parse and merge incoming segments, each owning a share of "
            "the traces (each takes ~70 MB at rest, ~120-160 MB at 10,000 segments/s, "
            "and up to a core). \\[env: "
            "FLUOROSCOPE_INGEST_WORKERS] \\[default: the usable cores, at most 2]"
        ),
    ] = None,
    udp_listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for UDP segments, which cannot authenticate. \\[env: "
            "FLUOROSCOPE_UDP_LISTEN] \\[default: --listen if loopback, else 127.0.0.1 at its port]"
        ),
    ] = None,
    access_key: Annotated[
        list[str] | None,
        typer.Option(
            help="ACCESS_KEY_ID:SECRET accepted in SigV4-signed requests; repeatable. Once any "
            "credential is set, every HTTP request needs one. \\[env: FLUOROSCOPE_ACCESS_KEYS, "
            "comma-separated]"
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="A token accepted as 'Authorization: Bearer TOKEN'; repeatable. \\[env: "
            "FLUOROSCOPE_API_KEYS, comma-separated]"
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Another name clients reach this server by (Host header), e.g. behind a "
            "proxy; '*' allows any; repeatable. \\[env: FLUOROSCOPE_ALLOWED_HOSTS]"
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool | None,
        typer.Option(
            "--insecure-no-auth",
            help="Listen beyond loopback without credentials: anyone who can reach the "
            "server can read, write and delete. \\[env: FLUOROSCOPE_INSECURE_NO_AUTH=1]",
            show_default=False,
        ),
    ] = None,
    otlp_http_listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT of OTLP/HTTP's own listener (OTLP is also served on --listen), "
            "or 'off'. \\[env: FLUOROSCOPE_OTLP_HTTP_LISTEN] \\[default: 127.0.0.1:4318]"
        ),
    ] = None,
    otlp_grpc_listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for OTLP/gRPC, or 'off'. \\[env: FLUOROSCOPE_OTLP_GRPC_LISTEN] "
            "\\[default: 127.0.0.1:4317]"
        ),
    ] = None,
    otlp_indexed_attribute: Annotated[
        list[str] | None,
        typer.Option(
            help="A span attribute that becomes an annotation (filterable) rather than "
            "metadata; repeatable. \\[env: FLUOROSCOPE_OTLP_INDEXED_ATTRIBUTES, comma-separated]"
        ),
    ] = None,
    otlp_index_all_attributes: Annotated[
        bool | None,
        typer.Option(
            "--otlp-index-all-attributes",
            help="Every span attribute becomes an annotation. \\[env: "
            "FLUOROSCOPE_OTLP_INDEX_ALL_ATTRIBUTES=1]",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Log in detail, and show the full error (the engine's own message and "
            "stack) when start-up fails.",
        ),
    ] = False,
    exit_with_parent: Annotated[
        bool,
        typer.Option(
            "--exit-with-parent",
            hidden=True,  # for programs that start a server of their own (the demo)
            help="Stop cleanly once the process that started the server has ended.",
        ),
    ] = False,
) -> None:
    """Run the all-in-one server: X-Ray daemon UDP protocol and X-Ray API on one address."""
    from fluoroscope.config import (
        ConfigError,
        resolve_insights_interval,
        resolve_otlp_config,
        resolve_server_config,
    )
    from fluoroscope.model.errors import StoreUnavailable

    try:
        config = resolve_server_config(
            listen=listen,
            data_dir=data_dir,
            store=store,
            retention_days=retention_days,
            cached_traces=cached_traces,
            ingest_workers=ingest_workers,
            udp_listen=udp_listen,
            access_keys=access_key,
            api_keys=api_key,
            allowed_hosts=allowed_host,
            insecure_no_auth=insecure_no_auth,
        )
        otlp = resolve_otlp_config(
            http_listen=otlp_http_listen,
            grpc_listen=otlp_grpc_listen,
            indexed_attributes=otlp_indexed_attribute,
            index_all_attributes=otlp_index_all_attributes,
            credentials=bool(config.access_keys or config.api_keys),
            insecure_no_auth=config.insecure_no_auth,
        )
        insights_interval = resolve_insights_interval()
    except ConfigError as exc:
        fail(str(exc))
    from fluoroscope.ingest.keepout import keep_out
    from fluoroscope.ingest.mallocarena import one_malloc_arena

    one_malloc_arena()  # before anything starts a thread (pyarrow does as it loads)

    # Before the server's modules: pyarrow would import numpy as it loads (~11 MB, and
    # OpenBLAS's threads), pandas at their first conversion of a list (~38 MB of
    # anonymous memory, ~30 MB of file pages) and pyarrow.dataset at the first group-by;
    # nothing in the server uses them, and the store reaches the engine without them
    # (store/transport.py, store/outcomes.py).
    keep_out()
    from fluoroscope.ingest.otlp import TranslateOptions
    from fluoroscope.model.net import is_loopback
    from fluoroscope.server.auth import AccessPolicy
    from fluoroscope.server.run import StartupError, serve

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        serve(
            config.host,
            config.port,
            data_dir=config.data_dir,
            store_url=config.store_url,
            retention_days=config.retention_days,
            cached_traces=config.cached_traces,
            ingest_workers=config.ingest_workers,
            announce=lambda text: typer.echo(text, err=False),
            udp=(config.udp_host, config.udp_port),
            access=AccessPolicy.build(
                config.host,
                wide=not is_loopback(config.host),
                access_keys=config.access_keys,
                api_keys=config.api_keys,
                allowed_hosts=config.allowed_hosts,
            ),
            wide_open=config.insecure_no_auth,
            otlp_http=None
            if otlp.http is None
            else (otlp.http.host, otlp.http.port, otlp.http.explicit),
            otlp_grpc=None
            if otlp.grpc is None
            else (otlp.grpc.host, otlp.grpc.port, otlp.grpc.explicit),
            otlp_options=TranslateOptions(
                frozenset(otlp.indexed_attributes), otlp.index_all_attributes
            ),
            insights_interval=insights_interval,
            exit_with_parent=exit_with_parent,
        )
    except (StartupError, StoreUnavailable) as exc:
        fail(str(exc), debug=debug)
    except OSError as exc:
        fail(f"the server could not start: {exc.strerror or exc}", debug=debug)
    # Everything accepted is stored, the store closed and the stop announced. What is
    # left, the interpreter's teardown, finalizes native libraries that still hold
    # threads (the engine's pools) and objects of compiled modules frozen out of the
    # collector: with the ingest merge compiled it crashed (SIGSEGV) in 2 of ~100 stops,
    # never before its last word. Nothing is left to finalize: leave without it, as the
    # ingest workers do.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@app.command()
def daemon(
    server: Annotated[
        str | None,
        typer.Option(
            help="The Fluoroscope server to forward to, http://HOST:PORT. \\[env: FLUOROSCOPE_DAEMON_SERVER] \\[required]"
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for UDP segments and the TCP sampling proxy. \\[env: FLUOROSCOPE_DAEMON_LISTEN] \\[default: 127.0.0.1:2000]"
        ),
    ] = None,
    buffer_dir: Annotated[
        str | None,
        typer.Option(
            help="Where batches spill to disk while the server is away (kept across restarts). \\[env: FLUOROSCOPE_DAEMON_BUFFER_DIR] \\[default: ./fluoroscope-daemon-buffer]"
        ),
    ] = None,
    buffer_memory: Annotated[
        int | None,
        typer.Option(
            help="MiB of batches held in memory before spilling. \\[env: FLUOROSCOPE_DAEMON_BUFFER_MEMORY] \\[default: 64]"
        ),
    ] = None,
    buffer_disk: Annotated[
        int | None,
        typer.Option(
            help="MiB of spool files at most; 0: memory only. \\[env: FLUOROSCOPE_DAEMON_BUFFER_DISK] \\[default: 1024]"
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Documents per PutTraceSegments call. \\[env: FLUOROSCOPE_DAEMON_BATCH_SIZE] \\[default: 50]"
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="PutTraceSegments calls in flight. \\[env: FLUOROSCOPE_DAEMON_CONCURRENCY] \\[default: 8]"
        ),
    ] = None,
    drain_seconds: Annotated[
        float | None,
        typer.Option(
            help="At a stop, seconds to go on sending; the rest stays on disk for the next start. \\[env: FLUOROSCOPE_DAEMON_DRAIN_SECONDS] \\[default: 5]"
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="SigV4 region, when AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set. \\[env: FLUOROSCOPE_DAEMON_REGION, AWS_REGION] \\[default: us-east-1]"
        ),
    ] = None,
) -> None:
    """Run a per-host X-Ray daemon: UDP segments in, batched to a server; sampling proxied.

    A bearer token for the server is read from FLUOROSCOPE_DAEMON_TOKEN (never a flag:
    flags show in process lists); without one, requests are SigV4-signed when the
    standard AWS credential variables are set.
    """
    from fluoroscope.config import ConfigError, resolve_daemon_config

    try:
        config = resolve_daemon_config(
            server=server,
            listen=listen,
            buffer_dir=buffer_dir,
            buffer_memory=buffer_memory,
            buffer_disk=buffer_disk,
            batch_size=batch_size,
            concurrency=concurrency,
            drain_seconds=drain_seconds,
            region=region,
        )
    except ConfigError as exc:
        fail(str(exc))
    from fluoroscope.daemon import Credentials, DaemonSettings, run_daemon

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = DaemonSettings(
        config.server,
        config.host,
        config.port,
        buffer_dir=config.buffer_dir if config.buffer_disk else None,
        memory_bytes=config.buffer_memory * 1024 * 1024,
        disk_bytes=config.buffer_disk * 1024 * 1024,
        batch_size=config.batch_size,
        concurrency=config.concurrency,
        drain_seconds=config.drain_seconds,
        credentials=Credentials(
            token=config.token,
            access_key=config.access_key,
            secret_key=config.secret_key,
            session_token=config.session_token,
            region=config.region,
        ),
    )
    try:
        run_daemon(settings, announce=lambda text: typer.echo(text))
    except OSError as exc:
        fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}")


_WIDE_HELP = (
    "Show every cell whole (ids, URLs, names), however wide; output that is not a terminal "
    "is always whole."
)
_SERVER_HELP = (  # \[ keeps rich markup from eating the brackets
    "The server's X-Ray API. \\[env: FLUOROSCOPE_SERVER] \\[default: http://127.0.0.1:2000]"
)


@app.command()
def traces(
    filter_expression: Annotated[
        str | None,
        typer.Argument(
            metavar="FILTER", help="An X-Ray filter expression, e.g. 'fault OR responsetime > 2'."
        ),
    ] = None,
    since: Annotated[str, typer.Option(help="How far back: 30s, 5m, 1h, 2d.")] = "1h",
    limit: Annotated[int, typer.Option(min=1, help="At most this many traces.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw summaries as JSON lines.")
    ] = False,
    wide: Annotated[bool, typer.Option("--wide", help=_WIDE_HELP)] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """Recent trace summaries as a table, newest first."""
    from fluoroscope.terminal import show_traces

    out, err = consoles()
    code = show_traces(
        out,
        err,
        server_url(server),
        filter_expression,
        since=since,
        limit=limit,
        as_json=as_json,
        wide=wide,
    )
    raise typer.Exit(code)


@app.command()
def trace(
    trace_id: Annotated[
        str, typer.Argument(metavar="TRACE_ID", help="1-XXXXXXXX-YYYY... or the 32-hex W3C form.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw segment documents as JSON lines.")
    ] = False,
    wide: Annotated[bool, typer.Option("--wide", help=_WIDE_HELP)] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
    logs: Annotated[
        bool, typer.Option("--logs", help="Then print the trace's log lines, from every service.")
    ] = False,
) -> None:
    """One trace's timeline: segments and nested subsegments as a waterfall."""
    from fluoroscope.terminal import show_trace
    from fluoroscope.tracelines_terminal import show_trace_lines

    out, err = consoles()
    url = server_url(server)
    code = show_trace(out, err, url, trace_id, as_json=as_json, wide=wide)
    if code == 0 and logs and not as_json:
        code = show_trace_lines(out, err, url, trace_id, wide=wide)
    raise typer.Exit(code)


@app.command("critical-path")
def critical_path(
    filter_expression: Annotated[
        str | None,
        typer.Argument(
            metavar="FILTER", help="An X-Ray filter expression, e.g. 'http.url CONTAINS \"/cart\"'."
        ),
    ] = None,
    since: Annotated[str, typer.Option(help="How far back: 30s, 5m, 1h, 2d.")] = "1h",
    slowest: Annotated[
        float, typer.Option(min=0.01, max=100, help="Only the slowest PERCENT % of the traces.")
    ] = 100.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the API's answer as JSON.")
    ] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """Which entries make up the critical path of the matching traces, and their part of
    the p50 and p99 duration (computed by the server's engine)."""
    from fluoroscope.critpath_terminal import show_critical_path

    out, err = consoles()
    raise typer.Exit(
        show_critical_path(
            out,
            err,
            server_url(server),
            filter_expression,
            since=since,
            slowest=slowest,
            as_json=as_json,
        )
    )


@app.command()
def schema(
    cluster: Annotated[
        str,
        typer.Option(
            "--cluster", help="The ClickHouse cluster's name (remote_servers), for ON CLUSTER."
        ),
    ],
    database: Annotated[str, typer.Option("--database", help="The database to create.")] = (
        "fluoroscope"
    ),
    retention_days: Annotated[
        int, typer.Option("--retention-days", min=1, help="Days traces are kept.")
    ] = 30,
) -> None:
    """Print the DDL creating Fluoroscope's schema on a ClickHouse cluster: replicated local
    tables, Distributed tables under the usual names, views; run it once with clickhouse-client
    --multiquery, then point servers at it with --store clickhouse://."""
    from fluoroscope.store.cluster import cluster_ddl

    try:
        statements = cluster_ddl(cluster, database, retention_days)
    except ValueError as exc:
        fail(str(exc))
    typer.echo("".join(f"{sql};\n" for sql in statements), nl=False)


app.command("demo")(demo)  # after the others: the order of `fluoroscope --help`


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fluoroscope`` script. A usage error (an unknown flag, a value
    of the wrong type) is one line on stderr naming the flag, what it got and what it
    expects, and exit status 2, like every other bad value (see :mod:`fluoroscope.config`)."""
    import sys

    from fluoroscope.__main__ import parser_errors, usage_line

    errors = parser_errors()
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="fluoroscope", standalone_mode=False)
    except errors.NoArgsIsHelpError as exc:  # the help was printed
        sys.exit(exc.exit_code)
    except errors.UsageError as exc:
        try:
            fail(usage_line(exc, args))
        except typer.Exit as failed:
            sys.exit(failed.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
