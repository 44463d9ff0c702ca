"""Import TensorFlow without its C++ start-up chatter.

TensorFlow's C++ runtime prints a few informational lines when it is first imported
(oneDNN notice, missing CUDA drivers, CPU feature guard). They ignore
``TF_CPP_MIN_LOG_LEVEL`` because they are written before absl logging is configured, so we
send file descriptor 2 to a temporary file for the duration of the import. If the import
fails, whatever was written there is printed, so no real error is ever hidden.
TensorFlow's Python logger is set to ERROR (no retracing notices). Set
``IWAE_VERBOSE_TF=1`` to see all of it.
"""

import os
import sys
import tempfile


def import_tensorflow_quietly():
    """Import and return ``tensorflow``, hiding only its start-up log lines."""
    if "tensorflow" in sys.modules or os.environ.get("IWAE_VERBOSE_TF") == "1":
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        saved_fd = os.dup(2)
    except OSError:  # no usable stderr (rare embedded setups): just import
        import tensorflow as tf

        return tf
    with tempfile.TemporaryFile(mode="w+b") as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            import tensorflow_probability  # noqa: F401  (its first import also logs)

            tf.config.list_physical_devices()  # device probing logs too (cuInit)
            # Python-side notices (e.g. "triggered tf.function retracing") are not errors
            tf.get_logger().setLevel("ERROR")
        except BaseException:
            os.dup2(saved_fd, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
    return tf
