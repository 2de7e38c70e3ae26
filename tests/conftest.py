"""Refuses to test compiled modules older than their source (see the Makefile's install)."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fixgw"


def stale_compiled_modules(package: Path = PACKAGE) -> list[str]:
    """Modules whose `.py` changed after mypyc last compiled them, so Python would run old code."""
    natives = list(package.glob("_native__mypyc.*.so"))
    if not natives:
        return []
    built = min(native.stat().st_mtime for native in natives)
    return sorted(
        str(source.relative_to(package.parent))
        for extension in package.rglob("*.so")
        if (source := extension.with_name(extension.name.split(".")[0] + ".py")).exists()
        and source.stat().st_mtime > built
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if stale := stale_compiled_modules():
        pytest.exit(
            f"{', '.join(stale)} changed since it was compiled: run `make install` "
            "(or `make test`), which compiles again",
            returncode=4,
        )
