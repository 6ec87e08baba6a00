"""A Docker engine for kind: the one that answers, or a dockerd of our own.

Lookup: ``$DOCKER_HOST`` (then it must answer), the default socket, our own socket (a dockerd that
an earlier run left up, or another terminal's ``make kind-cluster``). Otherwise we start ``dockerd``
with its own data root under the cache (so images survive it), the socket ``OUR_SOCKET`` and a log
that is kept; Debian's ``docker.io`` is installed first where we are root and it is missing.

kind runs every node ``--privileged``. Where the host's capability bounding set lacks a capability
(CAP_SYS_RESOURCE on our CI VMs) runc cannot grant it and every privileged container fails; on a
dockerd of ours we then register ``files/runc-nosysres`` as the default runtime (detected by trying,
never assumed). A foreign engine with that problem is reported, not reconfigured.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.devcluster.binaries import CACHE_ROOT
from devtools.devcluster.processes import stop_process
from devtools.kind.host import HostError, ensure_commands, log

OUR_SOCKET = Path("/run/production-policy/docker.sock")
OUR_HOST = f"unix://{OUR_SOCKET}"
DEFAULT_HOST = "unix:///var/run/docker.sock"
DOCKERD_HOME = CACHE_ROOT / "dockerd"
WRAPPER_SOURCE = Path(__file__).parent / "files" / "runc-nosysres"
WRAPPER_RUNTIME = "runc-nosysres"
# What runc says when the bounding set lacks a capability that --privileged asks for.
CAPS_REFUSED = "unable to apply caps"
CAP_SYS_RESOURCE = 24


class EngineError(RuntimeError):
    """No Docker engine can be had for kind; the message says exactly why."""


@dataclass(frozen=True)
class Docker:
    """What one docker CLI call returned."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class Engine:
    """A Docker engine that answers at ``host``; ``process`` is set when we started it."""

    host: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # Set once we had to run containers through the wrapper: nothing in them has CAP_SYS_RESOURCE.
    drops_sys_resource: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ours(self) -> bool:
        return self.process is not None

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker and kind: this engine, whatever the caller's DOCKER_HOST said."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(
        self, *args: str, stdin: Path | None = None, check: bool = True, timeout: float = 900
    ) -> Docker:
        """Run the docker CLI against this engine (``stdin``: a file to feed it); on failure raise
        EngineError with its stderr."""
        with stdin.open("rb") if stdin else open(os.devnull, "rb") as source:
            proc = subprocess.run(
                ["docker", *args], env=self.env, stdin=source, capture_output=True, timeout=timeout
            )
        result = Docker(
            proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        )
        if check and result.returncode != 0:
            raise EngineError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()[-2000:]}")
        return result

    def leave_running(self) -> None:
        """Leave our dockerd running after us (a kept cluster lives in it): ``stop`` does nothing then."""
        if self.process is not None:
            log(f"leaving our dockerd (pid {self.process.pid}) running at {self.host}")
            self.process = None

    def stop(self) -> None:
        """Stop the dockerd we started (its containers stop with it); a found engine is left alone."""
        if self.process is not None:
            log(f"stopping our dockerd (pid {self.process.pid}); its log stays in {self.log_path}")
            stop_process(self.process, grace=60)
            self.process = None


def answers(host: str) -> bool:
    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, "DOCKER_HOST": host},
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def find_engine() -> Engine | None:
    """An engine that already answers, or None; a ``$DOCKER_HOST`` that does not answer is an error."""
    ensure_commands({"docker": "docker.io"}, "talking to a Docker engine")
    explicit = os.environ.get("DOCKER_HOST")
    if explicit:
        if answers(explicit):
            return Engine(explicit)
        raise EngineError(f"DOCKER_HOST={explicit} is set but no Docker engine answers there")
    for host in (DEFAULT_HOST, OUR_HOST):
        if answers(host):
            return Engine(host)
    return None


def start_engine() -> Engine:
    """Start a dockerd of our own (installing Debian's docker.io first if we may) and wait for it."""
    try:
        tools = ensure_commands({"dockerd": "docker.io", "docker": "docker.io"}, "a Docker engine of our own")
    except HostError as exc:
        raise EngineError(f"no Docker engine answers ({DEFAULT_HOST}, {OUR_HOST}) and {exc}") from exc
    if answers(DEFAULT_HOST):
        # Where systemd runs, installing docker.io has just started the system's own dockerd: use it.
        return Engine(DEFAULT_HOST)
    DOCKERD_HOME.mkdir(parents=True, exist_ok=True)
    OUR_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    # Every start begins without the wrapper, so whether it is needed is found out again.
    config = DOCKERD_HOME / "daemon.json"
    config.write_text("{}\n")
    log_path = DOCKERD_HOME / "dockerd.log"
    argv = [
        str(tools["dockerd"]),
        f"--host={OUR_HOST}",
        f"--data-root={DOCKERD_HOME / 'data'}",
        f"--exec-root={OUR_SOCKET.parent / 'docker-exec'}",
        f"--pidfile={OUR_SOCKET.parent / 'docker.pid'}",
        f"--config-file={config}",
    ]
    with log_path.open("ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        # Its own session: a Ctrl-C in the terminal must not reach dockerd before kind has deleted the
        # cluster; we stop it ourselves, last.
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    engine = Engine(OUR_HOST, process, log_path)
    deadline = time.monotonic() + 60
    while not answers(OUR_HOST):
        if process.poll() is not None or time.monotonic() > deadline:
            engine.stop()
            raise EngineError(f"our dockerd did not come up; the end of {log_path}:\n{_tail(log_path)}")
        time.sleep(0.5)
    log(f"started our dockerd (pid {process.pid}) at {OUR_HOST}; log {log_path}")
    return engine


def find_or_start_engine() -> Engine:
    return find_engine() or start_engine()


def ensure_privileged(engine: Engine, probe_image: str) -> None:
    """Make sure ``docker run --privileged`` works on ``engine``, registering the runc wrapper if needed;
    record in ``engine.drops_sys_resource`` whether its privileged containers lack CAP_SYS_RESOURCE."""
    failure, capabilities = _privileged_probe(engine, probe_image)
    if failure is not None:
        if CAPS_REFUSED not in failure or not engine.ours:
            hint = (
                ""
                if engine.ours
                else f"\n(not our dockerd, so we leave it alone; {WRAPPER_SOURCE} is the runc wrapper that "
                "fixes a missing capability, registered as the default runtime)"
            )
            raise EngineError(
                f"`docker run --privileged` (kind needs it) fails on {engine.host}: {failure}{hint}"
            )
        _register_wrapper(engine)
        still, capabilities = _privileged_probe(engine, probe_image)
        if still is not None:
            raise EngineError(f"`docker run --privileged` still fails with {WRAPPER_RUNTIME}: {still}")
        refusal = next(line for line in failure.splitlines() if CAPS_REFUSED in line)
        note = (
            f"this host's capability bounding set lacks a capability that --privileged asks for ({refusal}); "
            f"our dockerd now runs containers with {WRAPPER_RUNTIME}, which drops CAP_SYS_RESOURCE"
        )
        engine.notes.append(note)
        log(note)
    engine.drops_sys_resource = not capabilities & (1 << CAP_SYS_RESOURCE)


def _register_wrapper(engine: Engine) -> None:
    wrapper = install_wrapper()
    config = DOCKERD_HOME / "daemon.json"
    settings = {"runtimes": {WRAPPER_RUNTIME: {"path": str(wrapper)}}, "default-runtime": WRAPPER_RUNTIME}
    config.write_text(json.dumps(settings) + "\n")
    assert engine.process is not None
    os.kill(engine.process.pid, signal.SIGHUP)  # dockerd 20.10 reloads runtimes and the default one
    deadline = time.monotonic() + 30
    while engine.docker("info", "--format", "{{.DefaultRuntime}}").stdout.strip() != WRAPPER_RUNTIME:
        if time.monotonic() > deadline:
            raise EngineError(f"our dockerd did not take {WRAPPER_RUNTIME} as default runtime; see {config}")
        time.sleep(0.5)


def install_wrapper() -> Path:
    """The runc wrapper with the real runc and jq filled in, in the cache (dockerd needs a fixed path)."""
    tools = ensure_commands({"runc": "runc", "jq": "jq"}, "the runc wrapper without CAP_SYS_RESOURCE")
    text = (
        WRAPPER_SOURCE.read_text()
        .replace("@REAL_RUNC@", str(tools["runc"]))
        .replace("@JQ@", str(tools["jq"]))
    )
    target = DOCKERD_HOME / "bin" / WRAPPER_RUNTIME
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_suffix(".new")
    staging.write_text(text)
    staging.chmod(0o755)
    staging.replace(target)
    return target


def _privileged_probe(engine: Engine, image: str) -> tuple[str | None, int]:
    """(why a privileged container fails or None, the effective capability mask it got)."""
    proc = engine.docker(
        "run",
        "--rm",
        "--privileged",
        "--network=none",
        image,
        "/bin/grep",
        "CapEff",
        "/proc/self/status",
        check=False,
    )
    match = re.search(r"CapEff:\s*([0-9a-f]+)", proc.stdout)
    if proc.returncode == 0 and match:
        return None, int(match.group(1), 16)
    return proc.stderr.strip() or f"exit {proc.returncode}: {proc.stdout.strip()}", 0


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
