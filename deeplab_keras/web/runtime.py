"""The MediaPipe Tasks for Web runtime (``@mediapipe/tasks-vision``: an ES module bundle and its
wasm, SIMD and non-SIMD), vendored into an exported web folder from the npm package.

The version is pinned (:data:`VERSION`) and so is the tarball's sha256 (:data:`TARBALL_SHA256`):
``npm pack`` fetches it once into the download cache (``$DEEPLAB_KERAS_CACHE/npm/``, see
:func:`deeplab_keras.download.cache_dir`), written atomically and checked against the pin before
every use, so a second export does not fetch again and works offline."""
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile

PACKAGE = "@mediapipe/tasks-vision"
VERSION = "1.1.0"
#: sha256 of ``npm pack @mediapipe/tasks-vision@1.1.0`` (npm's integrity: sha512-ZJqh0wMK...)
TARBALL_SHA256 = "46fc3d3d13fa5de631915929d045be2f74bb32e909d7a5b3a322b28976f54165"
TARBALL = f"mediapipe-tasks-vision-{VERSION}.tgz"
#: files taken from the tarball (``package/`` prefix dropped), all the page needs
FILES = ("package.json", "vision_bundle.mjs",
         "wasm/vision_wasm_internal.js", "wasm/vision_wasm_internal.wasm",
         "wasm/vision_wasm_nosimd_internal.js", "wasm/vision_wasm_nosimd_internal.wasm")
#: seconds ``npm pack`` may take (12 MB)
NPM_TIMEOUT = 600


class RuntimeUnavailable(OSError):
    """npm or the pinned package cannot be had (one line: what failed and the fix)."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_tarball():
    """Where the tarball lives in the download cache (it may not be there yet)."""
    from deeplab_keras import download
    return os.path.join(download.cache_dir(), "npm", TARBALL)


def _fix():
    return (f"install Node.js with npm and reach the npm registry once, or put the file "
            f"`npm pack {PACKAGE}@{VERSION}` makes at {cached_tarball()} (sha256 {TARBALL_SHA256})")


def tarball(quiet=False):
    """The path of the verified tarball in the cache, fetching it with ``npm pack`` when absent
    (or when the cached file fails its sha256: it is then replaced). Raises
    :class:`RuntimeUnavailable` with one line when npm or the package cannot be had."""
    dest = cached_tarball()
    if os.path.isfile(dest):
        if _sha256(dest) == TARBALL_SHA256:
            return dest
        if not quiet:
            print(f"{dest}: sha256 does not match the pin; fetching it again")
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeUnavailable(f"cannot get {PACKAGE}@{VERSION} for the web app: npm is not on "
                                 f"PATH; {_fix()}")
    folder = os.path.dirname(dest)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise RuntimeUnavailable(f"cannot create the cache folder {folder} ({err.strerror or err}); "
                                 "set DEEPLAB_KERAS_CACHE to a writable folder") from None
    from deeplab_keras.utils import io
    with tempfile.TemporaryDirectory(prefix=f".npm.{io.TEMP_TAG}", dir=folder) as tmp:
        if not quiet:
            print(f"fetching {PACKAGE}@{VERSION} with npm pack (12 MB, once; cached in {folder})")
        try:
            out = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp,
                                  "--silent"], cwd=tmp, capture_output=True, text=True,
                                 timeout=NPM_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeUnavailable(f"cannot get {PACKAGE}@{VERSION} for the web app: npm pack "
                                     f"took over {NPM_TIMEOUT} s; {_fix()}") from None
        got = os.path.join(tmp, TARBALL)
        if out.returncode != 0 or not os.path.isfile(got):
            why = _first_error(out.stderr or out.stdout) or f"exit status {out.returncode}"
            raise RuntimeUnavailable(f"cannot get {PACKAGE}@{VERSION} for the web app: npm pack "
                                     f"failed ({why}); {_fix()}")
        actual = _sha256(got)
        if actual != TARBALL_SHA256:
            raise RuntimeUnavailable(f"{PACKAGE}@{VERSION} from npm has sha256 {actual}, not the "
                                     f"pinned {TARBALL_SHA256} (a changed or tampered package); "
                                     "nothing was cached")
        with io.atomic_path(dest) as part:
            shutil.copyfile(got, part)
    return dest


def _first_error(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in lines if "ERR" in line and not line.endswith("ERR!")]
    return (errors or lines or [""])[0][:300]


def vendor(folder, quiet=False):
    """Extract :data:`FILES` of the verified tarball into ``folder`` (``vision_bundle.mjs``,
    ``wasm/...``); returns ``{relative path: sha256}`` of what was written, plus the
    package's provenance under ``"package"``."""
    path = tarball(quiet=quiet)
    written = {}
    with tarfile.open(path, "r:gz") as tar:
        for name in FILES:
            try:
                member = tar.getmember("package/" + name)
            except KeyError:
                raise RuntimeUnavailable(f"{path} has no package/{name}; the pinned package "
                                         "changed shape (delete the file and export again)") from None
            if not member.isfile():
                raise RuntimeUnavailable(f"{path}: package/{name} is not a plain file")
            out = os.path.join(folder, *name.split("/"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with tar.extractfile(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            written[name] = _sha256(out)
    return {"package": PACKAGE, "version": VERSION, "tarball": TARBALL,
            "tarball_sha256": TARBALL_SHA256, "files": written}
