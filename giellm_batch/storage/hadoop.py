"""Storage through Hadoop's FileSystem API in the driver JVM: HDFS and every store Hadoop has a
connector for (s3a, abfs, gs), with the session's Hadoop settings (credentials, endpoints).

Driver only: it calls the JVM over the session's py4j gateway, which executors do not have. Each
call crosses that bridge, so whole files move in one call each way (a read loop in Python would
cross it once per chunk). Java's FileNotFoundException becomes Python's FileNotFoundError, as the
interface promises; other Java errors propagate as py4j raised them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from giellm_batch.storage.interface import FileStatus

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The builder option that makes S3A's create conditional (Hadoop 3.4.2+ / 3.5).
CONDITIONAL_CREATE = "fs.option.create.conditional.overwrite"


class HadoopStorage:
    """Storage (interface.py) over the Hadoop FileSystem of each path, from the driver JVM."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm: Any = spark._jvm  # py4j's view of the driver JVM: untyped
        self._conf = spark._jsc.hadoopConfiguration()

    def _resolve(self, path: str) -> tuple[Any, Any]:
        """(Hadoop FileSystem, Hadoop Path) for `path`; Hadoop caches the FileSystem per scheme and
        authority, so this is cheap after the first call."""
        target = self._jvm.org.apache.hadoop.fs.Path(path)
        return target.getFileSystem(self._conf), target

    def _is(self, exc: Exception, java_class: str) -> bool:
        """Is `exc` a py4j error carrying a Java exception of `java_class` (or a subclass)?"""
        java_exc = getattr(exc, "java_exception", None)
        if java_exc is None:
            return False
        # Spark's class loader: connector classes (S3A's) come from --packages jars, which the JVM's
        # system loader (Class.forName's) does not see.
        return bool(self._jvm.org.apache.spark.util.Utils.classForName(java_class, False, False).isInstance(java_exc))

    def _chain(self, exc: Exception) -> list[tuple[str, str]]:
        """(class name, text) of the Java exception in `exc` and its causes (bounded: a chain may loop)."""
        out: list[tuple[str, str]] = []
        java_exc = getattr(exc, "java_exception", None)
        while java_exc is not None and len(out) < 16:
            out.append((str(java_exc.getClass().getName()), str(java_exc.toString())))
            java_exc = java_exc.getCause()
        return out

    def _missing(self, exc: Exception) -> bool:
        """Does `exc` say the file is not there? FileNotFoundException anywhere in its cause chain,
        or the S3 SDK's NoSuchKey / a 404 wrapped in a plain IOException."""
        if self._is(exc, "java.io.FileNotFoundException"):
            return True
        return any(name.endswith(("FileNotFoundException", "NoSuchKeyException")) or "Status Code: 404" in text
                   for name, text in self._chain(exc))

    def _changed(self, exc: Exception) -> bool:
        """Was the file replaced between open and read? S3A pins the version it opened (If-Match on
        its ETag): a rewrite in between answers 412 (the analytics input stream) or
        RemoteFileChangedException (the classic one)."""
        return any(name.endswith("RemoteFileChangedException") or "Status Code: 412" in text
                   for name, text in self._chain(exc))

    def _or_missing(self, call: Any, message: str) -> Any:
        """`call()`, with a not-found error from the store raised as FileNotFoundError(message)."""
        try:
            return call()
        except Exception as exc:
            if self._missing(exc):
                raise FileNotFoundError(message) from exc
            raise

    def read_bytes(self, path: str) -> bytes:
        """The file's bytes. A file replaced while it is read (another run taking over the lock) is
        read again, so the caller sees one whole version: the newest."""
        for attempt in range(3):
            fs, target = self._resolve(path)
            stream = self._or_missing(lambda: fs.open(target), f"no such file: {path}")  # noqa: B023
            try:
                return self._read_open(stream, path)
            except Exception as exc:
                if attempt == 2 or not self._changed(exc):
                    raise
        raise AssertionError("unreachable")

    def _read_open(self, stream: Any, path: str) -> bytes:
        """All of an opened stream's bytes, then close it."""
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        except Exception as exc:
            # S3A opens lazily: a file deleted between open and read fails here, not at open.
            if self._missing(exc):
                raise FileNotFoundError(f"no such file: {path}") from exc
            raise
        finally:
            stream.close()

    @staticmethod
    def _write_all(stream: Any, data: bytes) -> None:
        try:
            stream.write(bytearray(data))  # py4j passes a bytearray as one Java byte[]
        finally:
            stream.close()

    def write_bytes(self, path: str, data: bytes) -> None:
        fs, target = self._resolve(path)
        self._write_all(fs.create(target, True), data)  # creates the missing parent folders

    def create_exclusive(self, path: str, data: bytes) -> bool:
        fs, target = self._resolve(path)
        if str(fs.getScheme()) == "s3a":
            return self._create_conditional(fs, target, data)
        # create(overwrite=false) is create-if-absent, atomic on HDFS (the NameNode decides). Not on
        # Hadoop's local file system (it checks, then creates: storage_for sends local paths to
        # posix.py) and not on S3A (two racing creates both succeed: _create_conditional).
        try:
            stream = fs.create(target, False)
        except Exception as exc:
            if fs.exists(target):  # stores word "already there" differently: look
                return False
            # Hadoop also says "already exists" for a file where a parent folder should be: an error.
            # With the parent a folder, the file was there and went away since: the caller looks again.
            if self._is(exc, "org.apache.hadoop.fs.FileAlreadyExistsException") and fs.isDirectory(target.getParent()):
                return False
            raise
        self._write_all(stream, data)
        return True

    def _create_conditional(self, fs: Any, target: Any, data: bytes) -> bool:
        """S3A's atomic create-if-absent: a PUT with `If-None-Match: *` (HADOOP-19256), which the
        store refuses with 412 when the object exists, however close the race. S3A checks for an
        existing object first (FileAlreadyExistsException); a writer that loses the race itself
        learns it when the stream's close sends the PUT (RemoteFileChangedException)."""
        try:
            builder = fs.createFile(target).overwrite(False).must(CONDITIONAL_CREATE, True)
            self._write_all(builder.build(), data)
        except Exception as exc:
            if (self._is(exc, "org.apache.hadoop.fs.FileAlreadyExistsException")
                    or self._is(exc, "org.apache.hadoop.fs.s3a.RemoteFileChangedException")):
                return False
            raise
        return True

    def exists(self, path: str) -> bool:
        fs, target = self._resolve(path)
        return bool(fs.exists(target))

    @staticmethod
    def _status(status: Any) -> FileStatus:
        path = str(status.getPath().toString())
        is_dir = bool(status.isDirectory())
        return FileStatus(path=path, name=path.rstrip("/").rpartition("/")[2],
                          size=0 if is_dir else int(status.getLen()),
                          modified=int(status.getModificationTime()) / 1000, is_dir=is_dir)

    def status(self, path: str) -> FileStatus:
        fs, target = self._resolve(path)
        return self._status(self._or_missing(lambda: fs.getFileStatus(target), f"nothing at {path}"))

    def list_folder(self, folder: str) -> list[FileStatus]:
        fs, target = self._resolve(folder)
        try:
            statuses = fs.listStatus(target)
        except Exception as exc:
            if self._missing(exc):
                return []
            raise
        return [self._status(status) for status in statuses]

    def delete(self, path: str) -> bool:
        fs, target = self._resolve(path)
        return bool(fs.delete(target, True))

    def rename(self, source: str, target: str) -> None:
        fs, src = self._resolve(source)
        dst = self._jvm.org.apache.hadoop.fs.Path(target)
        # Hadoop moves a folder *into* an existing folder target: refuse, as the interface says.
        if fs.exists(dst):
            raise FileExistsError(f"cannot move {source} to {target}: the target exists")
        fs.mkdirs(dst.getParent())
        if not fs.rename(src, dst):
            raise OSError(f"could not move {source} to {target}")
