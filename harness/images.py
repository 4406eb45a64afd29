"""Build the project's images, tagged by a hash of their inputs so unchanged images are reused.

No registry is reachable on the machines this runs on, so the base image is made locally with
debootstrap + ``docker import`` unless ``HARNESS_BASE_IMAGE`` names one (e.g. ``debian:bookworm-slim``
on a machine with a registry). Every project image is ``FROM ${BASE}``; the Dockerfiles stay
conventional and build from a stock Debian base too.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import yaml
from filelock import FileLock

from harness.errors import ImageBuildError

ROOT = Path(__file__).resolve().parent.parent
IMAGES_DIR = ROOT / "images"
CACHE_DIR = ROOT / ".cache"
SUITE = "bookworm"
MIRROR = os.environ.get("HARNESS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: Python packages the stand-ins need inside the images (installed from a host-built wheelhouse,
#: because pip inside a container fails TLS checks where TLS is intercepted).
IMAGE_WHEELS = ("websockets>=14,<18", "protobuf>=7.35,<8", "PyYAML>=6,<7", "h11>=0.14,<1", "scapy>=2.6,<3",
                "docker>=7.1,<8", "PyJWT>=2.8,<3", "cryptography>=42")  # JWT: the UAA stand-in
LABEL = "harness.image"


@dataclass(frozen=True)
class ImageSpec:
    """One folder under ``images/``: a Dockerfile plus optional ``image.yaml`` (extra context)."""

    name: str
    folder: Path
    include: tuple[str, ...]  # repo paths copied into the build context
    wheels: bool  # whether the wheelhouse goes into the build context

    @property
    def repository(self) -> str:
        return f"harness-{self.name}"


def _log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


def image_specs() -> dict[str, ImageSpec]:
    specs = {}
    for folder in sorted(IMAGES_DIR.iterdir()):
        if not (folder / "Dockerfile").is_file():
            continue
        meta = yaml.safe_load((folder / "image.yaml").read_text()) if (folder / "image.yaml").exists() else {}
        meta = meta or {}
        specs[folder.name] = ImageSpec(
            name=folder.name,
            folder=folder,
            include=tuple(meta.get("include", ())),
            wheels=bool(meta.get("wheels", False)),
        )
    return specs


def _hash_paths(paths: list[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def _client() -> docker.DockerClient:
    return docker.from_env(timeout=600)


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def base_image(client: docker.DockerClient) -> str:
    """The base every image builds FROM: ``HARNESS_BASE_IMAGE`` or a local debootstrap import."""
    if override := os.environ.get("HARNESS_BASE_IMAGE"):
        return override
    packages_file = IMAGES_DIR / "base" / "packages.txt"
    tag = f"harness-base:{_hash_paths([packages_file], SUITE + MIRROR)}"
    if _exists(client, tag):
        return tag
    packages = [
        line.strip() for line in packages_file.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    start = time.monotonic()
    tarball = CACHE_DIR / f"base-{tag.partition(':')[2]}.tar"  # same content hash as the tag
    if not tarball.is_file():
        _bootstrap(packages, tarball)
    else:
        _log(f"base: importing the cached root file system {tarball.name}")
    with tarball.open("rb") as tar:
        imp = subprocess.run(
            ["docker", "import", "--change", "ENV LANG=C.UTF-8", "--change", f"LABEL {LABEL}=base", "-", tag],
            stdin=tar, capture_output=True, text=True,
        )
    if imp.returncode != 0:
        raise ImageBuildError("base", f"docker import failed: {imp.stderr}", "is the Docker engine running?")
    _log(f"base: built {tag} in {time.monotonic() - start:.0f} s")
    return tag


def _bootstrap(packages: list[str], tarball: Path) -> None:
    """A minbase Debian root file system as a tar file: mmdebstrap (apt's parallel downloads, about
    half debootstrap's time here: 68 s vs 114 s, measured side by side), else debootstrap. Kept in
    .cache/ under the content hash, so a new engine (or a CI cache of .cache/) re-imports in seconds."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial")
    if shutil.which("mmdebstrap"):
        _log(f"base: mmdebstrap {SUITE} with {len(packages)} packages (about a minute) ...")
        cmd = ["mmdebstrap", "--variant=minbase", "--format=tar", f"--include={','.join(packages)}",
               "--customize-hook=rm -rf $1/var/cache/apt/archives/* $1/var/lib/apt/lists/*", SUITE, str(partial),
               MIRROR]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError("base", f"mmdebstrap failed:\n{proc.stderr[-3000:]}",
                                  "check that the Debian mirror answers over plain HTTP")
    elif shutil.which("debootstrap"):
        _log(f"base: debootstrap {SUITE} with {len(packages)} packages (about two minutes) ...")
        with tempfile.TemporaryDirectory(prefix="harness-rootfs-") as rootfs:
            cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, rootfs, MIRROR]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise ImageBuildError("base", f"debootstrap failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
                                      "check that the Debian mirror answers over plain HTTP")
            subprocess.run(["rm", "-rf", f"{rootfs}/var/cache/apt/archives", f"{rootfs}/var/lib/apt/lists"], check=True)
            subprocess.run(["tar", "-C", rootfs, "-cf", str(partial), "."], check=True)
    else:
        raise ImageBuildError("base", "neither mmdebstrap nor debootstrap is installed",
                              "run `bash ci/setup` (it installs mmdebstrap)")
    partial.replace(tarball)


_WHEELHOUSE = threading.Lock()  # builds run at once (BUILDS_AT_ONCE): one download, not one each


def wheelhouse() -> Path:
    """Wheels for the images' Python packages, downloaded on the host (which can reach PyPI)."""
    with _WHEELHOUSE:
        return _wheelhouse()


def _wheelhouse() -> Path:
    key = hashlib.sha256("\n".join(IMAGE_WHEELS).encode()).hexdigest()[:12]
    target = CACHE_DIR / f"wheelhouse-{key}"
    if (target / ".complete").exists():
        return target
    _log("wheelhouse: downloading wheels for the images ...")
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
           "--dest", str(target), *IMAGE_WHEELS]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError("wheelhouse", proc.stderr[-2000:], "check that PyPI is reachable from the host")
    (target / ".complete").touch()
    return target


def image_tag(spec: ImageSpec, base: str) -> str:
    paths = [spec.folder, *(ROOT / p for p in spec.include)]
    extra = base + ("|".join(IMAGE_WHEELS) if spec.wheels else "")
    return f"{spec.repository}:{_hash_paths(paths, extra)}"


def _build_context(spec: ImageSpec, into: Path) -> None:
    shutil.copytree(spec.folder, into, dirs_exist_ok=True)
    for rel in spec.include:
        src, dst = ROOT / rel, into / rel
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    if spec.wheels:
        shutil.copytree(wheelhouse(), into / "wheels", ignore=shutil.ignore_patterns(".complete"))


def build(spec: ImageSpec, client: docker.DockerClient, base: str) -> str:
    tag = image_tag(spec, base)
    if _exists(client, tag):
        return tag
    start = time.monotonic()
    _log(f"{spec.name}: building {tag} ...")
    with tempfile.TemporaryDirectory(prefix=f"harness-ctx-{spec.name}-") as ctx:
        _build_context(spec, Path(ctx))
        output: list[str] = []
        for chunk in client.api.build(path=ctx, tag=tag, buildargs={"BASE": base}, labels={LABEL: spec.name},
                                      rm=True, forcerm=True, decode=True):
            if "stream" in chunk:
                output.append(chunk["stream"])
            if "error" in chunk:
                raise ImageBuildError(spec.name, "".join(output[-30:]) + chunk["error"],
                                      f"fix {spec.folder.relative_to(ROOT)}/Dockerfile")
    _log(f"{spec.name}: built in {time.monotonic() - start:.0f} s")
    _prune_old_tags(client, spec.repository, keep=tag)
    return tag


#: Other tags of an image are removed once their image is this old. A newer one may belong to another
#: checkout's run on the same engine (seen: a worktree's run lost its cf image to another's build
#: mid-run, and its next cell failed trying to pull it).
PRUNE_AFTER_S = 24 * 3600


def stale(created: str, now: float, after_s: float = PRUNE_AFTER_S) -> bool:
    """Whether an image created at ``created`` (the engine's RFC 3339 time, nanoseconds and all) is
    old enough for its tag to be pruned."""
    stamp = created.rstrip("Z").split(".")[0]
    made = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc).timestamp()
    return now - made > after_s


def _prune_old_tags(client: docker.DockerClient, repository: str, keep: str) -> None:
    now = time.time()
    for image in client.images.list(name=repository):
        if not stale(str(image.attrs.get("Created", "")) or "1970-01-01T00:00:00Z", now):
            continue
        for old in image.tags:
            if old != keep:
                try:
                    client.images.remove(old)
                except docker.errors.APIError:
                    pass  # in use by a live container: the next build prunes it


#: Image builds run at once: each is mostly apt fetching and unpacking packages, which leaves the CPU
#: idle in stretches (a fresh machine: ten builds one after another took 40 s).
BUILDS_AT_ONCE = 3


def ensure_images(names: list[str] | None = None) -> dict[str, str]:
    """Build (or reuse) images and return ``{name: tag}``; safe to call from many xdist workers."""
    CACHE_DIR.mkdir(exist_ok=True)
    with FileLock(str(CACHE_DIR / "images.lock")):
        client = _client()
        base = base_image(client)
        specs = image_specs()
        wanted = names or list(specs)
        with ThreadPoolExecutor(max_workers=BUILDS_AT_ONCE) as pool:
            tags = list(pool.map(lambda name: build(specs[name], client, base), wanted))
        return dict(zip(wanted, tags))


def main() -> int:
    start = time.monotonic()
    tags = ensure_images()
    for name, tag in tags.items():
        _log(f"ready: {name} -> {tag}")
    _log(f"all images ready in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
