"""The service's settings: one pydantic-settings class.

Every field can be set by a ``DEEPCART_<FIELD>`` environment variable (``DEEPCART_DATA_TAG``,
``DEEPCART_PORT``, ``DEEPCART_ADMIN_TOKEN``...); values passed to :func:`load_settings` (the
command-line flags that were given) override them, and they override the defaults. The admin
token is read from the environment only, so it never shows in a process list.
"""

from __future__ import annotations

import difflib
import errno
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from deepcart.data.paths import DEFAULT_DATA_DIR, DEFAULT_MODEL_DIR, check_tag
from deepcart.errors import DeepCartError, InputError
from deepcart.modes import MIN_ENGAGEMENT

ENV_PREFIX = "DEEPCART_"
#: DEEPCART_* variables that are not settings but are read elsewhere (deploy --share's relay).
OTHER_VARIABLES = frozenset({"DEEPCART_SHARE_SERVER"})


class Settings(BaseSettings):
    """What ``deepcart serve`` serves and how (see the module docstring for the sources)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, protected_namespaces=()
    )

    data_dir: Path = DEFAULT_DATA_DIR
    data_tag: str
    type: str
    model_dir: Path = DEFAULT_MODEL_DIR
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: Any SQLAlchemy URL; default: SQLite at ``<data_dir>/_reviews/<data_tag>.db``.
    db_url: str | None = None
    #: Bearer token of the reload endpoints; without one they are off.
    admin_token: SecretStr | None = None
    #: Worst mode ranks only items with at least this many training ratings.
    min_engagement: int = Field(default=MIN_ENGAGEMENT, ge=0)
    #: Cached recommendation lists (known users with unchanged reviews); 0 turns the cache off.
    cache_size: int = Field(default=100_000, ge=0)
    log_level: str = Field(default="warning", pattern="^(critical|error|warning|info|debug)$")
    #: Worker processes (each holds its own state; reloads reach all of them within a second).
    workers: int = Field(default=1, ge=1, le=32)

    @field_validator("data_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        try:
            return check_tag(value)
        except DeepCartError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():  # socket.bind would take "" as every address, not as a mistake
            raise ValueError("empty; give an address of this machine, e.g. 127.0.0.1 or 0.0.0.0")
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        from deepcart.models import REGISTRY

        if value not in REGISTRY:
            raise ValueError(f"unknown model {value!r}; choose one of {', '.join(REGISTRY)}")
        return value

    @field_validator("admin_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None  # an empty variable means "no token": the admin endpoints stay off
        return value

    def database_url(self) -> str:
        """The SQLAlchemy URL of the review store."""
        from deepcart.serve.store import default_db_url

        return self.db_url or default_db_url(self.data_dir, self.data_tag)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A line for each ``DEEPCART_*`` environment variable that nothing reads (pydantic-settings
    ignores them, so a misspelt ``DEEPCART_DATATAG`` would pass unnoticed), with the closest
    name."""
    env = os.environ if environ is None else environ
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | OTHER_VARIABLES
    lines = []
    for name in sorted(env):
        if name.upper().startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            lines.append(f"ignoring the environment variable {name}: no such setting{hint}")
    return lines


def load_settings(**given: object) -> Settings:
    """Settings from ``given`` values (flags), then ``DEEPCART_*`` variables, then defaults.

    A missing or bad value raises an :class:`InputError` naming the flag and the variable.
    """
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        flag = "--" + field.replace("_", "-")
        var = ENV_PREFIX + field.upper()
        msg = "required" if err["type"] == "missing" else err["msg"]
        if err["type"] == "extra_forbidden":
            raise InputError(f"unknown setting {field!r}") from None
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        raise InputError(f"{flag} (or {var}): {msg}") from None


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``DEEPCART_*`` variables that reproduce them (for worker processes)."""
    env = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[ENV_PREFIX + name.upper()] = str(value)
    return env


def url_of(settings: Settings) -> str:
    """The server's base URL (an IPv6 host in brackets)."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def listen_on(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, held from before the loading until the server takes
    it over (so no other process can take the port in between: connections that arrive while
    the models load wait in the backlog); or the one-line error when the port is in use or
    ``host`` is not an address of this machine."""
    if not 0 <= port <= 65535:  # bind() would raise OverflowError
        raise InputError(f"--port: expected 0 to 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise InputError(
                f"--host {host}: not an address of this machine ({exc.strerror or exc}); "
                "use e.g. 127.0.0.1 or 0.0.0.0"
            ) from None
        raise InputError(
            f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another with --port"
        ) from None
    sock.set_inheritable(True)
    return sock


def bound_to(settings: Settings, sock: socket.socket) -> Settings:
    """``settings`` with the port ``sock`` listens on: the one the system chose for
    ``--port 0``, so that the printed URL (and --share, and the workers) use it."""
    if settings.port:
        return settings
    return settings.model_copy(update={"port": sock.getsockname()[1]})


def check_port(host: str, port: int) -> None:
    """Fail in one line when ``host:port`` cannot be listened on (quickstart checks the demo's
    port before it synthesizes anything); :func:`listen_on` when the socket is to be kept."""
    listen_on(host, port).close()
