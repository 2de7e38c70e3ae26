"""What a config names, checked before anything starts: files, directories, groups, hosts
and ports.

`fixgw check-config` runs every check and changes nothing (a port is tried by binding it
for a moment, a journal's lock by taking it for a moment); `fixgw run` and `fixgw sim` run
them first, so that a start-up failure is one line naming the key and the cause (exit
status 2), never a traceback. Each problem reads `key: cause`.

Not checked: that the exchange (`session.host`) resolves or answers. The gateway starts
without it and keeps trying (see session.reconnect), as it must when the exchange or DNS
has a bad moment at start.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import ipaddress
import os
import socket
import ssl
import stat
import tempfile
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import quickfix as fix

from fixgw import holders, journal
from fixgw.config import (
    GatewayConfig,
    NatsTls,
    SimConfig,
    TlsConfig,
    bundled_dictionary,
    standard_fix44_dictionary,
)
from fixgw.errors import ConfigError
from fixgw.fix.dictionary import write_lenient_dictionary
from fixgw.fix.qflisten import check_listen_host
from fixgw.fix.tls import TlsFileError, client_context, server_context
from fixgw.nats import INSTALL_HINT, client_missing
from fixgw.nats.cursor import cursor_path
from fixgw.venues import venue_dictionary

Problems = list[str]


class RunningGateway:
    """The gateway running on a config: the process that holds the lock of the journal the
    config names (one gateway per journal). What it holds itself is its own; a port or
    socket another process holds is not, whatever the file said before."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._sockets: set[int] | None = None

    def serves(self, path: Path) -> bool:
        return holders.socket_server(path) == self.pid

    def holds_port(self, port: int) -> bool | None:
        """Whether every socket on `port` is the gateway's; None if this user may not look
        at what the gateway holds."""
        if self._sockets is None:
            try:
                self._sockets = holders.socket_inodes(self.pid)
            except PermissionError:
                return None
            except OSError:
                self._sockets = set()  # gone since
        on_port = holders.port_sockets(port)
        return bool(on_port) and on_port <= self._sockets


def running_gateway(config: GatewayConfig) -> RunningGateway | None:
    """The gateway running on `config` (see RunningGateway), or None if no process holds its
    journal's lock."""
    pids = holders.lock_holders(journal.lock_path(Path(config.journal.path)))
    return RunningGateway(pids.pop()) if len(pids) == 1 else None


def gateway_problems(config: GatewayConfig, running: bool = False) -> Problems:
    """Everything that would stop `config` from starting, as `key: cause` lines.

    `running`: a gateway is running on this config (checked before a SIGHUP): what that
    gateway holds itself (its journal's lock, and of the ports and socket the file names,
    those it listens on) is not reported as taken."""
    problems: Problems = []
    gateway = running_gateway(config) if running else None
    s = config.session
    session_dictionary = s.dictionary or str(venue_dictionary(s.venue))
    if _dictionary(problems, "session.dictionary", session_dictionary):
        _inbound_dictionary(problems, "session.dictionary", Path(session_dictionary))
    if s.tls.enabled:
        problems += session_tls_problems(s.tls)
    _directory(problems, "session.store_dir", Path(s.store_dir))
    _journal(problems, Path(config.journal.path), gateway)
    _socket_path(problems, Path(config.api.socket_path), gateway)
    if config.api.socket_group is not None:
        _group(problems, "api.socket_group", config.api.socket_group)
    tcp = config.api.tcp
    if tcp is not None:
        addresses = _loopback_addresses(problems, "api.tcp.host", tcp.host)
        if addresses:
            _port_free(problems, "api.tcp.port", addresses, tcp.port, gateway)
    ops = config.ops
    if ops.metrics_port is not None:
        addresses = _addresses(problems, "ops.metrics_host", ops.metrics_host)
        if addresses:
            _port_free(problems, "ops.metrics_port", addresses, ops.metrics_port, gateway)
    bridge = config.bridge
    if bridge is not None:
        _dictionary(
            problems, "bridge.dictionary", bridge.dictionary or str(standard_fix44_dictionary())
        )
        _directory(problems, "bridge.store_dir", Path(bridge.store_dir))
        _listen_host(problems, "bridge.host", bridge.host)
        addresses = _addresses(problems, "bridge.host", bridge.host)
        if addresses:
            _port_free(problems, "bridge.port", addresses, bridge.port, gateway)
    if config.nats is not None:
        _nats(problems, config)
    return problems


def sim_problems(config: SimConfig) -> Problems:
    """The simulator's: its dictionary, store, TLS files, and its port."""
    problems: Problems = []
    _dictionary(problems, "dictionary", config.dictionary or str(bundled_dictionary()))
    _directory(problems, "store_dir", Path(config.store_dir))
    tls = config.tls
    if tls is not None:
        cert = _readable_file(problems, "tls.cert_file", Path(tls.cert_file))
        if _readable_file(problems, "tls.key_file", Path(tls.key_file)) and cert:
            _tls(problems, "tls", lambda: server_context(tls.cert_file, tls.key_file))
    _listen_host(problems, "host", config.host)
    addresses = _addresses(problems, "host", config.host)
    if addresses:
        _port_free(problems, "port", addresses, config.port)
    return problems


def _listen_host(problems: Problems, key: str, host: str) -> None:
    """A QuickFIX acceptor listens on `host` only if it is an address of this machine
    (`qflisten`)."""
    try:
        check_listen_host(host, key)
    except ConfigError as exc:
        problems.append(exc.message)


# ---------------------------------------------------------------- files and directories


def _readable_file(problems: Problems, key: str, path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        problems.append(f"{key}: cannot read {path}: {exc.strerror}")
        return False
    if not stat.S_ISREG(mode):
        problems.append(f"{key}: {path} is not a file")
        return False
    if not os.access(path, os.R_OK):
        problems.append(f"{key}: cannot read {path}: permission denied")
        return False
    return True


def _dictionary(problems: Problems, key: str, name: str) -> bool:
    path = Path(name)
    if not _readable_file(problems, key, path):
        return False
    try:
        fix.DataDictionary(str(path))
    except fix.ConfigError:
        problems.append(f"{key}: {path} is not a QuickFIX data dictionary QuickFIX can read")
        return False
    return True


def _inbound_dictionary(problems: Problems, key: str, path: Path) -> None:
    """The dictionary the initiator reads the venue with (`fix.dictionary`), made as `run`
    makes it and loaded by QuickFIX: a venue's dictionary QuickFIX reads alone may still
    clash with the standard FIX 4.4 around it."""
    with tempfile.TemporaryDirectory() as scratch:
        made = write_lenient_dictionary(
            path, standard_fix44_dictionary(), Path(scratch) / "inbound-dictionary.xml"
        )
        try:
            fix.DataDictionary(str(made))
        except fix.ConfigError as exc:
            cause = str(exc).rsplit("Configuration failed: ", 1)[-1]
            problems.append(
                f"{key}: {path} with standard FIX 4.4 around it (the dictionary the venue "
                f"is read with) is not one QuickFIX can read: {cause}"
            )


def session_tls_problems(t: TlsConfig) -> Problems:
    """`session.tls`'s files can be read and make a TLS context (also what a reload checks
    before it takes files renewed in place)."""
    problems: Problems = []
    for key, name in (
        ("session.tls.ca_file", t.ca_file),
        ("session.tls.client_cert", t.client_cert),
        ("session.tls.client_key", t.client_key),
    ):
        if name is not None:
            _readable_file(problems, key, Path(name))
    if not problems:
        _tls_context(problems, "session.tls", t)
    return problems


def _tls_context(problems: Problems, key: str, t: TlsConfig | NatsTls) -> None:
    _tls(problems, key, lambda: client_context(t.ca_file, t.client_cert, t.client_key, t.verify))


def _tls(problems: Problems, key: str, make_context: Callable[[], object]) -> None:
    """A TLS context made of the files the `key` section names: a file that cannot be used
    is named by its own key (`session.tls.client_cert`)."""
    try:
        make_context()
    except TlsFileError as exc:
        problems.append(f"{key}.{exc.setting}: {exc}")
    except (OSError, ssl.SSLError, ValueError) as exc:
        problems.append(f"{key}: {_cause(exc)}")


def gateway_warnings(config: GatewayConfig) -> list[str]:
    """What the config allows but the docs advise against, as `key: cause` lines: the Logon
    (its secret key) and the orders sent in clear, or to a server nobody verified, beyond
    this machine. No name is resolved: only an address of loopback or `localhost` counts as
    this machine."""
    s = config.session
    if _is_loopback(s.host):
        return []
    if not s.tls.enabled:
        return [
            f"session.tls.enabled: false toward {s.host}, not loopback: the Logon's secret key "
            "and every order cross the network in clear"
        ]
    if not s.tls.verify:
        return [
            f"session.tls.verify: false toward {s.host}, not loopback: the exchange's "
            "certificate is not checked, so whoever is on the path can pose as it and read "
            "the Logon's secret key"
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _nats(problems: Problems, config: GatewayConfig) -> None:
    """The NATS client is installed (an optional extra), and the files `nats` names can be
    read. The broker is not asked: the gateway starts without it and keeps trying."""
    nats = config.nats
    assert nats is not None
    why = client_missing()
    if why is not None:
        problems.append(f"nats: {why}")
    elif (nats.auth.creds_file or nats.auth.nkey_seed) and not _installed("nkeys"):
        problems.append(
            f"nats.auth: nkeys, which creds files and nkey seeds need, is not "
            f"installed: {INSTALL_HINT}"
        )
    if nats.auth.creds_file is not None:
        _readable_file(problems, "nats.auth.creds_file", Path(nats.auth.creds_file))
    t = nats.tls
    before = len(problems)
    for key, name in (
        ("nats.tls.ca_file", t.ca_file),
        ("nats.tls.client_cert", t.client_cert),
        ("nats.tls.client_key", t.client_key),
    ):
        if name is not None:
            _readable_file(problems, key, Path(name))
    if len(problems) == before and (t.enabled or t.client_cert is not None):
        _tls_context(problems, "nats.tls", t)
    cursor = cursor_path(nats, Path(config.journal.path))
    why = can_create_directory(cursor.parent)
    if why is not None:
        problems.append(f"nats.cursor_path: {why}")
        return
    _own_files(problems, "nats.cursor_path", (cursor, Path(f"{cursor}.lock")))


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ImportError:
        return False


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path("/")


def can_create_directory(path: Path) -> str | None:
    """None if `path` is a directory this process may write in, or one it may create;
    else why not."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        what = "is not a directory" if existing == path else "is in the way (not a directory)"
        return f"{existing} {what}"
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == path:
            return f"{path} is not writable by this user"
        return f"{path} cannot be created: {existing} is not writable by this user"
    return None


def _directory(problems: Problems, key: str, path: Path) -> None:
    why = can_create_directory(path)
    if why is not None:
        problems.append(f"{key}: {why}")


def _journal(problems: Problems, path: Path, gateway: RunningGateway | None) -> None:
    why = can_create_directory(path.parent)
    if why is not None:
        problems.append(f"journal.path: {why}")
        return
    _own_files(
        problems,
        "journal.path",
        (
            path,
            path.with_name(path.name + ".fixseq"),
            path.with_name(path.name + ".seqmark"),
            journal.lock_path(path),
        ),
    )
    if gateway is None:  # else the lock is what tells the running gateway
        holder = journal_lock_holder(path)
        if holder is not None:
            problems.append(f"journal.path: {holder}")


def _own_files(problems: Problems, key: str, files: tuple[Path, ...]) -> None:
    """Those of `files` already there are files this user can read and write."""
    for file in files:
        if not (file.exists() or file.is_symlink()):
            continue
        if not file.is_file():
            problems.append(f"{key}: {file} is not a file")
        elif not os.access(file, os.R_OK | os.W_OK):
            problems.append(f"{key}: {file} is not readable and writable by this user")


def journal_lock_holder(path: Path) -> str | None:
    """Why the journal's lock (`fixgw.journal.lock`) cannot be taken, or None."""
    target = journal.lock_path(path)
    if not target.exists():
        return None
    try:
        fd = os.open(target, os.O_RDONLY)
    except OSError as exc:
        return f"{target} cannot be opened: {exc.strerror}"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return f"{path} is in use by another process (a gateway running on it?)"
        return f"{target} cannot be locked: {exc.strerror}"
    finally:
        os.close(fd)  # closing releases the lock
    return None


def socket_path_problem(path: Path) -> tuple[str | None, bool]:
    """(why `path` cannot take the API socket, whether it is a stale socket to remove).

    Only a socket nobody listens on may be removed; anything else there is kept and
    refused: a file, a directory, a link, a socket another process serves."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None, False
    except OSError as exc:
        return f"{path}: {exc.strerror}", False
    if not stat.S_ISSOCK(mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(mode)
            else "a symbolic link"
            if stat.S_ISLNK(mode)
            else "a file"
            if stat.S_ISREG(mode)
            else "not a socket"
        )
        return f"{path} exists and is {kind}: refusing to replace it with the socket", False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            return None, True  # a socket left behind by a process that is gone
        except OSError as exc:
            return f"{path} is a socket that cannot be probed: {exc.strerror}", False
    return f"{path} is a socket another process is serving (another gateway?)", False


def _socket_path(problems: Problems, path: Path, gateway: RunningGateway | None) -> None:
    why = can_create_directory(path.parent)
    if why is not None:
        problems.append(f"api.socket_path: {why}")
        return
    if gateway is not None and gateway.serves(path):
        return
    why, _ = socket_path_problem(path)
    if why is not None:
        problems.append(f"api.socket_path: {why}")


def group_problem(name: str) -> str | None:
    """Why the socket cannot be given to group `name`, or None."""
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        return f"there is no group named {name!r}"
    if os.geteuid() != 0 and gid != os.getegid() and gid not in os.getgroups():
        return (
            f"this user (uid {os.geteuid()}) is not in group {name!r}, so cannot give it the "
            "socket (systemd: SupplementaryGroups=)"
        )
    return None


def _group(problems: Problems, key: str, name: str) -> None:
    why = group_problem(name)
    if why is not None:
        problems.append(f"{key}: {why}")


# ---------------------------------------------------------------- hosts and ports


Address = tuple[int, str]
"""(address family, address)"""


def resolve(host: str) -> list[Address]:
    """Every address `host` names; socket.gaierror if none."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return sorted({(int(family), str(sockaddr[0])) for family, _, _, _, sockaddr in infos})


def _addresses(problems: Problems, key: str, host: str) -> list[Address]:
    try:
        return resolve(host)
    except (socket.gaierror, UnicodeError) as exc:
        problems.append(f"{key}: cannot resolve {host!r}: {_cause(exc)}")
        return []


def non_loopback(addresses: list[Address]) -> list[str]:
    return [a for _, a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback]


def _loopback_addresses(problems: Problems, key: str, host: str) -> list[Address]:
    addresses = _addresses(problems, key, host)
    outside = non_loopback(addresses)
    if outside:
        problems.append(
            f"{key}: {host!r} names {', '.join(outside)}, not a loopback address: the API's "
            "TCP listener serves this machine only"
        )
        return []
    return addresses


def port_problem(family: int, address: str, port: int) -> str | None:
    """Why a server could not listen on address:port now, or None. Bound for a moment,
    with SO_REUSEADDR as the servers bind (a port in TIME_WAIT is free)."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            return f"{_shown(address)}:{port}: {_cause(exc)}"
    return None


def _shown(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _port_free(
    problems: Problems,
    key: str,
    addresses: list[Address],
    port: int,
    gateway: RunningGateway | None = None,
) -> None:
    for family, address in addresses:
        why = port_problem(family, address, port)
        if why is None:
            continue
        if gateway is not None:
            own = gateway.holds_port(port)
            if own:
                return
            if own is None:
                why += (
                    f" (the running gateway's? this user may not look at what process "
                    f"{gateway.pid} holds: run check-config --running as its user, or as root)"
                )
        problems.append(f"{key}: {why}")
        return
