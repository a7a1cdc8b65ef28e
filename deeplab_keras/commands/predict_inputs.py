"""What ``predict`` reads and the names it writes: files, folders and globs expanded without
following symlink cycles, one predictable output stem per input, and inputs that live inside
the output folder (our own earlier outputs) kept apart so they are never re-read or overwritten."""
import os
import re

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")
#: suffixes of the files predict writes (``<stem><suffix>``)
OUTPUT_SUFFIXES = ("_classes.png", "_overlay.png", "_side.png", "_overlay.mp4")
#: the record of what a run wrote (input -> outputs), beside labels.json
INDEX_FILE = "index.json"


def _walk(root):
    """Files below ``root``, sorted; symlinked folders are not entered (no cycles)."""
    return sorted(os.path.join(d, f) for d, _, names in os.walk(root, followlinks=False)
                  for f in names)


def _glob_regex(pattern):
    """A regex for a glob pattern with ``**`` (any folders), ``*``, ``?`` and ``[...]``."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            j = pattern.index("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            body = pattern[i + 1:j].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_files(pattern):
    """Files matching ``pattern`` (``**`` allowed), found by walking from its fixed prefix
    without following symlinked folders (Python's recursive glob follows them, and a link
    cycle makes it run until paths grow too long)."""
    parts = pattern.replace(os.sep, "/").split("/")
    fixed = []
    for part in parts:
        if re.search(r"[*?\[]", part):
            break
        fixed.append(part)
    root = "/".join(fixed) or ("/" if pattern.startswith("/") else ".")
    regex = _glob_regex(pattern.replace(os.sep, "/"))
    if not os.path.isdir(root):
        return []
    found = []
    for path in _walk(root):
        rel = path.replace(os.sep, "/")
        if root == ".":
            rel = rel[2:] if rel.startswith("./") else rel
        if regex.match(rel):
            found.append(path)
    return found


def our_outputs(output_dir):
    """Real paths of the files earlier runs wrote in ``output_dir`` (and its sub-folders), as
    their ``index.json`` records them, plus temporary files of killed runs."""
    import json

    found = set()
    if output_dir is None or not os.path.isdir(output_dir):
        return found
    for folder, _, names in os.walk(output_dir, followlinks=False):
        for name in names:
            if name.startswith(".") and ".tmp" in name:
                found.add(os.path.realpath(os.path.join(folder, name)))
        if INDEX_FILE not in names:
            continue
        try:
            with open(os.path.join(folder, INDEX_FILE)) as f:
                index = json.load(f)
            if index.get("written_by") != "deeplab-keras":
                continue
            for entry in index.get("inputs", []):
                for rel in entry.get("outputs", {}).values():
                    found.add(os.path.realpath(os.path.join(folder, rel)))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return found


def expand_inputs(inputs, extensions=IMAGE_EXTENSIONS, output_dir=None):
    """``(files, problems, skipped)``: files from files, folders (searched recursively for
    ``extensions``, symlinked folders not entered) and glob patterns (``**`` allowed), each file
    once. Files found through a folder or glob that an earlier run wrote into ``output_dir``
    (see :func:`our_outputs`) are ``skipped``; ``problems``: ``(argument, message)`` for arguments that name
    nothing usable."""
    import glob

    files, problems, skipped, seen = [], [], [], set()
    ours = our_outputs(output_dir)

    def add(path, searched):
        key = os.path.realpath(path)
        if key in seen:
            return
        seen.add(key)
        if searched and key in ours:
            skipped.append(path)
        else:
            files.append(path)

    for arg in inputs:
        arg = os.fspath(arg)
        if os.path.isdir(arg):
            found = [f for f in _walk(arg) if f.lower().endswith(extensions)]
            if not found:
                problems.append((arg, f"folder {arg} holds no image or video files "
                                      f"({', '.join(extensions)})"))
            for f in found:
                add(f, True)
        elif os.path.exists(arg):
            add(arg, False)
        elif glob.has_magic(arg):
            found = [f for f in glob_files(arg) if os.path.isfile(f)]
            if not found:
                problems.append((arg, f"no file matches {arg}"))
            for f in found:
                add(f, True)
        else:
            problems.append((arg, f"image not found: {arg}"))
    return files, problems, skipped


def output_stems(files):
    """One output stem per file: its path below the files' common folder, without the
    extension, so same-named files from different folders never collide (``a/x.png`` ->
    ``a/x``, ``b/x.png`` -> ``b/x``); ``x.png`` beside ``x.jpg`` become ``x_png`` / ``x_jpg``."""
    if not files:
        return []
    absolute = [os.path.abspath(f) for f in files]
    root = os.path.commonpath([os.path.dirname(a) for a in absolute])
    stems = [os.path.splitext(os.path.relpath(a, root))[0] for a in absolute]
    clash = {s for s in stems if stems.count(s) > 1}
    out, used = [], set()
    for a, s in zip(absolute, stems):
        if s in clash:
            s = f"{s}_{os.path.splitext(a)[1].lstrip('.').lower() or 'noext'}"
        base, n = s, 1
        while s.lower() in used:  # x.PNG and x.png; case-insensitive file systems
            n += 1
            s = f"{base}_{n}"
        used.add(s.lower())
        out.append(s)
    return out


def check_not_inputs(paths, inputs):
    """ValueError if an output path would replace one of the ``inputs`` (an input named like an
    output of another, in the output folder; a link or hard link to an input too)."""
    from deeplab_keras.utils.io import same_file

    real = {os.path.realpath(p) for p in inputs}
    for path in paths:
        if os.path.realpath(path) in real or any(same_file(path, p) for p in inputs
                                                 if os.path.lexists(path)):
            raise ValueError(f"output {path} would overwrite an input file; choose an "
                             "--output-dir outside the input folders")
