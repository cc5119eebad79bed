from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.learner.errors import (
    AdapterFormatError,
    ArtifactIntegrityError,
    ArtifactLocationError,
)
from driftloop.learner.registry.store import ArtifactStore, adapter_digest


def make_adapter(folder: Path, weights: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(weights)
    return folder


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    first = store.put(make_adapter(tmp_path / "a"))
    again = store.put(make_adapter(tmp_path / "b"))
    other = store.put(make_adapter(tmp_path / "c", b"other weights"))
    assert first == again and first.sha256 != other.sha256
    assert first.uri == f"file://{(tmp_path / 'store').resolve()}/{first.sha256}"
    assert first.size_bytes == len('{"r": 8}') + len(b"weights")
    # Nothing half-written is left behind under a temporary name.
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == sorted(
        [first.sha256, other.sha256])


def test_fetch_verifies_and_copies(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    stored = store.put(make_adapter(tmp_path / "a"))
    local = store.fetch(stored.uri, stored.sha256, tmp_path / "out")
    assert (local / "adapter_model.safetensors").read_bytes() == b"weights"
    assert adapter_digest(local)[0] == stored.sha256


def test_tampered_adapter_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    stored = store.put(make_adapter(tmp_path / "a"))
    (tmp_path / "store" / stored.sha256 / "adapter_model.safetensors").write_bytes(b"evil")
    with pytest.raises(ArtifactIntegrityError, match="refusing"):
        store.fetch(stored.uri, stored.sha256, tmp_path / "out")
    assert not (tmp_path / "out" / stored.sha256).exists()


def test_claimed_sha_must_name_the_uri(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    stored = store.put(make_adapter(tmp_path / "a"))
    with pytest.raises(ArtifactIntegrityError):
        store.fetch(stored.uri, "f" * 64)


@pytest.mark.parametrize("name", ["adapter_model.bin", "model.pt", "code.py", "weights.pkl"])
def test_only_json_and_safetensors_are_stored(tmp_path: Path, name: str) -> None:
    folder = make_adapter(tmp_path / "a")
    (folder / name).write_bytes(b"\x80\x04pickle")
    with pytest.raises(AdapterFormatError, match="only"):
        ArtifactStore(str(tmp_path / "store")).put(folder)


def test_extra_file_smuggled_into_store_is_refused_at_fetch(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    stored = store.put(make_adapter(tmp_path / "a"))
    (tmp_path / "store" / stored.sha256 / "payload.pkl").write_bytes(b"x")
    with pytest.raises(AdapterFormatError):
        store.fetch(stored.uri, stored.sha256, tmp_path / "out")


def test_bad_adapter_folders(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"), max_bytes=10)
    with pytest.raises(AdapterFormatError, match="not a folder"):
        store.put(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterFormatError, match="empty"):
        store.put(tmp_path / "empty")
    with pytest.raises(AdapterFormatError, match="limit"):
        store.put(make_adapter(tmp_path / "big", b"x" * 100))
    nested = make_adapter(tmp_path / "nested")
    (nested / "sub").mkdir()
    with pytest.raises(AdapterFormatError, match="plain files"):
        ArtifactStore(str(tmp_path / "store")).put(nested)
    config_only = tmp_path / "config_only"
    config_only.mkdir()
    (config_only / "adapter_config.json").write_text("{}")
    with pytest.raises(AdapterFormatError, match=r"no \.safetensors"):
        ArtifactStore(str(tmp_path / "store")).put(config_only)


@pytest.mark.parametrize("uri", [
    "file:///etc/passwd",
    "file://{root}/../{sha}",
    "file://{root}/{sha}/..",
    "file://{root}/not-a-digest",
    "s3://bucket/{sha}",
    "http://example.com/{sha}",
])
def test_uris_outside_the_store_are_refused(tmp_path: Path, uri: str) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    stored = store.put(make_adapter(tmp_path / "a"))
    with pytest.raises(ArtifactLocationError):
        store.fetch(uri.format(root=store.root, sha=stored.sha256), stored.sha256)


def test_disallowed_scheme_and_missing_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactLocationError, match="not allowed"):
        ArtifactStore("ftp://host/adapters", allowed_schemes=("file", "s3"))
    store = ArtifactStore(str(tmp_path / "store"))
    with pytest.raises(ArtifactLocationError, match="does not exist"):
        store.fetch(store.uri_for("a" * 64), "a" * 64)


def test_fsspec_url_store(tmp_path: Path) -> None:
    # memory:// stands in for an object store: same code path as s3:// (fsspec put/mv/get).
    store = ArtifactStore("memory://driftloop-test/adapters",
                          allowed_schemes=("file", "memory"))
    stored = store.put(make_adapter(tmp_path / "a"))
    assert stored.uri.startswith("memory://") and stored.uri.endswith(stored.sha256)
    local = store.fetch(stored.uri, stored.sha256, tmp_path / "out")
    assert (local / "adapter_config.json").read_text() == '{"r": 8}'
    assert store.put(make_adapter(tmp_path / "b")) == stored


@pytest.mark.parametrize("uri", [
    "file://{root}/%2e%2e/{sha}",                  # URL-encoded traversal: never decoded
    "file://{root}/..%2f{sha}",
    "file://{root}/{sha}%00",
    "file://{root}/{sha}\x00",                     # a NUL
    "file://{root}/{sha}?version=1",               # a query some backend would read
    "file://{root}/{sha}#frag",
    "file://evil.example{root}/{sha}",             # a host in a file URI
    "{root}/../{sha}",                             # no scheme: the local disk, same rules
    "file://{root}/./../{root_name}/../../{sha}",
    "https://example.com/{sha}",
    "gs://bucket/{sha}",                           # allowed by settings, but not this store's
])
def test_tricky_uris_are_refused(tmp_path: Path, uri: str) -> None:
    store = ArtifactStore(str(tmp_path / "store"), allowed_schemes=("file", "gs"))
    stored = store.put(make_adapter(tmp_path / "a"))
    with pytest.raises(ArtifactLocationError):
        store.fetch(uri.format(root=store.root, sha=stored.sha256,
                               root_name=Path(store.root).name), stored.sha256)


def test_a_uri_with_dot_segments_inside_the_store_still_works(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    stored = store.put(make_adapter(tmp_path / "a"))
    assert store.fetch(f"file://{store.root}/./{stored.sha256}", stored.sha256,
                       tmp_path / "out").is_dir()


def test_symlinks_out_of_the_store_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    # An adapter outside the store, linked in under its own (correct) digest.
    outside = make_adapter(tmp_path / "outside")
    digest, _ = adapter_digest(outside)
    (Path(store.root) / digest).symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArtifactLocationError, match="symbolic link"):
        store.fetch(store.uri_for(digest), digest, tmp_path / "out")
    # A file inside a stored adapter replaced by a link to a file elsewhere.
    stored = store.put(make_adapter(tmp_path / "a", b"other weights"))
    weights = Path(store.root) / stored.sha256 / "adapter_model.safetensors"
    secret = tmp_path / "secret.safetensors"
    secret.write_bytes(weights.read_bytes())
    weights.unlink()
    weights.symlink_to(secret)
    with pytest.raises(AdapterFormatError, match="symbolic link"):
        store.fetch(stored.uri, stored.sha256, tmp_path / "out2")
    assert not (tmp_path / "out2" / stored.sha256).exists()


def test_an_oversized_artifact_is_refused_before_it_is_copied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = ArtifactStore(str(tmp_path / "store"))
    stored = big.put(make_adapter(tmp_path / "a", b"x" * 5000))
    small = ArtifactStore(str(tmp_path / "store"), max_bytes=1000)
    copied: list[str] = []
    # fsspec shares one LocalFileSystem per process: patched for this test only (a plain
    # assignment left every later fetch of the session copying nothing)
    monkeypatch.setattr(small.fs, "get_file", lambda src, dst, **kw: copied.append(src))
    with pytest.raises(AdapterFormatError, match="limit is 1000: not downloaded"):
        small.fetch(stored.uri, stored.sha256, tmp_path / "out")
    assert copied == []


def test_a_folder_of_many_files_is_not_an_adapter(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    stored = store.put(make_adapter(tmp_path / "a"))
    for i in range(40):
        (Path(store.root) / stored.sha256 / f"extra{i}.json").write_text("{}")
    with pytest.raises(AdapterFormatError, match="at most 32"):
        store.fetch(stored.uri, stored.sha256, tmp_path / "out")


def test_the_size_limit_comes_from_the_settings(tmp_path: Path) -> None:
    from driftloop.learner.training.update import store_from_settings
    from driftloop.schemas.settings import Settings

    settings = Settings(artifacts={"store_url": str(tmp_path / "store"),
                                   "max_artifact_bytes": 100})
    with pytest.raises(AdapterFormatError, match="the limit is 100"):
        store_from_settings(settings).put(make_adapter(tmp_path / "a", b"x" * 200))


_SEGMENTS = st.sampled_from(["..", ".", "", "%2e%2e", "%2f", "store", "other", "etc", "~",
                             "\\..", "a" * 64, "f" * 64, "..%00", "//", "?", "#", " "])


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(scheme=st.sampled_from(["file://", "", "memory://", "http://", "FILE://", "file:"]),
       host=st.sampled_from(["", "localhost", "evil"]),
       parts=st.lists(_SEGMENTS, max_size=6))
def test_fuzzed_uris_resolve_inside_the_store_or_are_refused(
        tmp_path_factory: pytest.TempPathFactory, scheme: str, host: str,
        parts: list[str]) -> None:
    store = _fuzz_store(tmp_path_factory)
    for tail in ("/".join(parts), "/".join([*parts, "f" * 64])):
        uri = f"{scheme}{host}{store.root}/{tail}" if scheme else f"{store.root}/{tail}"
        try:
            path = store.checked_path(uri)
        except ArtifactLocationError:
            continue
        parent, name = path.rsplit("/", 1)
        assert parent == store.root and len(name) == 64, uri


_STORES: dict[str, ArtifactStore] = {}


def _fuzz_store(factory: pytest.TempPathFactory) -> ArtifactStore:
    # One store for every example (hypothesis runs the test body many times).
    if "store" not in _STORES:
        _STORES["store"] = ArtifactStore(str(factory.mktemp("fuzz-store")))
    return _STORES["store"]
