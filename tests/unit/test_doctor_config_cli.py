"""`mpkernel config show|validate`, the annotated example and the configuration reference.

In-process through `cli.main` (file reads only, no processes)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mpkernel.cli import main
from mpkernel.config.dump import dump_config
from mpkernel.config.model import (
    BUILTIN_WORKERS,
    KernelConfig,
    WorkerConfig,
    default_config,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config.toml"
REFERENCE = ROOT / "docs" / "configuration.md"
KERNEL_KEYS = [f.name for f in dataclasses.fields(KernelConfig)]
WORKER_KEYS = [f.name for f in dataclasses.fields(WorkerConfig) if f.name != "name"]


@pytest.fixture
def no_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No $MPKERNEL_CONFIG and an empty XDG config home: the built-in defaults apply."""
    monkeypatch.delenv("MPKERNEL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text('[kernel]\nlog_level = "info"\n\n[workers.echo]\nmemory_limt = "1GiB"\n')
    return path


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out == f"{EXAMPLE}: ok (workers: {', '.join(BUILTIN_WORKERS)})\n"


def test_validate_error_names_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = broken(tmp_path)
    assert main(["config", "validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f'{path}:5: workers.echo.memory_limt: unknown key (did you mean "memory_limit"?)\n'
    )


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.toml"
    assert main(["config", "validate", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"{path}: cannot read")


@pytest.mark.usefixtures("no_config_file")
def test_validate_without_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate"]) == 0
    assert capsys.readouterr().out == "ok: no configuration file; the built-in defaults apply\n"


def test_validate_uses_the_lookup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MPKERNEL_CONFIG", str(broken(tmp_path)))
    assert main(["config", "validate"]) == 2
    assert "workers.echo.memory_limt" in capsys.readouterr().err


@pytest.mark.usefixtures("no_config_file")
def test_show_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert out == dump_config(default_config())
    assert parse_config(out, None) == default_config()


def test_show_merges_the_file_over_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[workers.defaults]\nmemory_limit = "4GiB"\n\n[workers.variables]\nenabled = false\n'
    )
    assert main(["config", "show", "--config", str(path)]) == 0
    shown = parse_config(capsys.readouterr().out, path)
    assert shown == load_config(path)
    by_name = {w.name: w for w in shown.workers}
    assert by_name["echo"].memory_limit == 4 * 2**30
    assert by_name["data_explorer"].memory_limit == 8 * 2**30  # its own setting wins
    assert not by_name["variables"].enabled


def test_show_refuses_a_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = broken(tmp_path)
    assert main(["config", "show", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}:5: workers.echo.memory_limt" in captured.err


def test_example_is_valid_and_spells_out_the_defaults() -> None:
    assert dataclasses.replace(load_config(EXAMPLE), source=None) == default_config()


@pytest.mark.parametrize("key", KERNEL_KEYS + WORKER_KEYS)
def test_every_key_is_in_the_example(key: str) -> None:
    assert re.search(rf"^#? ?{key} = ", EXAMPLE.read_text(encoding="utf-8"), re.MULTILINE), key


@pytest.mark.parametrize("key", KERNEL_KEYS + WORKER_KEYS)
def test_every_key_is_documented_with_its_default(key: str) -> None:
    rows = [
        line
        for line in REFERENCE.read_text(encoding="utf-8").splitlines()
        if line.startswith(f"| `{key}` |")
    ]
    assert len(rows) == 1, f"{key}: expected one row in {REFERENCE.name}"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == 4, rows[0]  # key | type | default | meaning
    assert cells[2], f"{key}: no default"
    assert cells[3], f"{key}: no meaning"
