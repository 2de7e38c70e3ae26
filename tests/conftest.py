"""Refuses to test a compiled build older than its source (see the Makefile's install)."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fixgw"


def changed_since_compiled(package: Path = PACKAGE) -> list[str]:
    """Modules changed after mypyc last compiled the package, so Python would run old code.

    Any module counts, as in the Makefile: compiled code relies on the types of the modules
    it imports (a Struct's fields, a function's signature) and checks them at run time."""
    natives = list(package.glob("_native__mypyc.*.so"))
    if not natives:
        return []
    built = min(native.stat().st_mtime for native in natives)
    return sorted(
        str(source.relative_to(package.parent))
        for source in package.rglob("*.py")
        if source.stat().st_mtime > built
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if changed := changed_since_compiled():
        pytest.exit(
            f"{', '.join(changed)} changed since fixgw was compiled: run `make install` "
            "(or `make test`), which compiles again",
            returncode=4,
        )
