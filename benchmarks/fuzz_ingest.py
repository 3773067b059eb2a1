"""Fuzz ingest at length: many rounds of hostile documents beside good ones.

Starts a real ``fluoroscope server`` in a temporary directory and runs the property of
``tests/fuzzdocs.py`` for ``--examples`` hypothesis examples (the test suite runs 25):
every good document stored exactly, every hostile one stored, reported or counted by
reason, the counters adding up, the server up. Prints how many examples and documents
ran, what the hostile documents came to (by reason), and the first failure with its
shrunk example, if any. Exit status 1 on a failure.

    python -m benchmarks.fuzz_ingest --examples 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzzdocs import good_documents, hostile_documents, send_round
from tests.support import start_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="the server's ingest workers")
    args = parser.parse_args(argv)
    totals: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(Path(scratch) / "data", "--ingest-workers", str(args.workers))
        client = server.xray()
        started = time.monotonic()

        @settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            good=st.lists(good_documents(), min_size=1, max_size=20),
            hostile=st.lists(hostile_documents(), min_size=1, max_size=20),
        )
        def fuzz(good: list[dict[str, Any]], hostile: list[bytes]) -> None:
            outcome = send_round(server, client, good, hostile)
            totals["examples"] += 1
            totals["good"] += len(good)
            totals["hostile"] += len(hostile)
            totals["hostile stored"] += outcome.hostile_stored
            for reason, count in outcome.hostile_refused.items():
                totals[reason] += count

        failure: BaseException | None = None
        try:
            fuzz()
        except Exception as exc:  # the shrunk counterexample, reported below
            failure = exc
        elapsed = time.monotonic() - started
        output = server.stop()
    print(f"examples run: {totals['examples']} in {elapsed:.0f} s")
    print(f"documents: {totals['good']} good, {totals['hostile']} hostile")
    for reason, count in sorted(totals.items()):
        if reason not in ("examples", "good", "hostile"):
            print(f"  {reason}: {count}")
    print("server:", output.strip().splitlines()[-1] if output.strip() else "(no output)")
    if failure is not None:
        print(f"FAILED: {failure!r:.4000}")
        return 1
    print("found nothing: every good document stored exactly, every hostile one accounted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
