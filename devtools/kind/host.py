"""What the kind tooling needs of the host: commands (installed from Debian where we may) and a mirror."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


class HostError(RuntimeError):
    """The host lacks something and we may not, or could not, install it; the message says what."""


def log(message: str) -> None:
    print(f"[kind] {message}", file=sys.stderr, flush=True)


def can_install() -> bool:
    """Only as root on a Debian-like host do we install packages ourselves."""
    return os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def ensure_commands(commands: dict[str, str], why: str) -> dict[str, Path]:
    """Absolute paths of ``commands`` (command -> Debian package), installing the missing ones if we may."""
    missing = {c: p for c, p in commands.items() if _which(c) is None}
    if missing:
        packages = sorted(set(missing.values()))
        if not can_install():
            raise HostError(
                f"{why} needs {', '.join(sorted(missing))} (Debian: {' '.join(packages)}); they are not on "
                "PATH and we install packages only as root on a Debian-like host"
            )
        log(f"installing {' '.join(packages)} ({why})")
        _apt_install(packages)
    found = {c: _which(c) for c in commands}
    still = sorted(c for c, path in found.items() if path is None)
    if still:
        raise HostError(f"{why}: {', '.join(still)} still not on PATH after installing the packages")
    return {c: path for c, path in found.items() if path is not None}


def _which(command: str) -> Path | None:
    # apt puts daemons in /usr/sbin, which a non-login PATH may lack.
    path = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin:/usr/bin:/bin")
    return Path(path) if path else None


def _apt_install(packages: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    first = subprocess.run(argv, env=env, capture_output=True, text=True)
    if first.returncode == 0:
        return
    # A fresh machine often has no package lists yet.
    subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True)
    second = subprocess.run(argv, env=env, capture_output=True, text=True)
    if second.returncode != 0:
        tail = "\n".join(second.stderr.strip().splitlines()[-10:])
        raise HostError(f"apt-get install {' '.join(packages)} failed (also after apt-get update):\n{tail}")


def debian_mirror(suite: str) -> str:
    """The Debian mirror the host's apt sources use for ``suite`` (``$PP_DEBIAN_MIRROR`` overrides)."""
    if os.environ.get("PP_DEBIAN_MIRROR"):
        return os.environ["PP_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        if source.is_file():
            found = mirror_in(source.read_text(errors="replace"), suite)
            if found:
                return found
    raise HostError(
        f"no Debian mirror for {suite!r} in the host's apt sources; set PP_DEBIAN_MIRROR to one "
        "(or KIND_NODE_IMAGE to a node image that is already built)"
    )


def mirror_in(text: str, suite: str) -> str | None:
    """The first URI serving ``suite`` with component main, in one-line or deb822 apt source ``text``."""
    for line in text.splitlines():
        # "deb [arch=amd64 signed-by=...] URI SUITE COMPONENT..."
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
            return words[1]
    for stanza in re.split(r"\n\s*\n", text):
        fields = _deb822(stanza)
        if (
            "deb" in fields.get("types", "").split()
            and suite in fields.get("suites", "").split()
            and "main" in fields.get("components", "").split()
            and fields.get("enabled", "yes") != "no"
        ):
            return fields["uris"].split()[0]
    return None


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if line.startswith("#"):
            continue
        if line[:1].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields
