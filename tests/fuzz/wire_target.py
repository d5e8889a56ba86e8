"""atheris target: `mpkernel.wire.decode` on frames built from fuzz input.

Run by tests/fuzz/test_wire_fuzz.py as `python tests/fuzz/wire_target.py -runs=N`. Half the
inputs get a valid HMAC over their JSON parts, so the fuzzer reaches the JSON and header
parsing behind the signature check; the rest are raw frames. `decode` must return a
`Message` or raise a `WireError`: any other exception is a crash, reported by libFuzzer.
"""

from __future__ import annotations

import json
import sys

import atheris

from mpkernel.wire import DELIMITER, Message, Signer, WireError, decode

KEY = b"fuzz-key"


KEYS = ["msg_id", "msg_type", "session", "username", "date", "version", "subshell_id", "x"]


def json_part(fdp: atheris.FuzzedDataProvider) -> bytes:
    """Raw fuzz bytes, or a JSON object of header-like keys with values of any JSON type:
    random bytes alone seldom get past the JSON parser to the header checks behind it."""
    if fdp.ConsumeBool():
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 48))
    obj: dict[str, object] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        key = fdp.PickValueInList(KEYS)
        kind = fdp.ConsumeIntInRange(0, 5)
        value: object = [
            fdp.ConsumeUnicodeNoSurrogates(12),
            fdp.ConsumeInt(4),
            None,
            fdp.ConsumeBool(),
            [fdp.ConsumeUnicodeNoSurrogates(4)],
            {"msg_id": fdp.ConsumeUnicodeNoSurrogates(4)},
        ][kind]
        obj[key] = value
    return json.dumps(obj).encode()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    signed = fdp.ConsumeBool()
    identities = [
        fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8)) for _ in range(fdp.ConsumeIntInRange(0, 2))
    ]
    parts = [json_part(fdp) for _ in range(fdp.ConsumeIntInRange(0, 5))]
    parts += [fdp.ConsumeBytes(16) for _ in range(fdp.ConsumeIntInRange(0, 2))]  # buffers
    # A fresh signer per input: replay protection would otherwise refuse repeats.
    signer = Signer(KEY)
    delimiter = [DELIMITER] if fdp.ConsumeIntInRange(0, 9) else []
    if signed and len(parts) >= 4:
        frames = [*identities, *delimiter, signer.sign(parts[:4]), *parts]
    else:
        frames = [*identities, *delimiter, *parts]
    try:
        result = decode(frames, signer)
    except WireError:
        return
    if not isinstance(result, Message):
        raise TypeError(f"decode returned {type(result).__name__}")


def main() -> None:
    # After the imports: mpkernel is often installed in editable mode, whose import hook
    # atheris's import-time instrumentation does not see.
    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
