"""Data sets of the IWAE paper as arrays: MNIST, binarized MNIST (Larochelle) and Omniglot.

This module parses the files and assembles the splits; :mod:`iwae_lib.sources` finds the
files, downloads and checks them with pooch (:func:`fetch`, :data:`REGISTRY`, :class:`DataError`,
re-exported here). Training draws its batches from these arrays itself
(:func:`iwae_lib.training.epoch_order`, :func:`iwae_lib.training.binarize_batch`).

Arrays
------
Every image array is float32 of shape ``[N, 784]``: 28x28 images flattened in row-major
order (pixel ``(row, col)`` at index ``28 * row + col``), upright. Parsed arrays are cached
per process and returned **read-only**; copy them (``np.array(x)``) before writing.

Binarization
------------
MNIST and Omniglot are *dynamically* binarized, as in the paper: each training step draws a
fresh Bernoulli sample of its batch (:func:`iwae_lib.training.binarize_batch`). Held-out
data is binarized once, with fixed seeds (:data:`TEST_BINARIZATION_SEED`,
:data:`VALID_BINARIZATION_SEED`), so every model is scored on the same bits. Binarized
MNIST is the fixed binarization of Larochelle & Murray (2011) and is used as it is.
"""

import dataclasses
import functools
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from iwae_lib.sources import REGISTRY, DataError, data_dir, fetch  # noqa: F401  (re-exported)

IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE

#: Seed of the one-off binarization of the test set of a dynamically binarized data set.
#: It does not depend on the ``seed`` of :func:`load_dataset`.
TEST_BINARIZATION_SEED = 20151101
#: Seed of the one-off binarization of a validation set carved out of dynamic training data.
VALID_BINARIZATION_SEED = 20151102

_DATASET_NAMES = ("mnist", "binarized_mnist", "omniglot")


def dataset_names():
    """Names accepted by :func:`load_dataset`: a tuple of str."""
    return _DATASET_NAMES


def _file_key(path):
    """``(path, size, mtime_ns)``: a cache key that changes when the file changes."""
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def _read_payload(path):
    """All bytes of ``path``, gunzipped when its name ends in ``.gz``."""
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as stream:
            return stream.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"could not read data file {path}: {err}") from err


def _read_only(array):
    array.flags.writeable = False
    return array


# ----------------------------------------------------------------------------------------
# Parsers
# ----------------------------------------------------------------------------------------

_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049


def _parse_idx(content, magic, num_dims, path):
    """Split IDX bytes into (dims tuple, uint8 payload array); checks header and length."""
    header_bytes = 4 * (1 + num_dims)
    if len(content) < header_bytes:
        raise DataError(f"{path} is too short ({len(content)} bytes) to be an IDX file.")
    found_magic, *dims = struct.unpack(">" + "i" * (1 + num_dims), content[:header_bytes])
    if found_magic != magic:
        raise DataError(
            f"{path} has IDX magic number {found_magic}, expected {magic}: it is not "
            "the MNIST file it is named after. Delete it and download it again."
        )
    payload = np.frombuffer(content, dtype=np.uint8, offset=header_bytes)
    if payload.size != int(np.prod(dims)):
        raise DataError(
            f"{path}: IDX header announces dims {tuple(dims)} ({int(np.prod(dims))} "
            f"bytes) but {payload.size} bytes follow. Delete it and download it again."
        )
    return tuple(dims), payload


@functools.lru_cache(maxsize=None)
def _mnist_images(key):
    """float32 [N, 784] intensities in [0, 1] from an IDX image file (cached, read-only)."""
    path = Path(key[0])
    dims, pixels = _parse_idx(_read_payload(path), _IDX_IMAGES_MAGIC, 3, path)
    if dims[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28.")
    images = pixels.reshape(dims[0], NUM_PIXELS).astype(np.float32) / np.float32(255.0)
    return _read_only(images)


@functools.lru_cache(maxsize=None)
def _mnist_labels(key):
    """int64 [N] labels from an IDX label file (cached, read-only)."""
    path = Path(key[0])
    _, labels = _parse_idx(_read_payload(path), _IDX_LABELS_MAGIC, 1, path)
    return _read_only(labels.astype(np.int64))


def _parse_amat(content, path):
    """float32 [N, 784] 0/1 images from binarized-MNIST ``.amat`` text.

    The canonical format is one image per line: 784 characters ``0``/``1`` separated by
    single spaces, ``\\n`` at the end, so 1568 bytes per line. The bytes are viewed as a
    numpy array, not parsed token by token.
    """
    line_bytes = 2 * NUM_PIXELS
    if len(content) % line_bytes:
        raise DataError(
            f"{path}: {len(content)} bytes is not a whole number of {line_bytes}-byte "
            "lines of 784 space-separated 0/1 values; not a canonical .amat file."
        )
    rows = np.frombuffer(content, dtype=np.uint8).reshape(-1, line_bytes)
    separators = rows[:, 1::2]
    bits = rows[:, 0::2] - np.uint8(ord("0"))  # anything but '0'/'1' becomes > 1
    if (
        np.any(separators[:, :-1] != ord(" "))
        or np.any(separators[:, -1] != ord("\n"))
        or np.any(bits > 1)
    ):
        raise DataError(
            f"{path}: unexpected characters; expected lines of 784 space-separated "
            "0/1 values ending in a newline (canonical .amat format)."
        )
    return bits.astype(np.float32)


@functools.lru_cache(maxsize=None)
def _amat_images(key):
    path = Path(key[0])
    return _read_only(_parse_amat(_read_payload(path), path))


def omniglot_columns_to_images(columns):
    """Convert ``chardata.mat`` columns to row-major images.

    Args:
      columns: array [784, N], one image per column, as stored in ``chardata.mat``
        (MATLAB stores each 28x28 image column-major, i.e. Fortran order).

    Returns:
      float32 [N, 784]: image ``n`` flattened row-major, so ``out[n].reshape(28, 28)``
      is upright. Pixel ``(row, col)`` is read from ``columns[row + 28 * col, n]``.

    This equals the yburda/iwae reference, which transposes the matrix and then reshapes
    each row to 28x28 in Fortran order (the same as transposing every 28x28 image).
    """
    columns = np.asarray(columns)
    if columns.ndim != 2 or columns.shape[0] != NUM_PIXELS:
        raise ValueError(f"expected an array [784, N], got shape {columns.shape}")
    images = columns.T.reshape(-1, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 1)
    return np.ascontiguousarray(images.reshape(-1, NUM_PIXELS), dtype=np.float32)


@functools.lru_cache(maxsize=None)
def _omniglot_images(key, variable):
    import scipy.io

    path = Path(key[0])
    try:
        raw = scipy.io.loadmat(str(path), variable_names=[variable])
    except Exception as err:  # scipy raises several types for bad .mat files
        raise DataError(f"could not read {path} as a MATLAB file: {err}") from err
    if variable not in raw:
        raise DataError(f"{path} has no variable {variable!r}; is it Omniglot's chardata.mat?")
    columns = raw[variable]
    if columns.ndim != 2 or columns.shape[0] != NUM_PIXELS:
        raise DataError(f"{path}: {variable!r} has shape {columns.shape}, expected [784, N].")
    images = omniglot_columns_to_images(columns)
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise DataError(f"{path}: {variable!r} has values outside [0, 1].")
    return _read_only(images)


# ----------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------


def _check_split(split, allowed):
    if split not in allowed:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(allowed)}")


def load_mnist(split):
    """MNIST images and labels of ``split`` in {"train", "test"}.

    Returns:
      (images, labels): images float32 [N, 784], grayscale intensities ``uint8 / 255`` in
      [0, 1]; labels int64 [N] in 0..9. N = 60000 (train) or 10000 (test). Read-only.
    """
    _check_split(split, ("train", "test"))
    prefix = "train" if split == "train" else "t10k"
    image_file = f"{prefix}-images-idx3-ubyte.gz"
    label_file = f"{prefix}-labels-idx1-ubyte.gz"
    images = _mnist_images(_file_key(fetch(image_file)))
    labels = _mnist_labels(_file_key(fetch(label_file)))
    if len(images) != len(labels):
        raise DataError(
            f"MNIST {split}: {len(images)} images but {len(labels)} labels in {data_dir()}."
        )
    return images, labels


def load_binarized_mnist(split):
    """Larochelle & Murray's fixed binarization of MNIST, ``split`` in {"train", "valid", "test"}.

    Returns:
      float32 [N, 784] with values exactly 0 or 1; N = 50000, 10000, 10000. Read-only.
    """
    _check_split(split, ("train", "valid", "test"))
    name = f"binarized_mnist_{split}.amat"
    return _amat_images(_file_key(fetch(name)))


def load_omniglot(split):
    """Omniglot 28x28 (Burda et al.'s ``chardata.mat``), ``split`` in {"train", "test"}.

    Returns:
      float32 [N, 784] intensities in [0, 1], row-major upright images (see
      :func:`omniglot_columns_to_images`); N = 24345 (train, variable ``data``) or
      8070 (test, variable ``testdata``). Read-only.
    """
    _check_split(split, ("train", "test"))
    variable = "data" if split == "train" else "testdata"
    return _omniglot_images(_file_key(fetch("chardata.mat")), variable)


# ----------------------------------------------------------------------------------------
# Data set assembly
# ----------------------------------------------------------------------------------------


def binarize(intensities, seed):
    """Bernoulli sample with success probability ``intensities``, reproducible from ``seed``.

    Args:
      intensities: array [..., D] of probabilities in [0, 1].
      seed: int (or anything ``np.random.default_rng`` accepts).

    Returns:
      float32 array of the same shape with values 0 or 1; pixel is 1 where a uniform
      [0, 1) draw is below its intensity (so 0 stays 0 and 1 stays 1).
    """
    intensities = np.asarray(intensities, dtype=np.float32)
    uniform = np.random.default_rng(seed).random(intensities.shape, dtype=np.float32)
    return (uniform < intensities).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class DataSplits:
    """Arrays of one data set, ready for training and evaluation.

    Attributes:
      name: data set name, one of :func:`dataset_names`.
      dynamic: True when ``train`` holds intensities to be binarized on the fly.
      train: float32 [N, 784]; intensities in [0, 1] if ``dynamic``, else 0/1.
      valid: float32 [V, 784] of 0/1, or None when ``validation_size`` was 0.
      test: float32 [M, 784] of 0/1 (binarized once with TEST_BINARIZATION_SEED if dynamic).
      train_mean: float32 [784], pixel means of ``train`` (for the decoder output bias).
      valid_indices: int64 [V], sorted rows of the source the validation images came from
        (the full training set if ``dynamic``, the official valid file otherwise);
        empty when there is no validation set.
    """

    name: str
    dynamic: bool
    train: np.ndarray
    valid: np.ndarray | None
    test: np.ndarray
    train_mean: np.ndarray
    valid_indices: np.ndarray


def _check_validation_size(validation_size, limit, what):
    if isinstance(validation_size, bool) or not isinstance(validation_size, (int, np.integer)):
        raise ValueError(f"validation_size must be an int, got {validation_size!r}")
    if not 0 <= validation_size <= limit:
        raise ValueError(
            f"validation_size must be in [0, {limit}] for {what}, got {validation_size}"
        )


def split_validation(num_examples, validation_size, seed):
    """Choose validation rows with a permutation drawn from ``seed``.

    Returns:
      (train_rows, valid_rows): two sorted, disjoint int64 arrays that together cover
      ``range(num_examples)``; ``valid_rows`` has ``validation_size`` entries.
    """
    order = np.random.default_rng(seed).permutation(num_examples)
    valid_rows = np.sort(order[:validation_size]).astype(np.int64)
    train_rows = np.sort(order[validation_size:]).astype(np.int64)
    return train_rows, valid_rows


def _train_mean(train):
    return train.mean(axis=0, dtype=np.float64).astype(np.float32)


def _dynamic_splits(name, full_train, test_intensities, validation_size, seed):
    _check_validation_size(
        validation_size, len(full_train) - 1, f"{name} ({len(full_train)} training images)"
    )
    if validation_size:
        train_rows, valid_rows = split_validation(len(full_train), validation_size, seed)
        train = _read_only(full_train[train_rows])
        valid = _read_only(binarize(full_train[valid_rows], VALID_BINARIZATION_SEED))
    else:
        train, valid, valid_rows = full_train, None, np.zeros(0, np.int64)
    return DataSplits(
        name=name,
        dynamic=True,
        train=train,
        valid=valid,
        test=_read_only(binarize(test_intensities, TEST_BINARIZATION_SEED)),
        train_mean=_read_only(_train_mean(train)),
        valid_indices=_read_only(valid_rows),
    )


def _static_splits(validation_size, seed):
    _check_validation_size(validation_size, 10000, "binarized_mnist (official valid file)")
    train = load_binarized_mnist("train")
    valid, valid_rows = None, np.zeros(0, np.int64)
    if validation_size:
        official = load_binarized_mnist("valid")
        _, valid_rows = split_validation(len(official), validation_size, seed)
        valid = official if validation_size == len(official) else _read_only(official[valid_rows])
    return DataSplits(
        name="binarized_mnist",
        dynamic=False,
        train=train,
        valid=valid,
        test=load_binarized_mnist("test"),
        train_mean=_read_only(_train_mean(train)),
        valid_indices=_read_only(valid_rows),
    )


def load_dataset(name, validation_size=0, seed=0):
    """Assemble train / valid / test arrays of data set ``name``.

    Args:
      name: "mnist" (60000 train / 10000 test, dynamic binarization), "binarized_mnist"
        (Larochelle's static 50000 / 10000 / 10000) or "omniglot" (24345 / 8070, dynamic).
      validation_size: number of validation images, 0 for none. Dynamic data sets carve
        them out of the training set (rows chosen by a permutation from ``seed``, the
        rest stays in ``train`` in original order) and binarize them once with
        VALID_BINARIZATION_SEED. binarized_mnist takes them from the official valid file:
        all of it for 10000, a subset chosen by ``seed`` for fewer; its train set is
        unchanged. Validation images never come from the test set.
      seed: int; only chooses the validation rows. The test set does not depend on it.

    Returns:
      DataSplits (see its docstring for shapes and dtypes).
    """
    if name not in _DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(_DATASET_NAMES)}")
    if name == "binarized_mnist":
        return _static_splits(validation_size, seed)
    if name == "mnist":
        train, test = load_mnist("train")[0], load_mnist("test")[0]
    else:
        train, test = load_omniglot("train"), load_omniglot("test")
    return _dynamic_splits(name, train, test, validation_size, seed)
