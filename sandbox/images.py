"""Base images that projects build FROM, made locally (Docker Hub is out of reach here).

- sandbox/busybox   FROM scratch + Debian's busybox-static: a shell, httpd, wget
- sandbox/runtime   busybox + an incompressible payload of AIRLOCK_RUNTIME_MB megabytes,
                    standing in for a public runtime image (the ASP.NET Core runtime, say)
- sandbox/sdk       busybox + a toy tool chain: `compile` turns a source tree into a publish
                    folder, restoring third-party packages from the SDK's own package feed

They are built in the dev zone only: that is where projects are built.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import docker

BUSYBOX = Path("/bin/busybox")
BUSYBOX_IMAGE = "sandbox/busybox:latest"
RUNTIME_IMAGE = "sandbox/runtime:latest"
SDK_IMAGE = "sandbox/sdk:latest"
MIB = 1024 * 1024

SDK_COMPILE = r"""#!/bin/sh
# compile SRC OUT: the sandbox SDK's stand-in for `dotnet publish`.
# Every SRC/*.sh becomes OUT/<name>.bin; packages named in SRC/packages.txt are restored
# from the SDK's feed (/sdk/packages) into OUT; SRC/payload.txt (optional) names a
# number of KiB of deterministic, incompressible resources written to OUT/<prefix>.Resources.bin.
set -eu
src=$1; out=$2
mkdir -p "$out"
for f in "$src"/*.sh; do
  name=$(basename "$f" .sh)
  { echo '#!/bin/sh'; echo "# compiled by sandbox-sdk from $name.sh"; cat "$f"; } > "$out/$name.bin"
  chmod 755 "$out/$name.bin"
done
if [ -f "$src/packages.txt" ]; then
  while read -r package; do
    [ -n "$package" ] || continue
    cp "/sdk/packages/$package.lib" "$out/" || { echo "compile: package $package not in the SDK feed" >&2; exit 1; }
  done < "$src/packages.txt"
fi
if [ -f "$src/payload.txt" ]; then
  read -r prefix kib < "$src/payload.txt"
  head -c "$((kib * 1024))" /sdk/entropy.bin > "$out/$prefix.Resources.bin"
fi
# Reproducible output: fixed timestamps, so an unchanged source gives unchanged layers.
find "$out" -exec touch -h -d '2000-01-01 00:00:00' {} +
"""

SDK_PACKAGES = {
    "ThirdParty.Greeting": 'greeting() { echo "Hello from Airlock"; }\n',
    "ThirdParty.Json": "json_string() { printf '\"%s\"' \"$1\"; }\n",
}


def _build(client: docker.DockerClient, context: Path, tag: str) -> None:
    client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, network_mode="none")


def _busybox_dockerfile() -> str:
    return ('FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            'RUN mkdir -p /tmp /etc && chmod 1777 /tmp && echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd\n'
            'CMD ["/bin/sh"]\n')


def seed_dev_zone(docker_host: str, runtime_mb: int) -> list[str]:
    """Build the base images in the dev zone if they are missing. Returns the tags it built."""
    client = docker.DockerClient(base_url=docker_host, timeout=300)
    built = []
    try:
        with tempfile.TemporaryDirectory(prefix="airlock-images-") as tmp:
            work = Path(tmp)
            if not _has(client, BUSYBOX_IMAGE):
                ctx = work / "busybox"
                ctx.mkdir()
                shutil.copy2(BUSYBOX, ctx / "busybox")
                (ctx / "Dockerfile").write_text(_busybox_dockerfile())
                _build(client, ctx, BUSYBOX_IMAGE)
                built.append(BUSYBOX_IMAGE)
            if not _has(client, RUNTIME_IMAGE):
                build_runtime(client, work / "runtime", RUNTIME_IMAGE, runtime_mb)
                built.append(RUNTIME_IMAGE)
            if not _has(client, SDK_IMAGE):
                ctx = work / "sdk"
                (ctx / "packages").mkdir(parents=True)
                (ctx / "compile").write_text(SDK_COMPILE)
                for name, body in SDK_PACKAGES.items():
                    (ctx / "packages" / f"{name}.lib").write_text(body)
                _write_random(ctx / "entropy.bin", 16 * MIB)
                (ctx / "Dockerfile").write_text(
                    f"FROM {BUSYBOX_IMAGE}\nCOPY packages /sdk/packages\nCOPY entropy.bin /sdk/entropy.bin\n"
                    "COPY compile /usr/local/bin/compile\nRUN chmod 755 /usr/local/bin/compile\n")
                _build(client, ctx, SDK_IMAGE)
                built.append(SDK_IMAGE)
    finally:
        client.close()
    return built


def build_runtime(client: docker.DockerClient, context: Path, tag: str, size_mb: int, version: str = "1") -> None:
    """A runtime base image: busybox plus `size_mb` MiB of incompressible bytes."""
    context.mkdir(parents=True, exist_ok=True)
    _write_random(context / "runtime.bin", size_mb * MIB)
    (context / "Dockerfile").write_text(
        f"FROM {BUSYBOX_IMAGE}\nCOPY runtime.bin /usr/lib/runtime/runtime.bin\n"
        f'RUN echo "sandbox runtime {version}" > /usr/lib/runtime/VERSION\n')
    _build(client, context, tag)


def _write_random(path: Path, size: int) -> None:
    with open("/dev/urandom", "rb") as source, open(path, "wb") as target:
        remaining = size
        while remaining:
            chunk = source.read(min(remaining, MIB))
            target.write(chunk)
            remaining -= len(chunk)


def _has(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True
