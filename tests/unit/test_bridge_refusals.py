"""The OMS orders the bridge refused, kept on disk (`RefusedOrders`): what one run refused
the next still answers a resend with, the latest `kept` only, in a file that stays small."""

from __future__ import annotations

from pathlib import Path

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
