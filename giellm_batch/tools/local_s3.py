"""A real S3 server on 127.0.0.1 (SeaweedFS `weed mini`) for the object-storage tests, the bench and
for trying the s3a:// path by hand (`giellm-batch local-s3`).

Why SeaweedFS: it is Apache-2.0, builds from the Go module proxy, checks request signatures and
honours `If-None-Match: *` (conditional create), multipart uploads and copies, which is what the
job's guarantees rest on. An in-process mock that accepts any signature would not test the path
users run. The binary is built once per version by scripts/build_seaweedfs.sh (or named by
$GIELLM_WEED) and cached outside the checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from giellm_batch.config.settings import ObjectStoreSettings

VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_seaweedfs.sh"
# Test credentials of the local server only; real stores take theirs from the environment or a role.
ACCESS_KEY = "giellm-local"
SECRET_KEY = "giellm-local-secret"
REGION = "us-east-1"


def weed_binary() -> Path:
    """$GIELLM_WEED, else the cached build of VERSION (built now if missing: minutes, once)."""
    named = os.environ.get("GIELLM_WEED")
    if named:
        return Path(named)
    if not BUILD_SCRIPT.is_file():
        raise RuntimeError(f"no {BUILD_SCRIPT}: set GIELLM_WEED to a SeaweedFS `weed` binary")
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], env={**os.environ, "SEAWEEDFS_VERSION": VERSION},
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building SeaweedFS failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalS3:
    """A running server: its endpoint, credentials and bucket; `stop()` ends it."""

    endpoint: str
    bucket: str
    metrics_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    _baseline: Counter[str] = field(default_factory=Counter)

    def url(self, *parts: str) -> str:
        """`s3a://<bucket>/<parts...>`."""
        return "/".join([f"s3a://{self.bucket}", *(p.strip("/") for p in parts)])

    def object_store(self) -> ObjectStoreSettings:
        """The job's `object_store:` settings for this server."""
        return ObjectStoreSettings(endpoint=self.endpoint, region=REGION, path_style=True)

    def env(self) -> dict[str, str]:
        """Credentials as S3A and delta-rs read them from the environment."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_REGION": REGION}

    def request_counts(self) -> Counter[str]:
        """S3 requests served so far, by operation (the server's own counters), less those before
        the last `mark()`."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        counts: Counter[str] = Counter()
        for match in re.finditer(r'^SeaweedFS_s3_request_total\{([^}]*)\} ([0-9.e+]+)$', text, re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            counts[labels.get("type", "?")] += int(float(match.group(2)))
        counts.subtract(self._baseline)
        return +counts

    def mark(self) -> None:
        """Count requests from now on."""
        self._baseline = Counter()
        self._baseline = self.request_counts()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_local_s3(data_dir: Path, bucket: str = "giellm", timeout: float = 90.0) -> LocalS3:
    """Start `weed mini` on free loopback ports with one identity and `bucket`; return once S3 answers."""
    weed = weed_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    identities = {"identities": [{"name": "giellm", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
    (data_dir / "identities.json").write_text(json.dumps(identities), encoding="utf-8")
    # Every port named, each free now: weed mini's own fallback from a taken default races when two
    # servers start at once (both pick the filer's 8888; one dies with "address already in use").
    ports = {name: free_port() for name in ("s3", "metrics", "master", "filer", "volume")}
    grpc = {name: free_port() for name in ("s3", "master", "filer", "volume")}
    s3_port, metrics_port = ports["s3"], ports["metrics"]
    log_path = data_dir / "weed.log"
    command = [str(weed), "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               f"-s3.port={s3_port}", f"-s3.config={data_dir / 'identities.json'}", f"-bucket={bucket}",
               *[f"-{name}.port={ports[name]}" for name in ("master", "filer", "volume")],
               *[f"-{name}.port.grpc={port}" for name, port in grpc.items()],
               f"-metricsPort={metrics_port}", "-metricsIp=127.0.0.1", "-master.telemetry=false",
               "-webdav=false", "-admin.ui=false", "-s3.autoCreateBucket=false", "-s3.port.iceberg=0",
               "-s3.port.lance=0"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir,
                                   start_new_session=True)
    server = LocalS3(endpoint=f"http://127.0.0.1:{s3_port}", bucket=bucket,
                     metrics_url=f"http://127.0.0.1:{metrics_port}/metrics", data_dir=data_dir,
                     process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if _bucket_ready(server):
            return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"weed mini did not serve bucket {bucket} within {timeout:.0f}s:\n"
                       f"{log_path.read_text()[-3000:]}")


def _bucket_ready(server: LocalS3) -> bool:
    """Does an anonymous HEAD of the bucket get an S3 answer (403: it exists, anonymous is refused)?"""
    request = urllib.request.Request(f"{server.endpoint}/{server.bucket}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code in (403, 200)
    except OSError:
        return False


@contextlib.contextmanager
def local_s3(data_dir: Path, bucket: str = "giellm"):  # type: ignore[no-untyped-def]
    """`start_local_s3` as a context manager that stops the server and removes its data."""
    server = start_local_s3(data_dir, bucket)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
