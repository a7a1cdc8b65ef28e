"""Is a file what its name says? (downloads: an HTML error page is never a weights file, a
``.tflite`` must parse, a tarball must open, an ``.h5`` must be HDF5, a ``.keras`` a zip.)"""
import os
import tarfile


class ChecksumError(ValueError):
    """A file's content does not match its pinned checksum."""


class FormatError(ChecksumError):
    """A downloaded file is not in the format its name says (an HTML error page, a corrupt
    ``.tflite``, a tarball that does not open)."""


def check_format(path, name=None):
    """Raise :class:`FormatError` unless ``path`` looks like the format its name says: an HTML
    or XML page is never a weights file, a ``.tflite`` must parse as a TFLite flatbuffer, a
    tarball must open, an ``.h5`` must be HDF5, a ``.keras`` / ``.zip`` a zip archive."""
    name = os.path.basename(name or path)
    with open(path, "rb") as f:
        head = f.read(4096)
    start = head.lstrip()[:64].lower()
    if start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        raise FormatError(f"{name}: the server sent an HTML/XML page ({len(head)} bytes start "
                          f"with {head[:40]!r}), not the file")
    if not head:
        raise FormatError(f"{name}: empty file")
    if name.endswith(".tflite"):
        _check_tflite(path, name, head)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(path) as tar:
                if tar.next() is None:
                    raise FormatError(f"{name}: empty tar archive")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise FormatError(f"{name}: not a readable tar archive ({err})") from None
    elif name.endswith(".h5"):
        signature = b"\x89HDF\r\n\x1a\n"
        with open(path, "rb") as f:
            if not any((f.seek(o) or f.read(8)) == signature for o in (0, 512, 1024, 2048)):
                raise FormatError(f"{name}: not an HDF5 file (no HDF5 signature)")
    elif name.endswith((".keras", ".zip")):
        import zipfile
        if not zipfile.is_zipfile(path):
            raise FormatError(f"{name}: not a zip archive")


def _check_tflite(path, name, head):
    if head[4:8] != b"TFL3":
        raise FormatError(f"{name}: not a TFLite flatbuffer (file identifier {head[4:8]!r}, "
                          "expected b'TFL3')")
    try:
        from tensorflow.lite.python import schema_py_generated as schema
        with open(path, "rb") as f:
            buf = f.read()
        model = schema.Model.GetRootAs(buf, 0)
        buffers = model.BuffersLength()
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraphs")
        for i in range(model.SubgraphsLength()):
            graph = model.Subgraphs(i)
            for t in range(graph.TensorsLength()):
                if graph.Tensors(t).Buffer() >= max(buffers, 1):
                    raise ValueError(f"tensor {t} points to a missing buffer")
            for o in range(graph.OperatorsLength()):
                if graph.Operators(o).OpcodeIndex() >= model.OperatorCodesLength():
                    raise ValueError(f"operator {o} has an unknown opcode")
    except ImportError:
        return  # TensorFlow is a dependency; without it only the identifier is checked
    except Exception as err:  # struct.error, IndexError... from a corrupt flatbuffer
        raise FormatError(f"{name}: corrupt TFLite flatbuffer ({err})") from None
