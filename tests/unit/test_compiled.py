"""The guard in tests/conftest.py: tests never run a compiled build older than its source."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import changed_since_compiled

SO = ".cpython-311-x86_64-linux-gnu.so"


def files(package: Path, names: dict[str, int]) -> None:
    """Each name written with the given modification time."""
    for name, mtime in names.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        os.utime(path, (mtime, mtime))


def test_modules_changed_after_compiling_are_named_compiled_or_not(tmp_path: Path) -> None:
    package = tmp_path / "fixgw"
    files(
        package,
        {
            f"_native__mypyc{SO}": 1_000,  # the build
            "gateway.py": 900,
            "okcoin/inbound.py": 1_100,
            "domain.py": 1_200,  # not compiled, but the compiled modules rely on its types
        },
    )
    assert changed_since_compiled(package) == ["fixgw/domain.py", "fixgw/okcoin/inbound.py"]


def test_a_pure_python_tree_has_nothing_to_compile(tmp_path: Path) -> None:
    package = tmp_path / "fixgw"
    files(package, {"gateway.py": 2_000, "okcoin/inbound.py": 2_000})
    assert changed_since_compiled(package) == []
