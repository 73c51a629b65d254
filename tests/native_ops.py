"""Skip-or-fail for tests that need keras_lstm's C++ ops.

Without the ops a test that needs them skips, except under
``KERAS_LSTM_REQUIRE_NATIVE=1`` (set by `.ci/run`), where it fails: on CI a
build that broke must turn the run red, not hide behind skips.
"""

import pytest

from keras_lstm.native import build


def native_ops_or_skip():
    """Returns the op module; skips (or fails, when required) without it."""
    module = build.ops()
    if module is None:
        reason = ("keras_lstm's C++ ops could not be built or loaded here "
                  "(`python -m keras_lstm.native info` says why)")
        if build.required():
            pytest.fail(f"{build.REQUIRE_VARIABLE}=1 but {reason}")
        pytest.skip(reason)
    return module
