"""Data files: where they come from, where they are kept, and how they are checked.

Every file the loaders of :mod:`iwae_lib.data` read is listed in :data:`REGISTRY` with the
URLs it can be downloaded from, in the order they are tried, and its published checksums.
:func:`fetch` finds a file in :func:`data_dir`, downloads it when that is allowed, and checks
it against the registry before anything is parsed:

* ``IWAE_DATA_DIR`` set: files are read from that folder only. Nothing is downloaded and
  nothing is written there (it may be read-only).
* otherwise: the cache folder ``IWAE_CACHE_DIR`` (default ``~/.cache/iwae_lib``); missing
  files are downloaded into it, trying the URLs in order. Mirrors that serve scripted
  downloads come first; hosts that refuse them (:data:`REFUSING_HOSTS`) last.

A binarized-MNIST ``X.amat`` may also be stored gzip-compressed as ``X.amat.gz``; the
checksum is then checked on the decompressed bytes, which are the canonical file.
Each file is hashed at most once per process (per path, size and modification time); a
file or download whose checksum does not match is never used. Any problem with a file
raises :class:`DataError` saying what to do about it.
"""

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path

#: Hosts known to refuse scripted downloads: they stay in the registry (the canonical source)
#: but are tried last.
REFUSING_HOSTS = ("yann.lecun.com",)

# Every list is in the order the URLs are tried: mirrors that serve scripts first.
_MNIST_URL_PREFIXES = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# Larochelle's own copy, then the copy in TensorFlow's public data bucket: one checksum per
# file, so a copy is only used when it is byte for byte the published file.
_LAROCHELLE_URL_PREFIXES = (
    "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
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
    return {"urls": tuple(prefix + name for prefix in _LAROCHELLE_URL_PREFIXES), "digests": {"sha256": sha256}}


#: File name -> ``{"urls": (URLs in the order they are tried), "digests": {algorithm: hex}}``.
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

_DOWNLOAD_TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 20

# Files already checked in this process: (path, size, mtime_ns, digests) tuples.
_VERIFIED = set()


class DataError(RuntimeError):
    """A data file is missing, corrupt, unreadable or could not be downloaded."""


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
