"""Settings: flags over DEEPCART_* variables over defaults; one-line errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from deepcart.cli import build_parser, main
from deepcart.errors import InputError
from deepcart.serve.config import load_settings

from .conftest import TAG, World


def _given(argv: list[str]) -> dict[str, object]:
    args = build_parser().parse_args(["serve", *argv])
    return {name: getattr(args, name) for name in getattr(args, "given", set())}


def test_flags_override_env_which_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPCART_DATA_TAG", "fromenv")
    monkeypatch.setenv("DEEPCART_TYPE", "popular")
    monkeypatch.setenv("DEEPCART_PORT", "7000")
    s = load_settings(**_given([]))
    assert (s.data_tag, s.type, s.port, s.host) == ("fromenv", "popular", 7000, "127.0.0.1")
    # A flag given with the default's own value still wins over the environment.
    s = load_settings(**_given(["--port", "8000", "--data-tag", "flag", "--type", "als"]))
    assert (s.data_tag, s.type, s.port) == ("flag", "als", 8000)
    assert s.database_url() == f"sqlite:///{Path('data/processed/_reviews/flag.db')}"


def test_admin_token_from_env_only_and_empty_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPCART_ADMIN_TOKEN", "hunter2")
    s = load_settings(data_tag="t", type="als")
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s)
    monkeypatch.setenv("DEEPCART_ADMIN_TOKEN", "")
    assert load_settings(data_tag="t", type="als").admin_token is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--admin-token", "x"])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "--data-tag (or DEEPCART_DATA_TAG): required"),
        ({"DEEPCART_DATA_TAG": "t", "DEEPCART_TYPE": "nope"}, "--type (or DEEPCART_TYPE)"),
        ({"DEEPCART_DATA_TAG": "../x", "DEEPCART_TYPE": "als"}, "--data-tag"),
        ({"DEEPCART_DATA_TAG": "t", "DEEPCART_TYPE": "als", "DEEPCART_PORT": "x"}, "--port"),
        ({"DEEPCART_DATA_TAG": "t", "DEEPCART_TYPE": "als", "DEEPCART_PORT": "70000"}, "--port"),
    ],
)
def test_bad_settings_are_input_errors(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name in ("DEEPCART_DATA_TAG", "DEEPCART_TYPE", "DEEPCART_PORT"):
        monkeypatch.delenv(name, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings()


def test_serve_without_a_model_is_one_line(
    tmp_path: Path, world: World, capsys: pytest.CaptureFixture
) -> None:
    code = main(
        ["serve", "--data-dir", str(world.data_dir), "--model-dir", str(tmp_path / "m"),
         "--data-tag", TAG, "--type", "als", "--port", "0"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"deepcart train --data-tag {TAG} --type als --split none" in err


@pytest.mark.parametrize("command", ["serve", "deploy"])
def test_a_mistyped_data_tag_names_the_datasets_not_a_train_command(
    world: World, capsys: pytest.CaptureFixture, command: str
) -> None:
    code = main(
        [command, "--data-dir", str(world.data_dir), "--model-dir", str(world.model_dir),
         "--data-tag", "svx", "--type", "als", "--port", "0"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "no dataset tagged 'svx'" in err and f"the datasets there: {TAG}" in err
    assert "deepcart train" not in err


def test_serve_on_a_busy_port_is_one_line_before_serving(world: World, tmp_path: Path) -> None:
    """The process: exit 2 with one line, and no "Serving ..." line before it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "deepcart", "serve", "--data-dir", str(world.data_dir),
             "--data-tag", TAG, "--type", "als", "--model-dir", str(world.model_dir),
             "--db-url", f"sqlite:///{tmp_path / 'r.db'}", "--port", str(port)],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"deepcart: error: --port {port}: cannot listen on 127.0.0.1:")


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("", "--host (or DEEPCART_HOST): empty"),  # bind("") would listen on every address
        ("no-such-host.invalid", "--host no-such-host.invalid: not an address of this machine"),
        ("192.0.2.1", "--host 192.0.2.1: not an address of this machine"),  # TEST-NET-1
    ],
)
def test_a_bad_host_names_host_not_port(
    world: World,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    message: str,
) -> None:
    from deepcart.serve import api

    def run(*_args: object) -> None:
        raise AssertionError(f"served on host {host!r}")

    monkeypatch.setattr(api, "run_server", run)  # a regression fails here instead of serving
    code = main(
        ["serve", "--data-dir", str(world.data_dir), "--model-dir", str(world.model_dir),
         "--data-tag", TAG, "--type", "als", "--port", "0", "--host", host]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"deepcart: error: {message}"), err
    assert "--port" not in err


@pytest.mark.parametrize("command", ["serve", "deploy"])
def test_port_0_prints_the_port_the_system_chose(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    from deepcart.serve import api, deploy

    served: list[int] = []

    def run(_app: object, settings: object, sock: socket.socket) -> None:
        served.append(sock.getsockname()[1])
        assert settings.port == served[0]  # type: ignore[attr-defined]
        sock.close()

    monkeypatch.setattr(api, "run_server", run)
    monkeypatch.setattr(deploy, "run_server", run)
    lines: list[str] = []
    settings = world.settings(tmp_path / "r.db", port=0)
    if command == "serve":
        api.serve(settings, echo=lines.append)
    else:
        deploy.deploy(settings, echo=lines.append)
    assert served and served[0] != 0
    assert f"http://127.0.0.1:{served[0]}" in lines[0] and ":0/" not in lines[0], lines


def test_the_port_is_held_while_the_models_load(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve and deploy listen before they load: no other process can take the port meanwhile,
    and a client that connects during the load waits in the backlog instead of being refused."""
    from deepcart.serve import api

    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    during: list[str] = []
    real = api.load_state

    def loading(settings: object) -> object:
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError):
                other.bind(("127.0.0.1", port))
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            during.append("queued")
        return real(settings)

    monkeypatch.setattr(api, "load_state", loading)
    settings = load_settings(
        data_dir=world.data_dir, model_dir=world.model_dir, data_tag=TAG, type="als",
        port=port, db_url=f"sqlite:///{tmp_path / 'r.db'}",
    )  # fmt: skip
    state, sock = api.prepare(settings)
    try:
        assert during == ["queued"] and sock.getsockname()[1] == port
        assert "als" in state.describe()
    finally:
        sock.close()
    # A load that fails releases the port.
    monkeypatch.setattr(api, "load_state", lambda s: (_ for _ in ()).throw(InputError("boom")))
    with pytest.raises(InputError, match="boom"):
        api.prepare(settings)
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_a_misspelt_variable_is_named_with_the_closest_setting(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from deepcart.serve.config import unknown_variables

    env = {"DEEPCART_DATATAG": "t", "DEEPCART_PORT": "1", "DEEPCART_SHARE_SERVER": "s", "PATH": "/"}
    assert unknown_variables(env) == [
        "ignoring the environment variable DEEPCART_DATATAG: no such setting (did you mean "
        "DEEPCART_DATA_TAG?)"
    ]
    # serve says so before anything else (here the error that the tag was not set).
    monkeypatch.setenv("DEEPCART_DATATAG", TAG)
    monkeypatch.delenv("DEEPCART_DATA_TAG", raising=False)
    code = main(["serve", "--data-dir", str(world.data_dir), "--type", "als", "--port", "0"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 2
    assert err[0].startswith("deepcart: warning: ignoring the environment variable DEEPCART_DAT")
    assert err[1].startswith("deepcart: error: --data-tag")
