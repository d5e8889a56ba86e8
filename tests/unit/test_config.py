"""Unit tests for mpkernel.config: lookup, parsing, errors with file:line:key, dump round trip."""

from __future__ import annotations

import dataclasses
import pickle
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpkernel.config.dump import dump_config
from mpkernel.config.model import (
    BUILTIN_WORKERS,
    Config,
    ConfigError,
    KernelConfig,
    WorkerConfig,
    default_config,
    find_config_path,
    load_config,
    load_effective_config,
    load_effective_config_lenient,
    parse_config,
    parse_config_lenient,
    parse_duration,
    parse_size,
)
from mpkernel.config.values import KeyLocator

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

SRC = Path("/etc/mpkernel/config.toml")
GIB = 2**30
SIZE_HINT = "units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB"
RESTARTS = '"never", "on-failure", "always"'
TOP_HINT = "allowed: [kernel], [workers.defaults], [workers.<name>]"


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, SRC)
    return str(info.value)


def worker(config: Config, name: str) -> WorkerConfig:
    (found,) = (w for w in config.workers if w.name == name)
    return found


# --- every kind of bad file gives its exact error -------------------------------------------

BAD_FILES = [
    pytest.param(
        "[kernel]\nlog_level =\n",
        f"{SRC}:2: invalid TOML: Invalid value (column 12)",
        id="syntax-error-has-line-and-column",
    ),
    pytest.param(
        "[workers.echo]\nrestart = [1,\n",
        f"{SRC}:3: invalid TOML: Invalid value (at end of file)",
        id="syntax-error-at-end-of-file",
    ),
    pytest.param(
        '[kernel]\nlog_level = "info"\n\n[kernal]\nlog_level = "debug"\n',
        f"{SRC}:4: kernal: unknown top-level key ({TOP_HINT})",
        id="unknown-top-level-table",
    ),
    pytest.param(
        "verbose = true\n",
        f"{SRC}:1: verbose: unknown top-level key ({TOP_HINT})",
        id="unknown-top-level-value",
    ),
    pytest.param(
        '[kernel]\nlog_levl = "debug"\n',
        f'{SRC}:2: kernel.log_levl: unknown key (did you mean "log_level"?)',
        id="unknown-key-in-kernel",
    ),
    pytest.param(
        '[workers.echo]\ntarget = "mpkernel.echo"\nmemory_limt = "1GiB"\n',
        f'{SRC}:3: workers.echo.memory_limt: unknown key (did you mean "memory_limit"?)',
        id="unknown-key-in-worker",
    ),
    pytest.param(
        "[workers.defaults]\nfrobnicate = 1\n",
        f"{SRC}:2: workers.defaults.frobnicate: unknown key",
        id="unknown-key-in-defaults",
    ),
    pytest.param(
        "[workers.defaults]\nenabled = false\n",
        f"{SRC}:2: workers.defaults.enabled: only a worker's own table may set this",
        id="worker-only-key-in-defaults",
    ),
    pytest.param(
        '[workers.defaults]\nmax_restarts = "five"\n',
        f'{SRC}:2: workers.defaults.max_restarts: expected an integer, got string "five"',
        id="wrong-type-string-for-integer",
    ),
    pytest.param(
        "[kernel]\npost_execute_budget_ms = 1.5\n",
        f"{SRC}:2: kernel.post_execute_budget_ms: expected an integer, got float 1.5",
        id="wrong-type-float-for-integer",
    ),
    pytest.param(
        '[workers.variables]\npersistent = "yes"\n',
        f"{SRC}:2: workers.variables.persistent: "
        'expected a boolean (true or false), got string "yes"',
        id="wrong-type-string-for-boolean",
    ),
    pytest.param(
        "[workers.echo]\nrestart = 1\n",
        f"{SRC}:2: workers.echo.restart: expected a string (one of {RESTARTS}), got integer 1",
        id="wrong-type-integer-for-enum",
    ),
    pytest.param(
        "[workers.echo]\nmemory_limit = 1.5\n",
        f"{SRC}:2: workers.echo.memory_limit: expected a size (bytes as an integer, "
        'or a string like "2GiB"), got float 1.5',
        id="wrong-type-float-for-size",
    ),
    pytest.param(
        "[kernel]\nlog_file = 3\n",
        f"{SRC}:2: kernel.log_file: expected a string, got integer 3",
        id="wrong-type-integer-for-path",
    ),
    pytest.param(
        '[workers.echo]\ntarget = ""\n',
        f"{SRC}:2: workers.echo.target: must not be empty",
        id="empty-target",
    ),
    pytest.param(
        "[workers.defaults]\nmax_restarts = -1\n",
        f"{SRC}:2: workers.defaults.max_restarts: must not be negative, got -1",
        id="negative-integer",
    ),
    pytest.param(
        "[workers.echo]\ncpu_limit_s = -0.5\n",
        f"{SRC}:2: workers.echo.cpu_limit_s: must not be negative, got -0.5",
        id="negative-duration",
    ),
    pytest.param(
        '[workers.data_explorer]\nmemory_limit = "-2GiB"\n',
        f'{SRC}:2: workers.data_explorer.memory_limit: must not be negative, got "-2GiB"',
        id="negative-size",
    ),
    pytest.param(
        "[workers.echo]\nrestart_window_s = 0\n",
        f"{SRC}:2: workers.echo.restart_window_s: must be greater than 0, got integer 0",
        id="zero-restart-window",
    ),
    pytest.param(
        '[workers.echo]\nrestart = "sometimes"\n',
        f'{SRC}:2: workers.echo.restart: must be one of {RESTARTS}; got "sometimes"',
        id="bad-enum-restart",
    ),
    pytest.param(
        '[kernel]\nlog_level = "INFO"\n',
        f'{SRC}:2: kernel.log_level: must be one of "debug", "info", "warning", "error", '
        '"critical"; got "INFO"',
        id="bad-enum-log-level-is-case-sensitive",
    ),
    pytest.param(
        '[workers.defaults]\nstart_method = "fork"\n',
        f'{SRC}:2: workers.defaults.start_method: must be one of "forkserver", "spawn"; got "fork"',
        id="bad-enum-start-method",
    ),
    pytest.param(
        '[workers.data_explorer]\nmemory_limit = "2 gigs"\n',
        f"{SRC}:2: workers.data_explorer.memory_limit: "
        f'must be a size like "2GiB" ({SIZE_HINT}), got "2 gigs"',
        id="bad-size",
    ),
    pytest.param(
        '[workers.echo]\nrpc_timeout_s = "soon"\n',
        f'{SRC}:2: workers.echo.rpc_timeout_s: must be a duration like "30s" '
        '(units ms, s, m, h), got "soon"',
        id="bad-duration",
    ),
    pytest.param(
        "[kernel]\ndisconnect_grace_s = inf\n",
        f"{SRC}:2: kernel.disconnect_grace_s: must be finite, got float inf",
        id="infinite-duration",
    ),
    pytest.param(
        '[workers.mine]\nhandler = "mine.handler:MineHandler"\n',
        f'{SRC}:1: workers.mine.target: required for a new worker ("mine" is not built in)',
        id="new-worker-without-target-points-at-its-table",
    ),
    pytest.param(
        '[workers.mine]\ntarget = "mine"\n',
        f'{SRC}:1: workers.mine.handler: required for a new worker ("mine" is not built in)',
        id="new-worker-without-handler-points-at-its-table",
    ),
    pytest.param(
        '[workers.mine]\ntarget = "mine"\nhandler = "mine.handler.MineHandler"\n',
        f'{SRC}:3: workers.mine.handler: must look like "module.path:ClassName", '
        'got "mine.handler.MineHandler"',
        id="handler-without-colon",
    ),
    pytest.param(
        '[workers.variables]\nhandler = "my-pkg.vars:Handler"\n',
        f'{SRC}:2: workers.variables.handler: must look like "module.path:ClassName", '
        'got "my-pkg.vars:Handler"',
        id="handler-with-non-identifier-module",
    ),
    pytest.param(
        '[workers.mine]\ntarget = "mpkernel.echo"\nhandler = "mine.handler:MineHandler"\n',
        f'{SRC}:2: workers.mine.target: target "mpkernel.echo" is already served by worker "echo"',
        id="new-worker-duplicates-a-built-in-target",
    ),
    pytest.param(
        '[workers.a]\ntarget = "same"\nhandler = "a:A"\n\n'
        '[workers.b]\ntarget = "same"\nhandler = "b:B"\n',
        f'{SRC}:6: workers.b.target: target "same" is already served by worker "a"',
        id="duplicate-target-blames-the-later-one",
    ),
    pytest.param(
        '[workers.variables]\ntarget = "mpkernel.echo"\nenabled = true\n',
        f'{SRC}:2: workers.variables.target: target "mpkernel.echo" is already served by '
        'worker "echo"',
        id="duplicate-target-blames-the-one-the-file-sets",
    ),
    pytest.param(
        '[workers."my worker"]\ntarget = "mine"\n',
        f'{SRC}:1: workers."my worker": a worker name may only use letters, digits, "_" and "-"',
        id="bad-worker-name",
    ),
    pytest.param(
        '[kernel]\n[[workers.echo]]\ntarget = "x"\n',
        f"{SRC}:2: workers.echo: expected a table, got array",
        id="worker-that-is-not-a-table",
    ),
    pytest.param(
        "kernel = 5\n",
        f"{SRC}:1: kernel: expected a table, got integer 5",
        id="kernel-that-is-not-a-table",
    ),
    pytest.param(
        "workers = []\n",
        f"{SRC}:1: workers: expected a table, got array",
        id="workers-that-is-not-a-table",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_bad_file_is_refused_with_file_line_key_and_reason(text: str, expected: str) -> None:
    assert error_of(text) == expected


# --- the line is where the key is written, whatever TOML form writes it ----------------------

LOCATED = [
    pytest.param(
        """\
        [workers]
        data_explorer.memory_limit = "lots"
        """,
        2,
        id="dotted-key-under-a-header",
    ),
    pytest.param(
        """\
        # a comment with [workers.echo] and memory_limit = 1 in it
        workers.echo.memory_limit = "lots"
        """,
        2,
        id="dotted-key-at-top-level",
    ),
    pytest.param(
        """\
        workers = { echo = { restart = "never" }, variables = { memory_limit = "lots" } }
        """,
        1,
        id="inline-table",
    ),
    pytest.param(
        '''\
        [workers.echo]
        target = """
        memory_limit = 1
        [workers.variables]
        """
        "memory_limit" = 'x' # quoted key
        ''',
        6,
        id="multi-line-string-and-quoted-key",
    ),
    pytest.param(
        """\
        [workers.echo]
        restart = "never"
        target = 'mpkernel.echo'   # no escapes in literal strings: \\
        [ workers . "data_explorer" ]
        processes = "per-comm"
        memory_limit = "lots"
        """,
        6,
        id="spaced-header-with-quoted-part",
    ),
]


@pytest.mark.parametrize(("text", "line"), LOCATED)
def test_error_line_is_where_the_key_is_written(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(dedent(text), SRC)
    assert info.value.line == line
    assert info.value.key.endswith(".memory_limit")


def test_locator_is_not_fooled_by_anything_inside_values() -> None:
    lines = [
        "when = 1979-05-27 07:32:00Z           # a datetime with a space",
        """arr = [ 1979-05-27 07:32:00Z, { k = "]" }, [ "#", '{' ],""",
        '  """',
        "fake = 1",
        '""", ]                                # lines 2-5: one multi-line array',
        "lit = '''",
        "[not.a.header]",
        "x = 'y''''",
        """"quoted\\u0041.key" = 'v'            # escapes in a quoted key""",
        "[[tables.list]]",
        "real = 1",
        '\t[ spaced . "dot.ted" ]\r',
        r'key = "a \" b # still in the string"',
        "inline = { nested = { deep = 1 }, other = 2 }",
    ]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # the locator only ever sees text that parsed
    locator = KeyLocator(text)
    assert locator.line_of(("when",)) == 1
    assert locator.line_of(("arr",)) == 2
    assert locator.line_of(("arr", "k")) == 2  # a key inside an inline table inside an array
    assert locator.line_of(("fake",)) is None
    assert locator.line_of(("lit",)) == 6
    assert locator.line_of(("not", "a", "header")) is None
    assert locator.line_of(("quotedA.key",)) == 9
    assert locator.line_of(("tables", "list", "real")) == 11
    assert locator.line_of(("spaced", "dot.ted")) == 12
    assert locator.line_of(("spaced", "dot.ted", "key")) == 13
    assert locator.line_of(("spaced", "dot.ted", "inline", "nested", "deep")) == 14
    assert locator.line_of(("spaced", "dot.ted", "missing")) == 12  # falls back to its table
    assert locator.line_of(("nowhere", "at", "all")) is None


def test_error_attributes_match_the_message() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[workers.echo]\nrestart = "x"\n', SRC)
    err = info.value
    assert (err.path, err.line, err.key) == (SRC, 2, "workers.echo.restart")
    assert err.reason == f'must be one of {RESTARTS}; got "x"'


def test_error_without_file_names_the_line_only() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[workers.echo]\nrestart = "x"\n', None)
    assert str(info.value) == f'line 2: workers.echo.restart: must be one of {RESTARTS}; got "x"'


def test_error_survives_pickling() -> None:
    err = ConfigError(SRC, 3, "kernel.log_level", "bad")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.line, copy.key, copy.reason, str(copy)) == (
        SRC,
        3,
        "kernel.log_level",
        "bad",
        f"{SRC}:3: kernel.log_level: bad",
    )


def test_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read: No such file or directory"


def test_directory_instead_of_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory"


def test_non_utf8_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[kernel]\nlog_level = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2: invalid TOML: not UTF-8 text"


def test_load_config_reports_the_file_it_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[kernel]\nlog_level = "debug"\n', encoding="utf-8")
    config = load_config(path)
    assert config.source == path
    assert config.kernel.log_level == "debug"


# --- what good files mean ----------------------------------------------------------------------


def test_empty_file_means_the_built_in_defaults() -> None:
    assert parse_config("", None) == default_config()


def test_built_in_defaults_have_three_workers_as_designed() -> None:
    config = default_config()
    assert config.source is None
    assert config.kernel == KernelConfig()
    assert [(w.name, w.target, w.handler, w.processes, w.memory_limit) for w in config.workers] == [
        ("echo", "mpkernel.echo", "mpkernel_workers.echo:EchoHandler", "shared", 2 * GIB),
        (
            "variables",
            "positron.variables",
            "mpkernel_workers.variables:VariablesHandler",
            "shared",
            2 * GIB,
        ),
        (
            "data_explorer",
            "positron.dataExplorer",
            "mpkernel_workers.data_explorer:DataExplorerHandler",
            "per-comm",
            8 * GIB,
        ),
    ]


def test_design_example_reads_as_the_built_in_defaults() -> None:
    example = """\
        [kernel]
        log_level = "info"
        post_execute_budget_ms = 200     # main-process time for snapshots after an execution

        [workers.defaults]
        start_method = "forkserver"      # or "spawn"
        memory_limit = "2GiB"
        cpu_limit_s = 0                  # 0: none
        restart = "on-failure"           # never | on-failure | always
        max_restarts = 5
        restart_window_s = 60

        [workers.variables]
        target = "positron.variables"
        handler = "mpkernel_workers.variables:VariablesHandler"

        [workers.data_explorer]
        target = "positron.dataExplorer"
        handler = "mpkernel_workers.data_explorer:DataExplorerHandler"
        processes = "per-comm"           # or "shared"
        memory_limit = "8GiB"
        persistent = false
        """
    assert parse_config(dedent(example), None) == default_config()


def test_kernel_settings_are_read_with_durations_and_paths() -> None:
    config = parse_config(
        dedent(
            """\
            [kernel]
            log_level = "debug"
            log_file = "logs/kernel.log"
            post_execute_budget_ms = 50
            on_frontend_disconnect = "keep"
            disconnect_grace_s = "1.5m"
            interrupt_mode = "message"
            """
        ),
        SRC,
    )
    assert config.kernel == KernelConfig(
        log_level="debug",
        log_file=Path("/etc/mpkernel/logs/kernel.log"),  # relative to the config file
        post_execute_budget_ms=50,
        on_frontend_disconnect="keep",
        disconnect_grace_s=90.0,
        interrupt_mode="message",
    )


def test_workers_defaults_apply_where_no_worker_table_says_otherwise() -> None:
    config = parse_config(
        dedent(
            """\
            [workers.defaults]
            memory_limit = "4GiB"
            restart = "always"
            rpc_timeout_s = "500ms"

            [workers.echo]
            restart = "never"
            """
        ),
        None,
    )
    echo, variables, explorer = config.workers
    assert (echo.memory_limit, echo.restart, echo.rpc_timeout_s) == (4 * GIB, "never", 0.5)
    assert (variables.memory_limit, variables.restart) == (4 * GIB, "always")
    # the built-in [workers.data_explorer] sets its own limit, which beats any defaults
    assert (explorer.memory_limit, explorer.restart) == (8 * GIB, "always")


def test_memory_limit_zero_means_no_limit_even_over_a_built_in_limit() -> None:
    config = parse_config("[workers.data_explorer]\nmemory_limit = 0\n", None)
    assert worker(config, "data_explorer").memory_limit is None


def test_built_in_worker_table_overrides_only_the_keys_it_sets() -> None:
    config = parse_config('[workers.data_explorer]\nprocesses = "shared"\n', None)
    explorer = worker(config, "data_explorer")
    assert explorer.processes == "shared"
    assert explorer.target == "positron.dataExplorer"
    assert explorer.memory_limit == 8 * GIB


def test_new_worker_is_added_after_the_built_ins() -> None:
    config = parse_config(
        dedent(
            """\
            [workers.plots]
            target = "acme.plots"
            handler = "acme.plots.handler:PlotsHandler"
            processes = "per-comm"
            persistent = true
            """
        ),
        None,
    )
    assert [w.name for w in config.workers] == [*BUILTIN_WORKERS, "plots"]
    assert config.workers[-1] == WorkerConfig(
        name="plots",
        target="acme.plots",
        handler="acme.plots.handler:PlotsHandler",
        processes="per-comm",
        persistent=True,
        memory_limit=2 * GIB,
    )


def test_disabled_worker_serves_no_target_and_frees_it_for_another() -> None:
    config = parse_config(
        dedent(
            """\
            [workers.variables]
            enabled = false

            [workers.my_variables]
            target = "positron.variables"
            handler = "mine.variables:Handler"
            """
        ),
        None,
    )
    assert worker(config, "variables").enabled is False
    served = config.worker_for_target("positron.variables")
    assert served is not None
    assert served.name == "my_variables"
    assert config.worker_for_target("no.such.target") is None


# --- lookup order ------------------------------------------------------------------------------


def test_cli_path_wins_over_everything(tmp_path: Path) -> None:
    env = {"MPKERNEL_CONFIG": "/env.toml", "XDG_CONFIG_HOME": str(tmp_path), "HOME": "/h"}
    assert find_config_path("/cli.toml", env) == Path("/cli.toml")


def test_environment_variable_comes_next_even_if_the_file_is_missing() -> None:
    env = {"MPKERNEL_CONFIG": "/env.toml", "HOME": "/h"}
    assert find_config_path(None, env) == Path("/env.toml")


def test_empty_environment_variable_is_ignored() -> None:
    assert find_config_path(None, {"MPKERNEL_CONFIG": "", "HOME": "/nonexistent"}) is None


def test_tilde_is_expanded_with_home_from_the_given_environment() -> None:
    env = {"MPKERNEL_CONFIG": "~/my.toml", "HOME": "/home/ada"}
    assert find_config_path(None, env) == Path("/home/ada/my.toml")


def test_xdg_config_home_file_is_used_if_it_exists(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": "/nonexistent"}
    assert find_config_path(None, env) is None
    (tmp_path / "mpkernel").mkdir()
    (tmp_path / "mpkernel" / "config.toml").write_text("", encoding="utf-8")
    assert find_config_path(None, env) == tmp_path / "mpkernel" / "config.toml"


def test_home_dot_config_is_the_xdg_default(tmp_path: Path) -> None:
    path = tmp_path / ".config" / "mpkernel" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("", encoding="utf-8")
    assert find_config_path(None, {"HOME": str(tmp_path)}) == path
    # a relative XDG_CONFIG_HOME is invalid by the XDG spec and ignored
    assert find_config_path(None, {"HOME": str(tmp_path), "XDG_CONFIG_HOME": "rel"}) == path


def test_no_file_anywhere_means_built_in_defaults(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert find_config_path(None, env) is None
    assert load_effective_config(None, env) == default_config()
    assert load_effective_config_lenient(None, env) == (default_config(), [])
    assert find_config_path(None, {}) is None


def test_effective_config_reads_the_found_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[kernel]\nlog_level = "error"\n', encoding="utf-8")
    config = load_effective_config(None, {"MPKERNEL_CONFIG": str(path)})
    assert (config.kernel.log_level, config.source) == ("error", path)


def test_effective_config_refuses_an_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_effective_config(tmp_path / "missing.toml", {})


# --- lenient loading (kernel start) falls back per section ------------------------------------


def test_lenient_syntax_error_gives_full_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[kernel\n", encoding="utf-8")
    config, errors = load_effective_config_lenient(path, {})
    assert config == default_config()
    assert [str(e) for e in errors] == [
        f"{path}:1: invalid TOML: Expected ']' at the end of a table declaration (column 8)"
    ]


def test_lenient_unreadable_file_gives_full_defaults(tmp_path: Path) -> None:
    config, errors = load_effective_config_lenient(tmp_path / "missing.toml", {})
    assert config == default_config()
    assert [e.reason for e in errors] == ["cannot read: No such file or directory"]


def test_lenient_broken_kernel_section_falls_back_alone() -> None:
    config, errors = parse_config_lenient(
        dedent(
            """\
            [kernel]
            log_level = "debug"
            post_execute_budget_ms = -5

            [workers.echo]
            restart = "never"
            """
        ),
        SRC,
    )
    assert config.kernel == KernelConfig()  # log_level too: the whole section falls back
    assert worker(config, "echo").restart == "never"
    assert config.source == SRC
    assert [e.key for e in errors] == ["kernel.post_execute_budget_ms"]


def test_lenient_broken_built_in_worker_falls_back_to_the_built_in() -> None:
    config, errors = parse_config_lenient(
        dedent(
            """\
            [workers.data_explorer]
            processes = "shared"
            memory_limit = "huge"

            [workers.echo]
            restart = "never"
            """
        ),
        SRC,
    )
    assert worker(config, "data_explorer") == worker(default_config(), "data_explorer")
    assert worker(config, "echo").restart == "never"
    assert [(e.line, e.key) for e in errors] == [(3, "workers.data_explorer.memory_limit")]


def test_lenient_broken_new_worker_is_dropped() -> None:
    config, errors = parse_config_lenient(
        dedent(
            """\
            [workers.plots]
            target = "acme.plots"
            handler = "acme.plots"

            [workers.tables]
            target = "acme.tables"
            handler = "acme.tables:Tables"
            """
        ),
        SRC,
    )
    assert [w.name for w in config.workers] == [*BUILTIN_WORKERS, "tables"]
    assert [e.key for e in errors] == ["workers.plots.handler"]


def test_lenient_broken_defaults_fall_back_to_built_in_defaults() -> None:
    config, errors = parse_config_lenient(
        dedent(
            """\
            [workers.defaults]
            restart = "always"
            memory_limit = "lots"

            [workers.echo]
            max_restarts = 1
            """
        ),
        SRC,
    )
    echo = worker(config, "echo")
    assert (echo.restart, echo.memory_limit, echo.max_restarts) == ("on-failure", 2 * GIB, 1)
    assert [e.key for e in errors] == ["workers.defaults.memory_limit"]


def test_lenient_duplicate_target_keeps_the_first_and_restores_the_built_in() -> None:
    config, errors = parse_config_lenient(
        dedent(
            """\
            [workers.variables]
            target = "mpkernel.echo"
            enabled = true

            [workers.extra]
            target = "mpkernel.echo"
            handler = "extra:Extra"
            """
        ),
        SRC,
    )
    assert config.workers == default_config().workers
    assert [str(e) for e in errors] == [
        f'{SRC}:2: workers.variables.target: target "mpkernel.echo" is already served by '
        'worker "echo"',
        f'{SRC}:6: workers.extra.target: target "mpkernel.echo" is already served by worker "echo"',
    ]


def test_lenient_collects_one_error_per_broken_section() -> None:
    config, errors = parse_config_lenient(
        dedent(
            """\
            colour = "blue"

            [kernel]
            interrupt_mode = "telepathy"

            [workers.variables]
            persistent = 1
            """
        ),
        SRC,
    )
    assert config == dataclasses.replace(default_config(), source=SRC)
    assert [(e.line, e.key) for e in errors] == [
        (1, "colour"),
        (4, "kernel.interrupt_mode"),
        (7, "workers.variables.persistent"),
    ]


def test_strict_parsing_raises_the_first_of_the_lenient_errors() -> None:
    text = '[kernel]\ninterrupt_mode = "x"\n[workers.echo]\nrestart = "x"\n'
    _, errors = parse_config_lenient(text, SRC)
    with pytest.raises(ConfigError) as info:
        parse_config(text, SRC)
    assert str(info.value) == str(errors[0])
    assert len(errors) == 2


# --- sizes and durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2GiB", 2 * GIB),
        ("512MiB", 512 * 2**20),
        ("1.5GB", 1_500_000_000),
        ("100kB", 100_000),
        ("100KB", 100_000),
        ("1KiB", 1024),
        ("1kib", 1024),
        ("2TiB", 2 * 2**40),
        ("3TB", 3 * 10**12),
        ("7MB", 7_000_000),
        ("0.5KiB", 512),
        ("1.1KiB", 1126),  # fractions of a unit round down to whole bytes
        ("1024", 1024),
        ("1024B", 1024),
        (" 8 GiB ", 8 * GIB),
        ("0", 0),
        (1024, 1024),
        (0, 0),
    ],
)
def test_parse_size_accepts(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", f'must be a size like "2GiB" ({SIZE_HINT}), got ""'),
        ("GiB", f'must be a size like "2GiB" ({SIZE_HINT}), got "GiB"'),
        ("2 gigs", f'must be a size like "2GiB" ({SIZE_HINT}), got "2 gigs"'),
        ("2G", f'must be a size like "2GiB" ({SIZE_HINT}), got "2G"'),
        ("1e9", f'must be a size like "2GiB" ({SIZE_HINT}), got "1e9"'),
        ("1,5GB", f'must be a size like "2GiB" ({SIZE_HINT}), got "1,5GB"'),
        ("-1GiB", 'must not be negative, got "-1GiB"'),
        (-1, "must not be negative, got -1"),
        ("1.5", 'must be a whole number of bytes, got "1.5"'),
        ("2.5B", 'must be a whole number of bytes, got "2.5B"'),
    ],
)
def test_parse_size_refuses(text: str | int, reason: str) -> None:
    with pytest.raises(ValueError, match=r".") as info:
        parse_size(text)
    assert str(info.value) == reason


def test_parse_size_refuses_a_boolean() -> None:
    with pytest.raises(TypeError, match="expected a size, got boolean true"):
        parse_size(True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("250MS", 0.25),
        (" 10 s ", 10.0),
        ("45", 45.0),
        ("0.1", 0.1),
        (".5s", 0.5),
        (7, 7.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration_accepts(value: str | float, seconds: float) -> None:
    result = parse_duration(value)
    assert isinstance(result, float)
    assert result == seconds


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", 'must be a duration like "30s" (units ms, s, m, h), got ""'),
        ("soon", 'must be a duration like "30s" (units ms, s, m, h), got "soon"'),
        ("30sec", 'must be a duration like "30s" (units ms, s, m, h), got "30sec"'),
        ("1h30m", 'must be a duration like "30s" (units ms, s, m, h), got "1h30m"'),
        ("3d", 'must be a duration like "30s" (units ms, s, m, h), got "3d"'),
        ("-5s", 'must not be negative, got "-5s"'),
        (-1, "must not be negative, got -1"),
        (-0.5, "must not be negative, got -0.5"),
        (float("inf"), "must be finite, got float inf"),
        (float("nan"), "must be finite, got float nan"),
    ],
)
def test_parse_duration_refuses(value: str | float, reason: str) -> None:
    with pytest.raises(ValueError, match=r".") as info:
        parse_duration(value)
    assert str(info.value) == reason


def test_parse_duration_refuses_a_boolean() -> None:
    with pytest.raises(TypeError, match="expected a duration, got boolean false"):
        parse_duration(False)


# --- dump_config round trip --------------------------------------------------------------------


def test_dump_of_defaults_reads_back_equal() -> None:
    config = default_config()
    assert parse_config(dump_config(config), None) == config


def test_dump_of_a_custom_config_reads_back_equal() -> None:
    config = parse_config(
        dedent(
            """\
            [kernel]
            log_level = "warning"
            log_file = "/var/log/mpkernel \\"main\\".log"
            disconnect_grace_s = "2.5s"

            [workers.defaults]
            memory_limit = "1.5GB"
            cpu_limit_s = "1m"

            [workers.echo]
            enabled = false

            [workers.data_explorer]
            memory_limit = 0

            [workers.extra-1]
            target = "acme\\tweird \\u00e9 \\"target\\""
            handler = "acme.x:Y"
            max_restarts = 0
            restart_window_s = 0.001
            """
        ),
        SRC,
    )
    assert worker(config, "data_explorer").memory_limit is None
    assert parse_config(dump_config(config), SRC) == config


def test_dump_writes_sizes_in_readable_units() -> None:
    text = dump_config(default_config())
    assert 'memory_limit = "8GiB"' in text
    assert 'memory_limit = "2GiB"' in text


_IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s not in {"if", "in", "is", "or", "as", "def", "for", "and", "not", "del", "try"}
)
_HANDLERS = st.builds(
    lambda mods, cls: ".".join(mods) + ":" + cls,
    st.lists(_IDENT, min_size=1, max_size=3),
    _IDENT,
)
_SECONDS = st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False)
_NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True).filter(
    lambda s: s not in {*BUILTIN_WORKERS, "defaults"}
)
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    kernel = KernelConfig(
        log_level=draw(st.sampled_from(["debug", "info", "warning", "error", "critical"])),
        log_file=draw(st.none() | _TEXT.map(lambda t: Path("/logs", t.replace("\x00", "")))),
        post_execute_budget_ms=draw(st.integers(0, 2**63 - 1)),
        on_frontend_disconnect=draw(st.sampled_from(["close-comms", "keep"])),
        disconnect_grace_s=draw(_SECONDS),
        interrupt_mode=draw(st.sampled_from(["signal", "message"])),
    )
    builtins = [w.name for w in default_config().workers]
    names = builtins + draw(st.lists(_NAMES, unique=True, max_size=4))
    targets = draw(st.lists(_TEXT, unique=True, min_size=len(names), max_size=len(names)))
    workers = tuple(
        WorkerConfig(
            name=name,
            target=target,
            handler=draw(_HANDLERS),
            start_method=draw(st.sampled_from(["forkserver", "spawn"])),
            memory_limit=draw(st.none() | st.integers(1, 2**50)),
            cpu_limit_s=draw(_SECONDS),
            restart=draw(st.sampled_from(["never", "on-failure", "always"])),
            max_restarts=draw(st.integers(0, 1000)),
            restart_window_s=draw(_SECONDS.filter(lambda s: s > 0)),
            processes=draw(st.sampled_from(["shared", "per-comm"])),
            persistent=draw(st.booleans()),
            rpc_timeout_s=draw(_SECONDS),
            enabled=draw(st.booleans()),
        )
        for name, target in zip(names, targets, strict=True)
    )
    return Config(kernel, workers, draw(st.none() | st.just(SRC)))


@given(configs())
def test_dump_of_any_config_reads_back_equal(config: Config) -> None:
    assert parse_config(dump_config(config), config.source) == config
