"""`python -m fixgw`, and the `fixgw` command: the daemon's signals are held (see
`fixgw.ops.held_signals`) before the command line and all it needs are imported."""

import sys

from fixgw.ops import held_signals


def main() -> int:
    held_signals.hold()
    try:
        from fixgw.cli import main as command_line

        return command_line()
    finally:
        held_signals.let_through()


if __name__ == "__main__":
    sys.exit(main())
