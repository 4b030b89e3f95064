"""`python -m simulator`: serve until SIGTERM/SIGINT.

First prints {"url", "pid", "base_path", "store"} as one JSON line, which is how a parent finds the server."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading

from simulator.server import Simulator


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", default="test", help="test | demo | bench | products=500,sales=2000,...")
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--max-page-size", type=int, default=200)
    parser.add_argument("--base-path", default="/api/2.0")
    parser.add_argument("--rate-limit", type=int, default=None, help="requests per window (sliding)")
    parser.add_argument("--rate-window", type=float, default=300.0, help="window length in seconds")
    parser.add_argument("--store", default="simulator", metavar="PREFIX", help="store domain prefix (GET /retailer)")
    parser.add_argument(
        "--fallback", action="store_true",
        help="the 2.0 path answers in the 2026-07 shapes (the vendor's fallback past a version's end of life);"
        " /api/2026-07 is served either way",
    )  # fmt: skip
    args = parser.parse_args()
    sim = Simulator(
        scale=args.scale, seed=args.seed, token=args.token, max_page_size=args.max_page_size,
        base_path=args.base_path, rate_limit=args.rate_limit, rate_window=args.rate_window, store=args.store,
        fallback=args.fallback,
    )  # fmt: skip
    url = sim.start(args.host, args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(json.dumps({"url": url, "pid": os.getpid(), "base_path": sim.base_path, "store": sim.store}), flush=True)
    stop.wait()
    sim.stop()


if __name__ == "__main__":
    main()
