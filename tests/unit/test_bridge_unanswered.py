"""The bridge's status requests kept on disk until answered (`UnansweredRequests`): what a
run took and did not answer is what the next run finds, oldest first, as it came."""

from __future__ import annotations

from pathlib import Path

from fixgw.bridge.unanswered import UnansweredRequests

H = "8=FIX.4.4\x0135=H\x0111=ASK-{n}\x01790=req-{n}\x0158=refus\udce9\x01"
"""With a Latin-1 byte in Text, as QuickFIX hands it over (a lone surrogate)."""


def test_what_one_run_took_and_did_not_answer_the_next_finds_oldest_first(
    tmp_path: Path,
) -> None:
    before = UnansweredRequests(tmp_path / "unanswered")
    kept = [before.taken("OMS1", H.format(n=n)) for n in range(12)]
    for answered in kept[:3]:
        before.answered(answered)

    after = UnansweredRequests(tmp_path / "unanswered")

    assert [(oms, raw) for _, oms, raw in after.left()] == [
        ("OMS1", H.format(n=n)) for n in range(3, 12)
    ]


def test_a_file_a_crash_cut_short_is_dropped(tmp_path: Path) -> None:
    """Its message was not counted received yet: the OMS sends it again."""
    directory = tmp_path / "unanswered"
    UnansweredRequests(directory)
    (directory / "1-000000000001.tmp").write_bytes(b"OMS1\n8=FIX.4.4\x0135=H")

    assert UnansweredRequests(directory).left() == []
    assert list(directory.iterdir()) == []


def test_a_request_that_cannot_be_kept_is_still_taken(tmp_path: Path) -> None:
    unanswered = UnansweredRequests(tmp_path / "unanswered")
    unanswered.directory.rmdir()

    assert unanswered.taken("OMS1", H.format(n=1)) is None
    unanswered.answered(None)
