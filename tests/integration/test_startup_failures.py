"""A config `check-config` passes starts, and one it refuses says why: each start-up failure,
through the real command line, is one line naming the config key and the cause, exit
status 2, no traceback; `check-config` finds it first and changes nothing."""

from __future__ import annotations

import grp
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from cryptography.hazmat.primitives import serialization

from fixgw.config import standard_fix44_dictionary
from fixgw.testing import LocalStack, free_port, wait_until
from tests.dictionaries import with_own_fields
from tests.integration.conftest import DEFAULT_BOOKS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_urlsafe(32)


def fixgw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fixgw", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port some other program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def gateway_config(root: Path, **sections: dict[str, Any]) -> Path:
    """A complete gateway config under `root` (as the tests' stacks write them), with
    `sections` merged in."""
    stack = LocalStack(root=root, sim_port=free_port(), books=DEFAULT_BOOKS, symbols=["BTC/USD"])
    config = stack.gateway_config()
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path = root / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


ENV = {
    "FIXGW_TEST_API_KEY": "k",
    "FIXGW_TEST_SECRET": "s",
    "FIXGW_TEST_TOKEN": TOKEN,
    "FIXGW_TEST_WEAK_TOKEN": "x",
    "FIXGW_TEST_HEX_TOKEN": secrets.token_hex(15),
}


def refused(path: Path, key: str, cause: str, *, sim: bool = False) -> None:
    """`check-config` and `run` (`sim`) both refuse it in one line naming `key`."""
    check = fixgw("check-config", str(path), *(["--sim"] if sim else []), env=ENV)
    run = fixgw(*(["sim", "-c"] if sim else ["run", "-c"]), str(path), env=ENV)
    for done in (check, run):
        assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("fixgw: ")]
        assert len(errors) == 1 and errors == done.stderr.splitlines(), done.stderr
        assert f"{path}: {key}: " in errors[0], errors[0]
        assert cause in errors[0], errors[0]
        assert ENV["FIXGW_TEST_HEX_TOKEN"] not in done.stderr  # a secret is never repeated


def a_file_in_the_way(root: Path) -> Path:
    """A regular file where a directory would have to be created."""
    blocker = root / "not-a-directory"
    blocker.write_text("an operator's file\n")
    return blocker


def a_directory_at_the_nats_cursor_lock(root: Path) -> dict[str, Any]:
    """NATS (a broker nobody need answer), its cursor's lock a directory."""
    (root / "journal.jsonl.nats.lock").mkdir()
    return {"nats": {"servers": [f"nats://127.0.0.1:{free_port()}"], "gateway": "t"}}


def a_client_key_with_a_passphrase(root: Path) -> dict[str, Any]:
    """A client certificate whose key is encrypted (as some CA portals issue them)."""
    issued = trustme.CA().issue_cert("fixgw.test")
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    (root / "client.pem").write_bytes(issued.cert_chain_pems[0].bytes())
    (root / "client.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"the passphrase"),
        )
    )
    tls = {"client_cert": str(root / "client.pem"), "client_key": str(root / "client.key")}
    return {"session": {"tls": {"enabled": True, **tls}}}


def a_client_certificate_that_is_not_pem(root: Path) -> dict[str, Any]:
    """A CA file, a certificate and its key, the certificate a text file (a note saved under
    its name)."""
    issued = trustme.CA().issue_cert("fixgw.test")
    issued.private_key_pem.write_to_path(str(root / "client.key"))
    (root / "client.pem").write_text("the exchange's certificate is due in May\n")
    trustme.CA().cert_pem.write_to_path(str(root / "ca.pem"))
    tls = {
        "ca_file": str(root / "ca.pem"),
        "client_cert": str(root / "client.pem"),
        "client_key": str(root / "client.key"),
    }
    return {"session": {"tls": {"enabled": True, **tls}}}


def clashing_when_merged(root: Path) -> Path:
    """FIX 4.2 with a broker's own `Username` at 9000, which the inbound dictionary names
    `Username_9000` (FIX 4.4 has `Username` at 553), and a field of that name already."""
    fix42 = standard_fix44_dictionary().with_name("FIX42.xml")
    own = {9000: "Username", 9002: "Username_9000"}
    return with_own_fields(fix42, root / "broker-FIX42.xml", own, "A")


def one_free_port_twice(root: Path) -> dict[str, Any]:
    """The API's TCP listener and the metrics endpoint on one port, free: check-config said
    ok, and `run` failed on the second listener."""
    port = free_port()
    return {
        "api": {"tcp": {"port": port, "token": {"env": "FIXGW_TEST_TOKEN"}}},
        "ops": {"metrics_port": port},
    }


CASES: list[tuple[str, Callable[[Path, int], dict[str, Any]], str, str]] = [
    (
        "one port for two listeners",
        lambda root, port: one_free_port_twice(root),
        "ops.metrics_port",
        "is api.tcp.port too: each listener needs a port of its own",
    ),
    (
        "unknown socket group",  # was KeyError from getgrnam
        lambda root, port: {"api": {"socket_group": "fixgw-no-such-group"}},
        "api.socket_group",
        "there is no group named 'fixgw-no-such-group'",
    ),
    (
        "metrics port in use",  # was Errno 98 and a traceback
        lambda root, port: {"ops": {"metrics_port": port}},
        "ops.metrics_port",
        "127.0.0.1:{port}: Address already in use",
    ),
    (
        "TCP port in use",
        lambda root, port: {
            "api": {"tcp": {"port": port, "token": {"env": "FIXGW_TEST_TOKEN"}}},
        },
        "api.tcp.port",
        "127.0.0.1:{port}: Address already in use",
    ),
    (
        "unresolvable TCP host",
        lambda root, port: {
            "api": {
                "tcp": {
                    "host": "no-such-host.invalid",
                    "port": free_port(),
                    "token": {"env": "FIXGW_TEST_TOKEN"},
                }
            }
        },
        "api.tcp.host",
        "cannot resolve 'no-such-host.invalid'",
    ),
    (
        "journal path is a directory",
        lambda root, port: {"journal": {"path": str(root)}},
        "journal.path",
        "{root} is not a file",
    ),
    (
        "NATS cursor lock is a directory",  # was ok; then the publisher died at every start
        lambda root, port: a_directory_at_the_nats_cursor_lock(root),
        "nats.cursor_path",
        "{root}/journal.jsonl.nats.lock is not a file",
    ),
    (
        "an infinite logout timeout",  # was ok; then run crashed: OverflowError, a traceback
        lambda root, port: {"session": {"logout_timeout_s": "Infinity"}},
        "session.logout_timeout_s",
        "Expected `float` <= 60",
    ),
    (
        "a logout timeout QuickFIX cannot take",  # was ok; then run named `session` alone
        lambda root, port: {"session": {"logout_timeout_s": "1e20"}},
        "session.logout_timeout_s",
        "Expected `float` <= 60",
    ),
    (
        "a client key without its certificate",  # was ok, and the key was never used
        lambda root, port: {"session": {"tls": {"enabled": True, "client_key": str(root / "k")}}},
        "session.tls.client_key",
        "given without client_cert",
    ),
    (
        "a client certificate without its key",
        lambda root, port: {"session": {"tls": {"enabled": True, "client_cert": str(root / "c")}}},
        "session.tls.client_cert",
        "given without client_key",
    ),
    (
        "a client key with a passphrase",  # was a prompt for it, then "Invalid argument"
        lambda root, port: a_client_key_with_a_passphrase(root),
        "session.tls.client_key",
        "{root}/client.key is encrypted (it has a passphrase), which fixgw does not support",
    ),
    (
        "a server name with an empty label",  # was ok; then each attempt a traceback
        lambda root, port: {"session": {"tls": {"enabled": True, "server_name": "exchange..test"}}},
        "session.tls.server_name",
        "'exchange..test' has an empty label",
    ),
    (
        "a client certificate that is not PEM",  # was `session.tls: [SSL] PEM lib`
        lambda root, port: a_client_certificate_that_is_not_pem(root),
        "session.tls.client_cert",
        "{root}/client.pem is not a PEM certificate",
    ),
    (
        "a session host TLS cannot send as the server name",  # was ok; no connection could be
        lambda root, port: {"session": {"host": "exchange..test", "tls": {"enabled": True}}},
        "session.host",
        "'exchange..test' has an empty label",
    ),
    (
        "missing dictionary",
        lambda root, port: {"session": {"dictionary": str(root / "missing.xml")}},
        "session.dictionary",
        "No such file or directory",
    ),
    (
        "a dictionary QuickFIX cannot read",
        lambda root, port: {"session": {"dictionary": str(root / "gateway.yaml")}},
        "session.dictionary",
        "not a QuickFIX data dictionary",
    ),
    (
        "a dictionary QuickFIX reads alone, not with FIX 4.4 around it",  # was ok; run refused
        lambda root, port: {"session": {"dictionary": str(clashing_when_merged(root))}},
        "session.dictionary",
        "with standard FIX 4.4 around it (the dictionary the venue is read with) is not one "
        "QuickFIX can read: Field named Username_9000 defined multiple times",
    ),
    (
        "missing CA file",  # was 'cannot reach the gateway: [Errno 2] No such file...'
        lambda root, port: {
            "session": {"tls": {"enabled": True, "ca_file": str(root / "no-ca.pem")}}
        },
        "session.tls.ca_file",
        "cannot read {root}/no-ca.pem: No such file or directory",
    ),
    (
        "socket directory cannot be created",
        lambda root, port: {
            "api": {"socket_path": str(a_file_in_the_way(root) / "run" / "gw.sock")}
        },
        "api.socket_path",
        "is in the way (not a directory)",
    ),
    (
        "socket path too long for a Unix socket",  # was ok from check-config, refused by run
        lambda root, port: {"api": {"socket_path": str(root / ("s" * 120 + ".sock"))}},
        "api.socket_path",
        "a Unix socket's path may have at most 107",
    ),
    (
        "journal directory cannot be created",
        lambda root, port: {"journal": {"path": str(a_file_in_the_way(root) / "j" / "e.jsonl")}},
        "journal.path",
        "is in the way (not a directory)",
    ),
    (
        "store directory cannot be created",
        lambda root, port: {"session": {"store_dir": str(a_file_in_the_way(root) / "store")}},
        "session.store_dir",
        "is in the way (not a directory)",
    ),
    (
        "TCP listener on every interface",  # was accepted
        lambda root, port: {
            "api": {
                "tcp": {
                    "host": "0.0.0.0",  # noqa: S104 (refused: the point of the test)
                    "port": free_port(),
                    "token": {"env": "FIXGW_TEST_TOKEN"},
                }
            }
        },
        "api.tcp",
        "host '0.0.0.0' is not a loopback address",
    ),
    (
        "TCP listener on a public address",
        lambda root, port: {
            "api": {
                "tcp": {
                    "host": "192.0.2.1",
                    "port": free_port(),
                    "token": {"env": "FIXGW_TEST_TOKEN"},
                }
            }
        },
        "api.tcp",
        "host '192.0.2.1' is not a loopback address",
    ),
    (
        "a one-character token",  # was accepted
        lambda root, port: {
            "api": {"tcp": {"port": free_port(), "token": {"env": "FIXGW_TEST_WEAK_TOKEN"}}}
        },
        "api.tcp.token",
        "too weak: 1 base64 characters hold at most 6 bits of entropy, and 128 are required "
        "(22 random such characters); make one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
    ),
    (
        "a 30-character hex token",
        lambda root, port: {
            "api": {"tcp": {"port": free_port(), "token": {"env": "FIXGW_TEST_HEX_TOKEN"}}}
        },
        "api.tcp.token",
        "30 hex characters hold at most 120 bits",
    ),
    (
        "bridge port in use",
        lambda root, port: {
            "bridge": {
                "port": port,
                "store_dir": str(root / "bridge-store"),
                "sessions": [{"comp_id": "OMS1"}],
            }
        },
        "bridge.port",
        "127.0.0.1:{port}: Address already in use",
    ),
]


@pytest.mark.parametrize(
    ("make", "key", "cause"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_start_up_failure_is_one_line_naming_the_key_from_check_config_and_run(
    tmp_path: Path,
    listening: int,
    make: Callable[[Path, int], dict[str, Any]],
    key: str,
    cause: str,
) -> None:
    path = gateway_config(tmp_path, **make(tmp_path, listening))
    refused(path, key, cause.format(root=tmp_path, port=listening))
    assert not (tmp_path / "gw.sock").exists()  # nothing was left behind


def test_the_simulator_refuses_a_port_in_use_in_one_line(tmp_path: Path, listening: int) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "port": listening,
                "store_dir": str(tmp_path / "sim-store"),
                "accounts": [{"comp_id": "c", "api_key": "k", "secret_key": "s"}],
                "symbols": {"BTC/USD": {}},
            }
        )
    )
    refused(path, "port", f"127.0.0.1:{listening}: Address already in use", sim=True)


def test_the_simulator_names_a_tls_file_that_is_not_pem_in_one_line(tmp_path: Path) -> None:
    issued = trustme.CA().issue_cert("exchange.test")
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    (tmp_path / "server.key").write_bytes(b"")
    path = tmp_path / "sim.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "port": free_port(),
                "store_dir": str(tmp_path / "sim-store"),
                "accounts": [{"comp_id": "c", "api_key": "k", "secret_key": "s"}],
                "symbols": {"BTC/USD": {}},
                "tls": {
                    "cert_file": str(tmp_path / "server.pem"),
                    "key_file": str(tmp_path / "server.key"),
                },
            }
        )
    )
    refused(path, "tls.key_file", f"{tmp_path}/server.key is empty", sim=True)


def test_a_group_this_user_is_in_passes_and_the_socket_is_given_to_it(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getegid()).gr_name
    path = gateway_config(tmp_path, api={"socket_group": group})
    done = fixgw("check-config", str(path), env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{path}: ok"


def test_check_config_changes_nothing(tmp_path: Path) -> None:
    """No directory, socket, journal or store is made by looking."""
    root = tmp_path / "deployment"
    root.mkdir()
    path = gateway_config(root)
    before = sorted(p.name for p in root.iterdir())
    done = fixgw("check-config", str(path), env=ENV)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in root.iterdir()) == before


def test_a_socket_path_that_is_an_ordinary_file_is_kept_and_refused(tmp_path: Path) -> None:
    """It was deleted and the socket put in its place, with check-config saying ok."""
    precious = tmp_path / "orders.csv"
    precious.write_text("an operator's file\n")
    path = gateway_config(tmp_path, api={"socket_path": str(precious)})
    refused(path, "api.socket_path", f"{precious} exists and is a file: refusing to replace it")
    assert precious.read_text() == "an operator's file\n"
    link = tmp_path / "link.sock"
    link.symlink_to(precious)
    refused(
        gateway_config(tmp_path, api={"socket_path": str(link)}),
        "api.socket_path",
        "is a symbolic link",
    )
    assert precious.read_text() == "an operator's file\n" and link.is_symlink()


def test_a_stale_socket_is_replaced_and_a_live_one_is_left_to_its_owner(tmp_path: Path) -> None:
    """A socket nobody listens on (a gateway killed with -9) is removed at start; one that
    another process serves (a second gateway on the same path) is refused, and keeps
    serving."""
    stale = tmp_path / "gw.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(stale))  # the file stays after the socket closes: nobody listens
    first = tmp_path / "first"
    first.mkdir()
    path = gateway_config(first, api={"socket_path": str(stale)})
    assert fixgw("check-config", str(path), env=ENV).returncode == 0
    running = subprocess.Popen(
        [sys.executable, "-m", "fixgw", "run", "-c", str(path)],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(stale), 20, "the first gateway on the stale socket's path")
        second = tmp_path / "second"
        second.mkdir()
        refused(
            gateway_config(second, api={"socket_path": str(stale)}),
            "api.socket_path",
            f"{stale} is a socket another process is serving",
        )
        assert _answers(stale)
    finally:
        running.terminate()
        assert running.wait(30) == 0


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def test_every_problem_is_a_line_of_its_own_unreadable_secrets_and_all(tmp_path: Path) -> None:
    """`check-config` and `run` stopped at the first secret they could not read, and said
    nothing of the rest: an operator mended one problem a run."""
    blocker = a_file_in_the_way(tmp_path)
    path = gateway_config(
        tmp_path,
        session={"store_dir": str(blocker / "store")},
        journal={"path": str(blocker / "journal.jsonl")},
        api={"socket_path": str(blocker / "gw.sock")},
    )
    unset = {"FIXGW_TEST_API_KEY": "", "FIXGW_TEST_SECRET": ""}
    for done in (
        fixgw("check-config", str(path), env=unset),
        fixgw("run", "-c", str(path), env=unset),
    ):
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert all(line.startswith(f"fixgw: config error: {path}: ") for line in lines), lines
        keys = [line.removeprefix(f"fixgw: config error: {path}: ").split(":")[0] for line in lines]
        assert keys == [
            "credentials.api_key",
            "credentials.secret_key",
            "session.store_dir",
            "journal.path",
            "api.socket_path",
        ], lines
        assert "environment variable FIXGW_TEST_SECRET is not set" in lines[1]
