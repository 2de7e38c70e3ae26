"""The gateway on an optimized interpreter, beside the one the venv uses.

pyenv builds Python without profile-guided and link-time optimization unless told to; a
distribution's `python3` and the official images are built with them, and the gateway's CPU
per order moves with the build more than with most changes to its code. So `make bench`
also runs the gateway, one order at a time and flat out, on such an interpreter (the
system's `/usr/bin/python3`, or FIXGW_BENCH_PYTHON), and says which gave each figure.

The gateway runs from this checkout either way (its mypyc-compiled modules too, built for
the same Python version); the other interpreter gets a venv of fixgw's dependencies only,
made once under `.venv-bench/`. An interpreter of another Python version is passed over:
the compiled modules would not load in it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from bench.md_throughput import run_json
from bench.order_latency import CpuMeter, order_stack, percentiles

CANDIDATES = ("/usr/bin/python3",)
MODES = {"one at a time": None, "flat out": 0.0}


def _version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def optimized_python() -> str | None:
    """FIXGW_BENCH_PYTHON, else the first candidate that exists, is not the venv's own
    interpreter, and is the venv's Python version."""
    explicit = os.environ.get("FIXGW_BENCH_PYTHON")
    ours = os.path.realpath(sys.executable)
    want = ".".join(map(str, sys.version_info[:2]))
    for python in [explicit] if explicit else CANDIDATES:
        if not Path(python).exists() or os.path.realpath(python) == ours:
            continue
        if _version(python).rsplit(".", 1)[0] == want:
            return python
    return None


def dependencies() -> list[str]:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def bench_venv(python: str) -> str:
    """`python`'s venv with fixgw's dependencies (made once, again when they change)."""
    deps = dependencies()
    key = hashlib.sha256("\n".join([os.path.realpath(python), *deps]).encode()).hexdigest()
    root = Path(".venv-bench").resolve() / key[:12]
    venv_python = root / "bin" / "python"
    done = root / ".installed"
    if not done.exists():
        subprocess.run([python, "-m", "venv", "--clear", str(root)], check=True)
        subprocess.run([str(venv_python), "-m", "pip", "install", "--quiet", *deps], check=True)
        done.touch()
    return str(venv_python)


def yardstick_us(python: str) -> float:
    """bench/yardstick.py under `python`."""
    out = subprocess.run(
        [python, "-m", "bench.yardstick"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip())


def _gateway_runs(orders: int, python: str) -> dict[str, Any]:
    """The gateway on `python` (the simulator on the venv's), each mode in MODES."""
    checkout = str(Path(__file__).resolve().parents[1])
    root = Path(tempfile.mkdtemp(prefix="fixgw-bench-python-"))
    stack = order_stack(root, env={"PYTHONPATH": checkout})
    runs: dict[str, Any] = {}
    try:
        stack.start_sim()
        stack.python = python
        stack.start_gateway()
        assert stack.gateway is not None and stack.gateway.popen is not None
        pid = stack.gateway.popen.pid
        for n, (mode, rate) in enumerate(MODES.items()):
            paced = [] if rate is None else ["--rate", str(rate)]
            command = ["bench.gw_orders", "--socket", stack.socket_path, "--orders", str(orders)]
            with CpuMeter({"gateway": pid}) as meter:
                result = run_json([*command, *paced, "--prefix", f"py{n}"])
            runs[mode] = {
                "gateway_us": percentiles(result.get("rtt_us") or result["latency_us"]),
                "cpu_us_per_order": meter.per_order_us(result, orders)["gateway"],
                "orders_per_s": result.get("orders_per_s"),
            }
    finally:
        stack.stop()
    return runs


def measure(orders: int) -> dict[str, Any]:
    """Each interpreter's gateway, back to back; None when there is no other interpreter."""
    other = optimized_python()
    if other is None:
        return {"skipped": "no other interpreter of this Python version (FIXGW_BENCH_PYTHON)"}
    pythons = {"venv": sys.executable, "optimized": bench_venv(other)}
    return {
        "orders": orders,
        "interpreters": {
            name: {
                "python": os.path.realpath(python),
                "version": _version(python),
                "execution_report_us": yardstick_us(python),
                "runs": _gateway_runs(orders, python),
            }
            for name, python in pythons.items()
        },
    }


def report(results: dict[str, Any]) -> str:
    if "skipped" in results:
        return f"gateway by interpreter: skipped, {results['skipped']}"
    lines = [f"gateway by interpreter ({results['orders']:,} orders per run):"]
    for name, about in results["interpreters"].items():
        lines.append(
            f"  {name}: {about['python']} (Python {about['version']}, reads an "
            f"ExecutionReport in {about['execution_report_us']} us)"
        )
        for mode, run in about["runs"].items():
            us, rate = run["gateway_us"], run["orders_per_s"]
            lines.append(
                f"    {mode:<14} p50 {us['p50']:7.0f} us  p99 {us['p99']:7.0f} us"
                f"  CPU per order {run['cpu_us_per_order']:5.0f} us"
                + (f"  {rate:,.0f} orders/s" if rate else "")
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure(int(os.environ.get("FIXGW_BENCH_ORDERS", "2000")))))
