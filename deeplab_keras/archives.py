"""Safe, atomic, bounded extraction of tarballs into the download cache (TF1 checkpoint
archives): no path escapes, links out or devices, bounded size and entry count (tar bombs),
only the selected members, one folder per archive sha256."""
import json
import os
import shutil
import sys
import tarfile
import tempfile

from deeplab_keras.download import CacheError, cache_dir, file_hash, file_lock, make_writable_folder


MAX_EXTRACT_BYTES = 16 * 2**30  # bound on the bytes an archive may extract (tar bombs)
MAX_MEMBERS = 10_000             # bound on the entries an archive may hold
SOURCE_MARKER = ".deeplab_keras_source.json"  # in an extracted folder: the archive's sha256


def extract_tar(archive, dest, *, select=None, max_bytes=None, max_members=None,
                archive_sha256=None):
    """Extract ``archive`` into directory ``dest`` safely and atomically; returns ``dest``.

    Refuses absolute paths, ``..`` components, links pointing outside ``dest`` and device
    files (in any member), archives of more than ``max_members`` entries or whose selected
    files total more than ``max_bytes`` (tar bombs); ``select(name)`` picks the members to
    extract (default all). Nothing is left behind on failure. With ``archive_sha256``, an
    existing ``dest`` is reused only if it was extracted from that archive."""
    max_bytes = MAX_EXTRACT_BYTES if max_bytes is None else max_bytes
    max_members = MAX_MEMBERS if max_members is None else max_members
    if os.path.isdir(dest) and _extracted_from(dest, archive_sha256):
        return dest
    with file_lock(dest):
        if os.path.isdir(dest):
            if _extracted_from(dest, archive_sha256):
                return dest
            print(f"deeplab-keras: {dest} was not extracted from {archive}; extracting again",
                  file=sys.stderr)
            shutil.rmtree(dest)
        tmp = dest + ".extracting"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        root = os.path.realpath(tmp)
        try:
            with tarfile.open(archive) as tar:
                chosen, total, count = [], 0, 0
                for m in tar:  # streamed: a bomb is refused before it is read to the end
                    count += 1
                    if count > max_members:
                        raise ValueError(f"{archive}: more than {max_members} entries; refused "
                                         "as a possible tar bomb (not a weights archive?)")
                    _check_member(m, root)
                    if select is not None and not (m.isdir() or select(m.name)):
                        continue
                    total += m.size if m.isfile() else 0
                    if total > max_bytes:
                        raise ValueError(f"{archive}: its files would extract to more than "
                                         f"{max_bytes} bytes ({m.name!r} has {m.size}); refused "
                                         "as a possible tar bomb")
                    chosen.append(m)
                tar.extractall(tmp, members=chosen, filter="data")
            if archive_sha256:
                with open(os.path.join(tmp, SOURCE_MARKER), "w") as f:
                    json.dump({"archive": os.path.basename(archive), "sha256": archive_sha256}, f)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.replace(tmp, dest)
    return dest


def _extracted_from(dest, archive_sha256):
    if archive_sha256 is None:
        return True  # the caller does not pin the archive (original behaviour)
    try:
        with open(os.path.join(dest, SOURCE_MARKER)) as f:
            return json.load(f).get("sha256") == archive_sha256
    except (OSError, ValueError, AttributeError):
        return False


def is_checkpoint_member(name):
    """TF checkpoint files (``*.ckpt*.index`` / ``.data-*`` / ``.meta``, ``checkpoint``)."""
    base = os.path.basename(name)
    return ".ckpt" in base or base == "checkpoint"


def extract_checkpoint(archive, max_bytes=None, max_members=None):
    """Extract only the checkpoint members of ``archive`` into
    ``<cache>/extracted/<sha256 of the archive>`` (reused only for that archive); a cache that
    cannot be written gets a temporary folder deleted at exit. Returns the folder."""
    digest = file_hash(archive)
    try:
        folder = os.path.join(cache_dir(), "extracted")
        make_writable_folder(folder, folder, None)
    except CacheError as err:
        import atexit
        folder = tempfile.mkdtemp(prefix="deeplab_keras_extracted_")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        print(f"deeplab-keras: {err}; extracting {archive} into {folder} for this run only",
              file=sys.stderr)
    return extract_tar(archive, os.path.join(folder, digest[:32]), select=is_checkpoint_member,
                       max_bytes=max_bytes, max_members=max_members, archive_sha256=digest)


def _check_member(member, root):
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts:
        raise ValueError(f"unsafe path in archive refused: {name!r}")
    if member.isdev() or member.isfifo():
        raise ValueError(f"device or fifo in archive refused: {name!r}")
    if member.issym() or member.islnk():
        base = root if member.islnk() else os.path.dirname(os.path.join(root, name))
        target = os.path.realpath(os.path.join(base, member.linkname))
        if os.path.isabs(member.linkname) or not (target == root or target.startswith(root + os.sep)):
            raise ValueError(f"link escaping the extraction directory refused: {name!r} -> "
                             f"{member.linkname!r}")
