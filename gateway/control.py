"""The local status channel: a UNIX socket the daemon serves and `storegw status` queries.

Protocol: the client sends one JSON line (`{"get": "status"}`), the server answers one JSON
line (the status dict, or `{"error": "..."}`) and closes. The socket lives in
`$RUNTIME_DIRECTORY` (systemd's `RuntimeDirectory=storegw`), else in `gateway.state_dir`
(contract.md "Daemon behaviour"), with mode 0660 so the daemon's group may read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.status_table import format_status

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "ControlServer",
    "ControlSocketError",
    "StatusUnavailable",
    "format_status",
    "query_status",
    "socket_path",
]

log = logging.getLogger(__name__)

SOCKET_NAME = "status.sock"
_MAX_REQUEST = 4096
_MAX_RESPONSE = 16 * 1024 * 1024
_CLIENT_TIMEOUT = 5.0
# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL (unix(7)).
_MAX_PATH = 107


class ControlSocketError(RuntimeError):
    """The status socket cannot be served (another daemon owns it, or the path is taken)."""


class StatusUnavailable(Exception):  # noqa: N818 - the name is the CLI's API (brief H3)
    """The running daemon could not be asked; the message says where and what to check."""


class _GatewaySection(Protocol):
    @property
    def state_dir(self) -> Path: ...


class _StatusSection(Protocol):
    @property
    def socket(self) -> Path | None: ...


class _Config(Protocol):
    @property
    def gateway(self) -> _GatewaySection: ...

    @property
    def status(self) -> _StatusSection: ...


# Where the installed unit's RuntimeDirectory=storegw puts the socket (systemd/storegw.service).
SYSTEMD_SOCKET = Path("/run/storegw") / SOCKET_NAME


def socket_path(
    config: _Config, env: Mapping[str, str] | None = None, *, client: bool = False
) -> Path:
    """Where the status socket is: `status.socket`, else `$RUNTIME_DIRECTORY`, else (for a
    client run by hand, when the unit's socket exists) `/run/storegw`, else `gateway.state_dir`."""
    if config.status.socket is not None:
        return config.status.socket
    environ = os.environ if env is None else env
    # systemd joins several RuntimeDirectory= entries with ':' (systemd.exec(5)).
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / SOCKET_NAME
    if client and SYSTEMD_SOCKET.exists():
        return SYSTEMD_SOCKET
    return Path(config.gateway.state_dir) / SOCKET_NAME


class ControlServer:
    """Serves the status dict on a UNIX socket, one request per connection."""

    def __init__(self, path: Path, status: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self._status = status
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Bind the socket (replacing a stale one) and start answering."""
        if len(os.fsencode(self.path)) > _MAX_PATH:
            raise ValueError(f"status socket path {self.path} is longer than {_MAX_PATH} bytes")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self._server = await asyncio.start_unix_server(
            self._client, path=self.path, limit=_MAX_REQUEST
        )
        self.path.chmod(0o660)
        log.info("Status socket listening on %s", self.path)

    def _remove_stale(self) -> None:
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlSocketError(
                f"{self.path} exists and is not a socket; refusing to replace it"
            )
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(os.fspath(self.path))
            except OSError:
                log.info("Replacing the stale status socket %s", self.path)
                self.path.unlink(missing_ok=True)
                return
        raise ControlSocketError(
            f"another storegw already runs with this state directory ({self.path} answers); "
            "stop it first (systemctl stop storegw) or give this one its own gateway.state_dir"
        )

    async def close(self) -> None:
        """Stop listening, end open connections and remove the socket file."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        self.path.unlink(missing_ok=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            task.set_name("control:client")
            self._clients.add(task)
        try:
            async with asyncio.timeout(_CLIENT_TIMEOUT):
                line = await reader.readline()
                writer.write(json.dumps(self._answer(line), default=str).encode() + b"\n")
                await writer.drain()
        except (TimeoutError, ConnectionError, ValueError) as exc:
            # ValueError: a request line over the limit (StreamReader.readline).
            log.debug("Status client dropped: %r", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if task is not None:
                self._clients.discard(task)

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError:
            return {"error": "the request is not a JSON line"}
        if request != {"get": "status"}:
            return {"error": 'unknown request; send {"get": "status"}'}
        try:
            return self._status()
        except Exception:
            log.exception("Building the status failed")
            return {"error": "the daemon failed to build its status; see its log"}


def query_status(path: Path, timeout: float = 3.0) -> dict[str, Any]:
    """Ask the running daemon for its status (blocking; for the CLI)."""
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(os.fspath(path))
            sock.sendall(b'{"get":"status"}\n')
            data = _read_line(sock, deadline)
    except FileNotFoundError:
        raise StatusUnavailable(
            f"No status socket at {path}: storegw is not running, or runs with another "
            "config or state directory. Check `systemctl status storegw` and pass the "
            "daemon's config with -c."
        ) from None
    except ConnectionRefusedError:
        raise StatusUnavailable(
            f"Nothing listens on {path} (a socket left by a stopped storegw). "
            "Check `systemctl status storegw`."
        ) from None
    except PermissionError:
        raise StatusUnavailable(
            f"Permission denied on {path}: run as root or as a member of the daemon's group."
        ) from None
    except TimeoutError:
        raise StatusUnavailable(
            f"storegw did not answer on {path} within {timeout:g} s; check `journalctl -u storegw`."
        ) from None
    except OSError as exc:
        raise StatusUnavailable(f"Could not reach storegw on {path}: {exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise StatusUnavailable(f"The answer on {path} is not JSON; is it storegw?") from None
    if not isinstance(answer, dict):
        raise StatusUnavailable(f"The answer on {path} is not a status object; is it storegw?")
    if set(answer) == {"error"}:
        raise StatusUnavailable(f"storegw on {path} answered: {answer['error']}")
    return answer


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or size > _MAX_RESPONSE:
            break
    return b"".join(chunks)
