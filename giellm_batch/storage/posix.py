"""Storage on a local or mounted disk (plain paths and `file:` URIs), through the operating system.

Why not Hadoop's local file system for these files: its create-if-absent checks, then creates
(two callers can both win), every call crosses the py4j bridge, and it sets permissions with a
child process per file. Here create-if-absent is link(2), which fails if the name exists.

Spark writes local folders through Hadoop, which keeps a checksum side file `.<name>.crc` beside
each file and hides those from its listings. This implementation hides them too, so a folder lists
the same through either implementation, and drops a file's side file when it replaces, deletes or
moves the file: a stale checksum would make a later read through Hadoop fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading

from giellm_batch.storage.interface import FileStatus


def local_path(path: str) -> str:
    """The operating system's path for a plain path or a `file:` URI. Percent signs are kept as
    they are: Hadoop's Path does not decode them either, so both name the same file."""
    if path[:5].lower() != "file:":
        return path
    rest = path[5:]
    return "/" + rest.lstrip("/") if rest.startswith("/") else rest


def _checksum_file(local: str) -> str:
    folder, name = os.path.split(local)
    return os.path.join(folder, f".{name}.crc")


def _is_checksum_file(name: str) -> bool:
    return name.startswith(".") and name.endswith(".crc")


def _drop_checksum(local: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(_checksum_file(local))


class PosixStorage:
    """Storage (interface.py) on the local file system."""

    def read_bytes(self, path: str) -> bytes:
        with open(local_path(path), "rb") as handle:
            return handle.read()

    def _write_beside(self, local: str, data: bytes) -> str:
        """`data` in a new hidden file in `local`'s folder (created if needed); returns its path.
        Named by process and thread, so concurrent writers never share one."""
        folder, name = os.path.split(local)
        if folder:
            os.makedirs(folder, exist_ok=True)
        temp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(temp, "wb") as handle:
            handle.write(data)
        return temp

    def write_bytes(self, path: str, data: bytes) -> None:
        # Write beside, then rename over: a reader never sees a half-written file.
        local = local_path(path)
        temp = self._write_beside(local, data)
        try:
            os.replace(temp, local)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temp)
            raise
        _drop_checksum(local)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        # Write the content first, then link it into place: link(2) fails if the name exists (the
        # same guarantee as O_EXCL), and a kill at any moment never leaves an empty file behind.
        local = local_path(path)
        temp = self._write_beside(local, data)
        try:
            os.link(temp, local)
        except FileExistsError:
            return False
        finally:
            os.remove(temp)
        return True

    def exists(self, path: str) -> bool:
        return os.path.exists(local_path(path))

    def status(self, path: str) -> FileStatus:
        local = local_path(path)
        info = os.stat(local)
        is_dir = stat.S_ISDIR(info.st_mode)
        name = os.path.basename(local.rstrip("/")) or local
        return FileStatus(path=path, name=name, size=0 if is_dir else info.st_size, modified=info.st_mtime,
                          is_dir=is_dir)

    def list_folder(self, folder: str) -> list[FileStatus]:
        base = folder.rstrip("/")
        try:
            with os.scandir(local_path(folder)) as entries:
                names = [entry.name for entry in entries if not _is_checksum_file(entry.name)]
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            return [self.status(folder)]
        found = []
        for name in names:
            with contextlib.suppress(FileNotFoundError):  # gone since the listing (or a dangling link)
                found.append(self.status(f"{base}/{name}"))
        return found

    def delete(self, path: str) -> bool:
        local = local_path(path)
        try:
            if os.path.isdir(local) and not os.path.islink(local):
                shutil.rmtree(local)
            else:
                os.remove(local)
        except FileNotFoundError:
            return False
        _drop_checksum(local)
        return True

    def rename(self, source: str, target: str) -> None:
        src, dst = local_path(source), local_path(target)
        if os.path.lexists(dst):  # os.rename would replace a file or an empty folder silently
            raise FileExistsError(f"cannot move {source} to {target}: the target exists")
        folder = os.path.dirname(dst)
        if folder:
            os.makedirs(folder, exist_ok=True)
        os.rename(src, dst)
        _drop_checksum(src)
