"""The Debian base every image builds from (docker.base_image). Pulled where a registry answers; where none
does, built with ``debootstrap --variant=minbase`` from Debian's own mirror (the release the tag names) and
imported under the same tag, so the Dockerfiles and compose file are the same everywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from fraudops.containers.engine import apt_install

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
CODENAMES = {"11": "bullseye", "12": "bookworm", "13": "trixie"}
PULL_TIMEOUT_S = 120.0
# what the official slim images set: no recommended or suggested packages
APT_SLIM = 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'


class BaseImageError(RuntimeError):
    pass


def release_of(image: str) -> tuple[str, str | None]:
    """(codename, point release or None) of a Debian image tag: ``debian:12.15-slim`` -> ("bookworm",
    "12.15"); ``debian:bookworm-slim`` -> ("bookworm", None)."""
    name, _, tag = image.rpartition(":")
    if not name.endswith("debian") or not tag:
        raise BaseImageError(f"docker.base_image must be a debian:<release>[-slim] tag, not {image!r}")
    release = tag.split("-")[0]
    if release in CODENAMES.values():
        return release, None
    match = re.fullmatch(r"(\d+)(?:\.\d+)?", release)
    if not match or match.group(1) not in CODENAMES:
        raise BaseImageError(f"unknown Debian release in {image!r}")
    return CODENAMES[match.group(1)], release if "." in release else None


def sources_list(codename: str) -> str:
    return (
        f"deb {MIRROR} {codename} main\n"
        f"deb {MIRROR} {codename}-updates main\n"
        f"deb {SECURITY_MIRROR} {codename}-security main\n"
    )


def image_exists(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def _pulled(image: str, log: Callable[[str], None]) -> bool:
    log(f"pulling {image}")
    try:
        result = subprocess.run(["docker", "pull", "-q", image], capture_output=True, timeout=PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def build_with_debootstrap(image: str, log: Callable[[str], None] = print) -> None:
    codename, point = release_of(image)
    if not shutil.which("debootstrap"):
        apt_install(["debootstrap"], log)
    log(f"no registry answered: building {image} with debootstrap ({codename}, minbase)")
    with tempfile.TemporaryDirectory(prefix="fraudops-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", codename, str(root), MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (root / "etc/apt/sources.list").write_text(sources_list(codename))
        (root / "etc/apt/apt.conf.d/90fraudops-slim").write_text(APT_SLIM)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        version = (root / "etc/debian_version").read_text().strip()
        if point and version != point:
            log(f"warning: Debian's mirror now serves {version}, tagged {image} (update docker.base_image)")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-c", 'CMD ["bash"]', "-", image],
            stdin=tar.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            raise BaseImageError("tar of the debootstrap tree failed")


def ensure_base_image(image: str, log: Callable[[str], None] = print) -> None:
    if image_exists(image) or _pulled(image, log):
        return
    build_with_debootstrap(image, log)
