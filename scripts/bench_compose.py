"""Compose benchmark: cold build time of every image, `docker compose up` to all-healthy, and the
containers' memory.

    .venv/bin/python scripts/bench_compose.py          (make bench-compose)

Cold: the project's images and the build cache are removed first (the Debian base image is kept: pulling or
debootstrapping it is timed on its own, before). Images are built in the compose file's order, one service
at a time, so each figure is what that image added to the ones built before it (shared stages are built
once, by the first image that needs them). Runs under its own compose project and removes it at the end.
Needs the native stack's ports free (`make down`).
"""

from __future__ import annotations

import re
import subprocess
import time

from fraudops.config.settings import load_settings
from fraudops.containers.base_image import ensure_base_image
from fraudops.containers.compose import Compose, state_dir
from fraudops.containers.engine import ensure_engine
from fraudops.secrets import ensure_secrets

PROJECT = "fraudops-bench"


def _mib(text: str) -> float:
    value = text.strip().split("/")[0].strip()
    units = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "B": 1 / 1024 / 1024}
    for unit, factor in units.items():
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def main() -> None:
    base = load_settings()
    settings = base.model_copy(update={"docker": base.docker.model_copy(update={"project": PROJECT})})
    ensure_engine(state_dir(settings))
    ensure_secrets(settings.env_dir)
    compose = Compose(settings, log=lambda _: None)
    compose.down(volumes=True)

    started = time.monotonic()
    ensure_base_image(settings.docker.base_image, log=lambda _: None)
    print(f"base image {settings.docker.base_image} in place: {time.monotonic() - started:.0f} s")

    services = compose.config()["services"]
    images = sorted({s["image"] for s in services.values()}, key=str)
    subprocess.run(["docker", "image", "rm", "-f", *images], capture_output=True)
    subprocess.run(["docker", "image", "prune", "-f"], capture_output=True)
    subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True)
    total = 0.0
    built: set[str] = set()
    print("\ncold build, in compose order (seconds this image added):")
    # in the Dockerfile's stage order: the legacy builder builds every stage before a target, so each
    # figure is then the time of that image's own stages
    stages = re.findall(
        r"(?m)^FROM \S+ AS (\S+)", (settings.project_root / "docker" / "Dockerfile").read_text()
    )
    for service, spec in sorted(services.items(), key=lambda item: stages.index(item[1]["build"]["target"])):
        if spec["image"] in built:
            continue
        started = time.monotonic()
        compose.run("--profile", "scoring", "build", service, capture=True)
        took = time.monotonic() - started
        total += took
        built.add(spec["image"])
        print(f"  {spec['image']:<32} {took:6.0f} s")
    print(f"  {'all images':<32} {total:6.0f} s")

    started = time.monotonic()
    compose.up()
    compose.wait_ready(timeout=900)
    print(f"\n`up` to every container healthy: {time.monotonic() - started:.0f} s")
    time.sleep(30)  # let servers finish their start-up allocations
    stats = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    rows = [(name, _mib(usage)) for name, usage in (line.split("\t") for line in stats) if PROJECT in name]
    print("\nmemory (docker stats, cgroup usage):")
    for name, mib in sorted(rows, key=lambda r: -r[1]):
        print(f"  {name.removeprefix(PROJECT + '_'):<28} {mib:7.0f} MiB")
    print(f"  {'total':<28} {sum(m for _, m in rows):7.0f} MiB in {len(rows)} containers")
    sizes = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}\t{{.Size}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    print("\nimage sizes:")
    for line in sorted(sizes):
        if line.startswith("fraudops-"):
            print("  " + line.replace("\t", "  "))
    compose.down(volumes=True)


if __name__ == "__main__":
    main()
