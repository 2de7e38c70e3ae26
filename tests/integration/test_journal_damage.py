"""A damaged journal: the gateway never throws readable history away.

One changed line of 623 cut the journal to 159 lines at the next start: known orders went
from 210 to 53 and trades from 200 to 53, orders still open at the exchange were
forgotten (reconciliation, cancel_all and the kill switch no longer covered them), and a
cl_ord_id still in use was taken again. Now the gateway refuses to start on damage,
naming the record and the commands; `fixgw journal repair` sets the damaged records aside
and keeps every other one, byte for byte."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixgw.api.client import ApiError
from fixgw.testing import SECRET, LocalStack, free_port
from tests.integration.conftest import (
    DEFAULT_BOOKS,
    SERVICE_USER,
    EventLog,
    StackFactory,
    as_service_user,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def fixgw(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fixgw", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=stack._env(),
        check=False,
    )


def trade(stack: LocalStack, resting: int, filling: int) -> tuple[list[str], list[str]]:
    """`resting` orders left open at the exchange, `filling` that fill; their ids."""
    rest, fill = [], []
    with stack.client() as gw:
        gw.subscribe(["orders"])
        events = EventLog(gw)
        for n in range(resting):
            rest.append(
                gw.new_order(
                    cl_ord_id=f"rest-{n}", symbol="LTC/USD", side="buy", type="limit", qty="1",
                    price=f"{10 + n % 7}",
                )["cl_ord_id"]
            )  # fmt: skip
        for n in range(filling):
            fill.append(
                gw.new_order(
                    cl_ord_id=f"fill-{n}", symbol="BTC/USD", side="buy", type="limit",
                    qty="0.01", price="30010",
                )["cl_ord_id"]
            )  # fmt: skip
        for cl_ord_id in rest:
            events.find(cl_ord_id, "order.accepted")
        for cl_ord_id in fill:
            events.find(cl_ord_id, "order.filled")
    return rest, fill


def known(stack: LocalStack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with stack.client() as gw:
        return gw.orders(all=True), gw.request("trades", limit=10_000)["trades"]


def test_a_damaged_record_stops_the_start_and_repair_keeps_every_other_record(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    rest, fill = trade(stack, resting=40, filling=30)
    orders_before, trades_before = known(stack)
    assert stack.gateway is not None
    stack.gateway.stop()
    journal = stack.root / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) > 100

    # Two records in the first third: one changed so that it is still JSON (only its
    # checksum can tell), one cut short (not JSON).
    first = next(
        n
        for n in range(len(lines) // 5, len(lines))
        if b'"order.accepted"' in lines[n] and b'"qty":"1"' in lines[n]
    )
    second = first + len(lines) // 6
    lines[first] = lines[first].replace(b'"qty":"1"', b'"qty":"7"')
    lines[second] = lines[second][:40] + lines[second][-30:]
    damaged_bytes = b"".join(lines)
    journal.write_bytes(damaged_bytes)
    config = str(stack.root / "gateway.yaml")

    run = fixgw(stack, "run", "-c", config)
    assert run.returncode == 5, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    last = run.stderr.splitlines()[-1]
    assert f"line {first + 1} (byte " in last and "checksum does not match" in last, last
    assert "and 1 more" in last and "nothing was cut or changed" in last
    assert f"fixgw journal check -c {config}" in last
    assert f"fixgw journal repair -c {config}" in last
    assert journal.read_bytes() == damaged_bytes  # nothing cut

    check = fixgw(stack, "journal", "check", "-c", config)
    assert check.returncode == 5, check.stderr
    assert f"line {first + 1} " in check.stdout and f"line {second + 1} " in check.stdout
    assert check.stdout.count("its checksum does not match its bytes") == 2
    assert f"{len(lines) - 2} good records" in check.stdout
    assert journal.read_bytes() == damaged_bytes  # check changes nothing

    repair = fixgw(stack, "journal", "repair", "-c", config)
    assert repair.returncode == 0, repair.stderr
    kept = journal.read_bytes()
    assert kept == b"".join(line for n, line in enumerate(lines) if n not in (first, second))
    aside = [
        json.loads(line) for line in (stack.root / "journal.jsonl.damaged").read_text().splitlines()
    ]
    assert [base64.b64decode(a["raw_b64"]) for a in aside] == [lines[first], lines[second]]
    assert [a["line"] for a in aside] == [first + 1, second + 1]

    stack.start_gateway()
    orders_after, trades_after = known(stack)
    assert len(orders_after) == len(orders_before) == len(rest) + len(fill)
    assert trades_after == trades_before
    assert sorted(o["cl_ord_id"] for o in orders_after if o["status"] == "new") == sorted(rest)
    with stack.client() as gw:
        gw.subscribe(["orders"])
        with pytest.raises(ApiError) as taken:
            gw.new_order(cl_ord_id=rest[0], symbol="LTC/USD", side="buy", type="limit",
                         qty="1", price="10")  # fmt: skip
        assert taken.value.code == "duplicate_cl_ord_id"
        cancelled = gw.request("cancel_all")
        assert sorted(cancelled["cancelling"]) == sorted(rest)  # every open order still covered
        events = EventLog(gw)
        for cl_ord_id in rest:
            events.find(cl_ord_id, "order.canceled")


def test_the_commands_a_damaged_journal_advises_work_once_the_secrets_are_gone(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """Under systemd the credential files exist only while the unit runs. The start stopped
    on damage advises `fixgw journal check -c FILE` and `repair -c FILE`; with the unit
    stopped, both failed reading the secrets (exit 2), though only `journal.path` matters."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    stack = make_stack(credentials={"secret_key": {"file": str(secret_file)}})
    trade(stack, resting=2, filling=0)
    assert stack.gateway is not None
    stack.gateway.stop()
    journal = stack.root / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][:40] + lines[1][-30:]
    journal.write_bytes(b"".join(lines))
    run = fixgw(stack, "run", "-c", str(stack.root / "gateway.yaml"))
    assert run.returncode == 5, run.stderr[-3000:]
    check, repair = re.findall(r"fixgw (journal \w+ -c [^;\s]+)", run.stderr.splitlines()[-1])

    secret_file.unlink()  # the unit stopped: systemd removed its credentials

    checked = fixgw(stack, *check.split())
    assert checked.returncode == 5, checked.stderr
    assert "1 damaged" in checked.stdout
    repaired = fixgw(stack, *repair.split())
    assert repaired.returncode == 0, repaired.stderr
    assert "set aside line 2 " in repaired.stdout


def test_repair_is_refused_while_a_gateway_runs_on_the_journal(make_stack: StackFactory) -> None:
    stack = make_stack()
    journal = stack.root / "journal.jsonl"
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    repair = fixgw(stack, "journal", "repair", "-c", str(stack.root / "gateway.yaml"))
    assert repair.returncode == 1
    assert "is in use by another process" in repair.stderr and "stop the gateway" in repair.stderr
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before
    assert stack.status()["session"] == "up"


def test_repair_run_as_root_keeps_the_owner_and_the_service_users_gateway_starts(
    service_root: Path,
) -> None:
    """The journal of a gateway run as its own user, repaired by root (sudo, as the shipped
    unit's private state directory makes it): the journal, its side file and its lock were
    left root's, 0600, and the gateway refused to start (journal.path: not readable and
    writable by this user)."""
    stack = LocalStack(
        root=service_root, sim_port=free_port(), books=DEFAULT_BOOKS, symbols=list(DEFAULT_BOOKS),
        python=as_service_user(service_root),
    )  # fmt: skip
    try:
        stack.start_sim()
        stack.start_gateway()
        trade(stack, resting=3, filling=0)
        assert stack.gateway is not None
        assert stack.gateway.stop() == 0
        journal = service_root / "journal.jsonl"
        lock = service_root / "journal.jsonl.lock"
        lock.unlink()  # repair makes it: its owner must be the journal's too
        lines = journal.read_bytes().splitlines(keepends=True)
        lines[1] = lines[1][:40] + lines[1][-30:]
        journal.write_bytes(b"".join(lines))

        repair = fixgw(stack, "journal", "repair", "--path", str(journal))

        assert repair.returncode == 0, repair.stderr
        for made in (journal, service_root / "journal.jsonl.damaged", lock):
            owner = made.stat()
            assert (owner.st_uid, owner.st_gid) == (SERVICE_USER, SERVICE_USER), made
        stack.start_gateway()  # as the service user: up and reconciled
        assert stack.status()["ready"]
    finally:
        stack.stop()


def seq_of(line: bytes) -> int:
    return int(json.loads(line)["seq"])


def test_a_flipped_seq_in_a_line_from_before_checksums_is_the_one_set_aside(
    make_stack: StackFactory,
) -> None:
    """An upgraded journal: its older lines carry no checksum. One of them had its seq
    raised by a flip: the start, check and repair named the good lines after it instead,
    repair set them aside (an order.filled among them) and kept the flipped one under
    its false seq."""
    stack = make_stack()
    trade(stack, resting=2, filling=3)
    orders_before, trades_before = known(stack)
    assert stack.gateway is not None
    stack.gateway.stop()
    journal = stack.root / "journal.jsonl"
    sealed_lines = journal.read_bytes().splitlines(keepends=True)
    fill = next(n for n, line in enumerate(sealed_lines) if b'"order.filled"' in line)
    # as the gateway wrote them before checksums: the lines up to a little after the fill
    lines = [
        line[: line.rindex(b',"crc":')] + b"}\n" if n <= fill + 2 else line
        for n, line in enumerate(sealed_lines)
    ]
    flipped = fill - 2  # its two next lines, the fill the second, say it is too high
    raised = seq_of(lines[fill])
    lines[flipped] = re.sub(rb'^\{"seq":\d+,', b'{"seq":%d,' % raised, lines[flipped])
    damaged_bytes = b"".join(lines)
    journal.write_bytes(damaged_bytes)
    config = str(stack.root / "gateway.yaml")

    run = fixgw(stack, "run", "-c", config)
    assert run.returncode == 5, run.stderr[-3000:]
    last = run.stderr.splitlines()[-1]
    assert f"1 damaged record(s): line {flipped + 1} (byte " in last, last
    assert f"seq {raised}): its seq {raised} is not below" in last, last
    assert journal.read_bytes() == damaged_bytes

    check = fixgw(stack, "journal", "check", "-c", config)
    assert check.returncode == 5, check.stderr
    assert f"line {flipped + 1} (byte " in check.stdout
    assert f"{len(lines) - 1} good records" in check.stdout and "; 1 damaged" in check.stdout

    repair = fixgw(stack, "journal", "repair", "-c", config)
    assert repair.returncode == 0, repair.stderr
    assert journal.read_bytes() == b"".join(lines[:flipped] + lines[flipped + 1 :])
    [aside] = (stack.root / "journal.jsonl.damaged").read_text().splitlines()
    assert base64.b64decode(json.loads(aside)["raw_b64"]) == lines[flipped]

    stack.start_gateway()
    orders_after, trades_after = known(stack)
    assert trades_after == trades_before  # the fill after the flipped line is still known
    assert len(orders_after) == len(orders_before)


def test_whole_records_joined_to_damage_are_kept_and_the_damage_alone_set_aside(
    make_stack: StackFactory,
) -> None:
    """A block of zeros a crash left before a line, and a newline flipped to another byte:
    the whole records after them, checksums intact, were set aside with the damage as one
    record, named `seq ?` or by the seq of the line before."""
    stack = make_stack()
    trade(stack, resting=3, filling=3)
    orders_before, trades_before = known(stack)
    assert stack.gateway is not None
    stack.gateway.stop()
    journal = stack.root / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    fill = next(n for n, line in enumerate(lines) if b'"order.filled"' in line)
    joined = fill - 1  # its newline flipped: joined to the fill after it
    zeroed = len(lines) - 3  # a block of zeros before it
    assert 0 < joined < zeroed
    zeros = b"\x00" * 300
    damaged_bytes = (
        b"".join(lines[:joined])
        + lines[joined][:-1]
        + b"\x0b"
        + b"".join(lines[joined + 1 : zeroed])
        + zeros
        + b"".join(lines[zeroed:])
    )
    journal.write_bytes(damaged_bytes)
    config = str(stack.root / "gateway.yaml")
    flipped_at = sum(map(len, lines[: joined + 1])) - 1
    zeros_at = sum(map(len, lines[:zeroed]))
    said = [
        f"line {joined + 1} (byte {flipped_at}, 1 bytes, seq ?): not a journal record",
        f"whole record(s) seq {seq_of(lines[joined])}, {seq_of(lines[fill])}, read as lines",
        f"line {zeroed} (byte {zeros_at}, 300 bytes, seq ?): not a journal record",
        f"whole record(s) seq {seq_of(lines[zeroed])}, read as lines",
    ]

    run = fixgw(stack, "run", "-c", config)
    assert run.returncode == 5, run.stderr[-3000:]
    last = run.stderr.splitlines()[-1]
    assert "has 2 damaged record(s): " + said[0] in last and said[1] in last, last
    assert journal.read_bytes() == damaged_bytes

    check = fixgw(stack, "journal", "check", "-c", config)
    assert check.returncode == 5, check.stderr
    assert all(part in check.stdout for part in said), check.stdout
    assert f"{len(lines)} good records" in check.stdout and "; 2 damaged" in check.stdout

    repair = fixgw(stack, "journal", "repair", "-c", config)
    assert repair.returncode == 0, repair.stderr
    assert all(part in repair.stdout for part in said), repair.stdout
    assert journal.read_bytes() == b"".join(lines)  # every record, a line of its own again
    aside = [
        json.loads(line) for line in (stack.root / "journal.jsonl.damaged").read_text().splitlines()
    ]
    assert [(a["offset"], base64.b64decode(a["raw_b64"])) for a in aside] == [
        (flipped_at, b"\x0b"),
        (zeros_at, zeros),
    ]

    stack.start_gateway()
    orders_after, trades_after = known(stack)
    assert trades_after == trades_before
    assert len(orders_after) == len(orders_before)
