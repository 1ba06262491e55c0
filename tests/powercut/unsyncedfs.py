#!/usr/bin/env python3
"""A FUSE passthrough that loses every write not yet fsynced, in the manner of LazyFS.

    python3 unsyncedfs.py BACKING_DIR MOUNTPOINT

Everything under MOUNTPOINT is BACKING_DIR, except file *contents*: data writes and
size changes (write, truncate, O_TRUNC) go to an in-memory overlay per file (per
backing inode), and reads see the overlay. Only `fsync`/`fdatasync` on a file writes
its overlay to the backing file and fsyncs it there. On SIGUSR1 ("power cut") every
overlay is dropped and the process exits at once, so BACKING_DIR then holds exactly
what was synced; the caller unmounts the dead mount.

FUSE has no request for `sync_file_range`, which is the point: a program that only
calls that (as sled 0.34's flush does) never makes anything durable here.

What is durable at once: the namespace and attributes - create, mkdir, mknod, unlink,
rmdir, rename, link, symlink, chmod, chown, utimens - which go straight to the backing
dir. That is NOT conservative: on a real file system a new name or a rename can be lost
in a power cut unless its directory is fsynced. It is conservative for file data and
size, which stay in memory until the program syncs them; a real kernel would also
write them back on its own within ~30 s, which this layer never does.

Prints "unsyncedfs mounted" once the kernel has initialised the mount, and
"unsyncedfs cut: N files lost unsynced data" when SIGUSR1 arrives.
"""

import errno
import os
import signal
import sys
import threading

try:
    from fuse import FUSE, FuseOSError, Operations
except (ImportError, OSError, EnvironmentError) as e:  # fusepy raises these without libfuse2
    sys.stderr.write(
        "unsyncedfs needs fusepy (pip install fusepy) and libfuse2 "
        "(apt-get install libfuse2): %s\n" % e
    )
    sys.exit(3)

# Overlay granularity: a dirty page is copied from the backing file on first write.
PAGE_BYTES = 16 * 1024
# The mount is write-through with large writes, so a sled buffer arrives in few requests.
MAX_WRITE_BYTES = 128 * 1024


class Overlay:
    """The unsynced contents of one file: its logical size and its dirty pages.

    `floor` is the smallest size the file had since the last sync: backing bytes at or
    past it are no longer part of the file (a truncate cut them off), so they read as
    zeros unless a dirty page covers them."""

    def __init__(self, size):
        self.size = size
        self.floor = size
        self.pages = {}

    def page(self, fd, index):
        """The dirty page `index`, copied from the backing file on first use."""
        page = self.pages.get(index)
        if page is None:
            page = bytearray(PAGE_BYTES)
            start = index * PAGE_BYTES
            keep = max(0, min(PAGE_BYTES, self.floor - start))
            if keep:
                old = os.pread(fd, keep, start)
                page[: len(old)] = old
            self.pages[index] = page
        return page

    def write(self, fd, data, offset):
        pos = 0
        while pos < len(data):
            index, within = divmod(offset + pos, PAGE_BYTES)
            n = min(PAGE_BYTES - within, len(data) - pos)
            self.page(fd, index)[within : within + n] = data[pos : pos + n]
            pos += n
        self.size = max(self.size, offset + len(data))

    def read(self, fd, size, offset):
        end = min(offset + size, self.size)
        out = bytearray()
        pos = offset
        while pos < end:
            index, within = divmod(pos, PAGE_BYTES)
            n = min(PAGE_BYTES - within, end - pos)
            page = self.pages.get(index)
            if page is not None:
                out += page[within : within + n]
            else:
                keep = max(0, min(n, self.floor - pos))
                chunk = os.pread(fd, keep, pos) if keep else b""
                out += chunk + bytes(n - len(chunk))
            pos += n
        return bytes(out)

    def truncate(self, length):
        for index in [i for i in self.pages if i * PAGE_BYTES >= length]:
            del self.pages[index]
        index, within = divmod(length, PAGE_BYTES)
        if index in self.pages:
            self.pages[index][within:] = bytes(PAGE_BYTES - within)
        self.size = length
        self.floor = min(self.floor, length)

    def apply(self, fd):
        """Writes this overlay to the backing file (the caller then syncs it)."""
        os.ftruncate(fd, self.floor)  # what a truncate cut off reads back as zeros
        for index, page in sorted(self.pages.items()):
            start = index * PAGE_BYTES
            os.pwrite(fd, bytes(page[: max(0, min(PAGE_BYTES, self.size - start))]), start)
        os.ftruncate(fd, self.size)


class UnsyncedFS(Operations):
    use_ns = True

    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.mutex = threading.Lock()
        self.overlays = {}  # (st_dev, st_ino) of the backing file -> Overlay
        self.fds = {}  # our file handle (a backing fd) -> (st_dev, st_ino)
        self.dead = False

    # -- helpers ---------------------------------------------------------------

    def full(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def alive(self):
        if self.dead:
            raise FuseOSError(errno.EIO)

    def overlay(self, fd, create):
        key = self.fds[fd]
        ov = self.overlays.get(key)
        if ov is None and create:
            ov = self.overlays[key] = Overlay(os.fstat(fd).st_size)
        return ov

    def forget_if_last_link(self, full):
        """Drops the overlay of a file whose last name is about to go."""
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return
        if st.st_nlink <= 1:
            self.overlays.pop((st.st_dev, st.st_ino), None)

    def open_backing(self, path, flags, mode=None):
        # O_TRUNC is a size change (buffered below); O_APPEND offsets come from the
        # kernel; reads of the overlay need a readable descriptor.
        flags &= ~(os.O_TRUNC | os.O_APPEND | os.O_ACCMODE)
        full = self.full(path)
        if mode is not None:
            fd = os.open(full, flags | os.O_RDWR, mode)
        else:
            try:
                fd = os.open(full, flags | os.O_RDWR)
            except IsADirectoryError:
                fd = os.open(full, flags | os.O_RDONLY)
        st = os.fstat(fd)
        self.fds[fd] = (st.st_dev, st.st_ino)
        return fd

    # -- file data: buffered ---------------------------------------------------

    def init(self, path):
        print("unsyncedfs mounted", flush=True)

    def open(self, path, flags):
        with self.mutex:
            self.alive()
            fd = self.open_backing(path, flags)
            if flags & os.O_TRUNC:
                self.overlay(fd, True).truncate(0)
            return fd

    def create(self, path, mode, fi=None):
        with self.mutex:
            self.alive()
            fd = self.open_backing(path, os.O_CREAT, mode)
            return fd

    def read(self, path, size, offset, fh):
        with self.mutex:
            self.alive()
            ov = self.overlay(fh, False)
            if ov is None:
                return os.pread(fh, size, offset)
            return ov.read(fh, size, offset)

    def write(self, path, data, offset, fh):
        with self.mutex:
            self.alive()
            self.overlay(fh, True).write(fh, data, offset)
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            self.alive()
            if fh is None:
                st = os.stat(self.full(path))
                key = (st.st_dev, st.st_ino)
                ov = self.overlays.get(key)
                if ov is None:
                    ov = self.overlays[key] = Overlay(st.st_size)
            else:
                ov = self.overlay(fh, True)
            ov.truncate(length)

    def fsync(self, path, datasync, fh):
        with self.mutex:
            self.alive()
            ov = self.overlay(fh, False)
            if ov is not None:
                ov.apply(fh)
                del self.overlays[self.fds[fh]]
            if datasync:
                os.fdatasync(fh)
            else:
                os.fsync(fh)

    def flush(self, path, fh):
        self.alive()  # close() does not sync

    def release(self, path, fh):
        with self.mutex:
            self.fds.pop(fh, None)
            os.close(fh)  # the overlay outlives the descriptor, like the page cache

    def getattr(self, path, fh=None):
        with self.mutex:
            self.alive()
            st = os.lstat(self.full(path))
            attrs = {
                k: getattr(st, k)
                for k in (
                    "st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks",
                    "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_ino", "st_dev",
                )
            }
            for k in ("st_atime", "st_mtime", "st_ctime"):
                attrs[k] = attrs.pop(k + "_ns")
            ov = self.overlays.get((st.st_dev, st.st_ino))
            if ov is not None:
                attrs["st_size"] = ov.size
                attrs["st_blocks"] = (ov.size + 511) // 512
            return attrs

    # -- namespace and attributes: straight to the backing dir (durable at once) --

    def readdir(self, path, fh):
        self.alive()
        return [".", ".."] + os.listdir(self.full(path))

    def readlink(self, path):
        self.alive()
        return os.readlink(self.full(path))

    def mkdir(self, path, mode):
        self.alive()
        os.mkdir(self.full(path), mode)

    def mknod(self, path, mode, dev):
        self.alive()
        os.mknod(self.full(path), mode, dev)

    def rmdir(self, path):
        self.alive()
        os.rmdir(self.full(path))

    def unlink(self, path):
        with self.mutex:
            self.alive()
            self.forget_if_last_link(self.full(path))
            os.unlink(self.full(path))

    def rename(self, old, new):
        with self.mutex:
            self.alive()
            self.forget_if_last_link(self.full(new))
            os.rename(self.full(old), self.full(new))

    def link(self, target, source):
        self.alive()
        os.link(self.full(source), self.full(target))

    def symlink(self, target, source):
        self.alive()
        os.symlink(source, self.full(target))

    def chmod(self, path, mode):
        self.alive()
        os.chmod(self.full(path), mode)

    def chown(self, path, uid, gid):
        self.alive()
        os.chown(self.full(path), uid, gid)

    def utimens(self, path, times=None):
        self.alive()
        os.utime(self.full(path), ns=times)

    def access(self, path, amode):
        self.alive()
        if not os.access(self.full(path), amode):
            raise FuseOSError(errno.EACCES)

    def statfs(self, path):
        self.alive()
        st = os.statvfs(self.full(path))
        return {
            k: getattr(st, k)
            for k in (
                "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                "f_files", "f_flag", "f_frsize", "f_namemax",
            )
        }

    def fsyncdir(self, path, datasync, fh):
        self.alive()
        fd = os.open(self.full(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- the power cut ---------------------------------------------------------

    def cut(self):
        """Drops every unsynced write and exits: nothing more reaches the backing dir."""
        with self.mutex:
            self.dead = True
            lost = len(self.overlays)
            self.overlays.clear()
            print("unsyncedfs cut: %d files lost unsynced data" % lost, flush=True)
            os._exit(0)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: unsyncedfs.py BACKING_DIR MOUNTPOINT\n")
        sys.exit(2)
    fs = UnsyncedFS(sys.argv[1])
    # Block SIGUSR1 before libfuse starts its threads so that only the waiter gets it
    # (Python runs signal handlers only in the main thread, which libfuse blocks in).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})

    def wait_for_cut():
        signal.sigwait({signal.SIGUSR1})
        fs.cut()

    threading.Thread(target=wait_for_cut, daemon=True).start()
    FUSE(
        fs,
        sys.argv[2],
        foreground=True,
        nothreads=False,
        big_writes=True,
        max_write=MAX_WRITE_BYTES,
        fsname="unsyncedfs",
    )


if __name__ == "__main__":
    main()
