"""The two nats-py examples docs/nats.md shows (examples/nats_*.py), run as they are against a
real nats-server and gateway, so neither can rot: one places orders, the other prints order
events with a durable consumer (a restart goes on where it left off) or from a gateway seq.
The docs hold each example's code as the file has it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fixgw.testing import NatsServer, wait_until
from tests.integration.conftest import StackFactory

pytestmark = [pytest.mark.integration, pytest.mark.nats]

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
PLACE, PRINT = EXAMPLES / "nats_place_order.py", EXAMPLES / "nats_print_orders.py"


def place(url: str, price: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(PLACE), url, "gw1", "BTC/USD", "buy", "0.01", price],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


class Printer:
    """examples/nats_print_orders.py running, and the lines it printed: (seq, type, cl_ord_id,
    status)."""

    def __init__(self, url: str, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, str(PRINT), url, "gw1", *args], stdout=subprocess.PIPE, text=True
        )
        self.lines: list[list[str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.split())

    def wait_for(self, cl_ord_id: str, type_: str) -> None:
        wait_until(
            lambda: [type_, cl_ord_id] in [line[1:3] for line in self.lines],
            30,
            f"{type_} of {cl_ord_id} to be printed",
        )

    def stop(self) -> None:
        self.popen.terminate()
        self.popen.wait(10)


def test_the_examples_place_an_order_and_print_order_events(
    make_stack: StackFactory, broker: NatsServer
) -> None:
    stack = make_stack(nats={"servers": [broker.url], "gateway": "gw1"})
    wait_until(lambda: stack.status()["nats"]["connected"], 20, "the gateway to reach NATS")

    first = place(broker.url, "29000")  # rests below the best ask
    assert first["ok"] is True
    first_id = first["result"]["cl_ord_id"]  # type: ignore[index]
    printer = Printer(broker.url)
    try:
        printer.wait_for(first_id, "order.accepted")
        assert printer.lines[0][1:] == ["order.pending_new", first_id, "pending_new"]
    finally:
        printer.stop()

    second = place(broker.url, "29001")
    second_id = second["result"]["cl_ord_id"]  # type: ignore[index]
    again = Printer(broker.url)  # the same durable consumer: from where the first one was
    try:
        again.wait_for(second_id, "order.accepted")
        assert first_id not in {line[2] for line in again.lines}, "printed again after a restart"
    finally:
        again.stop()

    after = int(printer.lines[-1][0])  # the first order's last event
    resumed = Printer(broker.url, "--after-seq", str(after))
    try:
        resumed.wait_for(second_id, "order.accepted")
        assert int(resumed.lines[0][0]) > after
        assert [line[2] for line in resumed.lines] == [second_id] * len(resumed.lines)
    finally:
        resumed.stop()

    refused = subprocess.run(
        [sys.executable, str(PLACE), broker.url, "gw1", "ETH/USD", "buy", "1", "10"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "unknown_symbol"


@pytest.mark.parametrize("example", [PLACE, PRINT], ids=lambda path: path.name)
def test_the_docs_show_each_example_as_it_is(example: Path) -> None:
    """From its `async def` to its `if __name__`: what docs/nats.md shows of it."""
    code = example.read_text()
    body = code[code.index("async def") : code.index('\n\nif __name__ == "__main__":')]
    assert body in (ROOT / "docs" / "nats.md").read_text()
