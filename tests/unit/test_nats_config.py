"""The `nats:` section: off by default, validated with key paths, credentials by reference
only; and the core imports, checks and runs its config without the NATS client, which
`check-config` asks for clearly when the config wants NATS."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixgw.cli import main
from fixgw.config import load_gateway_config, resolve_secrets, without_userinfo
from fixgw.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

BASE = """
session:
  sender_comp_id: 0b6f3a52-client
  store_dir: {root}/store
  tls: {{enabled: false}}
credentials:
  api_key: {{env: T_API_KEY}}
  secret_key: {{env: T_API_KEY}}
symbols: [BTC/USD]
api: {{socket_path: {root}/gw.sock}}
journal: {{path: {root}/journal/events.jsonl}}
ops: {{metrics_port: null}}
"""
NATS = """
nats:
  servers: [nats://127.0.0.1:4222]
  gateway: gw1
"""


def write(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "fixgw.yaml"
    path.write_text(BASE.format(root=tmp_path) + extra)
    return path


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_API_KEY", "key-1")
    monkeypatch.setenv("T_NATS_PASSWORD", "nats-pass-1")


def test_off_unless_present_and_the_defaults(tmp_path: Path) -> None:
    assert load_gateway_config(write(tmp_path)).nats is None
    nats = load_gateway_config(write(tmp_path, NATS)).nats
    assert nats is not None
    assert (nats.subject_prefix, nats.stream.name, nats.stream.create) == ("fixgw", "FIXGW", True)
    assert nats.stream.duplicate_window_s == 600
    assert (nats.commands, nats.market_data, nats.window) == (True, [], 512)
    assert nats.cursor_path is None
    assert (nats.publisher, nats.batch_ms) == ("process", 10)


def test_secrets_are_read_by_reference(tmp_path: Path) -> None:
    auth = "  auth: {user: gw, password: {env: T_NATS_PASSWORD}}\n"
    config = load_gateway_config(write(tmp_path, NATS + auth))
    secrets = resolve_secrets(config)
    assert secrets.nats == {"password": "nats-pass-1"}
    assert "nats-pass-1" not in repr(secrets)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "  auth: {password: {env: T_NATS_PASSWORD}}\n",
            "nats.auth: user and password go together",
        ),
        (
            "  auth: {token: {env: T_NATS_PASSWORD}, creds_file: /x.creds}\n",
            "nats.auth: give one way to authenticate",
        ),
        ("  auth: {token: s3cret}\n", "nats.auth.token: a secret is never given inline: give"),
        ("  auth: {token: {env: T_UNSET}}\n", "nats.auth.token: environment variable T_UNSET"),
        ("  market_data: [ETH/USD]\n", "nats.market_data: not among `symbols`: ETH/USD"),
        ("  stream: {name: 'a.b'}\n", "nats.stream.name"),
        ("  subject_prefix: 'a.b'\n", "nats.subject_prefix"),
        ("  windows: 3\n", "nats: Object contains unknown field `windows`"),
        ("  publisher: thread\n", "nats.publisher: Invalid enum value 'thread'"),
        ("  batch_ms: 0\n", "nats.batch_ms: Expected `int` >= 1"),
        (  # the broker refused to create the stream, and nothing was ever published
            "  stream: {max_age_s: 300}\n",
            "nats.stream.max_age_s: 300 is below duplicate_window_s (600), and NATS refuses",
        ),
        (  # past Go's time.Duration: the broker could not read the request
            "  stream: {max_age_s: 1e30}\n",
            "nats.stream.max_age_s: Expected `float` <= 9223372036",
        ),
    ],
)
def test_a_bad_nats_key_fails_with_its_path(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_gateway_config(write(tmp_path, NATS + extra))


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ("[nats://user:pw@127.0.0.1:4222]", "credentials in a URL are inline secrets"),
        ("[http://127.0.0.1:4222]", "is not a nats:// or tls:// URL"),
        ("[]", "Expected `array` of length >= 1"),
    ],
)
def test_servers_are_nats_urls_without_credentials(
    tmp_path: Path, servers: str, message: str
) -> None:
    text = NATS.replace("[nats://127.0.0.1:4222]", servers)
    with pytest.raises(ConfigError, match=message):
        load_gateway_config(write(tmp_path, text))


@pytest.mark.parametrize(
    "url",
    [
        "wss://fixgw:Nats-Pa55w0rd@broker.example:443",  # NATS serves websockets too
        "nast://fixgw:Nats-Pa55w0rd@127.0.0.1:4222",  # a typo in the scheme
        "fixgw:Nats-Pa55w0rd@127.0.0.1:4222",  # no scheme
    ],
)
def test_a_server_url_with_a_password_and_a_wrong_scheme_never_shows_the_password(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scheme was checked first, its error quoting the whole URL: check-config and run
    printed the password (to journald, under the unit's ExecStartPre)."""
    path = write(tmp_path, NATS.replace("nats://127.0.0.1:4222", url))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "nats.servers: credentials in a URL are inline secrets; use nats.auth" in err
    assert "Nats-Pa55w0rd" not in err


def test_a_url_quoted_in_an_error_is_shown_without_its_user_and_password() -> None:
    assert (
        without_userinfo("wss://fixgw:pw@broker.example:443/x") == "wss://***@broker.example:443/x"
    )
    assert without_userinfo("fixgw:pw@host:4222") == "***@host:4222"
    assert without_userinfo("nats://a:b@c@host:4222") == "nats://***@host:4222"
    assert without_userinfo("nats://host:4222") == "nats://host:4222"


HIDE_NATS = """
import sys

class HideNats:
    '''As if nats-py (and nkeys) were not installed.'''
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("nats", "nkeys"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, HideNats())
"""


def without_nats_py(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE_NATS + code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_the_core_runs_without_the_nats_client(tmp_path: Path) -> None:
    plain, with_nats = write(tmp_path), tmp_path / "with-nats.yaml"
    with_nats.write_text(plain.read_text() + NATS)
    done = without_nats_py(
        f"""
import fixgw.app, fixgw.daemon, fixgw.cli, fixgw.preflight, fixgw.nats, fixgw.api.server
assert "nats" not in sys.modules
from fixgw.cli import main
print("plain", main(["check-config", {str(plain)!r}]), flush=True)
print("nats", main(["check-config", {str(with_nats)!r}]), flush=True)
assert "nats" not in sys.modules
"""
    )
    assert done.returncode == 0, done.stderr
    assert f"{plain}: ok" in done.stdout
    assert "plain 0" in done.stdout
    assert "nats 2" in done.stdout
    assert (
        "nats: the NATS client (nats-py) is not installed: pip install 'fixgw[nats]'" in done.stderr
    )


def test_the_cli_over_nats_says_what_is_missing(tmp_path: Path) -> None:
    done = without_nats_py(
        "from fixgw.cli import main\n"
        "sys.exit(main(['--nats', 'nats://127.0.0.1:1', '--gateway', 'gw1', 'orders']))"
    )
    assert done.returncode == 2
    assert "--nats: the NATS client (nats-py) is not installed" in done.stderr


@pytest.mark.parametrize(
    ("stream", "max_age_s"),
    [
        ("{max_age_s: 0}", 0),
        ("{max_age_s: 600}", 600),
        ("{max_age_s: 60, duplicate_window_s: 60}", 60),
        ("{max_age_s: 9223372036}", 9223372036),
    ],
)
def test_a_stream_retention_nats_takes_loads(tmp_path: Path, stream: str, max_age_s: int) -> None:
    """No limit, or one no shorter than the duplicate window (NATS's rule: the window may
    equal max_age), up to Go's longest Duration."""
    nats = load_gateway_config(write(tmp_path, NATS + f"  stream: {stream}\n")).nats
    assert nats is not None
    assert nats.stream.max_age_s == max_age_s
