"""Fuzzing: the wire decoder in-process (atheris, coverage-guided) and the kernel's sockets
(hypothesis, over real ZMQ)."""
