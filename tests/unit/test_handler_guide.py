"""docs/handlers.md's handler and its unit test, run as the page shows them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "handlers.md"


def test_the_guides_handler_passes_the_guides_test() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) == 2, "the guide shows a handler and its test"
    namespace: dict[str, Any] = {"__name__": "handler_guide"}
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), namespace)
    namespace["test_notes"]()
