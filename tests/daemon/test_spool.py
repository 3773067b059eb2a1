"""The daemon's spool: first in, first out across memory and disk, bounded, kept
across a restart, and counting what it cannot give back."""

from __future__ import annotations

from pathlib import Path

from fluoroscope.daemon.spool import Spool, batch_bytes


def _batches(n: int, size: int = 40, prefix: str = "d") -> list[list[bytes]]:
    return [[f"{prefix}{i}-{j}-".encode() + b"x" * size for j in range(5)] for i in range(n)]


def _drain(spool: Spool) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    while (batch := spool.get()) is not None:
        out.append(batch)
    return out


def test_memory_then_disk_keeps_order(tmp_path: Path) -> None:
    batches = _batches(200)
    spool = Spool(batch_bytes(batches[0]) * 10, tmp_path, 10**7, file_bytes=4096)
    for batch in batches[:150]:
        assert spool.put(batch)
    assert spool.memory_docs == 50  # ten batches fit in memory
    assert spool.disk_docs == 700
    assert len(list(tmp_path.glob("*.spool"))) > 1  # rotated
    out = [spool.get() for _ in range(20)]
    for batch in batches[150:]:  # memory has room again, but disk is not empty: disk
        assert spool.put(batch)
    assert spool.memory_docs == 0
    out += _drain(spool)
    assert out == batches
    assert spool.docs == 0
    assert spool.disk_used == 0
    assert not list(tmp_path.glob("*.spool"))
    assert spool.put(batches[0])  # empty again: memory first
    assert spool.memory_docs == 5
    spool.close()


def test_limits_refuse_batches(tmp_path: Path) -> None:
    batches = _batches(400, size=400)
    memory_only = Spool(batch_bytes(batches[0]) * 3)
    assert [memory_only.put(b) for b in batches[:4]] == [True, True, True, False]
    assert memory_only.close() == 15  # no disk: what is held is lost at close
    spool = Spool(batch_bytes(batches[0]), tmp_path, 4096)
    taken = [spool.put(b) for b in batches]
    assert taken[0] and not all(taken)
    assert spool.disk_used <= 4096
    assert _drain(spool) == [b for b, ok in zip(batches, taken, strict=True) if ok]
    spool.close()


def test_close_keeps_everything_for_the_next_start(tmp_path: Path) -> None:
    batches = _batches(100)
    spool = Spool(batch_bytes(batches[0]) * 30, tmp_path, 10**7, file_bytes=2048)
    for batch in batches[:60]:
        assert spool.put(batch)
    out = [spool.get() for _ in range(40)]  # all of memory, then part of the first file
    for batch in batches[60:]:
        assert spool.put(batch)
    assert spool.close() == 0
    again = Spool(batch_bytes(batches[0]) * 30, tmp_path, 10**7, file_bytes=2048)
    assert again.restored_docs == 60 * 5
    out += _drain(again)
    assert out == batches
    assert again.close() == 0
    last = Spool(10**6, tmp_path, 10**7)
    assert last.restored_docs == 0  # read once only
    last.close()


def test_memory_left_at_close_goes_in_front_of_the_disk(tmp_path: Path) -> None:
    batches = _batches(30)
    spool = Spool(batch_bytes(batches[0]) * 10, tmp_path, 10**7)
    for batch in batches[:20]:
        assert spool.put(batch)
    first = spool.get()  # memory: 9 left in memory, 10 on disk
    spool.put_front([first] if first is not None else [])  # cut short: back in front
    assert spool.close() == 0
    again = Spool(10**6, tmp_path, 10**7)
    assert _drain(again) == batches[:20]
    again.close()


def test_a_damaged_file_is_counted_not_replayed(tmp_path: Path) -> None:
    batches = _batches(10)
    spool = Spool(0, tmp_path, 10**7)
    for batch in batches:
        assert spool.put(batch)
    assert spool.close() == 0
    (path,) = tmp_path.glob("*.spool")
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # inside the first record's payload
    path.write_bytes(bytes(data))
    again = Spool(0, tmp_path, 10**7)
    assert again.restored_docs == 50
    assert _drain(again) == []
    assert again.corrupt_documents == 50
    assert again.docs == 0
    again.close()


def test_after_a_crash_the_files_are_read_from_their_start(tmp_path: Path) -> None:
    """A cursor is only good for the files it was written for: a daemon that took over a
    spool and then crashed leaves files that must be read whole, not from an old cursor."""
    import shutil

    old, new = _batches(20, prefix="old"), _batches(20, prefix="new")
    first = Spool(0, tmp_path / "spool", 10**7)
    for batch in old:
        first.put(batch)
    first.get()
    first.close()  # a cursor inside the first file
    second = Spool(0, tmp_path / "spool", 10**7)
    _drain(second)
    for batch in new:
        second.put(batch)
    shutil.copytree(tmp_path / "spool", tmp_path / "crashed")  # as kill -9 would leave it
    second.close()
    after_crash = Spool(0, tmp_path / "crashed", 10**7)
    assert _drain(after_crash) == new
    after_crash.close()
