"""An asyncio worker traced with fluoroscope.sdk: one segment per job, concurrent steps.

Run a server (``fluoroscope server``) or any X-Ray daemon on 127.0.0.1:2000, then::

    python examples/asyncio_worker.py

Each job becomes a trace: a segment named ``worker`` with a ``fetch`` subsegment per
item (fetched concurrently with ``TaskGroup``), a ``parse`` step, and a failed item
recorded as a fault with its exception and stack.
"""

from __future__ import annotations

import asyncio
import random

from fluoroscope.sdk import Tracer

tracer = Tracer(service="worker", sampling=False)


@tracer.capture("fetch")
async def fetch(item: int) -> bytes:
    await asyncio.sleep(random.uniform(0.005, 0.03))
    if item == 13:
        raise TimeoutError(f"item {item} timed out")
    return f"payload-{item}".encode()


@tracer.capture("parse")
def parse(payloads: list[bytes]) -> int:
    return sum(len(p) for p in payloads)


async def handle(job: int) -> None:
    async with tracer.segment() as seg:
        seg.put_annotation("job", job)
        tasks = []
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(fetch(job * 10 + i)) for i in range(4)]
        except* TimeoutError:
            seg.put_annotation("partial", True)
        payloads = [t.result() for t in tasks if not t.cancelled() and t.exception() is None]
        seg.put_metadata("bytes", parse(payloads))


async def main() -> None:
    await asyncio.gather(*(handle(job) for job in range(5)))
    tracer.flush()


if __name__ == "__main__":
    asyncio.run(main())
