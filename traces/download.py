"""A small registry of public datasets and a safe, idempotent downloader for them.

``download_dataset`` fetches an archive with :mod:`urllib`, checks its SHA-256, extracts it while rejecting
unsafe members (absolute paths, ``..``, links, devices), picks the folders named in the spec, and moves the
result into ``<dest_dir>/<install_dir>`` with one atomic rename. A ``.abr-dataset.json`` marker makes a
second call a no-op. Temporary files live in ``dest_dir`` and are removed on every failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from traces.errors import ConfigError, DownloadError

logger = logging.getLogger(__name__)

MARKER_FILE = ".abr-dataset.json"
ARCHIVE_FORMATS = ("zip", "tar.gz")
_CHUNK_BYTES = 1 << 20
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

ProgressCallback = Callable[[int, "int | None"], None]  # (bytes done, total bytes or None)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Where a dataset comes from and how it is laid out once installed.

    Args:
        name: registry key (lowercase, no slashes).
        url: the archive URL.
        sha256: expected SHA-256 of the archive (lowercase hex); ``None`` means not pinned yet, in which
            case the download is accepted with a warning and the observed digest is written to the marker.
        archive_format: ``"zip"`` or ``"tar.gz"``.
        subdirs: ``(archive path, installed path)`` pairs; the installed path is relative to the install
            folder, ``"."`` meaning the folder itself. Empty: install the whole archive.
        install_dir: folder relative to ``dest_dir`` (default ``name``), e.g. ``"traces/pensieve"``.
        description: one line on what the data is.
        citation: what to cite when using it.

    >>> DatasetSpec("demo", "https://example.org/d.zip", None, "zip").install_dir
    'demo'
    """

    name: str
    url: str
    sha256: str | None
    archive_format: str
    subdirs: tuple[tuple[str, str], ...] = ()
    install_dir: str = ""
    description: str = ""
    citation: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", self.name):
            raise ConfigError(f"name={self.name!r} must be lowercase letters, digits, '-', '_' or '.'",
                              field="name", value=self.name)
        if self.archive_format not in ARCHIVE_FORMATS:
            raise ConfigError(f"archive_format={self.archive_format!r} must be one of {ARCHIVE_FORMATS}",
                              field="archive_format", value=self.archive_format)
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256):
            raise ConfigError(f"sha256={self.sha256!r} must be 64 lowercase hex digits or None",
                              field="sha256", value=self.sha256)
        object.__setattr__(self, "subdirs", tuple((str(a), str(b)) for a, b in self.subdirs))
        object.__setattr__(self, "install_dir", self.install_dir or self.name)
        for path in (self.install_dir, *(p for pair in self.subdirs for p in pair)):
            if not _is_safe_relative(path):
                raise ConfigError(f"path {path!r} in dataset {self.name!r} must be relative without '..'",
                                  field="subdirs", value=path)


def _is_safe_relative(name: str) -> bool:
    """Whether ``name`` is a non-empty relative path with no ``..`` part and no drive letter."""
    pure = PurePosixPath(name.replace("\\", "/"))
    first = pure.parts[0] if pure.parts else ""
    return bool(name) and not pure.is_absolute() and ".." not in pure.parts and ":" not in first


def _github(repo: str, commit: str, fmt: str = "zip") -> str:
    return f"https://github.com/{repo}/archive/{commit}.{fmt}"


_PENSIEVE_PPO = "2bedc6eb5e3aa2c94916f4d371569822e7552182"
_GENET = "5d4303bf7d817136889120eab87f05e22066add3"
_SABRE = "09b03bb0f4f90660a2504a6b2fb48d2f06333706"
_MAHIMAHI = "ae477d437615b972217498ba52be07db17a15618"

REGISTRY: Mapping[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "pensieve-traces", _github("yindaheng98/Pensieve-PPO", _PENSIEVE_PPO), None, "zip",
            subdirs=((f"Pensieve-PPO-{_PENSIEVE_PPO}/src/train", "train"),
                     (f"Pensieve-PPO-{_PENSIEVE_PPO}/src/test", "test")),
            install_dir="traces/pensieve",
            description="Pensieve cooked traces: FCC 2016 + Norway HSDPA train/test (time_s, Mbit/s)",
            citation="Mao et al., Neural Adaptive Video Streaming with Pensieve, SIGCOMM 2017; FCC MBA; "
                     "Riiser et al., MMSys 2013",
        ),
        DatasetSpec(
            "envivio-video", _github("yindaheng98/Pensieve-PPO", _PENSIEVE_PPO), None, "zip",
            subdirs=((f"Pensieve-PPO-{_PENSIEVE_PPO}/src/envivio", "."),),
            install_dir="videos/envivio_dash3",
            description="Envivio-Dash3 chunk sizes (video_size_0..5, bytes); ladder 300-4300 kbit/s",
            citation="Mao et al., SIGCOMM 2017",
        ),
        DatasetSpec(
            "genet-test-traces", _github("GenetProject/Genet", _GENET), None, "zip",
            subdirs=((f"Genet-{_GENET}/abr_trace/testing_trace/fcc-test", "fcc-test"),
                     (f"Genet-{_GENET}/abr_trace/testing_trace/norway-test", "norway-test")),
            install_dir="traces/genet_benchmark",
            description="Genet/NetLLM FCC and Norway test sets (overlap the Pensieve training traces)",
            citation="Xia et al., Genet, SIGCOMM 2022",
        ),
        DatasetSpec(
            "sabre-mmsys18", _github("UMass-LIDS/sabre", _SABRE, "tar.gz"), None, "tar.gz",
            subdirs=((f"sabre-{_SABRE}/example/mmsys18", "."),),
            install_dir="sabre/mmsys18",
            description="Sabre example data: 3G/4G network JSON logs, BBB manifests (bits)",
            citation="Spiteri et al., From Theory to Practice, MMSys 2018",
        ),
        DatasetSpec(
            "mahimahi-cellular", _github("ravinet/mahimahi", _MAHIMAHI, "tar.gz"), None, "tar.gz",
            subdirs=((f"mahimahi-{_MAHIMAHI}/traces", "."),),
            install_dir="traces/mahimahi_cellular",
            description="Mahimahi cellular link traces (one ms timestamp per 1500-byte packet), GPL-3.0",
            citation="Winstein et al., NSDI 2013; Netravali et al., USENIX ATC 2015",
        ),
    )
}


def download_dataset(
    name_or_spec: str | DatasetSpec,
    dest_dir: str | Path,
    *,
    registry: Mapping[str, DatasetSpec] | None = None,
    timeout_s: float = 60.0,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download, verify and install a dataset into ``<dest_dir>/<spec.install_dir>``.

    Args:
        name_or_spec: a registry key or a :class:`DatasetSpec`.
        dest_dir: the data directory to install into (created if missing).
        registry: where to look names up (default :data:`REGISTRY`).
        timeout_s: socket timeout of the download in seconds.
        progress: called as ``progress(bytes_done, bytes_total_or_None)`` while downloading.

    Returns:
        The installed folder.

    Raises:
        ConfigError: ``dest_dir``, or a folder on the way to the install folder, is a file (checked before
            any download).
        DownloadError: unknown name, network failure, checksum mismatch, unsafe or corrupt archive, a
            missing archive folder, or an install folder that exists but was not made by this function.

    >>> import io, tempfile, zipfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     archive = Path(d) / "a.zip"
    ...     with zipfile.ZipFile(archive, "w") as zf:
    ...         zf.writestr("set/t1", "0 1\\n1 2\\n")
    ...     digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    ...     spec = DatasetSpec("demo", archive.as_uri(), digest, "zip", (("set", "."),), "traces/demo")
    ...     sorted(p.name for p in download_dataset(spec, Path(d) / "data").iterdir())
    ['.abr-dataset.json', 't1']
    """
    spec = _lookup(name_or_spec, REGISTRY if registry is None else registry)
    root = Path(dest_dir)
    target = root / spec.install_dir
    _check_folders(root, target)
    if _already_installed(spec, target):
        logger.info("dataset %s already present in %s; skipping the download", spec.name, target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".abr-download-", dir=root))
    try:
        archive = work / f"archive.{spec.archive_format}"
        digest = _fetch(spec.url, archive, timeout_s, progress)
        _verify(spec, digest, archive)
        extracted = work / "extracted"
        _extract(archive, extracted, spec)
        archive.unlink()
        staging = _stage(spec, extracted, work / "staged")
        marker = {"name": spec.name, "url": spec.url, "sha256": digest, "archive_format": spec.archive_format}
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("installed dataset %s into %s", spec.name, target)
    return target


def _lookup(name_or_spec: str | DatasetSpec, registry: Mapping[str, DatasetSpec]) -> DatasetSpec:
    if isinstance(name_or_spec, DatasetSpec):
        return name_or_spec
    if name_or_spec not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise DownloadError(f"unknown dataset {name_or_spec!r}; known: {known}")
    return registry[name_or_spec]


def _check_folders(root: Path, target: Path) -> None:
    """Refuse, before any work, a ``root`` (or a folder between it and ``target``) that is a file.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "data").write_text("")
    ...     try:
    ...         _check_folders(Path(d) / "data", Path(d) / "data" / "videos" / "x")
    ...     except ConfigError as exc:
    ...         print(str(exc).split(d)[-1].split(";")[0])
    /data is a file, not a folder
    """
    existing = next((folder for folder in target.parents if folder.exists()), None)  # deepest first
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"cannot install into {target}: {existing} is a file, not a folder; choose another "
                          "destination folder (abr download --dest) or move the file away",
                          field="dest_dir", value=str(root))


def _already_installed(spec: DatasetSpec, target: Path) -> bool:
    if not target.exists():
        return False
    marker = target / MARKER_FILE
    if not marker.is_file():
        raise DownloadError(f"{target} exists but was not installed by download_dataset (no {MARKER_FILE}); "
                            "move it away or choose another dest_dir")
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        recorded = {}
    if recorded.get("url") != spec.url or (spec.sha256 and recorded.get("sha256") != spec.sha256):
        raise DownloadError(f"{target} holds another download ({recorded.get('url')!r}, not {spec.url!r}); "
                            "delete it to reinstall")
    return True


def _fetch(url: str, out: Path, timeout_s: float, progress: ProgressCallback | None) -> str:
    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, out.open("wb") as sink:  # noqa: S310
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            total = int(length) if length and length.isdigit() else None
            while chunk := response.read(_CHUNK_BYTES):
                sink.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        out.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not download {url}: {reason}; check the URL and your connection") from exc
    logger.debug("downloaded %d bytes from %s", done, url)
    return digest.hexdigest()


def _verify(spec: DatasetSpec, digest: str, archive: Path) -> None:
    if spec.sha256 is None:
        logger.warning("dataset %s has no pinned sha256; accepting %s (pin it in the registry)",
                       spec.name, digest)
        return
    if digest != spec.sha256:
        archive.unlink(missing_ok=True)
        raise DownloadError(f"checksum mismatch for {spec.url}: expected sha256 {spec.sha256}, got {digest}; "
                            "the partial file was deleted")


def _extract(archive: Path, out: Path, spec: DatasetSpec) -> None:
    out.mkdir()
    try:
        if spec.archive_format == "zip":
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                    _check_member(info.filename, spec.url, is_link=is_link)
                zf.extractall(out)
        else:
            with tarfile.open(archive, mode="r:gz") as tf:
                members = tf.getmembers()
                for m in members:
                    _check_member(m.name, spec.url, is_link=not (m.isfile() or m.isdir()))
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(out, members=members, filter="data")
                else:  # pragma: no cover - Python < 3.10.12 without extraction filters
                    tf.extractall(out, members=members)  # noqa: S202 - members checked above
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{spec.url} is not a valid {spec.archive_format} archive: {exc}") from exc


def _check_member(name: str, url: str, *, is_link: bool) -> None:
    if not _is_safe_relative(name):
        raise DownloadError(f"unsafe archive member {name!r} in {url} (absolute path or '..'); refusing to "
                            "extract")
    if is_link:
        raise DownloadError(f"archive member {name!r} in {url} is a link or special file; "
                            "refusing to extract")


def _stage(spec: DatasetSpec, extracted: Path, staging: Path) -> Path:
    if not spec.subdirs:
        return extracted
    if any(dst in (".", "") for _, dst in spec.subdirs):
        if len(spec.subdirs) != 1:
            raise DownloadError(f"dataset {spec.name!r}: an installed path '.' must be the only mapping")
        return _source(extracted, spec.subdirs[0][0], spec)
    staging.mkdir()
    for src, dst in spec.subdirs:
        place = staging / dst
        place.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(_source(extracted, src, spec)), str(place))
    return staging


def _source(extracted: Path, src: str, spec: DatasetSpec) -> Path:
    path = extracted / src
    if not path.exists():
        top = ", ".join(sorted(p.name for p in extracted.iterdir())) or "nothing"
        raise DownloadError(f"dataset {spec.name!r}: the archive has no {src!r} (top level: {top})")
    return path
