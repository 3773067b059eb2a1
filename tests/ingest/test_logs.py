"""What ingest reads out of log lines, and the batching writer, on the real embedded engine."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import Future

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.logs import EXTRACTED, extract, message_array
from fluoroscope.ingest.logwriter import LogWriter, batch_size, encode
from fluoroscope.model.errors import StoreError, Throttled
from fluoroscope.store.logs import EVENT_SCHEMA, LogStore
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests import log_lines
from tests.log_lines import EXPECTED

GROUP = "/aws/lambda/checkout"
STREAM = "2026/12/03/[$LATEST]0123456789abcdef0123456789abcdef"


def _read(messages: list[str]) -> list[tuple[str, ...]]:
    columns = extract(message_array(messages))
    assert list(columns) == list(EXTRACTED)
    whole = columns["json_whole"].to_pylist()
    rows = []
    for i, message in enumerate(messages):
        values = [columns[name][i].as_py() for name in EXTRACTED[:5]]
        json = message if whole[i] else columns["json_text"][i].as_py()
        rows.append((*values, json))
    return rows


@pytest.mark.parametrize("message", list(EXPECTED), ids=lambda m: m[:40])
def test_each_reference_line_yields_its_ids_level_type_and_json(message: str) -> None:
    assert _read([message]) == [EXPECTED[message]]


def test_lines_are_read_alike_alone_and_in_a_mixed_batch() -> None:
    messages = list(EXPECTED) * 3
    assert _read(messages) == [EXPECTED[m] for m in messages]


def test_lines_without_ids_yield_empty_columns() -> None:
    plain = [
        "GET /health 200 3ms",
        "{not json",
        "a uuid c6af9ac6-7b61-11e6-9a41-93e812345678 is no trace id",
        "deadbeef" * 4 + " is 32 hex but named nothing",
        '{"requestId":"-","function_request_id":"null"}',
        "[INFO]\t2026-12-03T18:29:55.453Z\tNone\tplaceholder request id",
        "",
    ]
    rows = _read(plain)
    assert [row[:3] for row in rows] == [("", "", "")] * len(plain)
    assert [row[3] for row in rows] == [""] * 5 + ["INFO", ""]


def test_upper_case_and_w3c_forms_become_the_stored_form() -> None:
    line = '{"traceId":"5759E988BD862E3FE1BE46A994272793","spanId":"53995C3F42CD8AD8"}'
    trace_id, segment_id, *_ = _read([line])[0]
    assert (trace_id, segment_id) == ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8")


def test_text_that_is_not_utf8_is_replaced_not_refused() -> None:
    array = message_array([b"ok \xff\xfe", "lone \udc80 surrogate", "fine"])
    assert array.to_pylist() == ["ok \ufffd\ufffd", "lone ? surrogate", "fine"]


def test_encode_numbers_events_in_order_with_the_table_schema() -> None:
    table = encode(
        [("g", "a", [1, 2], ["x", "y"], 7, 100), ("g", "b", [3], [log_lines.REPORT], 30, 101)],
        first_seq=40,
    )
    assert table.schema == EVENT_SCHEMA
    assert table.column("seq").to_pylist() == [40, 41, 42]
    assert table.column("stream").to_pylist() == ["a", "a", "b"]
    assert table.column("retention_days").to_pylist() == [7, 7, 30]
    assert table.column("trace_id").to_pylist() == ["", "", log_lines.LAMBDA_TRACE]


def test_batch_size_counts_utf8_bytes_and_26_per_event() -> None:
    assert batch_size(["abc", "é"]) == 3 + 2 + 2 * 26


# -- the writer --------------------------------------------------------------------------


@pytest.fixture
def logs(store: Store) -> LogStore:
    log_store = LogStore(store, 30)
    log_store.create_group(GROUP)
    log_store.create_stream(GROUP, STREAM)
    return log_store


def _stored(logs: LogStore) -> list[tuple[int, str]]:
    page = logs.events(GROUP, limit=100_000)
    return [(event.seq, event.message) for event in page.events]


def test_concurrent_batches_are_coalesced_into_few_inserts(logs: LogStore) -> None:
    writer = LogWriter(logs)
    now = int(time.time() * 1000)
    batches = [[f"batch {b} event {i}" for i in range(20)] for b in range(60)]
    try:
        with ChdbTransport._statement:  # the engine is busy: the calls pile up meanwhile
            futures = [
                writer.submit(GROUP, STREAM, [now + b] * len(batch), batch)
                for b, batch in enumerate(batches)
            ]
            assert not any(future.done() for future in futures)
        for future in futures:
            future.result(timeout=60)
    finally:
        writer.close()
    stats = writer.stats
    assert stats.stored_batches == 60 and stats.stored_events == 1200
    assert stats.inserts <= 4, stats
    stored = _stored(logs)
    # every event once, numbered in arrival order
    assert [message for _, message in sorted(stored)] == [m for batch in batches for m in batch]
    assert stats.pending_bytes == 0


def test_a_full_buffer_refuses_whole_batches_and_counts_them(logs: LogStore) -> None:
    batch = ["x" * 974] * 10  # 10,000 bytes as PutLogEvents counts them
    writer = LogWriter(logs, max_bytes=35_000)
    now = int(time.time() * 1000)
    accepted: list[Future[None]] = []
    refused = 0
    try:
        with ChdbTransport._statement:
            for _ in range(6):
                try:
                    accepted.append(writer.submit(GROUP, STREAM, [now] * 10, batch))
                except Throttled:
                    refused += 1
            assert writer.stats.pending_bytes <= 35_000
        for future in accepted:
            future.result(timeout=60)
    finally:
        writer.close()
    assert len(accepted) == 3 and refused == 3
    assert writer.stats.refused_batches == 3 and writer.stats.refused_events == 30
    assert len(_stored(logs)) == 30


def test_put_awaits_durability_without_blocking_the_event_loop(logs: LogStore) -> None:
    writer = LogWriter(logs)
    engine = ChdbTransport._statement
    released = threading.Event()

    def release() -> None:  # a watchdog, should put ever block the loop
        if not released.is_set():
            released.set()
            engine.release()

    async def main() -> tuple[int, bool]:
        put = asyncio.create_task(
            writer.put(GROUP, STREAM, [int(time.time() * 1000)], ["after the wait"])
        )
        ticks = 0
        while ticks < 20:  # the loop runs while the put waits for the busy engine
            ticks += 1
            await asyncio.sleep(0.005)
        waited = not put.done()
        release()
        await asyncio.wait_for(put, 60)
        return ticks, waited

    engine.acquire()  # the engine is busy
    watchdog = threading.Timer(30, release)
    watchdog.start()
    try:
        ticks, waited = asyncio.run(main())
    finally:
        release()
        watchdog.cancel()
        writer.close()
    assert waited and ticks == 20
    assert [m for _, m in _stored(logs)] == ["after the wait"]


def test_a_batch_that_cannot_be_encoded_fails_alone(logs: LogStore) -> None:
    writer = LogWriter(logs)
    now = int(time.time() * 1000)
    try:
        with ChdbTransport._statement:  # all three are taken into one insert
            good = writer.submit(GROUP, STREAM, [now, now], ["good 1", "good 2"])
            bad = writer.submit(GROUP, STREAM, [now, 2**70], ["bad 1", "bad 2"])
            later = writer.submit(GROUP, STREAM, [now], ["good 3"])
        good.result(timeout=60)
        later.result(timeout=60)
        with pytest.raises(StoreError, match="could not be encoded"):
            bad.result(timeout=60)
    finally:
        writer.close()
    assert sorted(m for _, m in _stored(logs)) == ["good 1", "good 2", "good 3"]
    assert writer.stats.failed_batches == 1 and writer.stats.pending_bytes == 0


# -- bad input mixed with good ---------------------------------------------------------

_GOOD = [log_lines.START, log_lines.PY_INFO, log_lines.REPORT, log_lines.POWERTOOLS]
_garbage = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.text(alphabet='{}[]":,\\ 0123456789abcdef-', max_size=200),  # broken JSON-ish
    st.builds(lambda n, c: c * n, st.integers(50_000, 300_000), st.sampled_from("a{\t\n1")),
    st.builds(lambda s: s + "\udc80", st.text(max_size=50)),  # a lone surrogate
)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_garbage, st.sampled_from(_GOOD)), min_size=1, max_size=40), st.data())
def test_garbage_lines_never_break_the_good_ones(
    logs: LogStore, messages: list[str | bytes], data: st.DataObject
) -> None:
    messages = [*messages, *data.draw(st.permutations(_GOOD))]
    writer = LogWriter(logs)
    now = int(time.time() * 1000)
    try:
        writer.submit(GROUP, STREAM, [now] * len(messages), messages).result(timeout=60)
    finally:
        writer.close()
    lines = logs.trace_lines(log_lines.LAMBDA_TRACE)
    got = {event.message for event in lines}
    assert {log_lines.START, log_lines.PY_INFO, log_lines.REPORT} <= got
    assert log_lines.POWERTOOLS in {e.message for e in logs.trace_lines(log_lines.POWERTOOLS_TRACE)}
    stored = pa.array([m for _, m in _stored(logs)])
    assert len(stored) >= len(messages)


def test_a_busy_writer_gathers_calls_into_one_insert_and_an_idle_one_does_not_wait(
    logs: LogStore,
) -> None:
    writer = LogWriter(logs, linger_seconds=30, linger_events=3)
    now = int(time.time() * 1000)
    try:
        began = time.monotonic()
        writer.submit(GROUP, STREAM, [now], ["first, on an idle writer"]).result(timeout=25)
        assert time.monotonic() - began < 25  # not held for the linger
        assert writer.stats.inserts == 1
        # busy now (an insert just ended): one event waits for the others
        second = writer.submit(GROUP, STREAM, [now + 1], ["second"])
        third = writer.submit(GROUP, STREAM, [now + 2, now + 3], ["third", "fourth"])
        second.result(timeout=25)
        third.result(timeout=25)
    finally:
        writer.close()
    assert writer.stats.inserts == 2, writer.stats
    assert [message for _, message in sorted(_stored(logs))] == [
        "first, on an idle writer", "second", "third", "fourth",
    ]  # fmt: skip


def test_a_lone_call_on_a_busy_writer_waits_for_company_at_most_the_linger(
    logs: LogStore,
) -> None:
    writer = LogWriter(logs, linger_seconds=1.5, linger_events=1_000_000)
    now = int(time.time() * 1000)
    try:
        writer.submit(GROUP, STREAM, [now], ["first"]).result(timeout=60)
        began = time.monotonic()  # busy now: an insert just ended
        writer.submit(GROUP, STREAM, [now + 1], ["second"]).result(timeout=60)
        waited = time.monotonic() - began
    finally:
        writer.close()
    assert waited >= 1.0, waited
    assert writer.stats.inserts == 2


# The request id forms as the counted repetitions described them before extraction
# checked the lengths after matching (the same rows must match, with the same ids).
_BOUNDED_REQUEST = re.compile(
    r"^(?:\[[A-Za-z]+\]\t\d{4}-\d\d-\d\dT[^\t\n]*\t([0-9A-Za-z][0-9A-Za-z_-]{0,127})\t"
    r"|\d{4}-\d\d-\d\dT[0-9:.]+Z\t([0-9a-fA-F-]{36})\t"
    r"|\(([0-9a-fA-F][0-9a-fA-F-]{7,63})\) )"
)


@settings(max_examples=60)
@given(
    st.sampled_from(["[INFO]\t2026-12-03T18:29:55.123Z\t{}\tdone",
                     "2026-12-03T18:29:55.123Z\t{}\tINFO\tdone", "({}) Method request"]),
    st.sampled_from("0aF-_x"),
    st.sampled_from([0, 1, 6, 7, 8, 34, 35, 36, 62, 63, 64, 126, 127, 128, 140]),
)  # fmt: skip
def test_request_ids_keep_their_length_bounds(form: str, head: str, length: int) -> None:
    line = form.format("a" + head * length)
    match = _BOUNDED_REQUEST.match(line)
    expected = next((g for g in match.groups() if g), "") if match else ""
    assert _read([line])[0][EXTRACTED.index("request_id")] == expected
