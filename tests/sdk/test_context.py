"""Context torture: the current entity follows tasks, threads, executors, generators."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from fluoroscope.sdk import Tracer, carry, current_entity, submit
from fluoroscope.sdk.instrument import get_instrumentor
from tests.sdk.conftest import UDPDaemon, by_name, flatten


def _name() -> str | None:
    entity = current_entity()
    return None if entity is None else entity.name


def test_gather_create_task_and_taskgroup_nest_correctly(tracer: Tracer, daemon: UDPDaemon) -> None:
    @tracer.capture()
    async def leaf(tag: str) -> str:
        await asyncio.sleep(0.001)
        return _name() or ""

    @tracer.capture()
    async def branch(tag: str) -> list[str]:
        with tracer.subsegment(f"inner-{tag}"):
            results = await asyncio.gather(leaf(tag), leaf(tag))
        return list(results)

    async def main() -> None:
        async with tracer.segment("root"):
            task = asyncio.create_task(branch("t"))
            async with asyncio.TaskGroup() as group:
                g1 = group.create_task(branch("g1"))
                g2 = group.create_task(branch("g2"))
            assert await task == ["leaf", "leaf"]
            assert g1.result() == g2.result() == ["leaf", "leaf"]
            assert _name() == "root"

    asyncio.run(main())
    tracer.flush()
    ents = flatten(daemon.documents(1))
    names = {e["id"]: e["name"] for e in ents.values()}
    leaves = [e for e in ents.values() if e["name"] == "leaf"]
    assert len(leaves) == 6
    for found in leaves:
        assert names[found["_parent"]].startswith("inner-")
    inners = [e for e in ents.values() if e["name"].startswith("inner-")]
    assert sorted(e["name"] for e in inners) == ["inner-g1", "inner-g2", "inner-t"]
    assert all(names[e["_parent"]] == "branch" for e in inners)


def test_exceptions_in_tasks_do_not_corrupt_context(tracer: Tracer, daemon: UDPDaemon) -> None:
    @tracer.capture()
    async def failing(i: int) -> None:
        await asyncio.sleep(0)
        raise KeyError(i)

    async def main() -> None:
        async with tracer.segment("root") as seg:
            results = await asyncio.gather(*(failing(i) for i in range(5)), return_exceptions=True)
            assert all(isinstance(r, KeyError) for r in results)
            assert current_entity() is seg
            with pytest.raises(ExceptionGroup):
                async with asyncio.TaskGroup() as group:
                    group.create_task(failing(9))
            assert current_entity() is seg

    asyncio.run(main())
    tracer.flush()
    ents = flatten(daemon.documents(1))
    failures = [e for e in ents.values() if e["name"] == "failing"]
    assert len(failures) == 6
    assert all(e["fault"] for e in failures)


def test_threads_see_nothing_unless_context_is_carried(tracer: Tracer, daemon: UDPDaemon) -> None:
    seen: dict[str, str | None] = {}

    @tracer.capture("in-thread")
    def work(key: str) -> None:
        seen[key] = _name()

    with tracer.segment("root"):
        plain = threading.Thread(target=lambda: seen.__setitem__("plain", _name()))
        plain.start()
        plain.join()
        carried = threading.Thread(target=carry(work), args=("carried",))
        carried.start()
        carried.join()
    assert seen == {"plain": None, "carried": "in-thread"}
    tracer.flush()
    ents = by_name(daemon.documents(1))
    assert ents["in-thread"]["_parent"] == ents["root"]["id"]


def test_executor_submit_helper_and_concurrent_children(tracer: Tracer, daemon: UDPDaemon) -> None:
    @tracer.capture("job")
    def job(i: int) -> int:
        with tracer.subsegment(f"step-{i}"):
            return i

    with tracer.segment("root"), ThreadPoolExecutor(4) as pool:
        futures = [submit(pool, job, i) for i in range(40)]
        assert sorted(f.result() for f in futures) == list(range(40))
    tracer.flush()
    ents = flatten(daemon.documents(1, until=lambda d: len(flatten(d)) >= 81))
    jobs = [e for e in ents.values() if e["name"] == "job"]
    steps = [e for e in ents.values() if e["name"].startswith("step-")]
    assert len(jobs) == 40
    assert len(steps) == 40
    job_ids = {e["id"] for e in jobs}
    assert all(s["_parent"] in job_ids for s in steps)


def test_futures_instrumentation_carries_context_and_reverses(
    tracer: Tracer, daemon: UDPDaemon
) -> None:
    inst = get_instrumentor("futures")
    assert inst is not None
    original = ThreadPoolExecutor.submit
    try:
        assert inst.instrument()
        assert inst.instrument()
        with tracer.segment("root"), ThreadPoolExecutor(2) as pool:
            assert pool.submit(_name).result() == "root"

            async def via_loop() -> str | None:
                return await asyncio.get_running_loop().run_in_executor(pool, _name)

            with tracer.subsegment("sub"):
                assert asyncio.run(via_loop()) == "sub"
    finally:
        inst.uninstrument()
        inst.uninstrument()
    assert ThreadPoolExecutor.submit is original
    with tracer.segment("root2"), ThreadPoolExecutor(1) as pool:
        assert pool.submit(_name).result() is None
    tracer.flush()
    daemon.documents(2)


def test_generators_do_not_leak_context_to_consumer(tracer: Tracer, daemon: UDPDaemon) -> None:
    @tracer.capture("gen")
    def gen() -> Iterator[str | None]:
        yield _name()
        with tracer.subsegment("inside-gen"):
            yield _name()
        yield _name()

    @tracer.capture("agen")
    async def agen() -> AsyncIterator[str | None]:
        yield _name()
        await asyncio.sleep(0)
        yield _name()

    with tracer.segment("root") as seg:
        iterator = gen()
        assert next(iterator) == "gen"
        assert _name() == "root"
        assert next(iterator) == "inside-gen"
        assert current_entity() is seg  # the generator's subsegment is not current out here
        assert next(iterator) == "gen"
        assert list(iterator) == []

        async def consume() -> list[str | None]:
            return [x async for x in agen()]

        assert asyncio.run(consume()) == ["agen", "agen"]
    tracer.flush()
    ents = by_name(daemon.documents(1))
    assert ents["inside-gen"]["_parent"] == ents["gen"]["id"]
    assert ents["agen"]["_parent"] == seg.id


def test_generator_closed_early_and_throw(tracer: Tracer, daemon: UDPDaemon) -> None:
    cleanup: list[str | None] = []

    @tracer.capture("gen")
    def gen() -> Generator[int, None, None]:
        try:
            yield 1
            yield 2
        finally:
            cleanup.append(_name())

    @tracer.capture("thrower")
    def thrower() -> Generator[int, None, None]:
        try:
            yield 1
        except ValueError:
            yield 99

    with tracer.segment("root"):
        g = gen()
        next(g)
        g.close()
        t = thrower()
        next(t)
        assert t.throw(ValueError("x")) == 99
        t.close()
    assert cleanup == ["gen"]
    tracer.flush()
    ents = by_name(daemon.documents(1))
    assert "fault" not in ents["thrower"]


def test_segment_per_task_in_a_server_like_loop(tracer: Tracer, daemon: UDPDaemon) -> None:
    async def handle(i: int) -> None:
        async with tracer.segment(f"req-{i}") as seg:
            await asyncio.sleep(0.001 * (i % 3))
            with tracer.subsegment(f"work-{i}"):
                await asyncio.sleep(0)
                assert current_entity().segment is seg  # type: ignore[union-attr]

    async def main() -> None:
        await asyncio.gather(*(handle(i) for i in range(20)))

    asyncio.run(main())
    tracer.flush()
    docs = daemon.documents(20)
    for doc in docs:
        (work,) = doc["subsegments"]
        assert work["name"] == doc["name"].replace("req", "work")
