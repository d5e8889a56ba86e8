"""What a person sees of an executed notebook, with what differs between two runs of one kernel
taken out: the reduction that the drop-in comparison compares (pure functions, no I/O).

A code cell reduces to a list of ``(output_type, key, text)`` triples:

- a stream: key ``stdout``/``stderr``; neighbouring stream outputs are merged per name (how
  text is split into messages, and the relative order of stdout and stderr, depend on when
  ipykernel flushes its buffers) and carriage returns are applied the way Jupyter frontends do
  (a progress bar's redraws collapse to its last state);
- ``display_data``/``execute_result``: key is the sorted MIME types, text one summary line per
  MIME type (see ``summarise``), plus the metadata;
- ``error``: key is the exception name, text the traceback reduced to the frames in the
  notebook's cells (whole, colours included), one marker line per frame elsewhere (so that a
  kernel's own frames showing up is seen), and the last line a person reads.

Everywhere, ``normalise`` replaces memory addresses, uuids and 32-hex ids (widget models,
generated element ids), durations, progress-bar rates and clocks, temporary paths, pids in
ipykernel's cell file names and execution counts. ANSI colour codes are kept: colour is part
of what a person sees.

Widgets: nbclient stores their final state in ``nb.metadata.widgets``. A widget view in a
cell's output is summarised from that state (model name, description and value, children,
and for an Output widget the reduced outputs it captured), so text that went into an Output
widget shows in the cell that displayed the widget. ``reduce_widget_state`` gives the
notebook-wide view: the sorted model names and what each Output widget captured.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: one reduced output: (output_type, stream name / exception name / sorted MIME types, text)
Reduced = tuple[str, str, str]
#: the widget models of a notebook by model id: {"model_name": ..., "state": {...}}
Widgets = Mapping[str, Mapping[str, Any]]

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TMP = re.escape(tempfile.gettempdir().rstrip("/"))

#: (pattern, replacement), applied in this order
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "<uuid>",
    ),
    (re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{32}(?![0-9a-fA-F])"), "<id>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "0x<addr>"),
    # pandas Styler: a random 5-hex table id in every element id and CSS selector
    (re.compile(r"\bT_[0-9a-f]{5}(?![0-9a-f])"), "T_<id>"),
    (re.compile(_TMP + r"/[^\s'\":,()\[\]<>\x1b]*"), "<tmp path>"),
    # ipykernel names a cell's file after its process id
    (re.compile(r"ipykernel_\d+"), "ipykernel_<pid>"),
    # tqdm: rates (with the padding that keeps the notebook bar's width) and clocks
    (re.compile(r"[ \u2007]*(?<![\w.])(?:\d+(?:\.\d+)?|\?)\s?(?:it/s|s/it)"), "<rate>"),
    (re.compile(r"(?<!\d)\d{2}:\d{2}(?::\d{2})?(?!\d)"), "<clock>"),
    # %time, %timeit and friends: a number with a time unit
    # (IPython writes 1000 ns as "1e+03 ns")
    (
        re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[+-]?\d+)?\s?(?:ns|µs|μs|us|ms|s|min|h)(?![\w])"),
        "<duration>",
    ),
    # no word boundary: in a traceback the prompt follows a colour code ("\x1b[32mIn[7]")
    (re.compile(r"(In|Out)\s?\[\d+\]"), r"\1[#]"),
    (re.compile(r"<ipython-input-\d+-"), "<ipython-input-#-"),
)


def normalise(text: str) -> str:
    """``text`` with what differs between two runs of the same kernel replaced by markers."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def visible_text(text: str) -> str:
    r"""Stream text as a frontend shows it: on each line, a carriage return discards what came
    before it (``\r\n`` is just a line end), and trailing spaces are invisible (a progress bar
    pads a redraw with as many as the previous redraw was longer)."""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rsplit("\r", 1)[-1].rstrip(" ") for line in lines)


def png_size(data: str) -> tuple[int, int] | None:
    """Width and height from a base64 PNG's IHDR chunk, or None when it is not a PNG."""
    try:
        head = base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    """A MIME payload as text (nbformat stores some text payloads as lists of lines)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    if isinstance(value, str):
        return value
    return _json(value)


_DATA_URI = re.compile(r"data:(?P<mime>image/[\w.+-]+);base64,(?P<data>[A-Za-z0-9+/=]+)")


def _describe_data_uri(match: re.Match[str]) -> str:
    """An image inlined in HTML (ipympl does that), described like an image output."""
    size = png_size(match["data"]) if match["mime"] == "image/png" else None
    return f"data:{match['mime']};base64,<{f'{size[0]}x{size[1]}' if size else 'image'}>"


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)


def _summarise_plotly(value: Any) -> str:
    spec = json.loads(value) if isinstance(value, str) else value
    traces = [t.get("type", "scatter") for t in spec.get("data", [])]
    title = spec.get("layout", {}).get("title", {})
    title_text = title.get("text") if isinstance(title, Mapping) else title
    return f"traces={traces} title={title_text!r}"


def _summarise_vega(value: Any) -> str:
    spec = json.loads(value) if isinstance(value, str) else value
    mark = spec.get("mark")
    mark_type = mark.get("type") if isinstance(mark, Mapping) else mark
    return f"mark={mark_type!r} encoding={sorted(spec.get('encoding', {}))}"


def summarise(mime: str, value: Any, widgets: Widgets) -> str:
    """One MIME payload of a display bundle, as far as a comparison can use it.

    Payloads that carry generated ids or whole libraries (plotly, vega, widget views, images,
    HTML with scripts) reduce to a stable summary; other text is compared whole, normalised.
    """
    if mime == PLOTLY_MIME:
        return _summarise_plotly(value)
    if mime.startswith(("application/vnd.vegalite.", "application/vnd.vega.")):
        return _summarise_vega(value)
    if mime == WIDGET_VIEW_MIME:
        view = json.loads(value) if isinstance(value, str) else value
        return describe_widget(str(view.get("model_id")), widgets)
    if mime == "image/png":
        size = png_size(_text(value))
        return f"png {size[0]}x{size[1]}" if size else "png (unreadable header)"
    if mime.startswith("image/"):
        return mime
    text = _text(value)
    if mime == "text/html":
        text = _SCRIPT.sub("<script>…</script>", text)
        text = _DATA_URI.sub(_describe_data_uri, text)
    return normalise(text)


def _reduce_bundle(output: Mapping[str, Any], widgets: Widgets) -> Reduced:
    data: Mapping[str, Any] = output.get("data", {})
    mimes = sorted(data)
    if any(m.startswith("application/vnd.bokehjs") for m in mimes):
        # bokeh's payloads are a generated document (ids, timestamps): the MIME types say
        # that bokeh rendered; the text would only compare random ids
        return (output["output_type"], ",".join(mimes), "")
    lines = [f"{m}: {summarise(m, data[m], widgets)}" for m in mimes]
    metadata = output.get("metadata") or {}
    if metadata:
        lines.append(f"metadata: {normalise(_json(metadata))}")
    return (output["output_type"], ",".join(mimes), "\n".join(lines))


_CELL_FRAME = re.compile(r"Cell\s+In\s?\[")
# "File <path>:<line>, in <function>(<args>)"; %xmode Plain leaves the comma out
_OTHER_FRAME = re.compile(r"^\s*File\s+(?P<where>.*?)(?::\d+)?(?:,?\s+in\s+(?P<func>[^\s(]+).*)?$")


def _is_header(plain: str) -> bool:
    stripped = plain.strip()
    return not stripped or set(stripped) == {"-"} or "Traceback (most recent call last)" in plain


def reduce_traceback(traceback: Sequence[str], ename: str, evalue: str) -> str:
    """The frames in notebook cells (whole), a marker per frame elsewhere, and the last line.

    The header (rule, "Traceback (most recent call last)") is dropped; so are line numbers and
    source lines of frames outside the notebook, which depend on library versions, not on the
    kernel. The last line is the one the traceback shows (for a SyntaxError that is not
    ``ename: evalue``, whose evalue names the cell's file); ``ename: evalue`` when the
    traceback is empty.
    """
    entries = [e for e in traceback if strip_ansi(e).strip()]
    if not entries:
        return normalise(f"{ename}: {evalue}")
    *body, last = entries
    last_lines = last.rstrip("\n").split("\n")
    final = last_lines[-1]
    if len(last_lines) > 1:
        body.append("\n".join(last_lines[:-1]))
    kept: list[str] = []
    for entry in body:
        plain = strip_ansi(entry)
        if _is_header(plain):
            continue
        if _CELL_FRAME.search(plain):
            kept.append(normalise(entry.rstrip("\n")))
            continue
        first = plain.strip().split("\n", 1)[0]
        frame = _OTHER_FRAME.match(first)
        if frame:
            where = re.sub(r"^.*/site-packages/", "<site-packages>/", frame["where"])
            kept.append(f"<frame outside the notebook: {normalise(where)} in {frame['func']}>")
        else:
            kept.append(normalise(entry.rstrip("\n")))
    kept.append(normalise(final))
    return "\n".join(kept)


def _streams(run: Sequence[Mapping[str, Any]]) -> list[Reduced]:
    """A run of neighbouring stream outputs: one entry per name, stdout first."""
    texts: dict[str, str] = {}
    for output in run:
        texts[output["name"]] = texts.get(output["name"], "") + _text(output.get("text", ""))
    order = sorted(texts, key=lambda name: (name != "stdout", name != "stderr", name))
    return [("stream", name, normalise(visible_text(texts[name]))) for name in order]


def reduce_outputs(outputs: Iterable[Mapping[str, Any]], widgets: Widgets) -> list[Reduced]:
    """The reduction of one output area (a cell's, or an Output widget's)."""
    reduced: list[Reduced] = []
    run: list[Mapping[str, Any]] = []
    for output in outputs:
        if output["output_type"] == "stream":
            run.append(output)
            continue
        reduced.extend(_streams(run))
        run = []
        if output["output_type"] == "error":
            text = reduce_traceback(
                output.get("traceback", []), output.get("ename", ""), output.get("evalue", "")
            )
            reduced.append(("error", output.get("ename", ""), text))
        else:
            reduced.append(_reduce_bundle(output, widgets))
    reduced.extend(_streams(run))
    return reduced


def widget_models(nb: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The widget models nbclient stored in the notebook's metadata, by model id."""
    stored = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE_MIME, {})
    return dict(stored.get("state", {}))


_MODEL_REF = "IPY_MODEL_"
#: state fields that a person sees on most controls
_VISIBLE_FIELDS = ("description", "value")


def describe_widget(model_id: str, widgets: Widgets, _seen: frozenset[str] = frozenset()) -> str:
    """A widget as a person sees it: its model name, description and value, its children,
    and for an Output widget what it captured."""
    model = widgets.get(model_id)
    if model is None:
        return "<widget not in the stored state>"
    if model_id in _seen:
        return f"<cycle: {model.get('model_name')}>"
    seen = _seen | {model_id}
    state: Mapping[str, Any] = model.get("state", {})
    parts = []
    for field in _VISIBLE_FIELDS:
        value = state.get(field)
        if isinstance(value, str) and value:
            parts.append(f"{field}={normalise(value)!r}")
        elif isinstance(value, (int, float, bool)):
            parts.append(f"{field}={value!r}")
    children = [
        describe_widget(ref[len(_MODEL_REF) :], widgets, seen)
        for ref in state.get("children", [])
        if isinstance(ref, str) and ref.startswith(_MODEL_REF)
    ]
    if children:
        parts.append(f"children=[{', '.join(children)}]")
    if model.get("model_name") == "OutputModel":
        parts.append(f"outputs={reduce_outputs(state.get('outputs', []), widgets)!r}")
    return f"{model.get('model_name')}({', '.join(parts)})"


def reduce_cell(cell: Mapping[str, Any], widgets: Widgets) -> list[Reduced]:
    return reduce_outputs(cell.get("outputs", []), widgets)


def reduce_notebook(nb: Mapping[str, Any]) -> dict[int, list[Reduced]]:
    """Every code cell's reduction, by the cell's index in the notebook."""
    widgets = widget_models(nb)
    return {
        index: reduce_cell(cell, widgets)
        for index, cell in enumerate(nb.get("cells", []))
        if cell.get("cell_type") == "code"
    }


def reduce_widget_state(nb: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The notebook's widgets: sorted model names, and the sorted reduced captures of its
    Output widgets (model ids are random, so neither list can keep their order)."""
    widgets = widget_models(nb)
    names = sorted(str(m.get("model_name")) for m in widgets.values())
    captures = sorted(
        reduce_outputs(m.get("state", {}).get("outputs", []), widgets)
        for m in widgets.values()
        if m.get("model_name") == "OutputModel"
    )
    return {"models": names, "output_widgets": captures}


def format_reduced(reduced: Sequence[Reduced], indent: str = "    ") -> list[str]:
    """Readable lines for a failure message: one header per output, its text indented below."""
    if not reduced:
        return [f"{indent}(no output)"]
    lines = []
    for output_type, key, text in reduced:
        lines.append(f"{indent}[{output_type}: {key}]")
        lines.extend(f"{indent}  {line}" for line in _printable(text).split("\n"))
    return lines


def _printable(text: str) -> str:
    """ANSI escapes made visible (a failure message printed to a terminal would apply them)."""
    return text.replace("\x1b", "\\x1b")


__all__: list[str] = [
    "Reduced",
    "Widgets",
    "describe_widget",
    "format_reduced",
    "normalise",
    "png_size",
    "reduce_cell",
    "reduce_notebook",
    "reduce_outputs",
    "reduce_traceback",
    "reduce_widget_state",
    "strip_ansi",
    "summarise",
    "visible_text",
    "widget_models",
]
