"""Version guards of the patches of Keras / tfmot internals (utils/versions.py)."""
import warnings

import pytest

from deeplab_keras.utils import versions


class Owner:
    present = 1


def test_inside_the_tested_range_is_silent():
    low, _ = versions.TESTED["keras"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert versions.guard("keras", "test patch A", Owner, ("present",), version=low + ".1")


def test_outside_the_range_warns_once_with_the_fix():
    with pytest.warns(RuntimeWarning, match=r"tested with keras >=3\.\d+,<3\.\d+, you have 9\.0.*pip install"):
        assert not versions.guard("keras", "test patch B", version="9.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        versions.guard("keras", "test patch B", version="9.0")  # once per patch


def test_a_missing_internal_is_a_clear_error():
    with pytest.raises(RuntimeError, match="test patch C: keras 9.0 has no gone.*pip install"):
        versions.guard("keras", "test patch C", Owner, ("present", "gone"), version="9.0")


def test_installed_versions_are_known():
    assert versions.installed("keras")
    assert versions.installed("no-such-distribution-xyz") is None
    assert not versions.in_tested_range("keras", "not a version")


def test_the_patches_in_place_are_inside_the_tested_range(tmp_path):
    """The internals the package patches exist in the installed versions."""
    import keras
    from keras.src.backend.tensorflow import trainer as tf_trainer

    from deeplab_keras.training.callbacks import ChiefBackupAndRestore

    assert hasattr(tf_trainer, "reduce_per_replica") and hasattr(keras.Model, "_symbolic_build")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ChiefBackupAndRestore(str(tmp_path / "backup"))
