"""Checks of user settings by type and range, with messages naming the setting and what is
allowed (issue 11: bad settings are refused before any work starts)."""
import math
import numbers


class SettingError(ValueError):
    """A setting has the wrong type or is out of range."""


def describe(value):
    return f"{value!r} (a {type(value).__name__})"


def check_number(name, value, *, kind=float, low=None, high=None, low_open=False,
                 high_open=False, allow_none=False):
    """Return ``value`` if it is an int (``kind=int``) or a real number within
    ``[low, high]`` (``low_open``/``high_open``: that bound itself excluded); else raise
    :class:`SettingError`."""
    if value is None and allow_none:
        return value
    if kind is int:
        ok_type = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        type_text = "an integer"
    else:
        ok_type = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        type_text = "a finite number"
    rng = range_text(low, high, low_open, high_open)
    if not ok_type or (low is not None and (value < low or (low_open and value == low))) \
            or (high is not None and (value > high or (high_open and value == high))):
        hint = ""
        if isinstance(value, str):
            hint = f" (write {value} without quotes)" if _parses(value, kind) else ""
        raise SettingError(f"setting {name} must be {type_text}{rng}"
                           f"{' or null' if allow_none else ''}, got {describe(value)}{hint}")
    return value


def _parses(text, kind):
    try:
        kind(text)
        return True
    except ValueError:
        return False


def range_text(low, high, low_open=False, high_open=False):
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def check_choice(name, value, choices, allow_none=False):
    if value is None and allow_none:
        return value
    if value not in choices:
        raise SettingError(f"setting {name} must be one of {', '.join(map(repr, choices))}"
                           f"{' or null' if allow_none else ''}, got {describe(value)}")
    return value


def check_labels(labels, num_classes=None, name="labels"):
    """Class names as a list of ``str`` (None stays None): the one check of a ``labels``
    argument, wherever labels are taken (builders, presets, saved models, ``VideoSegmenter``).

    A string is refused: ``labels="abcdefghijk"`` would otherwise be read as 11 one-letter
    labels. So are a dict (its keys would be taken), entries that are not names (str or
    numbers) and, with ``num_classes``, a count that does not match. Raises
    :class:`SettingError` (a ValueError) naming ``name`` and the fix."""
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)):
        raise SettingError(f"{name} must be a list of class names, got the string {labels!r} "
                           f"(it would be read as {len(labels)} one-letter labels): pass a list, "
                           f"e.g. {name}=['background', 'road', ...]")
    if isinstance(labels, dict) or hasattr(labels, "keys"):
        raise SettingError(f"{name} must be a list of class names in class order, got a dict "
                           f"({describe(labels)[:80]}): pass [names[i] for i in range(n)]")
    try:
        labels = list(labels)
    except TypeError:
        raise SettingError(f"{name} must be a list of class names, got {describe(labels)}") from None
    for i, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, (str, numbers.Number)):
            raise SettingError(f"{name}[{i}] must be a class name (a string), got {describe(label)}")
    labels = [str(label) for label in labels]
    if num_classes is not None and len(labels) != int(num_classes):
        raise SettingError(f"{len(labels)} labels for a model with {int(num_classes)} classes "
                           f"({name} must list {int(num_classes)} entries)")
    return labels


def check_size(value, name="input_size"):
    """``(height, width)`` in whole pixels, or None for None: one int means a square. Anything
    else (a string, three numbers, 33.5, 0 or less) is a :class:`SettingError` naming ``name``."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        size = tuple(int(v) for v in value)
        whole = len(size) == 2 and all(not isinstance(v, bool) and float(v) == int(v)
                                       for v in value)
    except (TypeError, ValueError):
        whole = False
    if not whole or min(size) < 1:
        raise SettingError(f"{name} must be (height, width) in pixels, or one int for a square, "
                           f"got {value!r}")
    return size
