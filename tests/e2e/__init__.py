"""End-to-end tests: mpkernel driven by real frontends (JupyterLab in Chromium, jupyter console)."""

from __future__ import annotations
