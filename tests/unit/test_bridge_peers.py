"""Which peer a Logon QuickFIX refused came from: QuickFIX names none, so the bridge knows
each Logon the logon gate handed over (`fixgw.bridge.acceptor._Peers`). The whole path, with
connections from several addresses refused at once:
tests/integration/test_bridge_logon_gate.py."""

from __future__ import annotations

import simplefix

from fixgw.bridge.acceptor import _Peers


def logon(heartbeat_s: int, sending_time: str = "20261207-12:00:00.000") -> bytes:
    message = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.4"), (35, "A"), (49, "TWIN"), (56, "FIXGW"), (34, 1)):
        message.append_pair(tag, value, header=True)
    message.append_pair(52, sending_time, header=True)
    message.append_pair(98, 0)
    message.append_pair(108, heartbeat_s)
    encoded: bytes = message.encode()
    return encoded


def test_two_logons_alike_but_in_their_bodies_are_told_apart_by_their_checksum() -> None:
    """The same CompIDs, MsgSeqNum and SendingTime from two addresses at once."""
    peers = _Peers()
    first, second = logon(30), logon(31)
    peers.handed_over("127.0.0.2", first)
    peers.handed_over("127.0.0.3", second)
    assert peers.of(first.decode()) == "127.0.0.2"
    assert peers.of(second.decode()) == "127.0.0.3"


def test_a_logon_quickfix_wrote_out_again_is_still_known_without_its_checksum() -> None:
    peers = _Peers()
    peers.handed_over("127.0.0.2", logon(30))
    original = logon(30)
    written_again = original[:-4] + (b"001" if original[-4:-1] != b"001" else b"002") + b"\x01"
    assert peers.of(written_again.decode()) == "127.0.0.2"
    assert peers.of(logon(30, "20261207-12:00:01.000").decode()) == "unknown"
