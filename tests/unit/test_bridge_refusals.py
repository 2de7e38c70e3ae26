"""The OMS orders the bridge refused, kept on disk (`RefusedOrders`): what one run refused
the next still answers a resend with, the latest `kept` only, in a file that stays small."""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import structlog.testing

from fixgw.bridge.refusals import FILE_NAME, Refusal, RefusedOrders


def test_what_one_run_refused_the_next_finds(tmp_path: Path) -> None:
    before = RefusedOrders(tmp_path)
    before.refused("OMS1", "HALT-1", "0", "halted: trading is halted (drill)")
    before.refused("OMS2", "HALT-1", "3", "risk: risk limit max_qty")
    before.close()

    after = RefusedOrders(tmp_path)

    assert after.refusal("OMS1", "HALT-1") == Refusal("0", "halted: trading is halted (drill)")
    assert after.refusal("OMS2", "HALT-1") == Refusal("3", "risk: risk limit max_qty")
    assert after.refusal("OMS1", "OTHER") is None


def test_only_the_latest_are_kept_and_the_file_is_written_again_with_those(
    tmp_path: Path,
) -> None:
    refusals = RefusedOrders(tmp_path, kept=3)
    for n in range(8):
        refusals.refused("OMS1", f"R-{n}", "0", "halted")

    assert [refusals.refusal("OMS1", f"R-{n}") is not None for n in range(8)] == [
        *([False] * 5),
        *([True] * 3),
    ]
    assert len((tmp_path / FILE_NAME).read_bytes().splitlines()) <= 2 * 3
    refusals.close()
    again = RefusedOrders(tmp_path, kept=3)
    assert again.refusal("OMS1", "R-4") is None
    assert again.refusal("OMS1", "R-7") == Refusal("0", "halted")


def test_a_line_a_crash_cut_short_is_passed_over(tmp_path: Path) -> None:
    refusals = RefusedOrders(tmp_path)
    refusals.refused("OMS1", "R-1", "0", "halted")
    refusals.close()
    with (tmp_path / FILE_NAME).open("ab") as f:
        f.write(b'["OMS1","R-2","0","hal')

    after = RefusedOrders(tmp_path)
    after.refused("OMS1", "R-3", "3", "risk")

    assert after.refusal("OMS1", "R-1") == Refusal("0", "halted")
    assert after.refusal("OMS1", "R-2") is None
    after.close()
    assert RefusedOrders(tmp_path).refusal("OMS1", "R-3") == Refusal("3", "risk")


@contextlib.contextmanager
def disk_room(room: int, path: Path) -> Iterator[None]:
    """`room` bytes more for `path` on its disk: a real file past RLIMIT_FSIZE, whose
    write the kernel takes part of and says nothing (a short write), then refuses."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    sigxfsz = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + room, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, sigxfsz)


def test_a_refusal_the_disk_took_part_of_is_not_kept_and_the_next_is_written_whole(
    tmp_path: Path,
) -> None:
    """The disk had room for part of FULL-1's line: unnoticed, ROOM-2 was appended onto
    it once there was room again, and the restart passed the joined line over: a resend of
    ROOM-2 was placed. FULL-1 is said not kept, as when the write fails outright."""
    refusals = RefusedOrders(tmp_path)
    refusals.refused("OMS1", "OLD-1", "0", "x" * 1_000_000)
    with structlog.testing.capture_logs() as logs, disk_room(20, tmp_path / FILE_NAME):
        refusals.refused("OMS1", "FULL-1", "0", "halted: trading is halted (drill)")
    refusals.refused("OMS1", "ROOM-2", "0", "halted: trading is halted (drill)")
    refusals.close()

    after = RefusedOrders(tmp_path)

    assert [e["event"] for e in logs] == ["refused order not kept for a restart"]
    assert after.refusal("OMS1", "ROOM-2") == Refusal("0", "halted: trading is halted (drill)")
    assert after.refusal("OMS1", "FULL-1") is None
    assert after.refusal("OMS1", "OLD-1") is not None
