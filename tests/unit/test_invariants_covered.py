"""Every invariant of docs/architecture.md section 2 (I1..I8) has tests, and the README and
that page say which.

Read statically with ``ast`` (nothing is imported or run), over ``tests/**/*.py``:

- a test checks invariant ``In`` when it is marked ``@pytest.mark.invariant("In", ...)``, when
  its class or module is (``pytestmark``), or when its name says so: ``test_i3_...``,
  ``test_i1_i2_...``;
- the subshell invariants S1..S4 (docs/subshells.md) are marked the same way, and that page's
  table of them is checked as the others are;
- the invariant table of the README and of docs/architecture.md (rows I1..I8, column
  "checked by") names, in backticks, test
  files (``tests/unit/test_funnel.py`` or ``test_comm_crash.py``), tests (``test_i2_*`` or
  ``test_prompt_does_not_overtake_earlier_output``) and ``file::test``; each must exist and
  each test it names must check that row's invariant.

The scanner is itself tested on small sources, so that a meta-test that sees nothing cannot
pass by seeing nothing.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SUBSHELLS_DOC = ROOT / "docs" / "subshells.md"
INVARIANTS = tuple(f"I{n}" for n in range(1, 9))
SUBSHELL_INVARIANTS = tuple(f"S{n}" for n in range(1, 5))
KNOWN = INVARIANTS + SUBSHELL_INVARIANTS

_NAME_PREFIX = re.compile(r"^test_((?:i\d+_)+)")


@dataclass(frozen=True)
class FoundTest:
    """One test function (or unittest class) and the invariants it checks."""

    path: str  # relative to the repository root, e.g. tests/unit/test_funnel.py
    name: str  # function name, or Class::method / Class for tests in classes
    invariants: frozenset[str]

    @property
    def func(self) -> str:
        return self.name.rsplit("::", 1)[-1]


@dataclass
class Scan:
    tests: list[FoundTest] = field(default_factory=list)
    #: (location, problem) for markers that do not name I1..I8 literally
    bad_markers: list[tuple[str, str]] = field(default_factory=list)

    def checking(self, invariant: str) -> list[FoundTest]:
        return [t for t in self.tests if invariant in t.invariants]


def _is_invariant_mark(node: ast.expr) -> bool:
    """``pytest.mark.invariant(...)`` or ``mark.invariant(...)``."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "invariant"):
        return False
    owner = func.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
        isinstance(owner, ast.Name) and owner.id == "mark"
    )


def _marks_in(node: ast.expr) -> Iterator[ast.Call]:
    """Invariant marks in a decorator or a ``pytestmark`` value (a mark or a list of them)."""
    items = node.elts if isinstance(node, (ast.List, ast.Tuple)) else [node]
    for item in items:
        if _is_invariant_mark(item):
            assert isinstance(item, ast.Call)
            yield item


def _mark_invariants(calls: Iterable[ast.Call], where: str, scan: Scan) -> set[str]:
    found: set[str] = set()
    for call in calls:
        if not call.args or call.keywords:
            scan.bad_markers.append((where, "give the invariants as positional strings"))
        for arg in call.args:
            if isinstance(arg, ast.Constant) and arg.value in KNOWN:
                found.add(arg.value)
            else:
                scan.bad_markers.append((where, f"{ast.unparse(arg)} is not one of I1..I8, S1..S4"))
    return found


def _name_invariants(name: str) -> set[str]:
    match = _NAME_PREFIX.match(name)
    if not match:
        return set()
    return {f"I{n}" for n in re.findall(r"i(\d+)_", match.group(1))}


def _decorator_invariants(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, where: str, scan: Scan
) -> set[str]:
    calls = [c for d in node.decorator_list for c in _marks_in(d)]
    return _mark_invariants(calls, where, scan)


def _pytestmark(body: list[ast.stmt], where: str, scan: Scan) -> set[str]:
    found: set[str] = set()
    for stmt in body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets
        ):
            found |= _mark_invariants(_marks_in(stmt.value), where, scan)
    return found


def _is_test_class(node: ast.ClassDef) -> bool:
    if node.name.startswith("Test"):
        return True
    return any(ast.unparse(b).endswith(("TestCase", "Tests")) for b in node.bases)


def scan_source(source: str, path: str, scan: Scan) -> None:
    """Add the tests of one module (given as text) to ``scan``."""
    tree = ast.parse(source, filename=path)
    module = _pytestmark(tree.body, f"{path}::pytestmark", scan)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("test"):
                where = f"{path}::{node.name}"
                own = _decorator_invariants(node, where, scan) | _name_invariants(node.name)
                scan.tests.append(FoundTest(path, node.name, frozenset(module | own)))
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            where = f"{path}::{node.name}"
            cls = module | _decorator_invariants(node, where, scan)
            cls |= _pytestmark(node.body, f"{where}::pytestmark", scan)
            methods = [
                m
                for m in node.body
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                and m.name.startswith("test")
            ]
            # A unittest class whose tests are inherited counts as one test.
            scan.tests.append(FoundTest(path, node.name, frozenset(cls)))
            for m in methods:
                own = _decorator_invariants(m, f"{where}::{m.name}", scan) | _name_invariants(
                    m.name
                )
                scan.tests.append(FoundTest(path, f"{node.name}::{m.name}", frozenset(cls | own)))


def scan_tests(root: Path = TESTS) -> Scan:
    scan = Scan()
    for path in sorted(root.rglob("*.py")):
        scan_source(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix(), scan)
    return scan


# ---------------------------------------------------------------------------------------------
# the README table


def readme_table(text: str) -> dict[str, list[str]]:
    """Invariant -> the backticked references of its "checked by" cell."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and "checked by" in cells:
            column = cells.index("checked by")
            rows: dict[str, list[str]] = {}
            for row in lines[i + 2 :]:
                if not row.lstrip().startswith("|"):
                    break
                rcells = [c.strip() for c in row.strip().strip("|").split("|")]
                invariant = rcells[0]
                assert invariant not in rows, f"README: two rows for {invariant}"
                refs = re.findall(r"`([^`]+)`", rcells[column]) if column < len(rcells) else []
                rows[invariant] = refs
            return rows
    raise AssertionError('no table with a "checked by" column')


def resolve(ref: str, scan: Scan) -> tuple[list[str], list[FoundTest]]:
    """The files and the tests a README reference names (empty lists: nothing exists)."""
    files = sorted({t.path for t in scan.tests})
    if "::" in ref:
        file_part, test_part = ref.split("::", 1)
        paths = [f for f in files if f == file_part or f.endswith("/" + file_part)]
        tests = [
            t
            for t in scan.tests
            if t.path in paths and (fnmatch.fnmatchcase(t.name, test_part) or t.func == test_part)
        ]
        return paths, tests
    if ref.endswith(".py"):
        paths = [f for f in files if f == ref or f.endswith("/" + ref)]
        return paths, [t for t in scan.tests if t.path in paths]
    tests = [t for t in scan.tests if fnmatch.fnmatchcase(t.func, ref)]
    return sorted({t.path for t in tests}), tests


def table_problems(
    rows: dict[str, list[str]], scan: Scan, invariants: tuple[str, ...] = INVARIANTS
) -> list[str]:
    problems = []
    missing_rows = [i for i in invariants if i not in rows]
    if missing_rows:
        problems.append(f"no row for {', '.join(missing_rows)}")
    for invariant, refs in rows.items():
        if invariant not in invariants:
            problems.append(f"row {invariant!r} is not one of {invariants[0]}..{invariants[-1]}")
            continue
        if not refs:
            problems.append(f"{invariant}: the checked-by cell names no test in backticks")
        for ref in refs:
            paths, tests = resolve(ref, scan)
            names_tests = "::" in ref or not ref.endswith(".py")
            if not paths or (names_tests and not tests):
                problems.append(f"{invariant}: `{ref}` names no existing test file or test")
                continue
            if not names_tests:
                if not any(invariant in t.invariants for t in tests):
                    problems.append(
                        f"{invariant}: `{ref}` exists but none of its tests is marked "
                        f'invariant("{invariant}") or named test_{invariant.lower()}_*'
                    )
                continue
            unmarked = sorted(f"{t.path}::{t.name}" for t in tests if invariant not in t.invariants)
            if unmarked:
                problems.append(
                    f'{invariant}: `{ref}` names tests not marked invariant("{invariant}") '
                    f"(nor named test_{invariant.lower()}_*): {', '.join(unmarked)}"
                )
    return problems


# ---------------------------------------------------------------------------------------------
# the checks


def test_every_invariant_has_a_test() -> None:
    """docs/architecture.md section 2: each invariant is checked by tests that say so."""
    scan = scan_tests()
    assert scan.tests, f"no test found under {TESTS}: the scan is broken"
    uncovered = [i for i in KNOWN if not scan.checking(i)]
    assert not uncovered, (
        f"invariants with no test: {', '.join(uncovered)}. Mark the tests that check them "
        '@pytest.mark.invariant("In") (or name them test_in_...).'
    )


def test_invariant_markers_name_invariants() -> None:
    """A marker that names no invariant (a typo, a variable) would count for nothing."""
    bad = scan_tests().bad_markers
    assert not bad, "invariant markers that name no invariant:\n" + "\n".join(
        f"  {where}: {problem}" for where, problem in bad
    )


@pytest.mark.parametrize("doc", [README, ARCHITECTURE], ids=lambda p: p.name)
def test_invariant_table_points_at_tests_that_exist_and_check_the_row(doc: Path) -> None:
    rows = readme_table(doc.read_text(encoding="utf-8"))
    problems = table_problems(rows, scan_tests())
    assert not problems, f"{doc.name} invariant table:\n" + "\n".join(f"  {p}" for p in problems)


def test_subshell_table_points_at_tests_that_exist_and_check_the_row() -> None:
    """docs/subshells.md: the invariants per shell, each row naming the tests that check it."""
    rows = readme_table(SUBSHELLS_DOC.read_text(encoding="utf-8"))
    problems = table_problems(rows, scan_tests(), SUBSHELL_INVARIANTS)
    assert not problems, "docs/subshells.md invariant table:\n" + "\n".join(
        f"  {p}" for p in problems
    )


# ---------------------------------------------------------------------------------------------
# the scanner on small sources (it must see what is there, and only that)

SAMPLE = """
import pytest
from pytest import mark

pytestmark = [pytest.mark.integration, pytest.mark.invariant("I6")]

@pytest.mark.invariant("I3", "I4")
@pytest.mark.parametrize("x", [1])
def test_marked(x): ...

def test_i1_i2_named(): ...

def test_plain(): ...

def helper_i5_(): ...

@mark.invariant("I8")
class TestGroup:
    pytestmark = pytest.mark.invariant("I7")

    def test_in_class(self): ...

@pytest.mark.invariant("I9", NAME)
def test_bad(): ...
"""


def test_scanner_reads_markers_names_classes_and_module_marks() -> None:
    scan = Scan()
    scan_source(SAMPLE, "tests/sample.py", scan)
    got = {t.name: sorted(t.invariants) for t in scan.tests}
    assert got == {
        "test_marked": ["I3", "I4", "I6"],
        "test_i1_i2_named": ["I1", "I2", "I6"],
        "test_plain": ["I6"],
        "TestGroup": ["I6", "I7", "I8"],
        "TestGroup::test_in_class": ["I6", "I7", "I8"],
        "test_bad": ["I6"],
    }
    assert [p for _, p in scan.bad_markers] == [
        "'I9' is not one of I1..I8, S1..S4",
        "NAME is not one of I1..I8, S1..S4",
    ]


def test_scanner_reports_an_uncovered_invariant() -> None:
    scan = Scan()
    scan_source('import pytest\n\n@pytest.mark.invariant("I2")\ndef test_x(): ...\n', "t.py", scan)
    assert [i for i in INVARIANTS if not scan.checking(i)] == [
        "I1",
        "I3",
        "I4",
        "I5",
        "I6",
        "I7",
        "I8",
    ]


TABLE = """
| | guarantee | checked by |
|---|---|---|
| I1 | fifo | `tests/unit/test_funnel.py`, `test_i1_*` |
| I2 | flush | `test_no_such_test_anywhere` |
| I3 | bracket | `test_nothing_here.py` |
| I4 | parenting | `test_rpc.py::test_bracket` |
| I5 | lifecycle | nothing in backticks |
| I6 | crash | `test_crash.py`, `test_rpc.py` |
| I8 | input | `test_rpc.py::test_i8_*`, `test_rpc.py::test_input_*` |
| I7 | lost | `test_crash.py::TestWelcome` |

after the table
"""

MODULES = {
    "tests/unit/test_funnel.py": "def test_i1_fifo(): ...\n",
    "tests/integration/test_rpc.py": (
        "import pytest\n\n"
        "def test_bracket(): ...\n\n"
        "def test_i8_prompt(): ...\n\n"
        '@pytest.mark.invariant("I8")\n'
        "def test_input_order(): ...\n\n"
        "def test_input_unicode(): ...\n"
    ),
    "tests/integration/test_crash.py": (
        "import pytest\n\n"
        'pytestmark = pytest.mark.invariant("I6")\n\n'
        "def test_kill(): ...\n\n"
        '@pytest.mark.invariant("I7")\n'
        "class TestWelcome:\n"
        "    def test_first(self): ...\n"
    ),
}


def test_table_check_names_every_kind_of_bad_reference() -> None:
    scan = Scan()
    for path, source in MODULES.items():
        scan_source(source, path, scan)
    rows = readme_table(TABLE)
    assert rows["I1"] == ["tests/unit/test_funnel.py", "test_i1_*"]
    assert rows["I5"] == []
    assert table_problems(rows, scan) == [
        "I2: `test_no_such_test_anywhere` names no existing test file or test",
        "I3: `test_nothing_here.py` names no existing test file or test",
        'I4: `test_rpc.py::test_bracket` names tests not marked invariant("I4") '
        "(nor named test_i4_*): tests/integration/test_rpc.py::test_bracket",
        "I5: the checked-by cell names no test in backticks",
        "I6: `test_rpc.py` exists but none of its tests is marked "
        'invariant("I6") or named test_i6_*',
        'I8: `test_rpc.py::test_input_*` names tests not marked invariant("I8") '
        "(nor named test_i8_*): tests/integration/test_rpc.py::test_input_unicode",
    ]
    without_i8 = "\n".join(line for line in TABLE.splitlines() if "| I8 |" not in line)
    assert table_problems(readme_table(without_i8), scan)[0] == "no row for I8"


@pytest.mark.parametrize("name", ["test_i3_x", "test_i1_i2_x", "test_i10_x"])
def test_names_that_say_their_invariant(name: str) -> None:
    expected = {"test_i3_x": {"I3"}, "test_i1_i2_x": {"I1", "I2"}, "test_i10_x": {"I10"}}[name]
    assert _name_invariants(name) == expected
    assert _name_invariants("test_iopub_welcome") == set()
    assert _name_invariants("test_crash_i6") == set()
