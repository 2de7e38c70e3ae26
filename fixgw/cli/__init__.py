"""The command line: `fixgw COMMAND` (main.py builds the parser)."""

from fixgw.cli.daemon_commands import DEMO_GATEWAY, DEMO_SIM
from fixgw.cli.main import build_parser, main

__all__ = ["DEMO_GATEWAY", "DEMO_SIM", "build_parser", "main"]
