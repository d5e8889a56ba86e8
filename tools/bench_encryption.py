"""Encryption scenarios: what CurveZMQ costs on the frontend sockets.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py encryption`). mpkernel only,
two kernels of side A's kernelspec in the same run: A started under jupyter_client's
`transport_encryption="required"` (curve keys in the connection file, every socket a curve
server, the bench client a curve client), B the same kernelspec and configuration in plain
text. The ratio A/B is the cost of encryption. The kernelspec must declare curve support
(`mpkernel install` writes it when this libzmq can encrypt).

- `encryption_execute`: `pass` execute -> idle, p50, as `bench_kernel.execute`.
- `encryption_stream`: 100k prints -> idle with every line received and checked, as
  `bench_kernel.stream`.
"""

from __future__ import annotations

import zmq
from _benchdriver import Figure, Scenario, Target
from _benchkernels import BenchError, Contender
from bench_kernel import execute, stream


def encrypted_and_plain(a: Contender, b: Contender) -> tuple[Contender, ...]:
    """A: side A's kernel, encrypted; B: the same, plain."""
    if not zmq.has("curve"):
        raise BenchError("this libzmq has no CURVE support: nothing to measure")
    return (
        Contender(f"{a.label}/curve", a.kernel_name, config=a.config, encrypted=True),
        Contender(f"{a.label}/plain", a.kernel_name, config=a.config),
    )


SCENARIOS = [
    Scenario(
        "encryption_execute",
        "`pass` execute_request -> idle: CurveZMQ (A) vs plain (B), same kernelspec",
        execute,
        figures=(
            Figure(
                "execute `pass` -> idle, encrypted / plain, p50 (us)",
                "exec_us",
                "p50",
                Target("<=", 1.2),
            ),
            Figure("execute `pass` -> idle, encrypted / plain, p99 (us)", "exec_us", "p99"),
        ),
        rounds=10,
        size=100,
        quick_rounds=1,
        quick_size=20,
        quick_warmup=1,
        sides=encrypted_and_plain,
    ),
    Scenario(
        "encryption_stream",
        "a print loop -> idle with every line received: CurveZMQ (A) vs plain (B)",
        stream,
        figures=(
            Figure(
                "{size} prints -> idle, encrypted / plain, median of {rounds} (ms)",
                "stream_ms",
                "median",
                Target("<=", 1.2),
            ),
        ),
        rounds=5,
        size=100_000,
        quick_rounds=1,
        quick_size=1000,
        sides=encrypted_and_plain,
    ),
]
