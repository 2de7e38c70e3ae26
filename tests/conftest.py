"""Refuses to test compiled modules older than their source (see the Makefile's install)."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fixgw"


def stale_compiled_modules() -> list[str]:
    """Modules whose `.py` changed after mypyc last compiled them, so Python would run old code."""
    (native,) = PACKAGE.glob("_native__mypyc.*.so") or (None,)
    if native is None:
        return []
    built = native.stat().st_mtime
    return sorted(
        str(source.relative_to(PACKAGE.parent))
        for extension in PACKAGE.rglob("*.so")
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
