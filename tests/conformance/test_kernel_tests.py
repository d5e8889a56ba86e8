"""jupyter_kernel_test conformance suite against the ``mpkernel-test`` kernelspec.

Every sample attribute of ``KernelTests`` is set, so no test of the suite is skipped.
``IopubWelcomeTests`` checks JEP 65: the first IOPub message a new subscriber gets is
``iopub_welcome`` with subscription "".

The base classes are reached through the module (``jkt.KernelTests``) so that pytest does not
collect them too (it would run them against the ``python3`` kernel). The kernels are started
and stopped through ``tests.frontend`` so that, like every other kernel in this suite, they
are always shut down and their process tree is checked.
"""

from __future__ import annotations

import jupyter_kernel_test as jkt
import pytest

from tests.conftest import KERNEL_NAME, TARGET
from tests.frontend import KernelHandle, start_kernel, stop_kernel

pytestmark = pytest.mark.integration


class MPKernelTests(jkt.KernelTests):
    kernel_name = KERNEL_NAME
    handle: KernelHandle

    @classmethod
    def setUpClass(cls) -> None:
        cls.handle = start_kernel(cls.kernel_name)
        cls.km, cls.kc = cls.handle.km, cls.handle.kc

    @classmethod
    def tearDownClass(cls) -> None:
        stop_kernel(cls.handle)

    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"

    completion_samples = [  # noqa: RUF012 (the base class declares these as plain lists)
        {"text": "zi", "matches": {"zip"}},
        {"text": "isinst", "matches": {"isinstance"}},
    ]

    complete_code_samples = [  # noqa: RUF012
        "1",
        "print('hello, world')",
        "def f(x):\n  return x*2\n\n\n",
        "import os",
    ]
    incomplete_code_samples = [  # noqa: RUF012
        "print('''hello",
        "def f(x):\n  x*2",
        "for i in range(3):",
        "x = [1,",
    ]
    invalid_code_samples = ["import = 7q", "1 +* 2", "x = )"]  # noqa: RUF012

    code_page_something = "zip?"

    code_generate_error = "raise"

    code_execute_result = [  # noqa: RUF012
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
        {"code": "'con' + 'formance'", "result": "'conformance'"},
        {"code": "40 + 2", "result": "42"},
        {
            "code": "from IPython.display import HTML; HTML('<b>result</b>')",
            "mime": "text/html",
            "result": "<b>result</b>",
        },
    ]

    code_display_data = [  # noqa: RUF012
        {
            "code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))",
            "mime": "text/html",
        },
        {
            "code": "from IPython.display import Math, display; display(Math('\\frac{1}{2}'))",
            "mime": "text/latex",
        },
        {
            "code": "from IPython.display import Latex, display; display(Latex('$x^2$'))",
            "mime": "text/latex",
        },
    ]

    # glob matching exactly one distinct sample above ("40 + 2")
    code_history_pattern = "40 ? 2"
    supported_history_operations: tuple[str, ...] = ("tail", "range", "search")

    code_inspect_sample = "zip"

    code_clear_output = "from IPython.display import clear_output; clear_output()"


@pytest.mark.invariant("I7")
class MPKernelIopubWelcomeTests(jkt.IopubWelcomeTests):
    kernel_name = KERNEL_NAME
    support_iopub_welcome = True

    @classmethod
    def tearDownClass(cls) -> None:
        assert cls.km.provisioner is not None
        pid = cls.km.provisioner.pid
        stop_kernel(KernelHandle(cls.kernel_name, cls.km, cls.kc, pid, ()))


if TARGET == "ipykernel":
    # ipykernel reports the current session as 0 in range results (the range check needs the
    # real number), and under load publishes debugpy's startup warning on stderr before the
    # welcome; keep the reference run about the rest of the protocol.
    MPKernelTests.supported_history_operations = ("tail", "search")
    MPKernelIopubWelcomeTests.support_iopub_welcome = False
