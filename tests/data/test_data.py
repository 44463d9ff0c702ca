"""Tests of iwae_lib.data and the module it is built on (iwae_lib.sources: files, mirrors and checksums, fetched
through pooch): file checks, loaders and data set assembly."""

import gzip
import hashlib
import http.server
import os
import shutil
import socket
import struct
import threading
import types

import numpy as np
import pooch
import pytest
import scipy.io

from iwae_lib import data, sources

MNIST_LABELS_URL = "http://yann.lecun.com/exdb/mnist/t10k-labels-idx1-ubyte.gz"


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def _idx_gz(magic, dims, payload):
    """gzip-compressed IDX file: big-endian magic and dims, then uint8 payload."""
    header = struct.pack(">" + "i" * (1 + len(dims)), magic, *dims)
    return gzip.compress(header + np.asarray(payload, np.uint8).tobytes(), mtime=0)


def _trust(monkeypatch, name, content):
    """Make the registry expect ``content`` for file ``name`` (for synthetic files)."""
    algorithm = data.REGISTRY[name]["hash"].split(":")[0]
    monkeypatch.setitem(data.REGISTRY[name], "hash", f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}")


def _forbid_network(monkeypatch):
    def retrieve(*args, **kwargs):
        raise AssertionError("the network must not be used here")

    monkeypatch.setattr(pooch, "retrieve", retrieve)


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mirrors(monkeypatch):
    """A local HTTP server standing in for the data hosts (no network needed).

    ``served`` maps a URL path to the bytes served there, or to an HTTP error status;
    other paths answer 404. ``requested`` lists the paths asked for, in order.
    """
    for proxy in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    served, requested = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            body = served.get(self.path, 404)
            if isinstance(body, int):
                self.send_error(body)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield types.SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", served=served, requested=requested)
    server.shutdown()
    server.server_close()


def _serve_from(monkeypatch, mirrors, name, *folders):
    """Point the registry URLs of ``name`` at ``mirrors``: one URL per folder, in order."""
    urls = tuple(f"{mirrors.url}/{folder}/{name}" for folder in folders)
    monkeypatch.setitem(data.REGISTRY[name], "urls", urls)
    return urls


def _row_ids(batch, id_bits=6):
    return (batch[:, :id_bits].astype(np.int64) << np.arange(id_bits)).sum(axis=1)


# ----------------------------------------------------------------------------------------
# real files (each parsed once per session)
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mnist_train(real_data_dir):
    return data.load_mnist("train")


@pytest.fixture(scope="session")
def mnist_test(real_data_dir):
    return data.load_mnist("test")


@pytest.fixture(scope="session")
def binarized(real_data_dir):
    return {split: data.load_binarized_mnist(split) for split in ("train", "valid", "test")}


def test_mnist_images(mnist_train, mnist_test):
    (train, _), (test, _) = mnist_train, mnist_test
    assert train.shape == (60000, 784) and test.shape == (10000, 784)
    assert train.dtype == np.float32 and test.dtype == np.float32
    assert train.min() == 0.0 and train.max() == 1.0
    assert test.min() == 0.0 and test.max() == 1.0
    assert abs(train.mean(dtype=np.float64) - 0.1307) < 1e-3
    assert abs(test.mean(dtype=np.float64) - 0.13251) < 1e-4
    # intensities are exactly uint8 / 255: check the raw byte sums
    assert np.rint(train[0] * 255).sum() == 27525
    assert np.rint(train * 255).astype(np.int64).sum() == 1567298545
    assert np.rint(test * 255).astype(np.int64).sum() == 264923200
    np.testing.assert_array_equal(np.rint(train[:100] * 255) / 255, train[:100])


def test_mnist_labels(mnist_train, mnist_test):
    (_, train), (_, test) = mnist_train, mnist_test
    assert train.shape == (60000,) and test.shape == (10000,)
    assert train.dtype == np.int64 and test.dtype == np.int64
    np.testing.assert_array_equal(
        np.bincount(train), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    )
    assert np.bincount(test)[:2].tolist() == [980, 1135]
    assert train[:5].tolist() == [5, 0, 4, 1, 9]


def test_mnist_images_upright(mnist_train):
    """The first training image is a 5: ink in the top rows, none in the corners."""
    five = mnist_train[0][0].reshape(28, 28)
    assert five[:4].sum() == 0 and five[:, :3].sum() == 0
    assert five[5:10].sum() > five[20:25].sum()  # the bar of the 5 is near the top


def test_loaders_cache_read_only_arrays(mnist_train, binarized):
    images, labels = data.load_mnist("train")
    assert images is mnist_train[0] and labels is mnist_train[1]
    assert data.load_binarized_mnist("valid") is binarized["valid"]
    assert not images.flags.writeable and not binarized["train"].flags.writeable
    with pytest.raises(ValueError):
        images[0, 0] = 1.0


def test_binarized_mnist(binarized):
    expected = {"train": (50000, 5118041), "valid": (10000, 1028036), "test": (10000, 1038896)}
    for split, (rows, ones) in expected.items():
        x = binarized[split]
        assert x.shape == (rows, 784) and x.dtype == np.float32
        assert set(np.unique(x).tolist()) == {0.0, 1.0}
        assert int(x.sum(dtype=np.float64)) == ones
    assert abs(binarized["train"].mean(dtype=np.float64) - 0.130562) < 1e-6


def test_unknown_split_and_file():
    with pytest.raises(ValueError, match="train, test"):
        data.load_mnist("valid")
    with pytest.raises(ValueError, match="valid"):
        data.load_binarized_mnist("dev")
    with pytest.raises(ValueError, match="known files"):
        data.fetch("nope.gz")


# ----------------------------------------------------------------------------------------
# locating, verifying and downloading files
# ----------------------------------------------------------------------------------------


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path / "fixed"))
    monkeypatch.setenv("IWAE_CACHE_DIR", str(tmp_path / "cache"))
    assert data.data_dir() == tmp_path / "fixed"
    monkeypatch.delenv("IWAE_DATA_DIR")
    assert data.data_dir() == tmp_path / "cache"
    monkeypatch.delenv("IWAE_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.data_dir() == tmp_path / ".cache" / "iwae_lib"


def test_corrupt_file_in_data_dir_is_rejected_and_kept(real_data_dir, tmp_path, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    copy = tmp_path / name
    shutil.copyfile(real_data_dir / name, copy)
    content = bytearray(copy.read_bytes())
    content[100] ^= 0xFF
    copy.write_bytes(bytes(content))
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    _forbid_network(monkeypatch)

    with pytest.raises(data.DataError, match="checksum") as caught:
        data.fetch(name)
    message = str(caught.value)
    assert name in message and str(copy) in message
    assert data.REGISTRY[name]["hash"].split(":")[1] in message
    assert hashlib.sha256(bytes(content)).hexdigest() in message
    assert "not used" in message
    assert copy.read_bytes() == bytes(content)  # IWAE_DATA_DIR is never modified
    with pytest.raises(data.DataError, match="checksum"):  # still rejected on a retry
        data.fetch(name)


def test_corrupt_amat_is_checked_after_decompression(real_data_dir, tmp_path, monkeypatch):
    text = bytearray(gzip.decompress((real_data_dir / "binarized_mnist_test.amat.gz").read_bytes()))
    text[0] = ord("1") if text[0] == ord("0") else ord("0")  # still valid .amat syntax
    (tmp_path / "binarized_mnist_test.amat.gz").write_bytes(gzip.compress(bytes(text)))
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match="checksum") as caught:
        data.load_binarized_mnist("test")
    assert "decompressed" in str(caught.value)
    assert hashlib.sha256(bytes(text)).hexdigest() in str(caught.value)


def test_truncated_gzip_gives_data_error(real_data_dir, tmp_path, monkeypatch):
    name = "binarized_mnist_valid.amat.gz"
    (tmp_path / name).write_bytes((real_data_dir / name).read_bytes()[:5000])
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match="could not read"):
        data.load_binarized_mnist("valid")


def test_amat_plain_and_gz_both_accepted(real_data_dir, binarized, tmp_path, monkeypatch):
    plain = gzip.decompress((real_data_dir / "binarized_mnist_valid.amat.gz").read_bytes())
    (tmp_path / "binarized_mnist_valid.amat").write_bytes(plain)
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    assert data.fetch("binarized_mnist_valid.amat") == tmp_path / "binarized_mnist_valid.amat"
    np.testing.assert_array_equal(data.load_binarized_mnist("valid"), binarized["valid"])
    assert data.fetch("binarized_mnist_valid.amat").parent == tmp_path
    monkeypatch.setenv("IWAE_DATA_DIR", str(real_data_dir))
    assert data.fetch("binarized_mnist_valid.amat").name == "binarized_mnist_valid.amat.gz"


def test_verification_is_cached_per_file_version(real_data_dir, tmp_path, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    copy = tmp_path / name
    shutil.copyfile(real_data_dir / name, copy)
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    calls = []
    real_hash = sources._content_hash
    monkeypatch.setattr(sources, "_content_hash", lambda *a: calls.append(a) or real_hash(*a))
    assert data.fetch(name) == copy and data.fetch(name) == copy
    assert len(calls) == 1  # hashed once, then remembered
    content = copy.read_bytes()
    copy.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    os.utime(copy, ns=(0, copy.stat().st_mtime_ns + 10**9))  # new mtime: checked again
    with pytest.raises(data.DataError, match="checksum"):
        data.fetch(name)
    assert len(calls) == 2


def test_missing_file_in_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    _forbid_network(monkeypatch)
    with pytest.raises(data.DataError) as caught:
        data.fetch("t10k-labels-idx1-ubyte.gz")
    message = str(caught.value)
    assert "missing" in message and "IWAE_DATA_DIR" in message
    assert MNIST_LABELS_URL in message and str(tmp_path) in message
    with pytest.raises(data.DataError, match="chardata.mat") as caught:
        data.load_omniglot("train")
    assert "https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat" in str(
        caught.value
    )
    assert list(tmp_path.iterdir()) == []


def test_no_network(tmp_path, monkeypatch, mirrors):
    name = "t10k-labels-idx1-ubyte.gz"
    port = _closed_port()
    urls = (f"http://127.0.0.1:{port}/a/{name}", f"http://127.0.0.1:{port}/b/{name}")
    monkeypatch.setitem(data.REGISTRY[name], "urls", urls)
    monkeypatch.delenv("IWAE_DATA_DIR", raising=False)
    monkeypatch.setenv("IWAE_CACHE_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match="could not download") as caught:
        data.fetch(name)
    message = str(caught.value)
    failures = message.splitlines()[1:3]  # one line per URL, in the order they were tried
    assert [line.split(": ")[:2] for line in failures] == [[f"  {url}", "ConnectionError"] for url in urls]
    assert "Connection refused" in failures[0] and str(tmp_path) in message
    assert f"Download {name} from {urls[0]} (mirrors: {urls[1]})" in message
    assert list(tmp_path.iterdir()) == []  # no partial files left behind


def test_download_tries_mirrors_caches_and_verifies(tmp_path, monkeypatch, mirrors):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 28, 28))
    labels = np.array([7, 2, 1])
    served = {
        "t10k-images-idx3-ubyte.gz": _idx_gz(2051, (3, 28, 28), images),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(2049, (3,), labels),
    }
    for name, content in served.items():
        _trust(monkeypatch, name, content)
        # the first mirror is down, the second serves the file; the last host must not be asked
        _serve_from(monkeypatch, mirrors, name, "down", "up", "refusing")
        mirrors.served[f"/down/{name}"] = 503
        mirrors.served[f"/up/{name}"] = content
    monkeypatch.delenv("IWAE_DATA_DIR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("IWAE_CACHE_DIR", str(cache))

    x, y = data.load_mnist("test")
    assert mirrors.requested == [f"/{folder}/{name}" for name in served for folder in ("down", "up")]
    assert sorted(p.name for p in cache.iterdir()) == sorted(served)
    assert (cache / "t10k-labels-idx1-ubyte.gz").read_bytes() == served["t10k-labels-idx1-ubyte.gz"]
    np.testing.assert_array_equal(x, images.reshape(3, 784).astype(np.float32) / 255)
    assert y.tolist() == [7, 2, 1] and y.dtype == np.int64

    # a new process finds the cached copy: pooch checks it and asks no server
    monkeypatch.setattr(sources, "_VERIFIED", set())
    assert data.fetch("t10k-labels-idx1-ubyte.gz") == cache / "t10k-labels-idx1-ubyte.gz"
    assert len(mirrors.requested) == 4
    _forbid_network(monkeypatch)  # and within a process, a checked copy is not hashed again
    assert data.fetch("t10k-labels-idx1-ubyte.gz") == cache / "t10k-labels-idx1-ubyte.gz"


def test_a_damaged_cached_copy_is_downloaded_again(tmp_path, monkeypatch, mirrors):
    name = "t10k-labels-idx1-ubyte.gz"
    good = _idx_gz(2049, (2,), [3, 4])
    _trust(monkeypatch, name, good)
    _serve_from(monkeypatch, mirrors, name, "a")
    mirrors.served[f"/a/{name}"] = good
    monkeypatch.delenv("IWAE_DATA_DIR", raising=False)
    monkeypatch.setenv("IWAE_CACHE_DIR", str(tmp_path))
    (tmp_path / name).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert data.fetch(name) == tmp_path / name
    assert (tmp_path / name).read_bytes() == good and mirrors.requested == [f"/a/{name}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def _host(url):
    return url.split("/")[2]


def test_mirrors_that_serve_scripts_come_before_hosts_that_refuse_them():
    assert sources.REFUSING_HOSTS == ("yann.lecun.com",)
    for name, entry in sources.REGISTRY.items():
        hosts = [_host(url) for url in entry["urls"]]
        refusing = [i for i, host in enumerate(hosts) if host in sources.REFUSING_HOSTS]
        serving = [i for i, host in enumerate(hosts) if host not in sources.REFUSING_HOSTS]
        assert serving, f"{name}: no source that serves scripted downloads"
        assert all(i > max(serving) for i in refusing), f"{name}: {hosts}"
        assert all(url.rsplit("/", 1)[1] == name for url in entry["urls"]), name
        assert len(set(entry["urls"])) == len(entry["urls"]), name
    mnist = sources.REGISTRY["train-images-idx3-ubyte.gz"]["urls"]
    assert [_host(u) for u in mnist] == ["ossci-datasets.s3.amazonaws.com", "storage.googleapis.com", "yann.lecun.com"]
    assert sources.REGISTRY["chardata.mat"]["urls"] == (
        "https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat",
        "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat")


def test_registry_holds_the_published_checksums():
    """One checksum per file, in pooch's ``algorithm:hex`` form (the values of ../shared/data/README.md)."""
    hashes = {name: entry["hash"] for name, entry in sources.REGISTRY.items()}
    assert len(hashes) == 8 and all(h.count(":") == 1 for h in hashes.values())
    assert hashes["train-images-idx3-ubyte.gz"] == (
        "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609")
    assert hashes["t10k-labels-idx1-ubyte.gz"] == (
        "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")
    assert hashes["chardata.mat"] == "md5:21ecaf34373511aa7691cf2e0802aa3d"


def test_registry_checksums_match_the_offline_copies(real_data_dir):
    for name in sources.REGISTRY:
        stored = [real_data_dir / name, real_data_dir / f"{name}.gz"]
        path = next((p for p in stored if p.is_file()), None)
        if path is None:
            continue  # Omniglot: no offline copy
        content = gzip.decompress(path.read_bytes()) if path.name != name else path.read_bytes()
        algorithm, expected = sources.REGISTRY[name]["hash"].split(":")
        assert hashlib.new(algorithm, content).hexdigest() == expected, name


def test_binarized_mnist_has_a_second_source_with_the_same_checksum():
    for split in ("train", "valid", "test"):
        entry = sources.REGISTRY[f"binarized_mnist_{split}.amat"]
        assert entry["urls"] == (
            f"http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{split}.amat",
            f"https://storage.googleapis.com/tensorflow/tf-keras-datasets/binarized_mnist_{split}.amat",
        )
        assert entry["hash"].startswith("sha256:")  # one checksum, whichever URL serves the file
    assert sources.REGISTRY["binarized_mnist_test.amat"]["hash"] == (
        "sha256:e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c")


def test_binarized_mnist_falls_back_to_its_mirror_and_rejects_a_wrong_copy(tmp_path, monkeypatch, mirrors):
    name = "binarized_mnist_valid.amat"
    good = ("0 1 " * 392)[:-1].encode() + b"\n"
    _trust(monkeypatch, name, good)
    _serve_from(monkeypatch, mirrors, name, "toronto", "bucket")
    mirrors.served[f"/toronto/{name}"] = 504
    mirrors.served[f"/bucket/{name}"] = good
    monkeypatch.delenv("IWAE_DATA_DIR", raising=False)
    monkeypatch.setenv("IWAE_CACHE_DIR", str(tmp_path))
    assert data.fetch(name) == tmp_path / name
    assert mirrors.requested == [f"/toronto/{name}", f"/bucket/{name}"]
    np.testing.assert_array_equal(data.load_binarized_mnist("valid"), [[0.0, 1.0] * 392])

    (tmp_path / name).unlink()
    wrong = good[:-2] + b"0\n"
    mirrors.served.update({f"/toronto/{name}": wrong, f"/bucket/{name}": wrong})
    with pytest.raises(data.DataError, match="every URL failed") as caught:
        data.fetch(name)
    assert str(caught.value).count("does not match the known hash") == 2
    assert str(caught.value).count(hashlib.sha256(wrong).hexdigest()) == 2
    assert list(tmp_path.iterdir()) == []


def test_data_keeps_the_names_of_the_modules_it_was_split_into():
    assert data.fetch is sources.fetch and data.REGISTRY is sources.REGISTRY
    assert data.DataError is sources.DataError and data.data_dir is sources.data_dir


def test_download_with_bad_checksum_is_deleted(tmp_path, monkeypatch, mirrors):
    name = "t10k-labels-idx1-ubyte.gz"
    _serve_from(monkeypatch, mirrors, name, "a")
    mirrors.served[f"/a/{name}"] = b"not the real file"
    monkeypatch.delenv("IWAE_DATA_DIR", raising=False)
    monkeypatch.setenv("IWAE_CACHE_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match="does not match the known hash") as caught:
        data.fetch(name)
    assert hashlib.sha256(b"not the real file").hexdigest() in str(caught.value)
    assert data.REGISTRY[name]["hash"] in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_idx_header(tmp_path, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    wrong_magic = _idx_gz(2051, (2,), [1, 2])
    (tmp_path / name).write_bytes(wrong_magic)
    images = _idx_gz(2051, (2, 28, 28), np.zeros(1568))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(images)
    _trust(monkeypatch, name, wrong_magic)
    _trust(monkeypatch, "t10k-images-idx3-ubyte.gz", images)
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match="magic number 2051, expected 2049"):
        data.load_mnist("test")

    short = _idx_gz(2049, (5,), [1, 2])
    (tmp_path / name).write_bytes(short)
    _trust(monkeypatch, name, short)
    with pytest.raises(data.DataError, match="2 bytes follow"):
        data.load_mnist("test")


def test_bad_amat_text(tmp_path, monkeypatch):
    name = "binarized_mnist_test.amat"
    line = " ".join(["0"] * 783 + ["2"]) + "\n"
    (tmp_path / name).write_text(line)
    _trust(monkeypatch, name, line.encode())
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match="canonical .amat"):
        data.load_binarized_mnist("test")

    good = " ".join(["1"] + ["0"] * 783) + "\n"
    (tmp_path / name).write_text(good * 2)
    _trust(monkeypatch, name, (good * 2).encode())
    x = data.load_binarized_mnist("test")
    assert x.shape == (2, 784) and x.sum() == 2 and x[:, 0].tolist() == [1.0, 1.0]


# ----------------------------------------------------------------------------------------
# Omniglot (synthetic chardata.mat: the real file is not available offline)
# ----------------------------------------------------------------------------------------


def _upright_glyphs(num_images):
    """float [num_images, 28, 28] asymmetric glyphs: a top bar of length 20, a left
    column of height 10 + n, and one bright pixel at (27, 27)."""
    glyphs = np.zeros((num_images, 28, 28))
    for n in range(num_images):
        glyphs[n, 0, :20] = 1.0
        glyphs[n, : 10 + n, 0] = 0.5
        glyphs[n, 27, 27] = 0.25
    return glyphs


def _write_chardata(folder, monkeypatch, train_glyphs, test_glyphs):
    """chardata.mat laid out like the real one: each image a column of a 784 x N matrix,
    flattened column-major as MATLAB stores it."""
    to_columns = lambda g: g.transpose(0, 2, 1).reshape(len(g), 784).T  # noqa: E731
    path = folder / "chardata.mat"
    scipy.io.savemat(path, {"data": to_columns(train_glyphs), "testdata": to_columns(test_glyphs)})
    _trust(monkeypatch, "chardata.mat", path.read_bytes())
    monkeypatch.setenv("IWAE_DATA_DIR", str(folder))
    return path


def test_omniglot_shapes_and_orientation(tmp_path, monkeypatch):
    train_glyphs, test_glyphs = _upright_glyphs(5), _upright_glyphs(3)[::-1]
    path = _write_chardata(tmp_path, monkeypatch, train_glyphs, test_glyphs)
    train, test = data.load_omniglot("train"), data.load_omniglot("test")
    assert train.shape == (5, 784) and test.shape == (3, 784)
    assert train.dtype == np.float32 and test.dtype == np.float32
    np.testing.assert_array_equal(train.reshape(5, 28, 28), train_glyphs)
    np.testing.assert_array_equal(test.reshape(3, 28, 28), test_glyphs)
    assert train[0, 27 * 28 + 27] == 0.25 and train[0, 1:20].tolist() == [1.0] * 19
    assert train[0, 28] == 0.5 and train[0, 1 + 28] == 0.0

    # Same result as the reference recipe: transpose, then reshape in Fortran order.
    raw = scipy.io.loadmat(path)["data"]
    reference = raw.T.reshape(-1, 28, 28).reshape(-1, 784, order="F")
    np.testing.assert_array_equal(train, reference)


def test_omniglot_load_dataset(tmp_path, monkeypatch):
    _write_chardata(tmp_path, monkeypatch, _upright_glyphs(6), _upright_glyphs(2))
    splits = data.load_dataset("omniglot", validation_size=2, seed=0)
    assert splits.dynamic and splits.name == "omniglot"
    assert splits.train.shape == (4, 784) and splits.valid.shape == (2, 784)
    assert splits.test.shape == (2, 784) and set(np.unique(splits.test)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match=r"\[0, 5\]"):
        data.load_dataset("omniglot", validation_size=6)


def test_omniglot_rejects_bad_layout(tmp_path, monkeypatch):
    path = tmp_path / "chardata.mat"
    scipy.io.savemat(path, {"data": np.zeros((28, 5)), "testdata": np.zeros((784, 2))})
    _trust(monkeypatch, "chardata.mat", path.read_bytes())
    monkeypatch.setenv("IWAE_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match="expected \\[784, N\\]"):
        data.load_omniglot("train")


# ----------------------------------------------------------------------------------------
# data set assembly
# ----------------------------------------------------------------------------------------


def test_binarize():
    p = np.array([[0.0, 1.0, 0.3] * 1000] * 20, dtype=np.float32)
    a, b, c = data.binarize(p, 1), data.binarize(p, 1), data.binarize(p, 2)
    assert a.dtype == np.float32 and a.shape == p.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(a[:, 0::3] == 0) and np.all(a[:, 1::3] == 1)
    assert abs(a[:, 2::3].mean() - 0.3) < 0.01  # 20000 draws: std 0.0032


def test_dataset_names():
    assert data.dataset_names() == ("mnist", "binarized_mnist", "omniglot")


def test_load_dataset_argument_errors(real_data_dir):
    with pytest.raises(ValueError, match="mnist, binarized_mnist, omniglot"):
        data.load_dataset("cifar10")
    for bad in (-1, 60000, 2.5, True):
        with pytest.raises(ValueError, match="validation_size"):
            data.load_dataset("mnist", validation_size=bad)
    with pytest.raises(ValueError, match=r"\[0, 10000\]"):
        data.load_dataset("binarized_mnist", validation_size=10001)


def test_mnist_dataset_dynamic(mnist_train, mnist_test):
    full, test_intensities = mnist_train[0], mnist_test[0]
    splits = data.load_dataset("mnist")
    assert splits.dynamic and splits.name == "mnist" and splits.valid is None
    np.testing.assert_array_equal(splits.train, full)
    assert splits.train_mean.shape == (784,) and splits.train_mean.dtype == np.float32
    np.testing.assert_allclose(splits.train_mean, full.mean(axis=0, dtype=np.float64), atol=1e-6)

    # the test set is binarized once, from the test images, whatever the seed
    assert splits.test.shape == (10000, 784) and splits.test.dtype == np.float32
    assert set(np.unique(splits.test)) == {0.0, 1.0}
    assert np.all(splits.test[test_intensities == 0] == 0)
    assert np.all(splits.test[test_intensities == 1] == 1)
    assert abs(splits.test.mean() - test_intensities.mean()) < 2e-3
    other = data.load_dataset("mnist", validation_size=100, seed=5)
    np.testing.assert_array_equal(other.test, splits.test)
    np.testing.assert_array_equal(
        splits.test, data.binarize(test_intensities, data.TEST_BINARIZATION_SEED)
    )


def test_mnist_validation_split(mnist_train):
    full = mnist_train[0]
    splits = data.load_dataset("mnist", validation_size=5000, seed=1)
    again = data.load_dataset("mnist", validation_size=5000, seed=1)
    other = data.load_dataset("mnist", validation_size=5000, seed=2)
    rows = splits.valid_indices
    assert splits.train.shape == (55000, 784) and splits.valid.shape == (5000, 784)
    assert rows.dtype == np.int64 and np.all(np.diff(rows) > 0) and rows.max() < 60000

    # deterministic given the seed, different for another seed
    np.testing.assert_array_equal(again.valid_indices, rows)
    np.testing.assert_array_equal(again.valid, splits.valid)
    assert not np.array_equal(other.valid_indices, rows)

    # train is the rest of the training set, in order: disjoint from the validation rows
    rest = np.setdiff1d(np.arange(60000), rows)
    np.testing.assert_array_equal(splits.train, full[rest])
    np.testing.assert_allclose(
        splits.train_mean, full[rest].mean(axis=0, dtype=np.float64), atol=1e-6
    )

    # validation images are binarizations of those training images (not of test images)
    source = full[rows]
    assert set(np.unique(splits.valid)) == {0.0, 1.0}
    assert np.all(splits.valid[source == 0] == 0) and np.all(splits.valid[source == 1] == 1)
    assert abs(splits.valid.mean() - source.mean()) < 3e-3
    np.testing.assert_array_equal(splits.valid, data.binarize(source, data.VALID_BINARIZATION_SEED))


def test_binarized_mnist_dataset(binarized):
    splits = data.load_dataset("binarized_mnist")
    assert not splits.dynamic and splits.valid is None and splits.valid_indices.size == 0
    np.testing.assert_array_equal(splits.train, binarized["train"])
    np.testing.assert_array_equal(splits.test, binarized["test"])
    np.testing.assert_allclose(
        splits.train_mean, binarized["train"].mean(axis=0, dtype=np.float64), atol=1e-6
    )

    full = data.load_dataset("binarized_mnist", validation_size=10000)
    np.testing.assert_array_equal(full.valid, binarized["valid"])
    np.testing.assert_array_equal(full.train, binarized["train"])

    part = data.load_dataset("binarized_mnist", validation_size=3000, seed=4)
    assert part.valid.shape == (3000, 784) and len(np.unique(part.valid_indices)) == 3000
    np.testing.assert_array_equal(part.valid, binarized["valid"][part.valid_indices])
    np.testing.assert_array_equal(part.train, binarized["train"])
