"""numpy, pandas and pyarrow.dataset kept out of a process (``ingest/keepout.py``), in
fresh interpreters: pyarrow still converts, computes and groups without them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

_PROBE = textwrap.dedent(
    """
    import json, sys
    from fluoroscope.ingest.keepout import keep_out
    keep_out()
    keep_out()  # idempotent
    import pyarrow as pa, pyarrow.compute as pc
    table = pa.table({"k": pa.array([2, 1, 2]), "v": pa.array([0.5, 1.0, 0.25])})
    grouped = table.group_by("k", use_threads=False).aggregate([("v", "sum")])
    refused = {}
    for name in ("numpy", "pandas", "pyarrow.dataset", "numpy.linalg"):
        try:
            __import__(name)
        except ModuleNotFoundError as exc:
            refused[name] = str(exc)
    print(json.dumps({
        "sums": sorted(grouped.to_pylist(), key=lambda row: row["k"]),
        "total": pc.sum(table.column("v")).as_py(),
        "refused": refused,
        "loaded": [m for m in ("numpy", "pandas", "pyarrow.dataset") if m in sys.modules],
    }))
    """
)


def test_a_process_keeps_them_out_and_pyarrow_works_without() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    got = json.loads(out)
    assert got["sums"] == [{"k": 1, "v_sum": 1.0}, {"k": 2, "v_sum": 0.75}]
    assert got["total"] == 1.75
    assert set(got["refused"]) == {"numpy", "pandas", "pyarrow.dataset", "numpy.linalg"}
    assert "kept out of this process" in got["refused"]["numpy"]
    assert got["loaded"] == []


def test_the_launcher_runs_a_module_as_its_main_with_its_arguments(tmp_path: Path) -> None:
    """``python -m fluoroscope.ingest.keepout MODULE ARG...`` as ``python -m MODULE ARG...``
    (here the standard library's json.tool, which reads the file it is given)."""
    source = tmp_path / "in.json"
    source.write_text('{"b": 1, "a": [2]}')
    out = subprocess.run(
        [sys.executable, "-m", "fluoroscope.ingest.keepout", "json.tool", "--sort-keys", source],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == {"a": [2], "b": 1}
    assert out.index('"a"') < out.index('"b"')
