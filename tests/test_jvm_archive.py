"""The driver JVM's class archive is named only when it is there whole (a truncated one crashes a JVM)."""

from __future__ import annotations

import pytest

from giellm_batch import jvm_archive


def test_options_name_the_archive_only_when_it_is_complete(tmp_path):
    path = jvm_archive.archive_path(tmp_path)
    assert path is not None and path.is_relative_to(tmp_path / "jvm")
    assert jvm_archive.java_options(tmp_path) == ""  # none built
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 1000)
    assert jvm_archive.java_options(tmp_path) == ""  # written, not yet published (no size sidecar)
    path.with_suffix(".size").write_text("1000")
    assert jvm_archive.java_options(tmp_path) == f"-XX:SharedArchiveFile={path}"
    path.write_bytes(b"x" * 400)  # cut short after it was published
    assert jvm_archive.java_options(tmp_path) == ""
    path.with_suffix(".size").write_text("not a size")
    assert jvm_archive.java_options(tmp_path) == ""


def test_the_archive_name_changes_with_the_jdk(tmp_path, monkeypatch):
    jdk = tmp_path / "jdk"
    jdk.mkdir()
    (jdk / "release").write_text('JAVA_VERSION="17.0.15"\n')
    monkeypatch.setenv("JAVA_HOME", str(jdk))
    first = jvm_archive.archive_path(tmp_path)
    (jdk / "release").write_text('JAVA_VERSION="17.0.16"\n')
    assert jvm_archive.archive_path(tmp_path) != first


def test_a_path_with_whitespace_is_left_out(tmp_path):
    root = tmp_path / "my cache"
    path = jvm_archive.archive_path(root)
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 10)
    path.with_suffix(".size").write_text("10")
    assert jvm_archive.java_options(root) == ""


def test_a_truncated_archive_is_never_published(jvm_archive, tmp_path):
    # A dump cut short (disk full) would kill every JVM started with it: publish() maps it first.
    if jvm_archive is None:
        pytest.skip("this JDK writes no class archive (see the jvm_archive fixture's warning)")
    from giellm_batch.jvm_archive import java_options
    from giellm_batch.jvm_archive_build import publish

    whole = jvm_archive.read_bytes()
    target = tmp_path / "jvm" / jvm_archive.name
    target.parent.mkdir()
    cut = tmp_path / "cut.jsa"
    cut.write_bytes(whole[: len(whole) // 4])
    with pytest.raises(RuntimeError, match="does not load"):
        publish(cut, target)
    assert not target.exists() and java_options(tmp_path) == ""
    full = tmp_path / "full.jsa"
    full.write_bytes(whole)
    publish(full, target)
    assert java_options(tmp_path) == f"-XX:SharedArchiveFile={target}"
