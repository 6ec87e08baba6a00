"""Images for kind without a registry: the node image, assembled offline, and a busybox test image.

``kind build node-image`` cannot work offline (it pulls etcd, CoreDNS, pause and kindnet, and needs
containerd 2 in its base), so we do its steps ourselves:

1. **base** (``BASE_REPOSITORY:<key>``): a Debian rootfs from ``debootstrap`` (systemd, containerd,
   runc, iptables, CNI plugins), kind's own base-image files from the kind module, our static CNI.
   Slow (minutes), and independent of the Kubernetes version.
2. **components**: one ``FROM scratch`` image per binary under the exact name kubeadm asks for
   (``registry.k8s.io/kube-apiserver:v1.37.2``...), kube-proxy with the iptables userland copied
   out of the base rootfs.
3. **node** (``NODE_REPOSITORY:<version>-<key>``): the base plus kubelet, kubeadm, kubectl and
   ``/kind/version``, then the component images imported into its containerd and committed.

Each tag carries a hash of what it is made of (versions, binaries, our files and the source of the
functions that build it), so a change to any of them builds a new image and nothing else does.
Host-specific settings (cgroup v1, no CAP_SYS_RESOURCE) are not baked in: cluster.py passes them in
the kind config, so an image built here runs anywhere and ``KIND_NODE_IMAGE`` can replace it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from devtools.devcluster.binaries import CACHE_ROOT, download_module
from devtools.kind.binaries import KIND_VERSION, KindBinaries, kubeadm_images
from devtools.kind.engine import Engine
from devtools.kind.host import debian_mirror, ensure_commands, log

SUITE = "bookworm"
PACKAGES = (
    "systemd,containerd,runc,iptables,conntrack,iproute2,ethtool,socat,kmod,procps,jq,ca-certificates,"
    "containernetworking-plugins,libseccomp2,util-linux,mount,bash"
)
BASE_REPOSITORY = "production-policy/kind-base"
NODE_REPOSITORY = "production-policy/kind-node"
PART_REPOSITORY = "production-policy/kind-part"
BUSYBOX_REPOSITORY = "production-policy/busybox"
FILES = Path(__file__).parent / "files"
PATH_ENV = "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
# As kind's own base image: systemd as PID 1 behind kind's entrypoint, stopped the way systemd wants.
NODE_ENTRYPOINT = 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'
NODE_IMAGE_CONFIG = f"ENV container=docker\nSTOPSIGNAL SIGRTMIN+3\n{NODE_ENTRYPOINT}\n"


class ImageError(RuntimeError):
    """An image could not be built; the message says which step failed and why."""


def _key(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if callable(part):
            part = inspect.getsource(part)
        elif isinstance(part, Path):
            part = part.read_bytes() if part.is_file() else str(part)
        digest.update(repr(part).encode() if not isinstance(part, bytes) else part)
    return digest.hexdigest()[:12]


def _stamp(path: Path) -> str:
    """A cheap identity for a cached binary: a rebuild changes its size or mtime."""
    stat = path.stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def exists(engine: Engine, ref: str) -> bool:
    return engine.docker("image", "inspect", "--format", "{{.Id}}", ref, check=False).returncode == 0


def docker_build(engine: Engine, tag: str, context: Path, dockerfile: str) -> None:
    """``docker build`` of a local-only Dockerfile (FROM scratch or one of ours: nothing is pulled)."""
    (context / "Dockerfile").write_text(dockerfile)
    # The classic builder: it is in every engine, and buildx is not.
    env = {**engine.env, "DOCKER_BUILDKIT": "0"}
    proc = subprocess.run(
        ["docker", "build", "--quiet", "--network=none", "-t", tag, str(context)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise ImageError(f"docker build {tag} failed: {proc.stderr.strip()[-2000:]}")


# ---------------------------------------------------------------- busybox


def busybox_image(engine: Engine) -> str:
    """Debian's static busybox with every applet on PATH: sh, httpd, nc, sleep... (its wget crashes here)."""
    busybox = ensure_commands({"busybox": "busybox-static"}, "the busybox test image")["busybox"]
    if _is_dynamic(busybox.read_bytes()[:4096], busybox):
        raise ImageError(
            f"{busybox} is linked dynamically; the test image needs a static one (busybox-static)"
        )
    version = re.search(r"v(\d+\.\d+\.\d+)", subprocess.run([busybox], capture_output=True, text=True).stdout)
    tag = f"{BUSYBOX_REPOSITORY}:{version.group(1) if version else '0'}-{_key(busybox, busybox_image)}"
    if exists(engine, tag):
        return tag
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="pp-busybox-") as tmp:
        root = Path(tmp) / "root"
        (root / "bin").mkdir(parents=True)
        (root / "tmp").mkdir(mode=0o1777)
        shutil.copy2(busybox, root / "bin" / "busybox")
        for applet in applets:
            if applet != "busybox":
                (root / "bin" / applet).symlink_to("busybox")
        docker_build(engine, tag, Path(tmp), "FROM scratch\nCOPY root /\nENV PATH=/bin\n")
    log(f"built {tag}")
    return tag


def _is_dynamic(head: bytes, path: Path) -> bool:
    """Whether an ELF file has a program interpreter (PT_INTERP), i.e. needs a dynamic loader."""
    if head[:4] != b"\x7fELF" or head[4] != 2:
        raise ImageError(f"{path} is not a 64-bit ELF executable")
    phoff = int.from_bytes(head[32:40], "little")
    phentsize = int.from_bytes(head[54:56], "little")
    phnum = int.from_bytes(head[56:58], "little")
    for i in range(phnum):
        offset = phoff + i * phentsize
        if int.from_bytes(head[offset : offset + 4], "little") == 3:
            return True
    return False


# ---------------------------------------------------------------- base


def kind_source() -> Path:
    """The kind module's source (its images/base/files), from the Go module cache or proxy."""
    with tempfile.TemporaryDirectory(prefix="pp-kindsrc-") as tmp:
        return Path(download_module(Path(tmp), "sigs.k8s.io/kind", KIND_VERSION)["Dir"])


def base_key() -> str:
    return _key(
        SUITE, PACKAGES, KIND_VERSION, _debootstrap, _customize, base_image, FILES / "10-static-ptp.conflist"
    )


def base_image(engine: Engine) -> str:
    """The Kubernetes-independent part of the node image; also its rootfs, for the kube-proxy image."""
    tag = f"{BASE_REPOSITORY}:{SUITE}-{base_key()}"
    if exists(engine, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="pp-kindbase-", dir=_scratch()) as tmp:
        work = Path(tmp)
        root = work / "rootfs"
        _debootstrap(root)
        _customize(root, kind_source() / "images" / "base" / "files")
        log("importing the node rootfs")
        with tarfile.open(work / "rootfs.tar", "w") as tar:
            # /dev is the container runtime's; device nodes in a build context only cause trouble.
            tar.add(root, arcname=".", filter=lambda m: None if m.name.startswith("./dev/") else m)
        shutil.rmtree(root)
        docker_build(engine, tag, work, f"FROM scratch\nADD rootfs.tar /\n{NODE_IMAGE_CONFIG}")
    log(f"built {tag}")
    return tag


def _scratch() -> Path:
    # Under the cache rather than /tmp, which may be a small tmpfs; the rootfs is 300 MB.
    path = CACHE_ROOT / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _debootstrap(root: Path) -> None:
    """The Debian rootfs; kept as a tarball in the cache, so a change to later steps does not redo it."""
    cached = CACHE_ROOT / f"kind-debootstrap-{SUITE}-{_key(SUITE, PACKAGES, _debootstrap)}.tar"
    root.mkdir(parents=True)
    if cached.is_file():
        _tar("-C", str(root), "-xpf", str(cached))
        return
    tools = ensure_commands({"debootstrap": "debootstrap"}, "building the kind node image")
    if os.geteuid() != 0:
        raise ImageError("debootstrap needs root; set KIND_NODE_IMAGE to a prebuilt node image instead")
    mirror = debian_mirror(SUITE)
    log(f"debootstrap {SUITE} (a few minutes)")
    argv = [str(tools["debootstrap"]), "--variant=minbase", f"--include={PACKAGES}", SUITE, str(root), mirror]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        log_file = root / "debootstrap" / "debootstrap.log"
        detail = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else proc.stderr[-3000:]
        raise ImageError(f"debootstrap {SUITE} from {mirror} failed:\n{detail}")
    staging = cached.with_suffix(".partial")
    _tar("-C", str(root), "--numeric-owner", "-cpf", str(staging), ".")
    staging.replace(cached)


def _tar(*args: str) -> None:
    proc = subprocess.run(["tar", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"tar {' '.join(args)} failed: {proc.stderr.strip()[-1000:]}")


def _customize(root: Path, files: Path) -> None:
    """kind's base-image steps (its images/base/Dockerfile) on our rootfs, with Debian's paths."""

    def install(source: Path, directory: str, mode: int) -> None:
        target = root / directory.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / source.name)
        (target / source.name).chmod(mode)

    for f in (files / "usr/local/bin").iterdir():
        install(f, "/usr/local/bin", 0o755)
    for f in (files / "kind/bin").iterdir():
        install(f, "/kind/bin", 0o755)
    install(files / "kind/README.txt", "/kind", 0o644)
    install(files / "etc/crictl.yaml", "/etc", 0o644)
    install(files / "etc/default/kubelet", "/etc/default", 0o644)
    for f in (files / "etc/sysctl.d").iterdir():
        install(f, "/etc/sysctl.d", 0o644)
    for f in (files / "etc/systemd/system").iterdir():
        # fuse-overlayfs is for rootless nodes, and we ship no fuse-overlayfs.
        if f.is_file() and "fuse-overlayfs" not in f.name:
            install(f, "/etc/systemd/system", 0o644)
    for f in (files / "etc/systemd/system/kubelet.service.d").iterdir():
        install(f, "/etc/systemd/system/kubelet.service.d", 0o644)
    config = (files / "etc/containerd/config.toml").read_text()
    config = re.sub(r"\[proxy_plugins\]\n(?:.*\n)*?  address = .*\n", "", config)
    (root / "etc/containerd").mkdir(parents=True, exist_ok=True)
    (root / "etc/containerd/config.toml").write_text(config)
    # kind's units run containerd from /usr/local/bin; Debian installs it in /usr/bin.
    for name in ("containerd", "containerd-shim-runc-v2", "ctr"):
        link = root / "usr/local/bin" / name
        link.unlink(missing_ok=True)
        link.symlink_to(f"/usr/bin/{name}")
    (root / "opt/cni").mkdir(parents=True, exist_ok=True)
    (root / "opt/cni/bin").symlink_to("/usr/lib/cni")
    install(FILES / "10-static-ptp.conflist", "/etc/cni/net.d", 0o644)
    # kind applies /kind/manifests/default-cni.yaml with `kubectl create -f -`; the static ptp
    # conflist above is all one node needs, so the manifest is one harmless object.
    (root / "kind/manifests").mkdir(parents=True, exist_ok=True)
    (root / "kind/manifests/default-cni.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: static-ptp-cni\n  namespace: kube-system\n"
        "data:\n  note: the node image carries /etc/cni/net.d/10-static-ptp.conflist\n"
    )
    systemd = root / "lib/systemd/system"
    for pattern in (
        "sysinit.target.wants/systemd-tmpfiles-setup.service",
        "multi-user.target.wants/*",
        "local-fs.target.wants/*",
        "sockets.target.wants/*udev*",
        "sockets.target.wants/*initctl*",
        "basic.target.wants/*",
    ):
        for f in systemd.glob(pattern):
            f.unlink()
    for f in (root / "etc/systemd/system").glob("*.wants/*"):
        f.unlink()
    with (root / "etc/systemd/journald.conf").open("a") as journald:
        journald.write("ReadKMsg=no\n")
    init = root / "usr/sbin/init"
    init.unlink(missing_ok=True)
    init.symlink_to("/usr/lib/systemd/systemd")
    _chroot(root, "systemctl", "enable", "kubelet.service", "containerd.service", "undo-mount-hacks.service")
    _chroot(root, "systemctl", "mask", "systemd-binfmt.service")
    (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    spec = json.loads(_chroot(root, "ctr", "oci", "spec"))
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append(
        {"path": "/kind/bin/mount-product-files.sh"}
    )
    spec["process"].pop("rlimits", None)
    (root / "etc/containerd/cri-base.json").write_text(json.dumps(spec, indent=2) + "\n")
    (root / "etc/machine-id").unlink(missing_ok=True)
    # No apt state naming the mirror in the image, and no caches (kind's clean-install does the same).
    (root / "etc/apt/sources.list").write_text("# offline image\n")
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/archives/*.deb", "var/cache/apt/*.bin"):
        for f in root.glob(pattern):
            if f.is_file():
                f.unlink()
    for directory in ("usr/share/doc", "usr/share/man", "var/log"):
        shutil.rmtree(root / directory, ignore_errors=True)
        (root / directory).mkdir()


def _chroot(root: Path, *argv: str) -> str:
    proc = subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"chroot {' '.join(argv)} in the node rootfs failed: {proc.stderr.strip()}")
    return proc.stdout


# ---------------------------------------------------------------- node


def node_key(binaries: KindBinaries) -> str:
    stamps = [_stamp(binaries.control_plane[n]) for n in ("kube-apiserver", "kube-controller-manager")]
    stamps += [_stamp(binaries.control_plane[n]) for n in ("kube-scheduler", "kubectl", "etcd")]
    stamps += [_stamp(p) for p in (*binaries.node.values(), binaries.pause, binaries.coredns)]
    return _key(base_key(), stamps, node_image, _component_images, _kube_proxy_tree, _bake)


def node_image(engine: Engine, binaries: KindBinaries) -> str:
    """The node image for ``binaries``: built once per versions and recipe, then found by its tag."""
    version = binaries.kubernetes_version
    tag = f"{NODE_REPOSITORY}:{version}-{node_key(binaries)}"
    if exists(engine, tag):
        return tag
    base = base_image(engine)
    with tempfile.TemporaryDirectory(prefix="pp-kindnode-", dir=_scratch()) as tmp:
        work = Path(tmp)
        key = tag.rsplit("-", 1)[1]
        parts = _component_images(engine, binaries, base, work, key)
        log(f"saving {len(parts)} component images")
        archive = work / "images.tar"
        engine.docker("save", "-o", str(archive), *parts)
        context = work / "node"
        (context / "bin").mkdir(parents=True)
        for name, path in (
            ("kubelet", binaries.node["kubelet"]),
            ("kubeadm", binaries.node["kubeadm"]),
            ("kubectl", binaries.kubectl),
        ):
            shutil.copy2(path, context / "bin" / name)
            (context / "bin" / name).chmod(0o755)
        # kind reads this file for the kubeadm config's kubernetesVersion: one line, no newline.
        (context / "version").write_text(version)
        staged = f"{tag}-staged"
        docker_build(
            engine, staged, context, f"FROM {base}\nCOPY bin/ /usr/bin/\nCOPY version /kind/version\n"
        )
        try:
            _bake(engine, staged, archive, parts, tag)
        finally:
            engine.docker("rmi", staged, *parts, check=False)
    log(f"built {tag}")
    return tag


def _component_images(
    engine: Engine, binaries: KindBinaries, base: str, work: Path, key: str
) -> dict[str, list[str]]:
    """The control-plane, kube-proxy, CoreDNS and pause images: each built under a name of ours
    (``PART_REPOSITORY:<component>-<key>``, so an engine's own registry.k8s.io images are never
    retagged), mapped to the names kubeadm will run it by inside the node."""
    wanted = kubeadm_images(binaries.node["kubeadm"], binaries.kubernetes_version)
    needed = {
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "etcd",
        "coredns",
        "pause",
    }
    if needed - wanted.keys():
        raise ImageError(f"kubeadm's image list lacks {sorted(needed - wanted.keys())}: {wanted}")
    parts: dict[str, list[str]] = {}

    def build(name: str, dockerfile: str, context: Path) -> str:
        part = f"{PART_REPOSITORY}:{name}-{key}"
        docker_build(engine, part, context, dockerfile)
        parts[part] = [wanted[name]]
        return part

    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        context = work / name
        (context / "bin").mkdir(parents=True)
        shutil.copy2(binaries.control_plane[name], context / "bin" / name)
        build(name, f"FROM scratch\nCOPY bin/ /usr/local/bin/\nENV {PATH_ENV}\n", context)
    # CoreDNS's Deployment passes only args, so the image's entrypoint must be the binary; pause likewise.
    for name, binary in (("coredns", binaries.coredns), ("pause", binaries.pause)):
        context = work / name
        context.mkdir()
        shutil.copy2(binary, context / name)
        build(name, f'FROM scratch\nCOPY {name} /{name}\nENTRYPOINT ["/{name}"]\n', context)
    # containerd's sandbox_image and kubeadm's pause tag differ (3.10 and 3.10.2 at 1.37): both.
    sandbox = _sandbox_image(engine, base)
    pause = f"{PART_REPOSITORY}:pause-{key}"
    parts[pause] = sorted({*parts[pause], sandbox})
    context = work / "kube-proxy"
    _kube_proxy_tree(engine, base, context / "root", binaries.node["kube-proxy"])
    build("kube-proxy", f"FROM scratch\nCOPY root/ /\nENV {PATH_ENV}\n", context)
    return parts


def _sandbox_image(engine: Engine, base: str) -> str:
    config = engine.docker(
        "run", "--rm", "--network=none", "--entrypoint=cat", base, "/etc/containerd/config.toml"
    )
    match = re.search(r'sandbox_image\s*=\s*"([^"]+)"', config.stdout)
    if not match:
        raise ImageError("the node's containerd config names no sandbox_image")
    return match.group(1)


IPTABLES = ("xtables-nft-multi", "xtables-legacy-multi", "conntrack")


def _kube_proxy_tree(engine: Engine, base: str, root: Path, kube_proxy: Path) -> None:
    """kube-proxy plus the iptables userland of the node rootfs: the binaries, the libraries ldd
    names, and the xtables modules (dlopen()ed, so ldd of the binaries alone misses them)."""
    with tempfile.TemporaryDirectory(prefix="pp-rootfs-", dir=_scratch()) as tmp:
        rootfs = Path(tmp)
        container = engine.docker("create", "--network=none", base).stdout.strip()
        try:
            export = subprocess.Popen(["docker", "export", container], env=engine.env, stdout=subprocess.PIPE)
            assert export.stdout is not None
            with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
                tar.extractall(rootfs, filter=_rootfs_member)
            if export.wait() != 0:
                raise ImageError(f"docker export of {base} failed")
        finally:
            engine.docker("rm", "-f", container, check=False)
        wanted = [f"/usr/sbin/{b}" for b in IPTABLES]
        modules = sorted((rootfs / "usr/lib/x86_64-linux-gnu/xtables").glob("*.so"))
        wanted += [f"/{m.relative_to(rootfs)}" for m in modules]
        libraries: set[str] = set()
        for path in wanted:
            libraries |= _ldd(rootfs, path)
        for path in sorted({*wanted, *libraries}):
            _copy_from_root(rootfs, path, root)
        for f in ("etc/protocols", "etc/services", "etc/ethertypes"):
            _copy_from_root(rootfs, f"/{f}", root)
    for top in ("lib", "lib64", "bin", "sbin"):
        (root / top).symlink_to(f"usr/{top}")
    sbin = root / "usr/sbin"
    # The node's entrypoint picks the nft backend where the host's rules are nft (ours are): match it.
    for name in (
        "iptables",
        "iptables-save",
        "iptables-restore",
        "ip6tables",
        "ip6tables-save",
        "ip6tables-restore",
    ):
        (sbin / name).symlink_to("xtables-nft-multi")
        (sbin / name.replace("tables", "tables-legacy", 1)).symlink_to("xtables-legacy-multi")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n")
    (root / "usr/local/bin").mkdir(parents=True)
    shutil.copy2(kube_proxy, root / "usr/local/bin/kube-proxy")


def _rootfs_member(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    # Only what the kube-proxy tree can use; device nodes and the rest are skipped.
    if not member.name.startswith(("usr/", "etc/", "lib", "bin", "sbin")) or member.isdev():
        return None
    return tarfile.tar_filter(member, path)


def _ldd(rootfs: Path, path: str) -> set[str]:
    out = _chroot(rootfs, "ldd", path)
    found = set()
    for line in out.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            found.add(match.group(1))
    return found


def _resolve_in(root: Path, path: str) -> Path:
    """``path`` inside ``root`` with every symlink followed inside ``root`` (not on the host)."""
    parts = [p for p in path.split("/") if p]
    current = root
    for _ in range(64):
        if not parts:
            return current
        candidate = current / parts.pop(0)
        if candidate.is_symlink():
            target = os.readlink(candidate)
            parts = [p for p in target.split("/") if p] + parts
            current = root if target.startswith("/") else current
        else:
            current = candidate
    raise ImageError(f"too many symlinks resolving {path} in {root}")


def _copy_from_root(rootfs: Path, path: str, tree: Path) -> None:
    """Copy the file ``path`` names in ``rootfs`` to the same place under ``tree``, with the merged-usr
    top directories (/lib, /lib64, /bin, /sbin) spelled as their /usr targets."""
    source = _resolve_in(rootfs, path)
    relative = path.lstrip("/")
    for top in ("lib/", "lib64/", "bin/", "sbin/"):
        if relative.startswith(top):
            relative = f"usr/{relative}"
    target = tree / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _bake(engine: Engine, staged: str, archive: Path, parts: dict[str, list[str]], tag: str) -> None:
    """Import the component images into the staged node's containerd under kubeadm's names and commit
    the result: what ``kind build node-image`` does, without its pulls."""
    container = engine.docker(
        "run",
        "-d",
        "--network=none",
        "--entrypoint=sleep",
        "--security-opt",
        "seccomp=unconfined",
        staged,
        "infinity",
    ).stdout.strip()
    ctr = ["exec", container, "ctr", "--namespace=k8s.io", "images"]
    try:
        engine.docker(
            "exec",
            container,
            "sh",
            "-c",
            "nohup containerd >/tmp/containerd.log 2>&1 & echo $! > /tmp/containerd.pid; "
            "for i in $(seq 100); do [ -S /run/containerd/containerd.sock ] && exit 0; sleep 0.1; done; "
            "cat /tmp/containerd.log; exit 1",
        )
        log("importing the component images into the node's containerd")
        engine.docker(
            "exec",
            "-i",
            container,
            "ctr",
            "--namespace=k8s.io",
            "images",
            "import",
            "--label=io.cri-containerd.pinned=pinned",
            "--all-platforms",
            "--no-unpack",
            "-",
            stdin=archive,
        )
        for part, names in parts.items():
            imported = f"docker.io/{part}"  # how containerd spells a docker hub name
            engine.docker(*ctr, "tag", imported, *names)
            engine.docker(*ctr, "rm", imported)
        engine.docker(
            "exec", container, "sh", "-c", "kill $(cat /tmp/containerd.pid); rm -f /tmp/containerd.*"
        )
        engine.docker("commit", "--change", NODE_ENTRYPOINT, container, tag)
    finally:
        engine.docker("rm", "-f", "-v", container, check=False)
