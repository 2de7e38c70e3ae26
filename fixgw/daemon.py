"""Process lifecycles: the gateway daemon and the simulator, with their signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import quickfix as fix
import structlog

from fixgw import journal, preflight
from fixgw.api.server import ApiServer
from fixgw.app import build_gateway
from fixgw.bridge.owners import say_orders_of_sessions_not_configured
from fixgw.bridge.router import Bridge
from fixgw.config import (
    API_KEY_KEY,
    GatewayConfig,
    Secrets,
    SimConfig,
    load_gateway_config,
    resolve_secrets,
)
from fixgw.errors import FixgwError, StartupError
from fixgw.gateway import Gateway
from fixgw.ops import held_signals, log_budget, notify
from fixgw.ops.capture import loop_exception_handler
from fixgw.ops.logging import configure as configure_logging
from fixgw.ops.logging import mask_in_logs
from fixgw.ops.prometheus import MetricsServer
from fixgw.ops.pulse import LoopPulse
from fixgw.sim.exchange import Simulator

if TYPE_CHECKING:
    from fixgw.nats.transport import NatsTransport

log = structlog.get_logger("fixgw.daemon")


_START_FAILURES = (OSError, ssl.SSLError, fix.ConfigError, fix.RuntimeError)
"""What a part the config names raises when it cannot start; each becomes one StartupError
line naming the part's key. `fixgw.preflight` finds nearly all of them before anything
starts; these are what changes between its check and the start."""


@contextlib.contextmanager
def starting(key: str, what: str) -> Iterator[None]:
    try:
        yield
    except StartupError:
        raise
    except _START_FAILURES as exc:
        raise StartupError(f"{key}: cannot start {what}: {exc}") from None


def _mask_in_logs(secrets: Secrets) -> None:
    """Every secret read, the API key aside (it names the account and is no secret),
    masked in every log line from now on, whatever quotes it."""
    mask_in_logs(value for key, value in secrets.by_key.items() if key != API_KEY_KEY)


async def run_gateway(config: GatewayConfig, path: Path | None = None) -> int:
    """Run until SIGINT or SIGTERM; then stop taking requests, log out, and return 0.

    StartupError if a part cannot start: what had started is stopped first."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    for warning in preflight.gateway_warnings(config):
        log.warning("allowed, but unsafe", warning=warning)
    secrets = resolve_secrets(config)
    _mask_in_logs(secrets)
    journal_lock = journal.lock(Path(config.journal.path))  # held until the process ends
    try:
        with starting("session", "the exchange session (session.store_dir, dictionary, tls)"):
            gateway = build_gateway(config, secrets, loop)
    except BaseException:
        os.close(journal_lock)
        raise
    api = ApiServer(gateway, secrets.api_token)
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        loop.add_signal_handler(sig, on_signal, sig, gateway, path, stopping)
    if path is not None:
        loop.add_signal_handler(signal.SIGHUP, on_signal, signal.SIGHUP, gateway, path, stopping)
    for sig in held_signals.take():
        log.warning("signal received while starting: acted on now", signal=sig.name)
        on_signal(sig, gateway, path, stopping, while_starting=True)
    if stopping.is_set():
        await gateway.stop()
        os.close(journal_lock)
        log.info("gateway stopped before it started")
        return 0
    metrics_server = None
    bridge = None
    nats_transport = None
    try:
        await api.start()
        gateway.metrics.api_clients.set_function(lambda: len(api.clients))
        gateway.metrics.api_unsent_bytes.set_function(
            lambda: sum(c.transport.get_write_buffer_size() for c in list(api.clients))
        )
        if config.ops.metrics_port is not None:
            where = f"{config.ops.metrics_host}:{config.ops.metrics_port}"
            pulse = LoopPulse(loop)
            pulse.start()
            with starting("ops.metrics_port", f"the metrics endpoint on {where}"):
                metrics_server = MetricsServer(
                    gateway.metrics,
                    config.ops.metrics_host,
                    config.ops.metrics_port,
                    gateway.not_ready_because,
                    pulse.silent_s,
                )
            metrics_server.start()
            log.info("metrics listening", host=config.ops.metrics_host, port=metrics_server.port)
        with starting("session", "the exchange session"):
            gateway.start()
        if config.bridge is None:
            say_orders_of_sessions_not_configured(
                (o.cl_ord_id for o in gateway.open_orders() if o.cl_ord_id is not None),
                gateway.placed_by,
                {},
            )
        else:
            where = f"{config.bridge.host}:{config.bridge.port}"
            with starting("bridge", f"the FIX bridge on {where} (bridge.port, store_dir)"):
                bridge = Bridge(config.bridge, secrets.bridge_passwords, gateway, loop)
                bridge.start()
        if config.nats is not None:
            with starting("nats", "the NATS transport (nats.cursor_path, tls)"):
                nats_transport = nats_for(config, secrets, gateway, api)
                nats_transport.start()
    except BaseException:
        await api.stop()
        if metrics_server is not None:
            metrics_server.stop()
        if bridge is not None:
            await asyncio.to_thread(bridge.stop)
        await gateway.stop()
        if bridge is not None:
            bridge.close()
        if nats_transport is not None:
            await nats_transport.stop(drain_s=0)
        raise
    gc.freeze()  # what start-up made lives as long as the process: no collection scans it
    systemd = loop.create_task(tell_systemd(gateway))
    log.info(
        "gateway started",
        session=gateway.session_id,
        exchange=f"{config.session.host}:{config.session.port}",
    )
    await stopping.wait()
    notify.stopping()
    systemd.cancel()
    log.info("gateway stopping: no new requests; logging out")
    gateway.stop_holding()
    await api.stop()
    if nats_transport is not None:
        await nats_transport.stop_taking_commands()
    if bridge is not None:
        bridge.send_held()
        await asyncio.to_thread(bridge.stop)
    await gateway.stop()
    if bridge is not None:
        bridge.close()
    if nats_transport is not None:
        await nats_transport.stop()
    if metrics_server is not None:
        metrics_server.stop()
    os.close(journal_lock)
    log_budget.write_left_out()
    log.info("gateway stopped")
    return 0


def nats_for(
    config: GatewayConfig, secrets: Secrets, gateway: Gateway, api: ApiServer
) -> NatsTransport:
    """The NATS transport, which takes requests as the API server does (`handle_request`).
    Imported here: the NATS client is optional."""
    from fixgw.nats import client_missing

    why = client_missing()
    if why is not None:
        raise StartupError(f"nats: {why}")
    from fixgw.nats.transport import NatsTransport

    assert config.nats is not None
    return NatsTransport(
        config.nats,
        secrets,
        gateway,
        api.handle_request,
        fsync=config.journal.fsync,
        log_config=config.log,
    )


STATUS_CHECK_S = 1.0
"""How often systemd's STATUS is checked against the session's state, once READY: it is
sent only when that changed."""


async def tell_systemd(gateway: Gateway) -> None:
    """READY=1 once logged on and reconciled, or once the logon is held back (the exchange
    refused the credentials), STATUS saying which: held, the gateway waits for the
    operator, and systemd taking that wait for a start that failed would restart it, to log
    on again with the refused key. From then on STATUS follows the session's state
    (`Gateway.state_line`). WATCHDOG=1 at half of WatchdogSec, from the loop itself, so a
    stuck loop stops the pings and systemd restarts the service."""
    waits = [asyncio.ensure_future(e.wait()) for e in (gateway.became_ready, gateway.logon_held)]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    told = gateway.state_line()
    notify.ready(told)
    following = asyncio.get_running_loop().create_task(_follow_state(gateway, told))
    try:
        period = notify.watchdog_period_s()
        while period is not None:
            notify.watchdog()
            await asyncio.sleep(period)
        await following
    finally:
        following.cancel()


async def _follow_state(gateway: Gateway, told: str) -> None:
    """STATUS anew whenever the state changed. A failure here is logged, never let stop
    the watchdog's pings beside it."""
    while True:
        await asyncio.sleep(STATUS_CHECK_S)
        try:
            now = gateway.state_line()
        except Exception:
            log.exception("systemd STATUS not updated")
            continue
        if now != told:
            notify.status(now)
            told = now


SIGNAL_AFTER_STOP: dict[signal.Signals, tuple[str, str]] = {
    signal.SIGUSR1: (
        "halt",
        "to start halted, send SIGUSR1 while the gateway starts (acted on before it logs "
        "on), or run `fixgw halt` once it runs",
    ),
    signal.SIGHUP: ("reload", "the next start reads the config"),
}
"""A control signal that comes once the stop has closed the journal: what is not taken,
and what to do instead."""


def on_signal(
    sig: signal.Signals,
    gateway: Gateway,
    path: Path | None,
    stopping: asyncio.Event,
    while_starting: bool = False,
) -> None:
    """docs/operations.md, Signals. `while_starting`: it was held while the gateway started
    (`fixgw.ops.held_signals`) and is acted on before the session starts. A SIGHUP held is a
    reload all the same: it may have come after the config was read.

    Once a stop has closed the journal (the NATS transport and asyncio still stopping), a
    halt or a reload is refused and said: nothing would record it."""
    if sig in (signal.SIGINT, signal.SIGTERM):
        stopping.set()
    elif gateway.journal.closed:
        what, instead = SIGNAL_AFTER_STOP[sig]
        log.error(
            f"{what} not taken: the gateway has stopped; its journal is closed",
            signal=sig.name,
            instead=instead,
        )
    elif sig == signal.SIGUSR1:
        reason = "kill switch signal" + (", received while starting" if while_starting else "")
        gateway.halt(sig.name, reason)
    elif path is not None:
        reload(gateway, path)
    else:
        log.warning("no config file to read again: SIGHUP ignored")


def reload(gateway: Gateway, path: Path) -> None:
    """SIGHUP: read the config again; apply what can change live, say what cannot.

    A failure nobody foresaw is a refused reload too, logged with its cause, never left to
    asyncio's handler; `Upkeep.reload` changes nothing until what may fail has passed."""
    try:
        _reload(gateway, path)
    except Exception as exc:
        log.exception("reload refused; running on as before", error=f"{type(exc).__name__}: {exc}")


def _reload(gateway: Gateway, path: Path) -> None:
    try:
        new = load_gateway_config(path)
    except FixgwError as exc:
        log.error("reload refused; running on as before", error=exc.message)
        return
    try:
        secrets = resolve_secrets(new)
    except FixgwError as exc:
        log.error("reload refused: the credentials cannot be read", error=exc.message)
        return
    _mask_in_logs(secrets)
    try:
        applied, needs_restart = gateway.reload(new, secrets)
    except FixgwError as exc:
        log.error("reload refused; running on as before", error=exc.message)
        return
    if gateway.set_credentials(secrets) and not any(k.startswith("credentials.") for k in applied):
        applied.append("credentials")
    configure_logging(new.log.level, new.log.format)
    said = logging.INFO if new.log.level in ("debug", "info") else logging.WARNING
    log.log(said, "config reloaded", applied=applied or None, needs_restart=needs_restart or None)


def run_simulator(config: SimConfig) -> NoReturn:
    with starting("port", f"the simulator on {config.host}:{config.port}"):
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
