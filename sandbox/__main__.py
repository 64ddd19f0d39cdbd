"""python -m sandbox up | down | status | link [...]

    up       start the three zones' dockerd, the three registries and the cleanroom link
             (idempotent: whatever already runs is left alone) and seed the base images
    down     stop exactly what `up` started, by PID, and unmount what the daemons left
    status   what answers, as JSON; exit 1 if anything is down
    airflow-up / airflow-down   a real Airflow (standalone) on the sandbox
    link     change the cleanroom link while it runs, or read its counters:
               python -m sandbox link --rate 8mbit --drop-after 2MB
               python -m sandbox link --stats
               python -m sandbox link --clear --reset-stats
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request

from sandbox import services
from sandbox.airflow_stack import USER, AirflowError, AirflowStack
from sandbox.layout import Layout

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
          "g": 1000**3, "gb": 1000**3, "gib": 1024**3}


def parse_bytes(text: str) -> int | None:
    """'2MB' -> 2_000_000, '512KiB' -> 524_288, 'off' or '0' -> None."""
    if text.strip().lower() in ("off", "none", "0"):
        return None
    match = _SIZE.match(text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (examples: 2MB, 512KiB, 1000000, off)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_rate(text: str) -> float | None:
    """'8mbit' -> 1_000_000 bytes/s, '500kbit', '2MB' (bytes per second), 'off' -> None."""
    lowered = text.strip().lower()
    if lowered in ("off", "none", "0"):
        return None
    match = re.match(r"^(\d+(?:\.\d+)?)\s*([kmg]?)bit$", lowered)
    if match:
        return float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2)] / 8
    try:
        return float(parse_bytes(text) or 0) or None
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a rate (examples: 8mbit, 500kbit, 2MB per second, off)") from None


def parse_seconds(text: str) -> float:
    match = re.match(r"^(\d+(?:\.\d+)?)\s*(ms|s)?$", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (examples: 50ms, 2s, 0)")
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def link_request(layout: Layout, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{layout.link_control_url}{path}", data=data,
                                     method="POST" if data is not None or path != "/stats" else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"link: {exc.read().decode(errors='replace')}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SystemExit(f"link: the link's control port {layout.link_control_url} does not answer ({exc}); "
                         "is the sandbox up? Run `make sandbox-up`.") from None


def command_link(layout: Layout, args: argparse.Namespace) -> None:
    changes: dict = {}
    if args.clear:
        changes.update(rate_bytes_per_s=None, latency_s=0, drop_every_bytes=None, drop_conn_after_bytes=None,
                       refuse_for_s=0)
    if args.rate is not None:
        changes["rate_bytes_per_s"] = parse_rate(args.rate)
    if args.latency is not None:
        changes["latency_s"] = args.latency
    if args.drop_after is not None:
        changes["drop_every_bytes"] = args.drop_after
    if args.drop_conn_after is not None:
        changes["drop_conn_after_bytes"] = args.drop_conn_after
    if args.refuse_for is not None:
        changes["refuse_for_s"] = args.refuse_for
    result = None
    if args.reset_stats:
        result = link_request(layout, "/reset", {})
    if changes:
        result = link_request(layout, "/settings", changes)
    if args.stats or result is None:
        result = link_request(layout, "/stats")
    print(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start everything (idempotent)")
    sub.add_parser("down", help="stop everything this sandbox started")
    sub.add_parser("status", help="what answers, as JSON")
    sub.add_parser("airflow-up", help="start Airflow (standalone) on the sandbox (idempotent)")
    sub.add_parser("airflow-down", help="stop the sandbox's Airflow")
    link = sub.add_parser("link", help="change the cleanroom link or read its counters")
    link.add_argument("--rate", help="bandwidth per direction: 8mbit, 500kbit, 2MB (bytes/s), off")
    link.add_argument("--latency", type=parse_seconds, help="one-way delay: 50ms, 0.2s, 0")
    link.add_argument("--drop-after", type=parse_bytes, metavar="SIZE",
                      help="cut whatever connection is active every SIZE of upstream traffic, "
                           "counted across all connections (2MB, off)")
    link.add_argument("--drop-conn-after", type=parse_bytes, metavar="SIZE",
                      help="cut each connection after SIZE of its own upstream traffic (5MB, off)")
    link.add_argument("--refuse-for", type=parse_seconds, metavar="SECONDS",
                      help="stop accepting connections for this long (10s; 0 accepts again at once)")
    link.add_argument("--clear", action="store_true", help="remove every limit and fault")
    link.add_argument("--stats", action="store_true", help="print the counters (the default)")
    link.add_argument("--reset-stats", action="store_true", help="zero the counters")
    args = parser.parse_args(argv)
    layout = Layout.from_environment()
    try:
        if args.command == "up":
            services.up(layout)
        elif args.command == "down":
            services.down(layout)
        elif args.command == "status":
            state = services.status(layout)
            print(json.dumps(state, indent=2))
            return 0 if all(state.values()) else 1
        elif args.command == "airflow-up":
            stack = AirflowStack(layout)
            print(f"airflow {stack.start()}: {stack.url}  user {USER}  password {stack.password}")
        elif args.command == "airflow-down":
            print(f"airflow {AirflowStack(layout).stop()}")
        elif args.command == "link":
            command_link(layout, args)
    except (services.SandboxError, AirflowError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
