"""Market-data throughput: the simulator's incremental refreshes through the gateway to
socket clients, against the same stream received by a bare QuickFIX-Python initiator.

One run on this machine: the floor, then the gateway with 1 and with 10 clients, each
receiving `messages` refreshes; the gateway's RSS is sampled through each run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fixgw.testing import LocalStack, free_port

SYMBOL = "BENCH/USD"
BARE = {"comp_id": "bench-bare", "api_key": "bench-key", "secret_key": "bench-secret"}
FUNDS = {"BTC": "1000000000", "LTC": "1000000000", "USD": "1000000000000"}
"""What the bench accounts hold: the simulator refuses orders an account cannot pay for, and
the order benches leave every order resting, each holding its price."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's memory from /proc in MB: resident now, or `VmHWM`, its peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        self.pid = pid
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples.append(rss_mb(self.pid))

    def __enter__(self) -> RssSampler:
        self.samples.append(rss_mb(self.pid))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb(self.pid))


def bare_command(module: str, port: int) -> list[str]:
    """A bare initiator's command line, logging on with the bench account."""
    return [
        module,
        "--port",
        str(port),
        "--comp-id",
        BARE["comp_id"],
        "--api-key",
        BARE["api_key"],
        "--secret-key",
        BARE["secret_key"],
    ]


def run_json(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def feed_stack(messages: int) -> LocalStack:
    """A simulator that sends `messages` incremental refreshes of SYMBOL once subscribed,
    and a gateway for it (not started)."""
    return LocalStack(
        root=Path(tempfile.mkdtemp(prefix="fixgw-bench-md-")),
        sim_port=free_port(),
        books={},
        symbols=[SYMBOL],
        log_level="warning",
        sim_overrides={
            "accounts": [BARE],
            "load_feeds": {SYMBOL: {"messages": messages, "entries": 2}},
        },
        gateway_overrides={"market_data": {"stale_after_s": 0}},
    )


def measure(messages: int) -> dict[str, Any]:
    stack = feed_stack(messages)
    try:
        stack.start_sim()
        bare = run_json(
            [
                *bare_command("bench.bare_md", stack.sim_port),
                "--symbol",
                SYMBOL,
                "--messages",
                str(messages),
            ]
        )
        stack.start_gateway()
        assert stack.gateway is not None and stack.gateway.popen is not None
        pid = stack.gateway.popen.pid
        results: dict[str, Any] = {
            "messages": messages,
            "bare_rate": bare["rate"],
            "bare_cpu_us_per_msg": bare["cpu_us_per_msg"],
        }
        for clients in (1, 10):
            time.sleep(0.5)
            cpu_before = cpu_seconds(pid)
            with RssSampler(pid) as rss:
                got = run_json(
                    [
                        "bench.md_clients",
                        "--socket",
                        stack.socket_path,
                        "--symbol",
                        SYMBOL,
                        "--clients",
                        str(clients),
                        "--messages",
                        str(messages),
                    ]
                )
            results[f"gateway_{clients}_clients"] = {
                "slowest_client_rate": got["slowest"],
                "ratio_to_bare": got["slowest"] / bare["rate"],
                "cpu_us_per_msg": (cpu_seconds(pid) - cpu_before) / messages * 1e6,
                "rss_mb_start": rss.samples[0],
                "rss_mb_peak": max(rss.samples),
                "rss_mb_end": rss.samples[-1],
            }
        return results
    finally:
        stack.stop()


def report(results: dict[str, Any]) -> str:
    lines = [
        f"market data: {results['messages']:,} incremental refreshes (2 entries each)",
        f"  bare QuickFIX-Python initiator   {results['bare_rate']:>8,.0f} msg/s  (floor)"
        f"                          CPU {results['bare_cpu_us_per_msg']:3.0f} us/msg",
    ]
    for clients, target in ((1, 0.8), (10, 0.7)):
        r = results[f"gateway_{clients}_clients"]
        verdict = "ok" if r["ratio_to_bare"] >= target else "BELOW TARGET"
        lines.append(
            f"  gateway -> {clients:>2} client(s)          {r['slowest_client_rate']:>8,.0f} msg/s"
            f"  ratio {r['ratio_to_bare']:.2f} (target >= {target}: {verdict})"
            f"  CPU {r['cpu_us_per_msg']:3.0f} us/msg"
            f"  RSS {r['rss_mb_start']:.0f} -> {r['rss_mb_peak']:.0f} (peak)"
            f" -> {r['rss_mb_end']:.0f} MB"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_MD_MESSAGES", "200000")))))
