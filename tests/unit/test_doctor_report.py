"""`mpkernel doctor`'s pure parts: results, aggregation into a status and an exit code, the
text report (80 columns, colour only on request) and the JSON document against its schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

import mpkernel
from mpkernel.cli import DOCTOR_EXIT_CODES
from mpkernel.doctor.checks import (
    JSON_SCHEMA,
    CheckResult,
    count_statuses,
    fail,
    ok,
    overall_status,
    render_text,
    report_json,
    runs_mpkernel,
    version_tuple,
    warn,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "doctor.md"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

LONG_WORDS = " ".join(["a summary with many ordinary words that must wrap"] * 6)


def sample() -> list[CheckResult]:
    return [
        ok("environment", "python", "3.11.7 (/usr/bin/python3)", version="3.11.7"),
        ok("environment", "pyzmq", "pyzmq 27.3.0, libzmq 4.3.5"),
        warn("kernelspecs", "kernelspec", "no kernelspec runs mpkernel", "mpkernel install --user"),
        fail(
            "config",
            "config file",
            '/home/me/.config/mpkernel/config.toml:2: kernel.log_level: must be one of "debug", '
            '"info", "warning", "error", "critical"; got "loud"',
            "fix it and re-check with: mpkernel config validate "
            "/home/me/.config/mpkernel/config.toml (meanwhile the kernel uses the defaults)",
            path="/home/me/.config/mpkernel/config.toml",
            line=2,
            key="kernel.log_level",
        ),
        ok(
            "workers",
            "worker echo",
            "ready in 41 ms (forkserver, pid 4242), echo round trip 0.4 ms",
        ),
        warn("kernel", "worker a-very-long-worker-name-for-wrapping", LONG_WORDS, LONG_WORDS),
        ok("runtime", "worker pipes dir", "/tmp/mpk-abc (0700)", mode="0700"),
    ]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((), "ok"),
        (("ok", "ok"), "ok"),
        (("ok", "warn", "ok"), "warn"),
        (("warn", "fail", "ok"), "fail"),
        (("fail",), "fail"),
    ],
)
def test_overall_status_is_the_worst_and_gives_the_exit_code(
    statuses: tuple[str, ...], expected: str
) -> None:
    results = [
        ok("environment", f"c{i}", "x")
        if s == "ok"
        else CheckResult("environment", f"c{i}", s, "x", "do y")  # type: ignore[arg-type]
        for i, s in enumerate(statuses)
    ]
    assert overall_status(results) == expected
    assert DOCTOR_EXIT_CODES[overall_status(results)] == {"ok": 0, "warn": 1, "fail": 2}[expected]


def test_count_statuses() -> None:
    assert count_statuses(sample()) == {"ok": 4, "warn": 2, "fail": 1}


def test_not_ok_needs_a_hint_and_a_known_section() -> None:
    with pytest.raises(ValueError, match="no fix hint"):
        CheckResult("config", "config file", "fail", "broken", None)
    with pytest.raises(ValueError, match="no fix hint"):
        CheckResult("config", "config file", "warn", "odd", "")
    with pytest.raises(ValueError, match="unknown doctor section"):
        ok("nowhere", "x", "y")


def test_text_report_fits_in_80_columns() -> None:
    text = render_text(sample())
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert text.endswith("\n")


def test_text_report_has_a_fix_line_under_anything_not_ok_only() -> None:
    lines = render_text(sample()).splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("  WARN", "  FAIL")):
            following = lines[i + 1 :]
            nxt = next(j for j, later in enumerate(following) if not later.startswith(" " * 8))
            assert any(later.strip().startswith("fix:") for later in following[:nxt]), line
    ok_only = render_text([ok("environment", "python", "3.11.7")])
    assert "fix:" not in ok_only


def test_text_report_sections_and_summary() -> None:
    text = render_text(sample())
    headings = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert headings == [
        f"mpkernel {mpkernel.__version__} doctor",
        *("environment", "kernelspecs", "config", "workers", "runtime", "kernel"),
        "1 failure, 2 warnings, 4 ok",
    ]
    assert render_text([ok("environment", "python", "3.11.7")]).endswith("all 1 checks ok\n")


def test_section_order_is_fixed() -> None:
    text = render_text(list(reversed(sample())))
    headings = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert headings[1:-1] == [
        "environment",
        "kernelspecs",
        "config",
        "workers",
        "runtime",
        "kernel",
    ]


def test_long_paths_are_never_broken() -> None:
    path = "/tmp/" + "x" * 90 + "/config.toml"
    text = render_text([fail("config", "config file", f"{path}:3: kernel.x: bad", "fix it")])
    assert f"{path}:3:" in text
    # the only lines over 80 columns are the ones made of that single word
    for line in text.splitlines():
        assert len(line) <= 80 or path in line


def test_colour_only_when_asked() -> None:
    plain = render_text(sample(), color=False)
    assert "\x1b[" not in plain
    coloured = render_text(sample(), color=True)
    assert "\x1b[" in coloured
    assert ANSI.sub("", coloured) == plain


def test_json_document_validates_against_the_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    doc = report_json(sample())
    jsonschema.validate(json.loads(json.dumps(doc)), JSON_SCHEMA)
    assert doc["status"] == "fail"
    assert doc["counts"] == {"ok": 4, "warn": 2, "fail": 1}
    checks = doc["checks"]
    assert isinstance(checks, list)
    assert [c["name"] for c in checks if isinstance(c, dict)][:2] == ["python", "pyzmq"]
    jsonschema.validate(report_json([]), JSON_SCHEMA)


def test_schema_refuses_a_failure_without_hint_and_unknown_keys() -> None:
    doc = json.loads(json.dumps(report_json(sample())))
    doc["checks"][2]["hint"] = None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, JSON_SCHEMA)
    doc = json.loads(json.dumps(report_json(sample())))
    doc["extra"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, JSON_SCHEMA)


def test_documented_schema_is_the_constant() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert json.loads(blocks[-1]) == JSON_SCHEMA
    # the example document in the docs is valid too
    jsonschema.validate(json.loads(blocks[0]), JSON_SCHEMA)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("27.3.0", (27, 3, 0)), ("8.10.0rc1", (8, 10, 0)), ("0.70.19", (0, 70, 19)), ("dev", ())],
)
def test_version_tuple(version: str, expected: tuple[int, ...]) -> None:
    assert version_tuple(version) == expected


def test_version_tuple_compares_like_versions() -> None:
    assert version_tuple("8.10") > version_tuple("8.9.9")
    assert version_tuple("25.0.0") >= version_tuple("25")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/env/bin/python", "-m", "mpkernel", "run", "-f", "{connection_file}"], True),
        (["python3", "-mmpkernel", "run", "-f", "{connection_file}"], True),
        (["/env/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], False),
        (["/env/bin/mpkernel", "run", "-f", "{connection_file}"], False),
        (["/env/bin/python", "-m"], False),
    ],
)
def test_runs_mpkernel(argv: list[str], expected: bool) -> None:
    assert runs_mpkernel(argv) is expected
