"""Process lifecycles: the gateway daemon and the simulator, with their signal handling."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

import structlog

from fixgw.api.server import ApiServer
from fixgw.bridge.router import Bridge
from fixgw.config import GatewayConfig, SimConfig, load_gateway_config, resolve_secrets
from fixgw.errors import FixgwError
from fixgw.gateway import Gateway
from fixgw.ops import notify
from fixgw.ops.capture import loop_exception_handler
from fixgw.ops.logging import configure as configure_logging
from fixgw.ops.prometheus import MetricsServer
from fixgw.sim.exchange import Simulator

log = structlog.get_logger("fixgw.daemon")


async def run_gateway(config: GatewayConfig, path: Path | None = None) -> int:
    """Run until SIGINT or SIGTERM; then stop taking requests, log out, and return 0."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    secrets = resolve_secrets(config)
    gateway = Gateway(config, secrets, loop)
    api = ApiServer(gateway, secrets.api_token)
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(signal.SIGUSR1, gateway.halt, "SIGUSR1", "kill switch signal")
    if path is not None:
        loop.add_signal_handler(signal.SIGHUP, reload, gateway, path)
    await api.start()
    gateway.metrics.api_clients.set_function(lambda: len(api.clients))
    gateway.metrics.api_unsent_bytes.set_function(
        lambda: sum(c.transport.get_write_buffer_size() for c in list(api.clients))
    )
    metrics_server = None
    if config.ops.metrics_port is not None:
        metrics_server = MetricsServer(
            gateway.metrics, config.ops.metrics_host, config.ops.metrics_port, gateway.ready
        )
        metrics_server.start()
        log.info("metrics listening", host=config.ops.metrics_host, port=metrics_server.port)
    gateway.start()
    bridge = None
    if config.bridge is not None:
        bridge = Bridge(config.bridge, secrets.bridge_passwords, gateway, loop)
        bridge.start()
    systemd = loop.create_task(tell_systemd(gateway))
    log.info(
        "gateway started",
        session=gateway.session.name,
        exchange=f"{config.session.host}:{config.session.port}",
    )
    await stopping.wait()
    notify.stopping()
    systemd.cancel()
    log.info("gateway stopping: no new requests; logging out")
    await api.stop()
    if bridge is not None:
        await asyncio.to_thread(bridge.stop)
    await gateway.stop()
    if metrics_server is not None:
        metrics_server.stop()
    log.info("gateway stopped")
    return 0


async def tell_systemd(gateway: Gateway) -> None:
    """READY=1 once logged on and reconciled; then WATCHDOG=1 at half of WatchdogSec, from
    the loop itself, so a stuck loop stops the pings and systemd restarts the service."""
    await gateway.became_ready.wait()
    notify.ready(f"logged on as {gateway.session.name}")
    period = notify.watchdog_period_s()
    while period is not None:
        notify.watchdog()
        await asyncio.sleep(period)


def reload(gateway: Gateway, path: Path) -> None:
    """SIGHUP: read the config again; apply what can change live, say what cannot."""
    try:
        new = load_gateway_config(path)
    except FixgwError as exc:
        log.error("reload refused; running on as before", error=exc.message)
        return
    applied, needs_restart = gateway.reload(new)
    configure_logging(new.log.level, new.log.format)
    log.info("config reloaded", applied=applied or None, needs_restart=needs_restart or None)


def run_simulator(config: SimConfig) -> NoReturn:
    sim = Simulator(config)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    sim.start()
    while not done.wait(0.5):
        pass
    log.info("simulator stopping")
    sim.stop()
    log.info("simulator stopped")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # see Simulator.stop: QuickFIX's acceptor must not be torn down
