"""`make lint`'s layout check (scripts/check_layout.py) on small packages built in tmp_path.

Each case prints exact lines: import rules between parts (lazy and relative imports included),
import cycles, module length, the number of top-level modules, and the rule table itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECK = [sys.executable, str(REPO / "scripts" / "check_layout.py")]
TABLE = "[tool.giellm-batch.layout]"

RULES = """\
[tool.giellm-batch.layout]
max_module_lines = 10
max_top_level_modules = 3

[tool.giellm-batch.layout.imports]
__init__ = []
base = []
c = []
d = []
low = ["base"]
high = ["low", "base"]
"""

# obeys RULES, with an absolute, a relative and a lazy import, a 10-line module and 3 top-level modules
CLEAN = {
    "__init__.py": "",
    "base.py": "VALUE = 1\n",
    "c.py": "",
    "low/__init__.py": "",
    "low/x.py": "from pkg import base\n\n\ndef f():\n    from .y import g\n\n    return g() + base.VALUE\n",
    "low/y.py": "from ..base import VALUE\n\n\ndef g():\n    return VALUE\n",
    "high/__init__.py": "",
    "high/z.py": "import pkg.low.x\nfrom pkg.low import y\n" + "\n" * 6 + "thing = pkg.low.x.f\nother = y.g\n",
}


def build(tmp_path: Path, files: dict[str, str], rules: str | None = RULES) -> Path:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if rules is not None:
        (tmp_path / "pyproject.toml").write_text(rules)
    return tmp_path / "pkg"


def check(package: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHECK, *options, str(package)], capture_output=True, text=True, cwd=package.parent)


def test_a_clean_package_passes(tmp_path):
    package = build(tmp_path, CLEAN)
    assert len((package / "high" / "z.py").read_text().splitlines()) == 10  # at the limit, not over it
    result = check(package)
    assert (result.returncode, result.stdout) == (0, "")


def test_the_graph_shows_which_part_imports_which(tmp_path):
    package = build(tmp_path, {**CLEAN, "low/bad.py": "def f():\n    from pkg.high import z\n    return z\n"})
    result = check(package, "--graph")
    assert result.returncode == 1
    assert result.stdout.splitlines()[:5] == [
        f"# pkg: part -> parts it imports (* = not allowed by {TABLE} imports)",
        "__init__ -> (nothing)",
        "base -> (nothing)",
        "c -> (nothing)",
        "high -> low",
    ]
    assert result.stdout.splitlines()[5] == "low -> base, high*"


def test_a_forbidden_import_inside_a_function_fails(tmp_path):
    bad = '"""Lazy upward imports."""\n\n\ndef f():\n    from pkg.high import z\n    from ..high.z import thing\n'
    package = build(tmp_path, {**CLEAN, "low/bad.py": bad + "    return z, thing\n"})
    result = check(package)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"pkg/low/bad.py:{line}: pkg.low.bad imports pkg.high.z ('high'), but imports.low allows only [\"base\"]"
        for line in (5, 6)
    ]


def test_a_cycle_hidden_in_a_function_fails(tmp_path):
    package = build(
        tmp_path,
        {**CLEAN, "low/a.py": "from pkg.low import b\n", "low/b.py": "def f():\n    from .a import x\n    return x\n"},
    )
    result = check(package)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "pkg/low/a.py:1: import cycle pkg.low.a -> pkg.low.b -> pkg.low.a (pkg.low.a imports pkg.low.b at "
        "pkg/low/a.py:1; pkg.low.b imports pkg.low.a at pkg/low/b.py:2); no cycle is allowed"
    ]


def test_a_module_over_the_line_limit_fails(tmp_path):
    package = build(tmp_path, {**CLEAN, "high/long.py": "x = 1\n" * 11})
    result = check(package)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "pkg/high/long.py:11: pkg.high.long has 11 lines, over max_module_lines = 10; split it"
    ]


def test_too_many_top_level_modules_fail(tmp_path):
    package = build(tmp_path, {**CLEAN, "d.py": ""})
    result = check(package)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "pkg/: 4 modules at the top of the package (__init__, base, c, d), over max_top_level_modules = 3; "
        "move some into a subpackage"
    ]


def test_a_part_without_a_rule_fails(tmp_path):
    package = build(tmp_path, {**CLEAN, "extra/__init__.py": "", "extra/e.py": "from pkg.base import VALUE\n"})
    result = check(package)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"pkg/extra/__init__.py:1: pkg.extra belongs to 'extra', which has no entry in {TABLE} imports "
        "(entries: __init__, base, c, d, high, low)"
    ]


def test_a_rule_table_that_names_no_part_or_allows_a_cycle_fails(tmp_path):
    rules = RULES.replace('low = ["base"]', 'low = ["base", "hgh"]').replace("base = []", 'base = ["high"]')
    package = build(tmp_path, CLEAN, rules)
    result = check(package)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"pyproject.toml: imports.low allows 'hgh', which has no entry of its own in {TABLE} imports",
        f"pyproject.toml: {TABLE} imports allow a cycle: base -> high -> base",
    ]


def test_missing_or_malformed_rules_stop_the_check(tmp_path):
    package = build(tmp_path, CLEAN, rules=None)
    result = check(package)
    assert result.returncode == 2
    assert (
        result.stdout.strip() == f"{tmp_path / 'pyproject.toml'}: not found; the layout rules live in its {TABLE} table"
    )
    build(tmp_path, {}, RULES.replace("max_module_lines = 10", 'max_module_lines = "10"'))
    result = check(package)
    assert result.returncode == 2
    assert result.stdout.strip() == (
        f"{tmp_path / 'pyproject.toml'}: {TABLE} max_module_lines must be a positive integer, not '10'"
    )


def test_the_package_has_no_import_cycle_and_readable_rules():
    """The repository's own tree: `make lint` wants exit 0; here, at least no cycle and a sound rule table."""
    result = subprocess.run([*CHECK, str(REPO / "giellm_batch")], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stdout
    assert [line for line in result.stdout.splitlines() if "import cycle" in line or line.startswith("pyproject")] == []
