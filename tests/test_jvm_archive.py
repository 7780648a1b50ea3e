"""The driver JVM's class archive is named only when it is there whole and was built for this very
classpath (a truncated one crashes a JVM; one for other jars is refused by it with a warning)."""

from __future__ import annotations

import json
import os

import pytest

from giellm_batch.spark import jvm_archive, jvm_archive_build


def publish_fake(path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    jvm_archive.sidecar(path).write_text(json.dumps({"size": size, "jars": str(jvm_archive.spark_jars())}))


def test_options_name_the_archive_only_when_it_is_complete(tmp_path):
    path = jvm_archive.archive_path(tmp_path)
    assert path is not None and path.is_relative_to(tmp_path / "jvm")
    assert jvm_archive.java_options(tmp_path) == ""  # none built
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 1000)
    assert jvm_archive.java_options(tmp_path) == ""  # written, not yet published (no sidecar)
    publish_fake(path, 1000)
    assert jvm_archive.java_options(tmp_path) == f"-XX:SharedArchiveFile={path}"
    path.write_bytes(b"x" * 400)  # cut short after it was published
    assert jvm_archive.java_options(tmp_path) == ""
    jvm_archive.sidecar(path).write_text("not json")
    assert jvm_archive.java_options(tmp_path) == ""


def test_the_archive_name_changes_with_the_jdk_and_with_any_jar_on_the_classpath(tmp_path, monkeypatch):
    jdk, jars = tmp_path / "jdk", tmp_path / "jars"
    jdk.mkdir()
    jars.mkdir()
    (jdk / "release").write_text('JAVA_VERSION="17.0.15"\n')
    (jars / "spark-core.jar").write_bytes(b"jar")
    monkeypatch.setenv("JAVA_HOME", str(jdk))
    monkeypatch.setattr(jvm_archive, "spark_jars", lambda: jars)
    names = {jvm_archive.archive_path(tmp_path)}
    (jdk / "release").write_text('JAVA_VERSION="17.0.16"\n')
    names.add(jvm_archive.archive_path(tmp_path))
    os.utime(jars / "spark-core.jar", ns=(1, 1))  # a reinstalled venv: same jar, another time
    names.add(jvm_archive.archive_path(tmp_path))
    monkeypatch.setattr(jvm_archive, "spark_jars", lambda: tmp_path / "other-clone" / "jars")
    names.add(jvm_archive.archive_path(tmp_path))
    assert len(names) == 4


def test_a_path_with_whitespace_is_left_out(tmp_path):
    root = tmp_path / "my cache"
    path = jvm_archive.archive_path(root)
    assert path is not None
    publish_fake(path, 10)
    assert jvm_archive.java_options(root) == ""


def test_a_failed_build_is_not_retried_for_a_day_unless_forced(tmp_path, monkeypatch):
    calls = []

    def failing_build(path):
        calls.append(path)
        raise RuntimeError("this JDK has no base CDS archive")

    monkeypatch.setattr(jvm_archive_build, "build", failing_build)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="no base CDS archive"):
            jvm_archive_build.ensure(tmp_path)
    assert len(calls) == 1
    with pytest.raises(RuntimeError, match="no base CDS archive"):
        jvm_archive_build.ensure(tmp_path, force=True)
    assert len(calls) == 2


def test_a_truncated_archive_is_never_published_and_a_good_one_replaces_its_predecessors(jvm_archive, tmp_path):
    # A dump cut short (disk full) would kill every JVM started with it: publish() maps it first.
    if jvm_archive is None:
        pytest.skip("this JDK writes no class archive (see the jvm_archive fixture's warning)")
    from giellm_batch.spark.jvm_archive import java_options, sidecar
    from giellm_batch.spark.jvm_archive_build import publish

    whole = jvm_archive.read_bytes()
    target = tmp_path / "jvm" / jvm_archive.name
    older = tmp_path / "jvm" / "driver-0000000000000000.jsa"  # this venv's archive before an upgrade
    publish_fake(older, 10)
    cut = tmp_path / "cut.jsa"
    cut.write_bytes(whole[: len(whole) // 4])
    with pytest.raises(RuntimeError, match="does not load"):
        publish(cut, target)
    assert not target.exists() and java_options(tmp_path) == ""
    full = tmp_path / "full.jsa"
    full.write_bytes(whole)
    publish(full, target)
    assert java_options(tmp_path) == f"-XX:SharedArchiveFile={target}"
    assert json.loads(sidecar(target).read_text())["size"] == len(whole)
    assert not older.exists() and not sidecar(older).exists()
