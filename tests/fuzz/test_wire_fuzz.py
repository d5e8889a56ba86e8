"""The wire decoder under coverage-guided fuzzing (atheris / libFuzzer), a bounded run.

`wire_target.py` runs in a subprocess (libFuzzer ends the process when done). The run must
end without a crash (decode returns a Message or raises a WireError for any input) and its
coverage must show the fuzzer got past the signature check into JSON and header parsing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TARGET = Path(__file__).with_name("wire_target.py")
RUNS = 100_000
#: edges a run that only ever fails the signature check or frame split stays below
MIN_COVERAGE = 80


def test_decoder_survives_fuzzing(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is a test extra")
    proc = subprocess.run(
        [sys.executable, str(TARGET), f"-runs={RUNS}", f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert not list(tmp_path.glob("crash-*")), tail
    done = re.search(r"DONE\s+cov: (\d+)", proc.stderr)
    assert done is not None, tail
    assert int(done.group(1)) >= MIN_COVERAGE, tail
