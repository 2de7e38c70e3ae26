"""What operators install: the systemd unit, the Docker image's build steps, the compose file
and the Grafana dashboard. No Docker engine runs in CI, so the image's steps are run here as
the Dockerfile gives them, into a temporary virtualenv, and that install trades."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from fixgw.config import ApiConfig, load_sim_config
from fixgw.ops.prometheus import Metrics
from fixgw.testing import free_port
from tests.integration.conftest import EventLog, StackFactory

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "config" / "fixgw.service"
DOCKER = ROOT / "docker"
VENV_FIXGW = str(Path(sys.executable).parent / "fixgw")


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is needed to check config/fixgw.service (Debian: systemd)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def test_systemd_accepts_the_unit_and_rates_it_hardened(tmp_path: Path) -> None:
    """A copy whose ExecStart names this virtualenv's fixgw: verify checks that it exists."""
    unit = tmp_path / "fixgw.service"
    unit.write_text(UNIT.read_text().replace("/opt/fixgw/bin/fixgw", VENV_FIXGW))
    verified = systemd_analyze("verify", str(unit))
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr
    # exposure is 0..10 as printed, 0..100 as --threshold takes it
    security = systemd_analyze("security", "--offline=true", "--threshold=25", str(unit))
    assert security.returncode == 0, security.stdout[-3000:]


def test_the_unit_runs_the_daemon_as_it_talks_to_systemd() -> None:
    unit = unit_settings()
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert int(unit["WatchdogSec"][0]) > 0
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["DynamicUser"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    assert unit["RuntimeDirectory"] == ["fixgw"]  # /run/fixgw: the default socket's directory
    assert ApiConfig().socket_path.startswith("/run/fixgw/")
    run = shlex.split(unit["ExecStart"][0])
    assert run[0] == "/opt/fixgw/bin/fixgw" and run[1:3] == ["run", "--config"]


def test_the_unit_and_the_dockerfile_point_to_sections_and_tests_that_exist() -> None:
    """The unit sent installers to the README's "Running it as a service", which does not
    exist; the Dockerfile to the README for `make wheels`, and to tests/unit/."""
    readme = ROOT / "README.md"
    for path in (UNIT, DOCKER / "Dockerfile"):
        lines = path.read_text().splitlines()
        comments = " ".join(line.lstrip("# ") for line in lines if line.startswith("#"))
        sections = [
            ("README.md", heading) for heading in re.findall(r"README's \"([^\"]+)\"", comments)
        ]
        sections += re.findall(r"(docs/[\w-]+\.md), \"([^\"]+)\"", comments)
        assert sections, f"{path.name} names no install steps"
        for page, heading in sections:
            text = readme.read_text() if page == "README.md" else (ROOT / page).read_text()
            assert re.search(rf"^#+ {re.escape(heading)}$", text, re.M), (path.name, page, heading)
        for test_file in re.findall(r"tests/[\w/]+\.py", comments):
            assert (ROOT / test_file).is_file(), (path.name, test_file)


EXAMPLE = ROOT / "config" / "fixgw.example.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
"""Where the install steps are written down."""
CREDENTIALS = "/run/credentials/fixgw.service/"
"""Where systemd puts a unit's LoadCredential= files; the config reads them from there."""


def install_steps() -> str:
    """The commands docs/operations.md gives under its systemd install heading."""
    page = OPERATIONS.read_text()
    section = page.split("## Install as a systemd service", 1)[1]
    return section.split("```sh", 1)[1].split("```", 1)[0]


def test_the_example_config_passes_check_config_with_only_what_the_unit_provides(
    tmp_path: Path,
) -> None:
    """ExecStartPre runs `check-config` on the example as docs/operations.md installs it,
    with the unit's Environment= and its LoadCredential= files and nothing else of ours:
    every secret the example reads has to come from one of them, and each credential's
    source file has to be put in place by the install steps there."""
    unit = unit_settings()
    steps = install_steps()
    assert "config/fixgw.example.yaml /etc/fixgw/fixgw.yaml" in steps
    assert "config/fixgw.service /etc/systemd/system/" in steps  # the name in CREDENTIALS
    check = shlex.split(unit["ExecStartPre"][0])
    assert check == ["/opt/fixgw/bin/fixgw", "check-config", "/etc/fixgw/fixgw.yaml"]
    assert "EnvironmentFile" not in unit
    env = {"PATH": "/usr/bin:/bin"}
    for line in unit.get("Environment", []):
        env.update(assignment.split("=", 1) for assignment in shlex.split(line))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for spec in unit["LoadCredential"]:
        name, source = spec.split(":", 1)
        assert re.search(rf"^sudo install .* {re.escape(source)} ", steps, re.M), source
        (credentials / name).write_text(f"value of {name}\n")
    example = EXAMPLE.read_text()
    assert CREDENTIALS in example
    config = tmp_path / "fixgw.yaml"
    # what this checks is the secrets: the rest on this machine's free ports and paths, not
    # those a gateway or a test running beside it may hold
    example = example.replace("metrics_port: 9464", f"metrics_port: {free_port()}")
    for system_dir in ("/run/fixgw", "/var/lib/fixgw"):
        example = example.replace(system_dir, str(tmp_path / system_dir.strip("/")))
    config.write_text(example.replace(CREDENTIALS, f"{credentials}/"))
    checked = subprocess.run(
        [sys.executable, "-m", "fixgw", "check-config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr


def dockerfile_lines() -> list[str]:
    return (DOCKER / "Dockerfile").read_text().replace("\\\n", " ").splitlines()


def dockerfile_runs() -> list[str]:
    return [" ".join(line.split()[1:]) for line in dockerfile_lines() if line.startswith("RUN ")]


def test_the_cli_page_names_the_extras_the_image_installs() -> None:
    """docs/cli.md said the image had no `tui` extra, while the Dockerfile installed it."""
    (installed,) = re.findall(r"'(fixgw\[[a-z,]+\])'", (DOCKER / "Dockerfile").read_text())
    cli_page = " ".join((ROOT / "docs" / "cli.md").read_text().split())
    assert f"The Docker image installs fixgw with it (`{installed}`)" in cli_page


@pytest.mark.timeout(1800)  # builds QuickFIX from source when pip has no wheel cached
def test_the_image_steps_build_wheels_that_install_and_trade(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    build = [run for run in dockerfile_runs() if run.startswith("make ")]
    assert build == ["make wheels PYTHON=python3"]
    copied = " ".join(line for line in dockerfile_lines() if line.startswith("COPY "))
    assert all(f" {name}" in copied for name in ("pyproject.toml", "setup.py", "fixgw"))
    assert "make wheels" in OPERATIONS.read_text()
    subprocess.run(
        ["make", "wheels", f"PYTHON={sys.executable}"], cwd=ROOT, check=True, timeout=900
    )
    wheels = ROOT / "dist" / "wheels"
    (fixgw_wheel,) = wheels.glob("fixgw-*.whl")
    names = zipfile.ZipFile(fixgw_wheel).namelist()
    assert "fixgw/spec/okcoin-fix44.xml" in names
    assert {"fixgw/defaults/demo-gateway.yaml", "fixgw/defaults/demo-sim.yaml"} <= set(names)
    compiled = {n.split(".")[0] for n in names if n.endswith(".so")}
    assert {"fixgw/_native__mypyc", "fixgw/gateway", "fixgw/venues/okcoin/inbound"} <= compiled

    (install,) = [run for run in dockerfile_runs() if "--find-links" in run]
    venv = tmp_path / "venv"
    install = install.replace("/opt/fixgw", str(venv)).replace("/tmp/wheels", str(wheels))
    install = install.replace("python3 -m venv", f"{shlex.quote(sys.executable)} -m venv")
    subprocess.run(
        ["sh", "-ec", install], check=True, timeout=600
    )  # the RUN line, as Docker runs it

    python = str(venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import fixgw.gateway; print(fixgw.gateway.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(venv)) and where.stdout.strip().endswith(".so")
    subprocess.run([python, "-c", "import nats, rich"], check=True, timeout=60)  # NATS, `top`
    for config in (["docker/gateway.yaml"], ["--sim", "docker/sim.yaml"]):
        subprocess.run(
            [str(venv / "bin" / "fixgw"), "check-config", *config],
            cwd=ROOT,
            env={"FIXGW_API_KEY": "k", "FIXGW_SECRET_KEY": "s", "PATH": "/usr/bin:/bin"},
            check=True,
            timeout=60,
        )

    stack = make_stack(start=False)
    stack.python = python
    stack.start_sim()
    stack.start_gateway()
    with stack.client() as gw:
        gw.subscribe(["orders"])
        placed = gw.new_order(symbol="BTC/USD", side="buy", type="market", qty="0.1")
        assert EventLog(gw).find(placed["cl_ord_id"], "order.filled")["last_qty"] == "0.1"


def test_compose_runs_the_gateway_beside_the_simulator() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    copied = re.search(
        r"^COPY (docker/\S+ )+/etc/fixgw/$", (DOCKER / "Dockerfile").read_text(), re.M
    )
    assert copied
    sim = load_sim_config(DOCKER / "sim.yaml")
    gateway_yaml = yaml.safe_load((DOCKER / "gateway.yaml").read_text())
    assert gateway_yaml["session"]["host"] == "sim" and gateway_yaml["session"]["port"] == sim.port
    assert services["sim"]["command"] == ["sim", "--config", "/etc/fixgw/sim.yaml"]
    assert services["gateway"]["command"] == ["run", "--config", "/etc/fixgw/gateway.yaml"]
    assert services["gateway"]["depends_on"]["sim"]["condition"] == "service_healthy"
    env = services["gateway"]["environment"]
    account = sim.accounts[0]
    assert (env["FIXGW_API_KEY"], env["FIXGW_SECRET_KEY"]) == (account.api_key, account.secret_key)
    port = gateway_yaml["ops"]["metrics_port"]
    assert services["gateway"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"127.0.0.1:{port}/healthz" in (DOCKER / "Dockerfile").read_text()


def test_every_dashboard_query_names_a_metric_the_gateway_exports() -> None:
    families = list(Metrics().registry.collect())
    exported = {family.name for family in families}
    for family in families:
        if family.type == "counter":
            exported.add(f"{family.name}_total")
        elif family.type == "histogram":
            exported |= {f"{family.name}_{part}" for part in ("bucket", "count", "sum")}
    dashboard = json.loads((DOCKER / "grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bfixgw_\w+", target["expr"])
    }
    assert queried and queried <= exported, queried - exported
    shown = {name.removesuffix("_bucket").removesuffix("_total") for name in queried}
    unshown = {family.name for family in families} - shown
    assert not unshown, f"metrics missing from the dashboard: {unshown}"
