"""docs/client.md's example, run as the page shows it, prints what the page says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KERNEL_NAME

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def test_the_guides_example_prints_what_the_guide_says() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    printed = re.findall(r"```text\n(.*?)```", text, flags=re.S)[0]
    assert 'kernel_name="mpkernel"' in example
    example = example.replace('kernel_name="mpkernel"', f"kernel_name={KERNEL_NAME!r}")
    proc = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == printed
