"""Benchmark: bytes through the metered link, and wall time, for the cleanroom hop.

    make sandbox-up && .venv/bin/python -m bench.metered_link [--runtime-mb 50] [--quick]

On the sandbox, for a project whose runtime base is --runtime-mb MB of incompressible bytes
(fresh for every row, so no daemon or registry knows it in advance), in three scenarios:
  first     the first promotion of the project
  code      a code-only release (new own-code layer, same third-party image)
  3rdparty  a third-party update (new dependency layer and new own code, same repositories)
and three ways of doing hop 6:
  reference the reference procedure by hand (docker pull / tag / push on the cleanroom's daemon)
  docker    Airlock, transport docker (mount before send, then docker push)
  relay     Airlock, transport relay (mount, chunked staged upload, assembly in prod)
on a clean link, a link at 8 Mbit/s, and a link that cuts whatever connection is active every
2 MB of upstream traffic (10 MB own-code layer). Third-party always reaches prod-private the
way hops 2-4 do (through public), before hop 6.

Prints a table: bytes over the link / the minimum (the blobs prod-private lacked + manifest),
seconds, and whether the promotion completed. It asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(CHECKOUT), str(CHECKOUT / "plugins")]

import docker  # noqa: E402

from sandbox import images, services  # noqa: E402
from sandbox.__main__ import link_request  # noqa: E402
from sandbox.layout import ZONES, Layout  # noqa: E402
from sandbox.promotion import Project, use_sandbox_connections  # noqa: E402

LINKS = [  # (name, link settings, own-code layer in MB)
    ("clean", {}, 1),
    ("clean", {}, 10),
    ("8mbit", {"rate_bytes_per_s": 1_000_000}, 1),
    ("drop/2MB", {"drop_every_bytes": 2_000_000}, 10),
]
REFERENCE_TIMEOUT = 180


def reference_hop6(project: Project, app_digest: str, release: str) -> bool:
    """docker pull from dev-private, docker tag, docker push to prod-private through the link."""
    layout, cleanroom = project.layout, project.zones["cleanroom"]
    source = f"{layout.registry_address('dev-private', 'cleanroom')}/{project.app}@{app_digest}"
    target = f"{layout.registry_address('prod-private', 'cleanroom')}/{project.app}"
    cleanroom.images.pull(source, auth_config=project.auth)
    cleanroom.api.tag(source, target, release)
    link_request(layout, "/reset", {})
    try:
        for chunk in cleanroom.api.push(target, tag=release, stream=True, decode=True, auth_config=project.auth):
            if "error" in chunk:
                return False
    except docker.errors.DockerException:
        return False
    return True


def measure(project: Project, method: str, app_digest: str, release: str) -> tuple[int, float, bool]:
    started = time.monotonic()
    if method == "reference":
        completed = reference_hop6(project, app_digest, release)
        sent = link_request(project.layout, "/stats")["bytes_up"]
    else:
        try:
            stats, _ = project.promote(method, app_digest, release)
            sent = stats["bytes_up"]
        except Exception as exc:  # a failed promotion is a result, not a crash
            print(f"    {method} {release}: failed: {str(exc)[:200]}", file=sys.stderr)
            sent = link_request(project.layout, "/stats")["bytes_up"]
        manifest = project.prod_manifest(release)
        completed = manifest is not None and manifest.digest == app_digest
    return sent, time.monotonic() - started, completed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime-mb", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="clean link only")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) to this file")
    args = parser.parse_args()
    layout = Layout.from_environment()
    down = [name for name, ok in services.status(layout).items() if not ok]
    if down:
        print(f"the sandbox is not up ({', '.join(down)}): run `make sandbox-up`", file=sys.stderr)
        return 1
    use_sandbox_connections(layout)
    zones = {zone: docker.DockerClient(base_url=layout.docker_host(zone), timeout=600) for zone in ZONES}
    rows = []
    links = LINKS[:1] if args.quick else LINKS
    for link_name, settings, own_mb in links:
        own_kb = own_mb * 1024
        for method in ("reference", "docker", "relay"):
            project = Project(layout, zones)
            runtime = f"sandbox/runtime:bench-{project.name}"
            with tempfile.TemporaryDirectory() as tmp:
                images.build_runtime(zones["dev"], Path(tmp), runtime, args.runtime_mb, version=project.name)
            project.runtime = runtime
            scenarios = [("first", "r1", "a", None), ("code", "r2", "b", "a"), ("3rdparty", "r3", "c", None)]
            for scenario, release, seed, tp_seed in scenarios:
                link_request(layout, "/settings", {"rate_bytes_per_s": None, "drop_every_bytes": None})
                app, _ = project.release(release, dependency_kb=512, own_kb=own_kb, seed=seed,
                                         third_party_seed=tp_seed)
                minimum = project.minimum(app)
                link_request(layout, "/settings", settings)
                sent, seconds, completed = measure(project, method, app, release)
                link_request(layout, "/settings", {"rate_bytes_per_s": None, "drop_every_bytes": None})
                row = (link_name, f"{own_kb // 1024} MB", method, scenario, minimum, sent, sent / minimum, seconds,
                       completed)
                rows.append(row)
                print(f"  {link_name:<9} {method:<9} {scenario:<9} min {minimum:>11,}  sent {sent:>11,}  "
                      f"{sent / minimum:6.2f}x  {seconds:6.1f}s  {'ok' if completed else 'FAILED'}",
                      file=sys.stderr, flush=True)
            zones["dev"].images.remove(runtime, force=True)
    lines = [f"runtime base {args.runtime_mb} MB (incompressible); bytes = upstream through the link proxy", "",
             "| link | own code | method | scenario | minimum (bytes) | sent (bytes) | sent / minimum | seconds "
             "| completed |", "|---|---|---|---|---:|---:|---:|---:|---|"]
    for link_name, own, method, scenario, minimum, sent, ratio, seconds, completed in rows:
        lines.append(f"| {link_name} | {own} | {method} | {scenario} | {minimum:,} | {sent:,} | {ratio:.2f}x | "
                     f"{seconds:.1f} | {'yes' if completed else '**no**'} |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
