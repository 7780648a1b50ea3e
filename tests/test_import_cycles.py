"""`make lint`'s import-cycle check: passes on the package, fails on a cycle (also a lazy one)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CHECK = [sys.executable, str(REPO / "scripts" / "check_import_cycles.py")]


def test_the_package_has_no_import_cycle():
    result = subprocess.run([*CHECK, str(REPO / "giellm_batch")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_a_cycle_hidden_in_a_function_fails_the_check(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import x\n    return x\n")
    (package / "c.py").write_text("import pkg.a\n")
    result = subprocess.run([*CHECK, str(package)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout.strip() == "import cycle: pkg.a <-> pkg.sub.b"
