"""Config: a wrong or missing key fails at load with one message naming the key."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fixgw import journal
from fixgw.cli import DEMO_GATEWAY, DEMO_SIM, main
from fixgw.config import changed_secrets, load_gateway_config, load_sim_config, resolve_secrets
from fixgw.errors import ConfigError
from fixgw.testing import free_port

GOOD = """
session:
  sender_comp_id: 0b6f3a52-client
credentials:
  api_key: {env: T_API_KEY}
  secret_key: {file: SECRET_FILE}
symbols: [BTC/USD]
"""


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("T_API_KEY", "key-1")

    def _write(text: str) -> Path:
        path = tmp_path / "fixgw.yaml"
        path.write_text(text.replace("SECRET_FILE", str(secret)))
        return path

    return _write


def test_minimal_config_loads_with_documented_defaults(write) -> None:  # type: ignore[no-untyped-def]
    config = load_gateway_config(write(GOOD))
    assert (config.session.venue, config.session.target_comp_id) == ("okcoin", None)
    assert config.session.heartbeat_s == 30
    assert config.session.port == 9880
    assert config.session.reset_seq_num_on_logon is False
    assert config.okcoin.account_on == ["D", "Z1000"]
    assert config.api.socket_mode == "0660"
    assert config.api.tcp is None
    secrets = resolve_secrets(config)
    assert (secrets.api_key, secrets.secret_key) == ("key-1", "s3cr3t")
    assert "s3cr3t" not in repr(secrets)


def test_a_secret_rewritten_behind_the_same_reference_is_a_change_named_by_its_key(  # type: ignore[no-untyped-def]
    write, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_gateway_config(write(GOOD))
    before = resolve_secrets(config)
    assert changed_secrets(before, resolve_secrets(config)) == []
    monkeypatch.setenv("T_API_KEY", "key-2")
    assert changed_secrets(before, resolve_secrets(config)) == ["credentials.api_key"]
    assert "key-2" not in repr(resolve_secrets(config))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("sender_comp_id", "sender_compid"),
            "session: Object contains unknown field `sender_compid`",
        ),
        (("symbols: [BTC/USD]", "symbols: []"), "symbols: Expected `array` of length >= 1"),
        (
            ("  sender_comp_id", "  port: 99999\n  sender_comp_id"),
            "session.port: Expected `int` <= 65535",
        ),
        (("  sender_comp_id", "  heartbeat_s: soon\n  sender_comp_id"), "session.heartbeat_s"),
        (
            ("  api_key: {env: T_API_KEY}\n", ""),
            "OKCoin needs `api_key` and `secret_key`",
        ),
        (
            ("{env: T_API_KEY}", "{env: T_NOT_SET}"),
            "credentials.api_key: environment variable T_NOT_SET is not set",
        ),
        (
            ("{env: T_API_KEY}", "{env: T_API_KEY, file: /x}"),
            "credentials.api_key: give exactly one",
        ),
        (
            ("symbols: [BTC/USD]", "symbols: [BTC/USD]\napi: {socket_mode: '0999'}"),
            "api.socket_mode",
        ),
        *(  # a YAML string msgspec reads as a float: check-config said ok
            (
                ("  sender_comp_id", f"  {key}: {value}\n  sender_comp_id"),
                f"session.{key}: Expected `float` <=",
            )
            for key, value in (("logout_timeout_s", "Infinity"), ("reconcile_timeout_s", "inf"))
        ),
        *(
            (
                ("symbols: [BTC/USD]", f"symbols: [BTC/USD]\n{section}: {{{key}: {value}}}"),
                f"{section}.{key}: Expected `float` <=",
            )
            for section, key, value in (
                ("api", "request_timeout_s", "Infinity"),
                ("market_data", "stale_after_s", "inf"),
                ("account", "refresh_s", "inf"),
                ("orders", "ack_timeout_s", "1e20"),
            )
        ),
        (
            (
                "symbols: [BTC/USD]",
                "symbols: [BTC/USD]\nthrottle: {limits: {cancel: {per_s: inf}}}",
            ),
            "throttle.limits.cancel.per_s: Expected `float` <=",
        ),
        (
            (
                "symbols: [BTC/USD]",
                "symbols: [BTC/USD]\nnats: {servers: [nats://h], gateway: g, tls: {client_key: k}}",
            ),
            "nats.tls.client_key: given without client_cert",
        ),
        (
            ("symbols: [BTC/USD]", f"symbols: [BTC/USD]\napi: {{socket_path: /{'s' * 107}}}"),
            f"api.socket_path: /{'s' * 107} is 108 bytes long, and a Unix socket's path may "
            "have at most 107",
        ),
        (  # QuickFIX reads it as a C int: above, every connection attempt failed
            ("  sender_comp_id", "  send_buffer_bytes: 3000000000\n  sender_comp_id"),
            "session.send_buffer_bytes: Expected `int` <= 2147483647",
        ),
        *(  # YAML numbers msgspec does not read: "got `str`" blamed quotes not written
            (
                ("  sender_comp_id", f"  logout_timeout_s: {value}\n  sender_comp_id"),
                "session.logout_timeout_s: Expected `float`: write a number as digits with an "
                "optional leading `-`, a `.` between digits and an exponent (0.5, 5, -1, 1e3; "
                "not .5, 5., +5 or 1_000)",
            )
            for value in (".5", "+5")
        ),
        (  # tls.server_name's default: was ok, and every TLS connection failed on it
            ("  sender_comp_id", "  host: exchange..test\n  sender_comp_id"),
            "session.host: 'exchange..test' has an empty label (two dots in a row, or a dot "
            "first) or one over 63 characters; with TLS on it is also the name the exchange's "
            "certificate is checked against (tls.server_name's default)",
        ),
        (
            ("  sender_comp_id", "  heartbeat_s: +5\n  sender_comp_id"),
            "session.heartbeat_s: Expected `int`: write a number as digits with an optional "
            "leading `-` (5, -1, 1000; not +5, 1_000 or 0x10)",
        ),
    ],
)
def test_a_bad_key_fails_with_its_path(write, edit: tuple[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    path = write(GOOD.replace(*edit))
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert str(path) in err.value.message
    assert message in err.value.message


def bridge(*sessions: str) -> str:
    return (
        GOOD
        + "bridge:\n  port: 9878\n  sessions:\n"
        + "".join(f"    - {session}\n" for session in sessions)
    )


@pytest.mark.parametrize(
    ("sessions", "message"),
    [
        (
            ("{comp_id: BROKER}", "{comp_id: BROKER-UAT}"),  # default prefixes BROKER-, BROKER-UAT-
            "BROKER-UAT's cl_ord_id_prefix 'BROKER-UAT-' starts with BROKER's 'BROKER-'",
        ),
        (
            ("{comp_id: A, cl_ord_id_prefix: X}", "{comp_id: B, cl_ord_id_prefix: X-1-}"),
            "B's cl_ord_id_prefix 'X-1-' starts with A's 'X'",
        ),
        (("{comp_id: A}", "{comp_id: A, cl_ord_id_prefix: B-}"), "comp_id 'A' is named twice"),
        (
            ("{comp_id: A, cl_ord_id_prefix: fx}",),
            "A's cl_ord_id_prefix 'fx' can start the ClOrdIDs the gateway makes up",
        ),
    ],
)
def test_oms_prefixes_that_could_name_another_sessions_orders_are_refused(
    write, sessions: tuple[str, ...], message: str
) -> None:  # type: ignore[no-untyped-def]
    """The prefix is what says which OMS an order belongs to, in the journal too."""
    with pytest.raises(ConfigError) as err:
        load_gateway_config(write(bridge(*sessions)))
    assert "bridge.sessions: " + message in err.value.message


def test_oms_prefixes_that_do_not_overlap_load(write) -> None:  # type: ignore[no-untyped-def]
    config = load_gateway_config(
        write(bridge("{comp_id: BROKER}", "{comp_id: BROKER-UAT, cl_ord_id_prefix: UAT-}"))
    )
    assert config.bridge is not None
    assert [s.prefix for s in config.bridge.sessions] == ["BROKER-", "UAT-"]
    assert config.bridge.oms_of("UAT-1") is config.bridge.sessions[1]
    assert config.bridge.oms_of("fxabc-1") is None


@pytest.mark.parametrize(
    ("reference", "said"),
    [
        (
            "{env: Nats-Pa55w0rd-do-not-print}",
            "credentials.api_key: `env` is not an environment variable's name",
        ),
        (  # an OKCoin secret key (32 hex digits) is a valid name: it is not shown either
            "{env: A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6}",
            "credentials.api_key: environment variable named in `env` is not set",
        ),
        (
            "{file: Nats-Pa55w0rd-do-not-print}",
            "credentials.api_key: cannot read the file `file` names, relative to",
        ),
    ],
)
def test_a_secret_pasted_where_its_name_or_path_goes_is_not_repeated(  # type: ignore[no-untyped-def]
    write, reference: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`environment variable <the secret> is not set` printed the secret."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(write(GOOD.replace("{env: T_API_KEY}", reference)))
    assert said in refused.value.message
    assert "Pa55w0rd" not in refused.value.message and "A1B2C3D4" not in refused.value.message


def test_a_secret_in_the_environment_is_stripped_as_one_in_a_file_is(  # type: ignore[no-untyped-def]
    write, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`export KEY="$(cat key)  "` or a trailing newline: the exchange refused the logon."""
    monkeypatch.setenv("T_API_KEY", " key-1\n")
    assert resolve_secrets(load_gateway_config(write(GOOD))).api_key == "key-1"
    monkeypatch.setenv("T_API_KEY", " \n")
    with pytest.raises(ConfigError, match="environment variable T_API_KEY is not set"):
        load_gateway_config(write(GOOD))


def test_a_secret_file_saved_with_a_utf8_bom_is_read_without_it(  # type: ignore[no-untyped-def]
    write, tmp_path: Path
) -> None:
    """Notepad's and PowerShell's UTF-8 starts with EF BB BF: the Logon carried it before
    the key, and the exchange said the credentials were wrong."""
    path = write(GOOD)
    (tmp_path / "secret").write_text("s3cr3t\n", encoding="utf-8-sig")
    assert resolve_secrets(load_gateway_config(path)).secret_key == "s3cr3t"


def test_not_yaml_and_missing_file_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("session: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_gateway_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_gateway_config(tmp_path / "missing.yaml")


def test_a_config_or_secret_file_that_is_not_utf8_is_one_error_naming_it(
    write, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(GOOD.replace("0b6f3a52-client", "caf\xe9").encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_gateway_config(latin1)
    assert err.value.message == f"{latin1}: not UTF-8 text (line 3, byte 31); save it as UTF-8"
    assert main(["check-config", str(latin1)]) == 2
    assert capsys.readouterr().err == f"fixgw: config error: {err.value.message}\n"

    path = write(GOOD)
    (tmp_path / "secret").write_bytes(b"\xff\xfes3cr3t\n")
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert err.value.message == (
        f"{path}: credentials.secret_key: {tmp_path / 'secret'}: not UTF-8 text "
        "(line 1, byte 0); save it as UTF-8"
    )


def test_limits_for_a_symbol_not_traded_are_refused(write) -> None:  # type: ignore[no-untyped-def]
    """`BTC-USD` for `BTC/USD` would leave BTC/USD with no limit at all, and say nothing."""
    path = write(GOOD + "risk:\n  symbols:\n    BTC-USD: {max_qty: 5}\n")
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert err.value.message == f"{path}: risk.symbols: not among `symbols` (BTC/USD): BTC-USD"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "risk:\n  symbols:\n    BTC/USD: {max_qty: 5}\n    LTC/USD: {sides: [buy, sel]}\n",
            "risk.symbols.LTC/USD.sides[1]: Invalid enum value 'sel'",
        ),
        (
            "risk:\n  symbols:\n    BTC/USD: {max_qty: 5}\n    LTC/USD: {price_band_pct: 150}\n",
            "risk.symbols.LTC/USD: price_band_pct must be below 100",
        ),
        (
            "throttle:\n  limits:\n    new_order: {per_s: 5}\n    cancel: {per_s: 5, burst: 0}\n",
            "throttle.limits.cancel.burst: Expected `int` >= 1",
        ),
        (
            "throttle:\n  limits:\n    new_order: {per_s: 5}\n    cancels: {per_s: 5}\n",
            "throttle.limits: Invalid enum value 'cancels'",
        ),
    ],
)
def test_an_error_in_an_entry_of_a_map_names_its_key(write, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = write(GOOD.replace("[BTC/USD]", "[BTC/USD, LTC/USD]") + text)
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert err.value.message == f"{path}: {message}"


def test_a_simulator_account_named_twice_is_refused_naming_accounts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config --sim said ok; `sim` then failed blaming `port` (QuickFIX's Duplicate
    Session)."""
    path = tmp_path / "sim.yaml"
    path.write_text(
        "accounts: [{comp_id: a, api_key: k, secret_key: s}, "
        "{comp_id: a, api_key: k2, secret_key: s2}]\n"
        "symbols: {BTC/USD: {}}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_sim_config(path)
    assert (
        refused.value.message
        == f"{path}: accounts: comp_id 'a' is named twice; a session is known by it"
    )
    assert main(["check-config", "--sim", str(path)]) == 2
    assert "accounts: comp_id 'a' is named twice" in capsys.readouterr().err


def test_a_simulator_load_feed_for_a_symbol_it_does_not_serve_is_refused(
    tmp_path: Path,
) -> None:
    """The feed would never stream: nobody can subscribe to a symbol the simulator lacks."""
    path = tmp_path / "sim.yaml"
    path.write_text(
        "accounts: [{comp_id: a, api_key: k, secret_key: s}]\n"
        "symbols: {BTC/USD: {}}\n"
        "load_feeds: {BTC-USD: {messages: 10}}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_sim_config(path)
    assert refused.value.message == (
        f"{path}: load_feeds: not among `symbols` (BTC/USD), so never subscribed to: BTC-USD"
    )


def test_an_error_in_the_simulator_s_maps_names_the_key_too(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(
        "accounts: [{comp_id: c, api_key: k, secret_key: s, balances: {BTC: 1, USD: x}}]\n"
        "symbols: {BTC/USD: {}}\n"
    )
    with pytest.raises(ConfigError, match=r"sim.yaml: accounts\[0\]\.balances\.USD: not a plain"):
        load_sim_config(path)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "risk:\n  default: {max_qty: 5}\nrisk:\n  max_open_orders: 10\n",
            "line 10, column 1: `risk`",
        ),
        (
            "risk:\n  default: {max_qty: 5}\n  default: {max_qty: 6}\n",
            "line 10, column 3: `default`",
        ),
        ("risk:\n  default: {max_qty: 5, max_qty: 6}\n", "line 9, column 25: `max_qty`"),
    ],
)
def test_a_key_given_twice_is_refused_naming_it_and_its_line(write, text: str, where: str) -> None:  # type: ignore[no-untyped-def]
    """YAML keeps the last of two and drops the first without a word: here a limit."""
    path = write(GOOD + text)
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert err.value.message.startswith(f"{path}: not valid YAML: {where} is given twice (first")


def test_keys_beside_a_yaml_merge_override_the_merged_ones(write) -> None:  # type: ignore[no-untyped-def]
    limits = "risk:\n  default: &limits {max_qty: 5, sides: [buy]}\n"
    config = load_gateway_config(
        write(GOOD + limits + "  symbols:\n    BTC/USD: {<<: *limits, max_qty: 2}\n")
    )
    assert config.risk.symbols["BTC/USD"].max_qty == Decimal(2)
    assert config.risk.symbols["BTC/USD"].sides == ["buy"]


def test_check_config_says_the_same_without_starting(
    write, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    assert main(["check-config", str(write(GOOD))]) == 0
    assert capsys.readouterr().out.endswith(": ok\n")
    assert main(["check-config", str(write(GOOD.replace("symbols", "symbol")))]) == 2
    assert "unknown field `symbol`" in capsys.readouterr().err


LISTENERS = {
    "api.tcp.port": "api: {tcp: {port: PORT, token: {env: T_TOKEN}}}\n",
    "ops.metrics_port": "ops: {metrics_port: PORT}\n",
    "bridge.port": "bridge: {port: PORT, sessions: [{comp_id: OMS}]}\n",
}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("api.tcp.port", "ops.metrics_port"),
        ("api.tcp.port", "bridge.port"),
        ("ops.metrics_port", "bridge.port"),
    ],
)
def test_one_port_given_to_two_listeners_is_refused_naming_both_keys(
    write, first: str, second: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Each port was free on its own, so check-config said ok; `run` then failed on the
    second listener (Address already in use)."""
    port = str(free_port())
    config = write(
        GOOD + LISTENERS[first].replace("PORT", port) + LISTENERS[second].replace("PORT", port)
    )
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(config)
    assert refused.value.message.endswith(
        f": {second}: {port} is {first} too: each listener needs a port of its own"
    )
    assert main(["check-config", str(config)]) == 2
    assert f"{second}: {port} is {first} too" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("files", "second", "first"),
    [
        (
            "journal: {path: var/run/gw}\napi: {socket_path: var/run/../run/gw}\n",
            "api.socket_path",
            "journal.path",
        ),
        (
            "journal: {path: var/j.jsonl}\n"
            "nats: {servers: [nats://n:4222], gateway: g, cursor_path: var/j.jsonl}\n",
            "nats.cursor_path",
            "journal.path",
        ),
        (
            "journal: {path: var/j}\napi: {socket_path: var/j.nats}\n"
            "nats: {servers: [nats://n:4222], gateway: g}\n",
            "nats.cursor_path",
            "api.socket_path",
        ),
    ],
)
def test_two_of_the_gateways_files_at_one_path_are_refused_naming_both_keys(
    write, files: str, second: str, first: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """A cursor at the journal's path wrote its number over the journal; check-config said
    ok."""
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(write(GOOD + files))
    assert f": {second}: " in refused.value.message
    assert refused.value.message.endswith(f" is {first} too: each needs a file of its own")
    assert main(["check-config", str(write(GOOD + files))]) == 2
    assert f"is {first} too" in capsys.readouterr().err


def test_a_cursor_reaching_the_journal_through_a_symbolic_link_is_refused(
    write, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """`var/link -> var/real`: the cursor at `var/link/j.jsonl` passed, and an inline
    publisher wrote its one line over the journal."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "link2").symlink_to(tmp_path / "real" / "sub")
    journal = tmp_path / "real" / "j.jsonl"
    for cursor in (tmp_path / "link" / "j.jsonl", tmp_path / "link2" / ".." / "j.jsonl"):
        files = (
            f"journal: {{path: {journal}}}\n"
            f"nats: {{servers: [nats://n:4222], gateway: g, cursor_path: {cursor}}}\n"
        )
        with pytest.raises(ConfigError) as refused:
            load_gateway_config(write(GOOD + files))
        assert refused.value.message.endswith(
            f": nats.cursor_path: {cursor} is journal.path too: each needs a file of its own"
        )


@pytest.mark.parametrize("mode", ["000", "0400", "0466", "0044"])
def test_a_socket_mode_its_owner_cannot_connect_with_is_refused(write, mode: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(write(GOOD + f'api: {{socket_mode: "{mode}"}}\n'))
    assert f"api.socket_mode: {mode} does not let the gateway's own user" in (refused.value.message)
    assert load_gateway_config(write(GOOD + 'api: {socket_mode: "0200"}\n'))  # write is enough


OKCOIN_API_KEY = "c821db84-6fbd-11e4-a9e3-c86000d26d7c"
FIELD_NOT_SHOWN = (
    "(not shown: it may be a secret pasted in the wrong place; a key's name is lower-case "
    "letters, digits and `_`)"
)
URLSAFE_TOKEN = "q3Vb_0Zk9rT2wXy7LmN4pQ8sJ1hG6fD-aEcB5uIo2Kz"  # the shape of token_urlsafe(32)


@pytest.mark.parametrize(
    ("edit", "pasted"),
    [
        (("{env: T_API_KEY}", f"{{{OKCOIN_API_KEY}}}"), OKCOIN_API_KEY),
        (
            (
                "symbols: [BTC/USD]",
                f"symbols: [BTC/USD]\napi: {{tcp: {{port: 9001, token: {{{URLSAFE_TOKEN}}}}}}}",
            ),
            URLSAFE_TOKEN,
        ),
        (  # secrets.token_urlsafe without a digit
            ("{env: T_API_KEY}", "{vIieVQstJlVGlXMGGNoorMTxUeXhyHtMpVvbTKM-YMI}"),
            "vIieVQstJlVGlXMGGNoorMTxUeXhyHtMpVvbTKM",
        ),
    ],
    ids=["okcoin-api-key-uuid", "token-urlsafe", "token-urlsafe-without-digits"],
)
def test_a_uuid_or_urlsafe_key_pasted_in_braces_is_not_shown(
    write, edit: tuple[str, str], pasted: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Hyphens cut a UUID (OKCoin's API keys) into words too short to read as a key, and an
    `_` in a `token_urlsafe` token made it read as a name: both were printed."""
    config = write(GOOD.replace(*edit))
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(config)
    assert f"Object contains unknown field {FIELD_NOT_SHOWN}" in refused.value.message
    assert main(["check-config", str(config)]) == 2
    shown = capsys.readouterr()
    assert pasted not in refused.value.message + shown.err + shown.out


@pytest.mark.parametrize(
    "name", ["reconcile_timeout", "reconcile_timeout_seconds", "sender_comp_id_2"]
)
def test_a_long_name_mistyped_is_still_shown(write, name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(
            write(GOOD.replace("  sender_comp_id", f"  {name}: 1\n  sender_comp_id"))
        )
    assert f"session: Object contains unknown field `{name}`" in refused.value.message


@pytest.mark.parametrize(
    "pasted",
    [
        "OLTmUuRNp/I3DZ4mDicTZQ==",  # base64 keys, `+` and `/` cutting every run below 16
        "JkqtbLbdIQ+vlKzTz5LBkA==",
        "g+KA2Kj7+hsxFhwyiNM2fP5/tl5+sOtgU7tl9WaOwJU=",
        "Tr0ub4dor&3!horse#Staple",  # a password with symbols
        "QWERTYUIOPASDFGHJKLZ",  # an all-capital token
        "eyJhbGciOi.JIUzI1NiJ9.eyJzdWIiOiIx",  # a dotted token, its parts short
        "sendBufferBytesMax",  # camelCase: no key is named so, and a password may be
    ],
)
def test_an_unknown_field_not_named_as_keys_are_is_not_shown(
    write, pasted: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """A base64 key pasted in braces (`secret_key: {<the key>}`, YAML's one-key mapping) was
    shown whole whenever `+` or `/` cut it into runs too short to read as a key: about 29% of
    16-byte keys. An unknown field is shown only if named as a key is."""
    config = write(GOOD.replace("{file: SECRET_FILE}", json.dumps({pasted: None})))
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(config)
    said = f"credentials.secret_key: Object contains unknown field {FIELD_NOT_SHOWN}"
    assert said in refused.value.message
    assert main(["check-config", str(config)]) == 2
    shown = capsys.readouterr()
    assert said in shown.err
    assert pasted not in refused.value.message + shown.err + shown.out


PASTED_KEY = "9f8A7b6C5d4E3f2A1b0C7d6E"


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (  # YAML's one-key mapping: msgspec names an unknown field
            ("{file: SECRET_FILE}", f"{{{PASTED_KEY}}}"),
            f"credentials.secret_key: Object contains unknown field {FIELD_NOT_SHOWN}",
        ),
        (
            ("symbols: [BTC/USD]", f"symbols: [BTC/USD]\nlog: {{level: {PASTED_KEY}}}"),
            "log.level: Invalid enum value (not shown: it reads as a key)",
        ),
        (
            ("symbols: [BTC/USD]", f"symbols: [BTC/USD]\n{PASTED_KEY}: x"),
            f"(top level): Object contains unknown field {FIELD_NOT_SHOWN}",
        ),
        (
            (
                "symbols: [BTC/USD]",
                f"symbols: [BTC/USD]\nthrottle: {{limits: {{{PASTED_KEY}: 1}}}}",
            ),
            "throttle.limits: Invalid enum value (not shown: it reads as a key)",
        ),
        (
            (
                "symbols: [BTC/USD]",
                f"symbols: [BTC/USD]\nrisk: {{symbols: {{{PASTED_KEY}: {{}}}}}}",
            ),
            "risk.symbols: not among `symbols` (BTC/USD): (not shown: it reads as a key)",
        ),
        (
            ("  api_key:", f"  {PASTED_KEY}: 1\n  {PASTED_KEY}: 2\n  api_key:"),
            "not valid YAML: line 6, column 3: (not shown: it reads as a key) is given twice",
        ),
    ],
)
def test_a_key_the_error_would_quote_from_the_config_is_not_shown(
    write, edit: tuple[str, str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """The error named a key pasted where a field's name, an enum's value or a map's key
    goes, on stderr and in the log line of a reload it refused."""
    config = write(GOOD.replace(*edit))
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(config)
    assert said in refused.value.message
    assert main(["check-config", str(config)]) == 2
    shown = capsys.readouterr()
    assert said in shown.err
    assert PASTED_KEY not in refused.value.message + shown.err + shown.out


@pytest.mark.parametrize("pasted", ["OLTmUuRNp/I3DZ4mDicTZQ==", "JkqtbLbdIQ+vlKzTz5LBkA=="])
@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (("symbols: [BTC/USD]", "symbols: [BTC/USD]\nlog: {level: PASTED}"), "log.level"),
        (
            ("symbols: [BTC/USD]", "symbols: [BTC/USD]\nrisk: {symbols: {PASTED: {}}}"),
            "risk.symbols",
        ),
    ],
    ids=["enum-value", "map-key"],
)
def test_a_base64_key_the_error_would_quote_is_not_shown(
    write, pasted: str, edit: tuple[str, str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Only runs of 16 letters, digits, `_` and `-` were looked at: a base64 key's `+`, `/`
    and `=` cut it into runs too short to read as a key, and it was shown whole."""
    old, new = edit
    config = write(GOOD.replace(old, new.replace("PASTED", pasted)))
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(config)
    assert f"{said}: " in refused.value.message
    assert "(not shown: it reads as a key)" in refused.value.message
    assert main(["check-config", str(config)]) == 2
    shown = capsys.readouterr()
    assert pasted not in refused.value.message + shown.err + shown.out


INLINE = "my-inline-s3cret"

BY_REFERENCE = (
    "a secret is never given inline: give it by reference, as {env: NAME} (an environment "
    "variable) or {file: PATH} (a file's first line)"
)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (("{file: SECRET_FILE}", INLINE), "credentials.secret_key"),
        (
            ("symbols: [BTC/USD]", f"symbols: [BTC/USD]\napi: {{tcp: {{token: {INLINE}}}}}"),
            "api.tcp.token",
        ),
        (
            (
                "symbols: [BTC/USD]",
                f"symbols: [BTC/USD]\nbridge: {{port: 9001, sessions: [{{comp_id: o, "
                f"password: {INLINE}}}]}}",
            ),
            "bridge.sessions[0].password",
        ),
        (
            (
                "symbols: [BTC/USD]",
                f"symbols: [BTC/USD]\nnats: {{servers: [nats://n:4222], gateway: g, "
                f"auth: {{user: u, password: {INLINE}}}}}",
            ),
            "nats.auth.password",
        ),
    ],
)
def test_a_secret_written_inline_is_refused_saying_how_to_give_it(
    write, edit: tuple[str, str], key: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """It said ``Expected `object | null`, got `str` ``, nothing of `{env: NAME}` or
    `{file: PATH}`."""
    config = write(GOOD.replace(*edit))
    assert main(["check-config", str(config)]) == 2
    shown = capsys.readouterr()
    assert shown.err == f"fixgw: config error: {config}: {key}: {BY_REFERENCE}\n"
    assert INLINE not in shown.err + shown.out


def test_a_value_of_the_wrong_type_elsewhere_keeps_msgspecs_words(write) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"session: Expected `object`, got `str`$"):
        load_gateway_config(
            write(
                GOOD.replace("  sender_comp_id: 0b6f3a52-client\n", "").replace(
                    "session:", "session: x"
                )
            )
        )


def test_check_config_running_passes_the_port_socket_and_lock_the_gateway_holds(
    write, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """The process holding the journal's lock is the running gateway (here, this one): the
    metrics port and the API socket it listens on are its own, not taken."""
    metrics, api = socket.socket(), socket.socket(socket.AF_UNIX)
    journal_path = tmp_path / "journal" / "events.jsonl"
    lock = journal.lock(journal_path)
    try:
        metrics.bind(("127.0.0.1", 0))
        metrics.listen()
        api.bind(str(tmp_path / "gw.sock"))
        api.listen()
        config = write(
            GOOD
            + f"journal: {{path: {journal_path}}}\n"
            + f"api: {{socket_path: {tmp_path / 'gw.sock'}}}\n"
            + f"ops: {{metrics_port: {metrics.getsockname()[1]}}}\n"
        )
        assert main(["check-config", str(config)]) == 2
        taken = capsys.readouterr().err
        assert [line.split(": ")[3] for line in taken.splitlines()] == [
            "journal.path",
            "api.socket_path",
            "ops.metrics_port",
        ], taken
        assert main(["check-config", "--running", str(config)]) == 0, capsys.readouterr().err
    finally:
        os.close(lock)
        metrics.close()
        api.close()


@pytest.mark.parametrize("size", [107, 108])
def test_check_config_refuses_a_socket_path_exactly_when_no_socket_can_be_bound_there(
    write, size: int, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Linux's `sun_path` has 108 bytes, but Python, and so the gateway, keeps one for the
    NUL that ends a path: 108 bytes are refused as too long when the socket is bound."""
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        path = os.path.join(folder, "s" * (size - len(folder) - 1))
        assert len(os.fsencode(path)) == size
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.bind(path)
            except OSError:
                binds = False
            else:
                binds = True
                os.unlink(path)
        config = write(GOOD + f"api: {{socket_path: {path}}}\n")
        assert (main(["check-config", str(config)]) == 0) is binds, capsys.readouterr().err


@pytest.mark.parametrize(
    ("tls", "name"),
    [
        ("{enabled: false}", "exchange..test"),  # no TLS: no name is sent or checked
        ("{server_name: exchange.test}", "exchange.test"),  # the host is not the name
    ],
)
def test_a_host_tls_cannot_name_is_refused_only_when_tls_would_send_it(
    write, tls: str, name: str
) -> None:  # type: ignore[no-untyped-def]
    text = GOOD.replace(
        "  sender_comp_id", f"  host: exchange..test\n  tls: {tls}\n  sender_comp_id"
    )
    assert load_gateway_config(write(text)).session.tls_server_name == name


@pytest.mark.parametrize(
    "session",
    ["host: exchange.test.", "host: h.test, tls: {server_name: exchange.test.}"],
)
def test_tls_checks_a_name_without_the_dot_that_makes_it_absolute_in_dns(
    write, session: str
) -> None:  # type: ignore[no-untyped-def]
    """Certificates and SNI never carry the trailing dot: kept, every connection failed with
    "Hostname mismatch". The connection itself still goes to `host` as written."""
    text = GOOD.replace("session:\n  sender_comp_id", f"session: {{{session},\n  sender_comp_id")
    config = load_gateway_config(write(text.replace("-client\n", "-client}\n", 1)))
    assert config.session.tls_server_name == "exchange.test"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a certificate and its key, as PEM; and files no TLS setting can use."""
    root = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("fixgw.test")
    files = {name: root / name for name in ("ca.pem", "cert.pem", "key.pem")}
    ca.cert_pem.write_to_path(str(files["ca.pem"]))
    issued.cert_chain_pems[0].write_to_path(str(files["cert.pem"]))
    issued.private_key_pem.write_to_path(str(files["key.pem"]))
    files["ca.der"] = root / "ca.der"
    files["ca.der"].write_bytes(
        x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_bytes(serialization.Encoding.DER)
    )
    files["empty.pem"] = root / "empty.pem"
    files["empty.pem"].write_bytes(b"")
    files["notes.txt"] = root / "notes.txt"
    files["notes.txt"].write_text("the exchange's certificate is due in May\n")
    return files


@pytest.mark.parametrize(
    ("setting", "bad", "cause"),
    [
        ("ca_file", "notes.txt", "is not a PEM certificate"),
        ("ca_file", "empty.pem", "is empty"),
        ("ca_file", "ca.der", "is DER, not PEM: convert it to a PEM certificate (openssl x509"),
        ("ca_file", "key.pem", "holds a private key, not a certificate"),
        ("client_cert", "notes.txt", "is not a PEM certificate"),
        ("client_cert", "ca.der", "is DER, not PEM"),
        ("client_key", "notes.txt", "is not a PEM private key"),
        ("client_key", "empty.pem", "is empty"),
        ("client_key", "cert.pem", "holds a certificate, not a private key"),
    ],
)
def test_a_tls_file_openssl_cannot_read_is_named_by_its_key_and_why(
    write,
    tls_files: dict[str, Path],
    setting: str,
    bad: str,
    cause: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # type: ignore[no-untyped-def]
    """OpenSSL's "PEM lib" or "no certificate or crl found" named neither the file nor
    the key, with three files configured."""
    files = {"ca_file": "ca.pem", "client_cert": "cert.pem", "client_key": "key.pem", setting: bad}
    tls = ", ".join(f"{key}: {tls_files[name]}" for key, name in files.items())
    config = write(GOOD.replace("  sender_comp_id", f"  tls: {{{tls}}}\n  sender_comp_id"))
    assert main(["check-config", str(config)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        f"fixgw: config error: {config}: session.tls.{setting}: {tls_files[bad]} {cause}"
    ), errors


@pytest.mark.parametrize(
    ("setting", "bad", "cause"),
    [("cert_file", "notes.txt", "is not a PEM certificate"), ("key_file", "empty.pem", "is empty")],
)
def test_a_simulator_tls_file_openssl_cannot_read_is_named_by_its_key_and_why(
    tmp_path: Path,
    tls_files: dict[str, Path],
    setting: str,
    bad: str,
    cause: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = {"cert_file": "cert.pem", "key_file": "key.pem", setting: bad}
    path = tmp_path / "sim.yaml"
    path.write_text(
        f"port: {free_port()}\nstore_dir: {tmp_path / 'store'}\n"
        "accounts: [{comp_id: c, api_key: k, secret_key: s}]\nsymbols: {BTC/USD: {}}\n"
        f"tls: {{{', '.join(f'{key}: {tls_files[name]}' for key, name in files.items())}}}\n"
    )
    assert main(["check-config", "--sim", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"fixgw: config error: {path}: tls.{setting}: {tls_files[bad]} {cause}"
    ]


def test_bundled_demo_configs_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXGW_API_KEY", "k")
    monkeypatch.setenv("FIXGW_SECRET_KEY", "s")
    load_gateway_config(DEMO_GATEWAY)
    sim = load_sim_config(DEMO_SIM)
    assert sim.symbols["BTC/USD"].asks[0] == (Decimal("30010"), Decimal("1.2"))


def test_sim_seed_prices_are_decimals_from_yaml_floats(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(
        "accounts: [{comp_id: c, api_key: k, secret_key: s}]\n"
        "symbols: {BTC/USD: {bids: [[0.1, 3]]}}\n"
    )
    assert load_sim_config(path).symbols["BTC/USD"].bids == [(Decimal("0.1"), Decimal("3"))]
    path.write_text(
        "accounts: [{comp_id: c, api_key: k, secret_key: s}]\n"
        "symbols: {BTC/USD: {bids: [[0, 3]]}}\n"
    )
    with pytest.raises(ConfigError, match=r"symbols.BTC/USD.bids\[0\]"):
        load_sim_config(path)


@pytest.mark.parametrize(
    "value",
    [
        "1_000",  # YAML's own int syntax: was max_qty 1000
        "'1_000'",
        "'\u0661\u0662\u0663'",  # Arabic-Indic digits: was 123
        "'\uff15'",  # a fullwidth 5
        "' 5 '",
        "+5",
        "'+5'",
        "5.",
        "'5.'",
        ".5",
        "5e3",
        "0x10",
        "0o17",
        "-5",
        "'Infinity'",
    ],
)
def test_a_risk_limit_is_a_plain_decimal_as_from_clients(write, value: str) -> None:  # type: ignore[no-untyped-def]
    path = write(GOOD + f"risk:\n  default:\n    max_qty: {value}\n")
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert "risk.default.max_qty" in err.value.message
    assert "ASCII digits with at most one '.'" in err.value.message


@pytest.mark.parametrize(("value", "expected"), [("5", "5"), ("'0.25'", "0.25"), ("0.25", "0.25")])
def test_plain_decimals_load_as_written(write, value: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    config = load_gateway_config(write(GOOD + f"risk:\n  default:\n    max_qty: {value}\n"))
    assert config.risk.default.max_qty == Decimal(expected)
    assert str(config.risk.default.max_qty) == expected


def test_numbers_keep_their_text_for_int_fields_too(write) -> None:  # type: ignore[no-untyped-def]
    """YAML reads `9_880` as 9880 and `0660` as 432; a config says what it means."""
    config = load_gateway_config(write(GOOD + "api: {socket_mode: 0640}\n"))
    assert config.api.socket_mode == "0640"
    with pytest.raises(ConfigError, match=r"session\.port"):
        load_gateway_config(write(GOOD.replace("  sender", "  port: 9_880\n  sender")))


def test_shipped_example_configs_are_valid(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "config"
    text = (root / "fixgw.example.yaml").read_text()
    for credential in ("okcoin-secret", "okcoin-api-key"):  # the systemd unit's credentials
        (tmp_path / credential).write_text("s\n")
        text = text.replace(
            f"/run/credentials/fixgw.service/{credential}", str(tmp_path / credential)
        )
    example = tmp_path / "fixgw.yaml"
    example.write_text(text)
    config = load_gateway_config(example)
    assert config.session.host == "api.okcoin.cn"
    assert load_sim_config(root / "sim.example.yaml").accounts[0].comp_id == "fixgw-demo"


def test_okcoin_needs_both_keys_and_plain_fix44_a_target_comp_id(write) -> None:  # type: ignore[no-untyped-def]
    no_secret = GOOD.replace("  secret_key: {file: SECRET_FILE}\n", "")
    with pytest.raises(ConfigError, match="OKCoin needs `api_key` and `secret_key`"):
        load_gateway_config(write(no_secret))
    fix44 = GOOD.replace("session:\n", "session:\n  venue: fix44\n")
    with pytest.raises(ConfigError, match=r"target_comp_id: plain FIX 4\.4 has no default"):
        load_gateway_config(write(fix44))
    config = load_gateway_config(
        write(fix44.replace("session:\n", "session:\n  target_comp_id: BROKER\n"))
    )
    assert (config.session.venue, config.session.target_comp_id) == ("fix44", "BROKER")
