"""Writes the drop-in corpus: one notebook per library area, in tests/drop_in/corpus/.

Run ``python -m tests.drop_in.make_corpus`` after changing a notebook below; the written
files are committed. Cells are short and their output is deterministic on one kernel (seeded,
no timings shown that reduce.py does not normalise), so that any difference left after the
reduction is a difference between the kernels. Cell ids are derived from the notebook name
and the cell's position, so regenerating an unchanged corpus changes no file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

CORPUS = Path(__file__).resolve().parent / "corpus"

#: the cell is expected to end in an error (Jupyter's "run all" would stop at it otherwise)
RAISES = "raises-exception"

Cell = str | tuple[str, tuple[str, ...]]

PNG_HELPER = """\
import struct, zlib

def png(width, height):
    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))
    rows = b''.join(b'\\x00' + b'\\xff\\x80\\x00' * width for _ in range(height))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header)
            + chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b''))"""

NOTEBOOKS: dict[str, list[Cell]] = {
    "tqdm": [
        "from tqdm.auto import tqdm as auto_tqdm\nfor _ in auto_tqdm(range(3)):\n    pass",
        "from tqdm.notebook import tqdm as notebook_tqdm\n"
        "for _ in notebook_tqdm(range(3), desc='steps'):\n    pass",
        "total = 0\nfor i in auto_tqdm(range(3), desc='sum'):\n    total += i\nprint(total)",
        "from tqdm import tqdm as std_tqdm\nfor _ in std_tqdm(range(3), mininterval=0):\n    pass",
        "from tqdm.auto import trange\nfor i in trange(2, leave=False):\n    pass\nprint('done')",
    ],
    "rich": [
        "import rich\nrich.print('[bold red]alert[/bold red] and [green]ok[/green]')",
        "from rich.table import Table\n"
        "table = Table(title='Planets')\n"
        "table.add_column('name')\n"
        "table.add_column('moons', justify='right')\n"
        "table.add_row('Earth', '1')\n"
        "table.add_row('Mars', '2')\n"
        "rich.print(table)",
        "from rich.pretty import pprint\npprint({'numbers': [1, 2, 3], 'nested': {'a': None}})",
        "from rich.console import Console\nConsole().print('[italic]console[/italic] print', 42)",
        "from rich import pretty\npretty.install()\n{'installed': True, 'items': list(range(3))}",
    ],
    "ipywidgets": [
        "import ipywidgets\nfrom IPython.display import display, Markdown\n"
        "slider = ipywidgets.IntSlider(value=3, description='n')\ndisplay(slider)",
        "o = ipywidgets.Output()\ndisplay(o)",
        "with o:\n    print('inside')\n    display(Markdown('*shown inside*'))\nprint('outside')",
        "@ipywidgets.interact(x=3)\ndef double(x):\n    print('double:', 2 * x)",
        "a = ipywidgets.IntSlider(value=2)\n"
        "out = ipywidgets.interactive_output(lambda a: print('a + 1 =', a + 1), {'a': a})\n"
        "display(a, out)",
        "box = ipywidgets.Output()\n"
        "with box:\n"
        "    display(ipywidgets.Button(description='in a box'))\n"
        "    print('text in a box')\n"
        "box",
        "slider.value = 5\nslider.value",
    ],
    "plotly": [
        "import plotly.express as px\n"
        "fig = px.scatter(x=[1, 2, 3], y=[4, 1, 2], title='scatter')\nfig.show()",
        "import plotly.graph_objects as go\ngo.Figure(go.Bar(x=['a', 'b'], y=[3, 1]))",
        "import plotly.io as pio\nprint(pio.renderers.default)",
    ],
    "bokeh": [
        "from bokeh.io import output_notebook, show\noutput_notebook(hide_banner=True)",
        "from bokeh.plotting import figure\n"
        "p = figure(width=250, height=200, title='line')\n"
        "p.line([1, 2, 3], [4, 6, 5])\nshow(p)",
    ],
    "altair": [
        "import altair as alt\nimport pandas as pd\n"
        "data = pd.DataFrame({'k': ['a', 'b', 'c'], 'v': [3, 1, 2]})\n"
        "alt.Chart(data).mark_bar().encode(x='k', y='v')",
        "print(alt.renderers.active)",
    ],
    "matplotlib": [
        "import matplotlib\nimport matplotlib.pyplot as plt\nprint(matplotlib.get_backend())",
        "plt.plot([1, 3, 2])\nplt.title('shown')\nplt.show()",
        "fig, ax = plt.subplots(figsize=(3, 2))\nax.bar(['a', 'b'], [2, 1])\nfig",
        "plt.figure(figsize=(2, 2))\nplt.plot([0, 1])",
        "print(len(plt.get_fignums()))",
    ],
    "matplotlib_widget": [
        "%matplotlib widget\nimport matplotlib\nimport matplotlib.pyplot as plt\n"
        "print(matplotlib.get_backend())",
        "fig, ax = plt.subplots(figsize=(3, 2))\nax.plot([1, 2, 3])\nplt.show()",
        "fig.canvas",
        "ax.set_title('retitled')\nfig.canvas.draw_idle()\nprint(ax.get_title())",
    ],
    "tables": [
        "import numpy as np\nimport pandas as pd\n"
        "rng = np.random.default_rng(0)\n"
        "df = pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z'], "
        "'c': rng.normal(size=3).round(3)})\ndf",
        "df['a']",
        "pd.DataFrame({'n': range(100)})",
        "df.style.highlight_max(subset=['c']).format(precision=1)",
        "import polars as pl\npl.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})",
        "pl.Series('s', [1.5, None, 3.0])",
        "print(df)",
    ],
    "display": [
        "from IPython.display import (HTML, JSON, Image, Javascript, Latex, Markdown, "
        "clear_output, display, update_display)\n"
        "display(HTML('<b>bold</b> html'))\ndisplay(Markdown('**bold** markdown'))",
        "display(Latex(r'$\\sum_i x_i^2$'))\ndisplay(JSON({'a': [1, 2], 'b': {'c': None}}))",
        PNG_HELPER + "\n\nImage(data=png(4, 3))",
        "display(Markdown('first version'), display_id='status')",
        "update_display(Markdown('second version'), display_id='status')\nprint('updated')",
        "handle = display('handle v1', display_id=True)\nhandle.update('handle v2')",
        "print('gone')\nclear_output()\nprint('kept')",
        "print('waiting')\nclear_output(wait=True)\nprint('replaced')",
        "display(Javascript('console.log(\"from js\")'))",
        "%%html\n<i>cell magic</i> html",
        "%%markdown\n# cell magic markdown",
        "display(1, 'two', [3])",
        "class Shape:\n"
        "    def _repr_html_(self):\n        return '<i>shape</i>'\n"
        "    def _repr_markdown_(self):\n        return '*shape*'\n"
        "Shape()",
    ],
    "magics": [
        "%pip --version",
        ("%conda list", (RAISES,)),
        "%timeit -n1 -r1 pass",
        "%%time\nx = sum(range(10))",
        "alpha = 1\nbeta = 'b'\n%who",
        "%env DROP_IN_VAR=value\nimport os\nprint(os.environ['DROP_IN_VAR'])",
        "%env DROP_IN_VAR",
        "!echo hi",
        "files = !echo one; echo two\nfiles",
        "help(len)",
        "%%capture captured\nprint('hidden')\ndisplay('also hidden')",
        "captured.show()\nprint(repr(captured.stdout))",
        "%%bash\necho from bash",
        "%%writefile script.py\nprint('from script', __name__)",
        "%run script.py",
        "%load_ext autoreload\n%autoreload 2\nprint('autoreload on')",
        "%lsmagic",
    ],
    "errors": [
        (
            "def inner():\n    raise ValueError('boom')\n\ndef outer():\n    inner()\n\nouter()",
            (RAISES,),
        ),
        ("x = (1,", (RAISES,)),
        ("def f(:\n    pass", (RAISES,)),
        ("%badmagic", (RAISES,)),
        ("1 / 0", (RAISES,)),
        ("print('before')\nraise KeyError('k')", (RAISES,)),
        ("import warnings\nwarnings.warn('careful')\nprint('after')", ()),
        ("%xmode Plain\nouter()", (RAISES,)),
        ("%xmode Context\nundefined_name", (RAISES,)),
        ("import json\njson.loads('{')", (RAISES,)),
        ("input('no stdin here? ')", (RAISES,)),
        ("import sys\nsys.exit(3)", (RAISES,)),
    ],
    "environment": [
        "'IPKernelApp' in get_ipython().config",
        "import os\nos.environ.get('CLICOLOR')",
        "os.environ.get('CLICOLOR_FORCE')",
        "os.environ.get('FORCE_COLOR')",
        "os.environ.get('PAGER')",
        "os.environ.get('TERM')",
        "os.environ.get('MPLBACKEND')",
        "type(get_ipython()).__name__",
        "hasattr(get_ipython(), 'kernel')",
        "get_ipython().kernel.get_parent()['header']['msg_type']",
        "import sys\nsys.stdout.isatty()",
        "type(sys.stdout).__name__",
        "sys.stdout.encoding",
        "print('to stderr', file=sys.stderr)",
        "import subprocess\nprint(subprocess.run(['echo', 'child'], capture_output=True, "
        "text=True).stdout)",
        "__name__",
        "import asyncio\nawait asyncio.sleep(0)\n'awaited'",
        "async def main():\n    return 'ran'\n\nasyncio.run(main())",
        "get_ipython().kernel.implementation",
    ],
}


def build(name: str, cells: list[Cell]) -> nbformat.NotebookNode:
    """The notebook ``name``, with ids that depend only on its name and cell positions."""
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    for index, cell in enumerate(cells):
        source, tags = (cell, ()) if isinstance(cell, str) else cell
        node = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
        node.id = f"{name.replace('_', '-')}-{index}"
        if tags:
            node.metadata["tags"] = list(tags)
        nb.cells.append(node)
    nbformat.validate(nb)  # type: ignore[no-untyped-call]
    return nb


def write_corpus(directory: Path = CORPUS) -> list[Path]:
    """Write every notebook of ``NOTEBOOKS`` and remove notebooks no longer listed."""
    directory.mkdir(exist_ok=True)
    written = []
    for name, cells in NOTEBOOKS.items():
        path = directory / f"{name}.ipynb"
        path.write_text(nbformat.writes(build(name, cells)) + "\n", encoding="utf-8")  # type: ignore[no-untyped-call]
        written.append(path)
    for stale in set(directory.glob("*.ipynb")) - set(written):
        stale.unlink()
    return written


if __name__ == "__main__":
    for path in write_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS):
        print(path)
