"""Data sets of the IWAE paper: MNIST, binarized MNIST (Larochelle) and Omniglot.

Files
-----
Every file the loaders read is listed in :data:`REGISTRY` with its canonical URL, mirrors
and published checksums. :func:`fetch` finds a file in :func:`data_dir`, downloads it when
that is allowed, and checks it against the registry before anything is parsed:

* ``IWAE_DATA_DIR`` set: files are read from that folder only. Nothing is downloaded and
  nothing is written there (it may be read-only).
* otherwise: the cache folder ``IWAE_CACHE_DIR`` (default ``~/.cache/iwae_lib``); missing
  files are downloaded into it, trying the URLs in order.

A binarized-MNIST ``X.amat`` may also be stored gzip-compressed as ``X.amat.gz``; the
checksum is then checked on the decompressed bytes, which are the canonical file.
Each file is hashed at most once per process (per path, size and modification time).
Any problem with a file raises :class:`DataError` saying what to do about it.

Arrays
------
Every image array is float32 of shape ``[N, 784]``: 28x28 images flattened in row-major
order (pixel ``(row, col)`` at index ``28 * row + col``), upright. Parsed arrays are cached
per process and returned **read-only**; copy them (``np.array(x)``) before writing.

Binarization
------------
MNIST and Omniglot are *dynamically* binarized, as in the paper: :func:`make_train_dataset`
draws a fresh Bernoulli sample of every training image each time it is served. Held-out
data is binarized once, with fixed seeds (:data:`TEST_BINARIZATION_SEED`,
:data:`VALID_BINARIZATION_SEED`), so every model is scored on the same bits. Binarized
MNIST is the fixed binarization of Larochelle & Murray (2011) and is used as it is.
"""

import dataclasses
import functools
import gzip
import hashlib
import http.client
import os
import struct
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE

#: Seed of the one-off binarization of the test set of a dynamically binarized data set.
#: It does not depend on the ``seed`` of :func:`load_dataset`.
TEST_BINARIZATION_SEED = 20151101
#: Seed of the one-off binarization of a validation set carved out of dynamic training data.
VALID_BINARIZATION_SEED = 20151102

_MNIST_URL_PREFIXES = (
    "http://yann.lecun.com/exdb/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
_LAROCHELLE_URL_PREFIX = (
    "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
)
_OMNIGLOT_URLS = (
    "https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat",
    "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat",
)


def _mnist_entry(name, sha256, md5):
    return {
        "urls": tuple(prefix + name for prefix in _MNIST_URL_PREFIXES),
        "digests": {"sha256": sha256, "md5": md5},
    }


def _larochelle_entry(name, sha256):
    return {"urls": (_LAROCHELLE_URL_PREFIX + name,), "digests": {"sha256": sha256}}


#: File name -> ``{"urls": (canonical URL, mirrors...), "digests": {algorithm: hex}}``.
#: The digests are of the file as served at the URLs (for ``.amat``: the plain text file).
#: Sources of the published values: /work/shared/data/README.md (TensorFlow Datasets
#: url_checksums for MNIST and binarized MNIST sha256, the classic MNIST md5 list, and
#: the Omniglot md5 published for the yburda/iwae raw URL).
REGISTRY = {
    "train-images-idx3-ubyte.gz": _mnist_entry(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    "train-labels-idx1-ubyte.gz": _mnist_entry(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    "t10k-images-idx3-ubyte.gz": _mnist_entry(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3",
    ),
    "t10k-labels-idx1-ubyte.gz": _mnist_entry(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
    "binarized_mnist_train.amat": _larochelle_entry(
        "binarized_mnist_train.amat",
        "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    ),
    "binarized_mnist_valid.amat": _larochelle_entry(
        "binarized_mnist_valid.amat",
        "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    ),
    "binarized_mnist_test.amat": _larochelle_entry(
        "binarized_mnist_test.amat",
        "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
    ),
    "chardata.mat": {
        "urls": _OMNIGLOT_URLS,
        "digests": {"md5": "21ecaf34373511aa7691cf2e0802aa3d"},
    },
}

_DATASET_NAMES = ("mnist", "binarized_mnist", "omniglot")
_DOWNLOAD_TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 20

# Files already checked in this process: (path, size, mtime_ns, digests) tuples.
_VERIFIED = set()


class DataError(RuntimeError):
    """A data file is missing, corrupt, unreadable or could not be downloaded."""


# ----------------------------------------------------------------------------------------
# Locating, downloading and verifying files
# ----------------------------------------------------------------------------------------


def dataset_names():
    """Names accepted by :func:`load_dataset`: a tuple of str."""
    return _DATASET_NAMES


def data_dir():
    """The folder data files are read from, as an absolute ``Path``.

    ``IWAE_DATA_DIR`` if set (read-only use, no downloads); else ``IWAE_CACHE_DIR`` if
    set; else ``~/.cache/iwae_lib``. A relative path is taken relative to the current
    working directory. The folder is not created here.
    """
    fixed = os.environ.get("IWAE_DATA_DIR")
    if fixed:
        return Path(fixed).expanduser().resolve()
    return _cache_dir()


def _cache_dir():
    cache = os.environ.get("IWAE_CACHE_DIR")
    if cache:
        return Path(cache).expanduser().resolve()
    return (Path.home() / ".cache" / "iwae_lib").resolve()


def _downloads_allowed():
    return not os.environ.get("IWAE_DATA_DIR")


def _registry_entry(name):
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"unknown data file {name!r}; known files: {known}") from None


def _local_candidates(name, folder):
    """Paths where file ``name`` may be stored in ``folder``, in order of preference."""
    names = [name]
    if name.endswith(".amat"):
        names.append(name + ".gz")
    return [folder / n for n in names]


def _is_compressed_copy(name, path):
    """True when ``path`` holds ``name`` gzip-compressed (``X.amat.gz`` for ``X.amat``)."""
    return path.name == name + ".gz"


def _open_content(name, path):
    """Binary file object of the content of ``name`` stored at ``path`` (gunzips copies)."""
    if _is_compressed_copy(name, path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _hash_stream(stream, algorithms, copy_to=None):
    """Hex digests ``{algorithm: hex}`` of everything read from a binary stream.

    When ``copy_to`` (a writable binary file) is given, the bytes are also written there.
    """
    hashers = {alg: hashlib.new(alg) for alg in algorithms}
    for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
        if copy_to is not None:
            copy_to.write(chunk)
        for hasher in hashers.values():
            hasher.update(chunk)
    return {alg: hasher.hexdigest() for alg, hasher in hashers.items()}


def _hash_file(name, path, algorithms):
    try:
        with _open_content(name, path) as stream:
            return _hash_stream(stream, algorithms)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"could not read data file {path}: {err}. The file was not used; "
            f"delete it and download it again from {REGISTRY[name]['urls'][0]}."
        ) from err


def _first_mismatch(expected, got):
    """``(algorithm, expected hex, got hex)`` of the first digest that differs, or None."""
    for alg, want in expected.items():
        if got[alg] != want.lower():
            return alg, want.lower(), got[alg]
    return None


def _verification_key(path, expected):
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns, tuple(sorted(expected.items()))


def _verify(name, path):
    """Check ``path`` against the registry digests of ``name`` (hashed once per process).

    Raises DataError on a mismatch; the file is left where it is and not used.
    """
    expected = REGISTRY[name]["digests"]
    key = _verification_key(path, expected)
    if key in _VERIFIED:
        return
    mismatch = _first_mismatch(expected, _hash_file(name, path, expected))
    if mismatch:
        alg, want, got = mismatch
        url = REGISTRY[name]["urls"][0]
        content = "decompressed content" if _is_compressed_copy(name, path) else "content"
        if _downloads_allowed():
            advice = (
                f"delete it (it is then downloaded again) or replace it with a copy from {url}."
            )
        else:
            advice = f"delete it and put a fresh copy from {url} in IWAE_DATA_DIR={path.parent}."
        raise DataError(
            f"checksum mismatch for data file {path.name} ({path}): {alg} of its {content} "
            f"is {got}, expected {want}. The file was not used; {advice}"
        )
    _VERIFIED.add(key)


def _manual_instructions(name, folder):
    urls = REGISTRY[name]["urls"]
    gz_note = f" (or gzip-compressed, as {name}.gz)" if name.endswith(".amat") else ""
    mirrors = f" (mirrors: {', '.join(urls[1:])})" if len(urls) > 1 else ""
    return (
        f"Download {name} from {urls[0]}{mirrors} and put it{gz_note} in {folder}, "
        "or set IWAE_DATA_DIR to a folder that has it."
    )


def _missing_error(name, folder, candidates):
    looked = ", ".join(str(p) for p in candidates)
    return DataError(
        f"data file {name} is missing from IWAE_DATA_DIR={folder} (looked for {looked}); "
        "IWAE_DATA_DIR is set, so nothing is downloaded. "
        + _manual_instructions(name, folder)
        + " Or unset IWAE_DATA_DIR to download it into the cache folder automatically."
    )


def _download_to(url, name, folder):
    """Download ``url`` into ``folder/name`` atomically, after checking its digests.

    Returns the final path. Raises OSError / HTTPException (network, disk) or DataError
    (checksum); a download whose checksum does not match is deleted.
    """
    expected = REGISTRY[name]["digests"]
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    tmp_path = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                got = _hash_stream(response, expected, copy_to=out)
        mismatch = _first_mismatch(expected, got)
        if mismatch:
            alg, want, have = mismatch
            raise DataError(
                f"checksum mismatch: {alg} of the download is {have}, expected {want}; "
                "the download was deleted and not used"
            )
        final = folder / name
        os.replace(tmp_path, final)
        _VERIFIED.add(_verification_key(final, expected))
        return final
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _download(name, folder):
    """Try every URL of ``name`` in order; return the cached path or raise DataError."""
    failures = []
    for url in REGISTRY[name]["urls"]:
        try:
            return _download_to(url, name, folder)
        except DataError as err:
            failures.append(f"  {url}: {err}")
        except (OSError, ValueError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", None) or err  # URLError wraps the cause
            failures.append(f"  {url}: {type(err).__name__}: {reason}")
    raise DataError(
        f"could not download data file {name} into {folder}; every URL failed:\n"
        + "\n".join(failures)
        + "\n"
        + _manual_instructions(name, folder)
    )


def fetch(name):
    """Return the verified local ``Path`` of registry file ``name``.

    ``name`` is a key of :data:`REGISTRY`, e.g. ``"t10k-images-idx3-ubyte.gz"``. For an
    ``X.amat`` file the returned path may be ``X.amat`` or ``X.amat.gz``. Looks in
    :func:`data_dir`, downloads into the cache when ``IWAE_DATA_DIR`` is not set, and
    checks the published checksum (once per process per file). Raises DataError.
    """
    _registry_entry(name)
    folder = data_dir()
    candidates = _local_candidates(name, folder)
    for path in candidates:
        if path.is_file():
            _verify(name, path)
            return path
    if not _downloads_allowed():
        raise _missing_error(name, folder, candidates)
    return _download(name, folder)


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


# ----------------------------------------------------------------------------------------
# tf.data pipelines
# ----------------------------------------------------------------------------------------


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
