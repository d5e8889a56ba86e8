"""`mpkernel doctor`: checks of the environment, kernelspecs, config, workers and a
running kernel.

`checks` runs the offline checks and renders results (text or JSON); `kernel` talks to a
running kernel through its connection file. Checks return `CheckResult` values; printing
and exit codes live in `mpkernel.cli`.
"""
