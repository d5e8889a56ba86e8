"""`python -m mpkernel` is the `mpkernel` command."""

from __future__ import annotations

import sys

from mpkernel.cli import main

sys.exit(main())
