"""Data files: where they come from, where they are kept, and how they are checked.

Every file the loaders of :mod:`iwae_lib.data` read is listed in :data:`REGISTRY` with its
published checksum and the URLs it can be downloaded from, in the order they are tried.
:func:`fetch` returns the checked local path of a file; `pooch <https://www.fatiando.org/pooch>`_
downloads, caches and checks it:

* ``IWAE_DATA_DIR`` set: files are read from that folder only. Nothing is downloaded and
  nothing is written there (it may be read-only).
* otherwise: the cache folder ``IWAE_CACHE_DIR`` (default ``~/.cache/iwae_lib``). A file
  that is missing there, or does not match its checksum, is downloaded by
  :func:`pooch.retrieve` from the first URL that serves it with the right checksum; a
  download is checked before it replaces anything.

A binarized-MNIST ``X.amat`` may also be stored gzip-compressed as ``X.amat.gz``; the
checksum is then checked on the decompressed bytes, which are the canonical file.
Each file is hashed at most once per process (per path, size and modification time); a
file whose checksum does not match is never used. Any problem with a file raises
:class:`DataError` saying what to do about it.
"""

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import pooch

#: Hosts known to refuse scripted downloads: they stay in the registry (the canonical source)
#: but are tried last.
REFUSING_HOSTS = ("yann.lecun.com",)

# URL prefixes in the order they are tried: mirrors that serve scripts first.
_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
          "http://yann.lecun.com/exdb/mnist/")
# Larochelle's own copy, then the copy in TensorFlow's public data bucket: one checksum per
# file, so a copy is only used when it is byte for byte the published file.
_LAROCHELLE = ("http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",
               "https://storage.googleapis.com/tensorflow/tf-keras-datasets/")
_OMNIGLOT = ("https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/",
             "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/")

#: File name -> ``{"urls": (URLs in the order they are tried), "hash": "algorithm:hex"}``
#: (pooch's form). The hash is of the file as served at the URLs (for ``.amat``: the plain
#: text). Published values (see ../shared/data/README.md): TensorFlow Datasets'
#: url_checksums for MNIST (whose classic md5 list agrees) and binarized MNIST, and the
#: Omniglot md5 published for the yburda/iwae raw URL.
REGISTRY = {name: {"urls": tuple(prefix + name for prefix in prefixes), "hash": known_hash}
            for name, prefixes, known_hash in (
    ("train-images-idx3-ubyte.gz", _MNIST, "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ("train-labels-idx1-ubyte.gz", _MNIST, "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("t10k-images-idx3-ubyte.gz", _MNIST, "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("t10k-labels-idx1-ubyte.gz", _MNIST, "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ("binarized_mnist_train.amat", _LAROCHELLE,
     "sha256:ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
    ("binarized_mnist_valid.amat", _LAROCHELLE,
     "sha256:1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
    ("binarized_mnist_test.amat", _LAROCHELLE,
     "sha256:e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"),
    ("chardata.mat", _OMNIGLOT, "md5:21ecaf34373511aa7691cf2e0802aa3d"),
)}

_TIMEOUT_S = 60
_VERIFIED = set()  # (path, size, mtime_ns) of the files whose checksum matched in this process


class DataError(RuntimeError):
    """A data file is missing, corrupt, unreadable or could not be downloaded."""


def data_dir():
    """The folder data files are read from, as an absolute ``Path``.

    ``IWAE_DATA_DIR`` if set (read-only use, no downloads); else ``IWAE_CACHE_DIR`` if
    set; else ``~/.cache/iwae_lib``. A relative path is taken relative to the current
    working directory. The folder is not created here.
    """
    folder = os.environ.get("IWAE_DATA_DIR") or os.environ.get("IWAE_CACHE_DIR")
    return Path(folder).expanduser().resolve() if folder else (Path.home() / ".cache" / "iwae_lib").resolve()


def _key(path):
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def _content_hash(name, path, algorithm):
    """Hex digest of the content of file ``name`` stored at ``path`` (gunzipped if ``X.amat.gz``)."""
    try:
        if path.name == name:
            return pooch.file_hash(str(path), alg=algorithm)
        hasher = hashlib.new(algorithm)
        with gzip.open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                hasher.update(chunk)
        return hasher.hexdigest()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"could not read data file {path}: {err}. The file was not used; "
                        f"replace it with a fresh copy from {REGISTRY[name]['urls'][0]}.") from err


def _verify(name, path):
    """``path`` if its content has the checksum of registry file ``name``, else DataError."""
    if _key(path) in _VERIFIED:
        return path
    algorithm, want = REGISTRY[name]["hash"].lower().split(":")
    got = _content_hash(name, path, algorithm)
    if got != want:
        content = "content" if path.name == name else "decompressed content"
        raise DataError(f"checksum mismatch for data file {path.name} ({path}): {algorithm} of its {content} is "
                        f"{got}, expected {want}. The file was not used; delete it and put a fresh copy from "
                        f"{REGISTRY[name]['urls'][0]} in {path.parent}"
                        + ("." if os.environ.get("IWAE_DATA_DIR") else ", or just delete it to download it again."))
    _VERIFIED.add(_key(path))
    return path


def _instructions(name, folder):
    urls = REGISTRY[name]["urls"]
    packed = f" (or gzip-compressed, as {name}.gz)" if name.endswith(".amat") else ""
    return (f"Download {name} from {urls[0]} (mirrors: {', '.join(urls[1:])}) and put it{packed} in {folder}, "
            "or set IWAE_DATA_DIR to a folder that has it.")


def _download(name, folder):
    """The cached copy of ``name``: pooch keeps a checked copy, or downloads one (URLs in order)."""
    path = folder / name
    if path.is_file() and _key(path) in _VERIFIED:
        return path
    failures = []
    for url in REGISTRY[name]["urls"]:
        downloader = pooch.HTTPDownloader(timeout=_TIMEOUT_S, chunk_size=1 << 20)
        try:  # a wrong checksum is a ValueError; network errors (requests') are OSErrors
            path = Path(pooch.retrieve(url, REGISTRY[name]["hash"], fname=name, path=folder, downloader=downloader))
        except (OSError, ValueError) as err:
            failures.append(f"  {url}: {type(err).__name__}: {err}")
        else:
            _VERIFIED.add(_key(path))
            return path
    raise DataError(f"could not download data file {name} into {folder}; every URL failed:\n"
                    + "\n".join(failures) + "\n" + _instructions(name, folder))


def fetch(name):
    """Return the verified local ``Path`` of registry file ``name``.

    ``name`` is a key of :data:`REGISTRY`, e.g. ``"t10k-images-idx3-ubyte.gz"``. For an
    ``X.amat`` file the returned path may be ``X.amat`` or ``X.amat.gz``. Looks in
    :func:`data_dir`, downloads into the cache when ``IWAE_DATA_DIR`` is not set, and
    checks the published checksum (once per process per file). Raises DataError.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown data file {name!r}; known files: {', '.join(sorted(REGISTRY))}")
    folder = data_dir()
    plain, packed = folder / name, folder / f"{name}.gz"
    if name.endswith(".amat") and packed.is_file() and not plain.is_file():
        return _verify(name, packed)
    if not os.environ.get("IWAE_DATA_DIR"):
        return _download(name, folder)
    if plain.is_file():
        return _verify(name, plain)
    looked = f"{plain}" + (f" and {packed}" if name.endswith(".amat") else "")
    raise DataError(f"data file {name} is missing from IWAE_DATA_DIR={folder} (looked for {looked}); IWAE_DATA_DIR "
                    f"is set, so nothing is downloaded. {_instructions(name, folder)} Or unset IWAE_DATA_DIR to "
                    "download it into the cache folder automatically.")
