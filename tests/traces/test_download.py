"""Dataset downloads against a local HTTP server (127.0.0.1, started in the test); no internet access."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from traces.datadir import list_trace_files
from traces.download import MARKER_FILE, REGISTRY, DatasetSpec, download_dataset
from traces.errors import ConfigError, DownloadError
from traces.readers import read_trace_dir

from .._paths import same_path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve ``tmp_path/www`` on 127.0.0.1; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _zip(path: Path, members: dict[str, str]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tar_gz(path: Path, members: dict[str, str], *, link: tuple[str, str] | None = None) -> str:
    with tarfile.open(path, "w:gz") as tf:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tf.addfile(info)
    return hashlib.sha256(path.read_bytes()).hexdigest()


TRACE_MEMBERS = {
    "repo-abc/data/test/t1": "0 1\n1 2\n",
    "repo-abc/data/test/t2": "0 3\n1 4\n",
    "repo-abc/README.md": "not installed",
}


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_download_installs_verifies_and_is_idempotent(served: tuple[str, Path], tmp_path: Path) -> None:
    base, www = served
    digest = _zip(www / "set.zip", TRACE_MEMBERS)
    spec = DatasetSpec("demo", f"{base}/set.zip", digest, "zip",
                       subdirs=(("repo-abc/data/test", "test"),), install_dir="traces/demo")
    dest = tmp_path / "data"
    seen: list[tuple[int, int | None]] = []
    target = download_dataset(spec, dest, progress=lambda done, total: seen.append((done, total)))
    assert target == dest / "traces" / "demo"
    assert [t.name for t in read_trace_dir(target / "test")] == ["t1", "t2"]
    assert not (target / "README.md").exists()
    assert (target / MARKER_FILE).is_file()
    assert seen and seen[-1][0] == (www / "set.zip").stat().st_size
    assert _leftovers(dest) == ["traces"]  # no temporary files left behind

    (www / "set.zip").unlink()  # a second call must not download again
    assert download_dataset(spec, dest) == target


def test_tar_gz_with_whole_folder_mapping(served: tuple[str, Path], tmp_path: Path) -> None:
    base, www = served
    digest = _tar_gz(www / "set.tar.gz", TRACE_MEMBERS)
    spec = DatasetSpec("demo-tar", f"{base}/set.tar.gz", digest, "tar.gz",
                       subdirs=(("repo-abc/data/test", "."),))
    target = download_dataset("demo-tar", tmp_path / "data", registry={"demo-tar": spec})
    assert same_path(target, tmp_path / "data" / "demo-tar")
    assert [p.name for p in list_trace_files(target)] == ["t1", "t2"]


def test_checksum_mismatch_leaves_no_partial_file(served: tuple[str, Path], tmp_path: Path) -> None:
    base, www = served
    digest = _zip(www / "set.zip", TRACE_MEMBERS)
    wrong = "0" * 64
    spec = DatasetSpec("demo", f"{base}/set.zip", wrong, "zip")
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match=rf"checksum mismatch .*expected sha256 {wrong}, got {digest}"):
        download_dataset(spec, dest)
    assert _leftovers(dest) == []


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../evil.txt": "x"}, r"unsafe archive member '../evil.txt'"),
        ({"ok/../../evil.txt": "x"}, r"unsafe archive member 'ok/../../evil.txt'"),
        ({"/tmp/evil.txt": "x"}, r"unsafe archive member '/tmp/evil.txt'"),
    ],
)
def test_path_traversal_archive_is_rejected(
    served: tuple[str, Path], tmp_path: Path, members: dict[str, str], message: str
) -> None:
    base, www = served
    digest = _zip(www / "evil.zip", members)
    dest = tmp_path / "deep" / "data"
    with pytest.raises(DownloadError, match=message):
        download_dataset(DatasetSpec("evil", f"{base}/evil.zip", digest, "zip"), dest)
    assert _leftovers(dest) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_symlink_in_tar_is_rejected(served: tuple[str, Path], tmp_path: Path) -> None:
    base, www = served
    digest = _tar_gz(www / "link.tar.gz", {"a/t1": "0 1\n1 1\n"}, link=("a/passwd", "/etc/passwd"))
    with pytest.raises(DownloadError, match=r"'a/passwd' .* is a link or special file"):
        download_dataset(DatasetSpec("link", f"{base}/link.tar.gz", digest, "tar.gz"), tmp_path / "data")
    assert _leftovers(tmp_path / "data") == []


def test_http_error_and_corrupt_archive(served: tuple[str, Path], tmp_path: Path) -> None:
    base, www = served
    with pytest.raises(DownloadError, match=r"could not download .*/missing.zip"):
        download_dataset(DatasetSpec("gone", f"{base}/missing.zip", None, "zip"), tmp_path / "data")
    (www / "bad.zip").write_bytes(b"this is not a zip")
    with pytest.raises(DownloadError, match=r"bad.zip is not a valid zip archive"):
        download_dataset(DatasetSpec("bad", f"{base}/bad.zip", None, "zip"), tmp_path / "data")
    assert _leftovers(tmp_path / "data") == []


def test_missing_archive_folder_lists_the_top_level(served: tuple[str, Path], tmp_path: Path) -> None:
    base, www = served
    digest = _zip(www / "set.zip", TRACE_MEMBERS)
    spec = DatasetSpec("demo", f"{base}/set.zip", digest, "zip", subdirs=(("repo-xyz/data", "x"),))
    with pytest.raises(DownloadError, match=r"has no 'repo-xyz/data' \(top level: repo-abc\)"):
        download_dataset(spec, tmp_path / "data")


def test_existing_folder_without_marker_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "data" / "demo").mkdir(parents=True)
    spec = DatasetSpec("demo", "http://127.0.0.1:9/never-fetched.zip", None, "zip")
    with pytest.raises(DownloadError, match=r"exists but was not installed by download_dataset"):
        download_dataset(spec, tmp_path / "data")


def test_unknown_name_and_bad_specs() -> None:
    with pytest.raises(DownloadError, match=r"unknown dataset 'nope'; known: .*pensieve-traces"):
        download_dataset("nope", "/nonexistent")
    with pytest.raises(ConfigError, match=r"archive_format='rar'"):
        DatasetSpec("x", "http://h/x.rar", None, "rar")
    with pytest.raises(ConfigError, match=r"sha256='abc'"):
        DatasetSpec("x", "http://h/x.zip", "abc", "zip")
    with pytest.raises(ConfigError, match=r"must be relative without '\.\.'"):
        DatasetSpec("x", "http://h/x.zip", None, "zip", install_dir="../outside")


def test_registry_entries_are_well_formed() -> None:
    assert REGISTRY
    for name, spec in REGISTRY.items():
        assert name == spec.name and spec.url.startswith("https://") and spec.description and spec.citation
