"""Stack benchmark: start-up time of the native stack and its resident memory.

    .venv/bin/python scripts/bench_stack.py          (make bench-stack)

Measures a warm start (`down` then `up`: binaries, jars and data in place), a no-op `up` on a running
stack, and the proportional set size of every service once up. The cold start of a fresh machine is
measured by timing `make test` / `make up` on a fresh clone (see BENCHMARKS.md).
"""

from __future__ import annotations

import time

from fraudops.config.settings import load_settings
from fraudops.stack.manager import Stack, format_status


def main() -> None:
    stack = Stack(load_settings(), log=lambda _: None)
    stack.up()
    stack.down()
    started = time.monotonic()
    stack.up()
    warm = time.monotonic() - started
    started = time.monotonic()
    stack.up()
    noop = time.monotonic() - started
    time.sleep(20)  # let servers finish their start-up allocations
    rows = stack.status()
    print(format_status(rows))
    print(f"\nwarm start (down, then up): {warm:.1f} s")
    print(f"up on a running stack:      {noop:.1f} s")
    print(f"resident memory (PSS):      {sum(r.memory_mib for r in rows):.0f} MiB in {len(rows)} services")


if __name__ == "__main__":
    main()
