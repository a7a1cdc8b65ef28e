"""Guards for the places that patch or override private internals of Keras, tf_keras or
tensorflow-model-optimization: each names the versions it was tested with; outside that range it
warns once (the patch may no longer fit) and says what to do, and a missing internal is an error
naming the fix instead of an AttributeError deep inside training or export."""
import importlib.metadata
import warnings

from packaging.version import InvalidVersion, Version

#: distribution -> (lowest tested version, first version not tested)
TESTED = {
    "keras": ("3.15", "3.16"),
    "tensorflow-model-optimization": ("0.8", "0.9"),
    "tf_keras": ("2.20", "2.21"),
}
_warned = set()


def installed(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def in_tested_range(distribution, version=None):
    version = version or installed(distribution)
    low, high = TESTED[distribution]
    try:
        return version is not None and Version(low) <= Version(version) < Version(high)
    except InvalidVersion:
        return False


def guard(distribution, what, owner=None, attributes=(), version=None):
    """Check before patching ``what`` (a sentence naming the patch and where it lives).

    Warns once per (distribution, what) when the installed ``distribution`` is outside
    :data:`TESTED`; raises RuntimeError when ``owner`` (the module/class being patched) lacks
    one of ``attributes``. Returns True when inside the tested range."""
    version = version or installed(distribution)
    low, high = TESTED[distribution]
    missing = [a for a in attributes if owner is not None and not hasattr(owner, a)]
    if missing:
        raise RuntimeError(
            f"{what}: {distribution} {version} has no {', '.join(missing)} (tested with "
            f">={low},<{high}). Install a tested version (pip install '{distribution}>={low},<{high}') "
            "or report this at the deeplab-keras issue tracker with your versions.")
    ok = in_tested_range(distribution, version)
    if not ok and (distribution, what) not in _warned:
        _warned.add((distribution, what))
        warnings.warn(
            f"{what} was tested with {distribution} >={low},<{high}, you have {version}. If "
            f"training/export misbehaves, install a tested version (pip install "
            f"'{distribution}>={low},<{high}') and report the failure with your versions.",
            RuntimeWarning, stacklevel=3)
    return ok
