"""tf.data pipelines: shuffled training batches, binarized afresh each time, and evaluation batches.

:func:`make_train_dataset` serves every epoch as a pure function of ``(seed, epoch)``: a
stateless shuffle and, for dynamically binarized data, a fresh Bernoulli draw of every image
each time it is served. :func:`make_eval_dataset` batches held-out data in order.
"""

import numpy as np

from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()


def _check_batch_size(batch_size):
    is_int = isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
    if not is_int or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def _epoch_batches(train, key, batch_size, dynamic, drop_remainder):
    """Batches of one epoch, a pure function of ``key`` (int64 [2]).

    The order is a stateless shuffle seeded by fold_in(key, 0); batch ``b`` is binarized
    with uniforms seeded by fold_in(key, b + 1).
    """
    fold_in = tf.random.experimental.stateless_fold_in
    num_examples = tf.shape(train, out_type=tf.int64)[0]
    order = tf.random.experimental.stateless_shuffle(tf.range(num_examples), seed=fold_in(key, 0))
    indices = tf.data.Dataset.from_tensor_slices(order).batch(
        batch_size, drop_remainder=drop_remainder
    )

    def serve(batch_number, rows):
        batch = tf.gather(train, rows)
        if not dynamic:
            return batch
        uniform = tf.random.stateless_uniform(tf.shape(batch), seed=fold_in(key, batch_number + 1))
        return tf.cast(uniform < batch, tf.float32)

    return indices.enumerate().map(serve, num_parallel_calls=tf.data.AUTOTUNE)


def make_train_dataset(train, batch_size, seed, dynamic=True, *, epoch=None, drop_remainder=False):
    """Shuffled training batches, binarized afresh each time an image is served.

    Args:
      train: float32 [N, 784] (numpy or tf); intensities if ``dynamic``, else used as is.
      batch_size: positive int.
      seed: int; with ``epoch`` it fixes every order and every binarization.
      dynamic: binarize each batch with Bernoulli(p = pixel intensity).
      epoch: None (default): every pass over the returned dataset is a new epoch with a
        new order and new binarizations; the sequence of passes is reproducible from
        ``seed`` (and tf's global seed, if one is set). An int: the dataset is epoch
        ``epoch`` only, a pure function of ``(seed, epoch)`` that every pass repeats;
        use it to restart training exactly at an epoch boundary.
      drop_remainder: drop the last, smaller batch of an epoch.

    Returns:
      tf.data.Dataset of float32 [batch, 784] (0/1 if ``dynamic``), prefetched.
    """
    _check_batch_size(batch_size)
    train = tf.convert_to_tensor(train, dtype=tf.float32)
    if train.shape.rank != 2:
        raise ValueError(f"train must be a matrix [N, D], got shape {train.shape}")
    if epoch is None:
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(2).batch(2)
    else:
        keys = tf.data.Dataset.from_tensors(tf.constant([seed, epoch], dtype=tf.int64))
    batches = keys.flat_map(
        lambda key: _epoch_batches(train, key, batch_size, dynamic, drop_remainder)
    )
    return batches.prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(x, batch_size):
    """Batches of ``x`` (float32 [N, D]) in order, last batch kept even if smaller."""
    _check_batch_size(batch_size)
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    return tf.data.Dataset.from_tensor_slices(x).batch(batch_size).prefetch(tf.data.AUTOTUNE)
