"""The local file system without child processes (local_fs.py) in the tests' Spark session."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from giellm_batch.spark import local_fs


def _children_started(jvm_pid: int, action: Callable[[], Any]) -> set[str]:
    """Child processes of the JVM seen (polled from /proc) while `action` runs, minus those before."""
    tasks = Path(f"/proc/{jvm_pid}/task")

    def children() -> set[str]:
        out: set[str] = set()
        for task in tasks.iterdir():
            with contextlib.suppress(OSError):  # the thread ended meanwhile
                out.update((task / "children").read_text().split())
        return out

    before, seen, done = children(), set(), threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen.update(children())

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        action()
    finally:
        done.set()
        poller.join()
    return seen - before


def test_the_session_writes_local_files_with_the_right_modes_and_starts_no_process(spark, tmp_path):
    assert local_fs.available_jar() is not None, "javac could not build the jar (see local_fs.py)"
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(conf)
    assert fs.getRawFileSystem().getClass().getName() == "giellm.hadoop.NoForkRawLocalFileSystem"
    assert conf.get("fs.AbstractFileSystem.file.impl") == "giellm.hadoop.NoForkLocalFs"
    hadoop_path, permission = jvm.org.apache.hadoop.fs.Path, jvm.org.apache.hadoop.fs.permission.FsPermission
    context = jvm.org.apache.hadoop.fs.FileContext.getLocalFSFileContext(conf)

    def write_and_rename() -> None:
        for n, mode in enumerate((0o640, 0o600, 0o755, 0o711) * 10):
            target = hadoop_path(str(tmp_path / f"d{n}" / "f.txt"))
            assert fs.mkdirs(target.getParent(), permission(0o750))
            out = fs.create(target, permission(mode), True, 4096, 1, 1 << 20, None)
            out.write(bytearray(b"x"))
            out.close()
            # Delta commits through FileContext: create then rename, each time looking up link status
            context.rename(target, hadoop_path(str(tmp_path / f"d{n}" / "g.txt")),
                           jvm.org.apache.hadoop.fs.Options.Rename.values())

    pid = int(jvm.java.lang.ProcessHandle.current().pid())
    # The poll does see a process the JVM starts through Hadoop's Shell (as the default file system did)
    sleep = spark.sparkContext._gateway.new_array(jvm.java.lang.String, 2)
    sleep[0], sleep[1] = "sleep", "0.2"
    assert _children_started(pid, lambda: jvm.org.apache.hadoop.util.Shell.execCommand(sleep))
    assert _children_started(pid, write_and_rename) == set()
    for n, mode in enumerate((0o640, 0o600, 0o755, 0o711) * 10):
        assert (os.stat(tmp_path / f"d{n}" / "g.txt").st_mode & 0o777) == mode
        assert (os.stat(tmp_path / f"d{n}").st_mode & 0o777) == 0o750
        assert not (tmp_path / f"d{n}" / "f.txt").exists()


def test_link_status_of_links_files_and_missing_paths(spark, tmp_path):
    jvm = spark._jvm
    fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(spark._jsc.hadoopConfiguration()).getRawFileSystem()
    (tmp_path / "file.txt").write_text("本文")
    os.symlink(tmp_path / "file.txt", tmp_path / "link.txt")
    path = jvm.org.apache.hadoop.fs.Path
    link = fs.getFileLinkStatus(path(str(tmp_path / "link.txt")))
    assert link.isSymlink() and link.getSymlink().toUri().getPath() == str(tmp_path / "file.txt")
    plain = fs.getFileLinkStatus(path(str(tmp_path / "file.txt")))
    assert not plain.isSymlink() and plain.getLen() == len("本文".encode())
    try:
        fs.getFileLinkStatus(path(str(tmp_path / "missing.txt")))
        raise AssertionError("a missing path has no status")
    except Exception as exc:  # py4j wraps Java's FileNotFoundException
        assert "FileNotFoundException" in str(exc)


def test_spark_jars_values_naming_the_jar():
    assert local_fs.lists_jar(f"file://{local_fs.JAR}")
    assert local_fs.lists_jar(f"/x/a.jar,{local_fs.JAR}")
    assert not local_fs.lists_jar("/x/a.jar") and not local_fs.lists_jar(None) and not local_fs.lists_jar("")
