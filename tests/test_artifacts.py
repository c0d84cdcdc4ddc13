"""ArtifactStore: immutable versions, atomic publish, lineage, verification; and a
stage that fails mid-run publishes nothing."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import cli, flat, make_workspace, versions, write_glue

from theseus_cli.errors import ArtifactError
from theseus_cli.store.artifacts import ArtifactStore, parse_version, sha256_file


def publish(store: ArtifactStore, stage: str, files: dict[str, bytes] | None = None,
            inputs: dict | None = None, task: str = "MRPC"):
    with store.staging(task, stage) as tmp:
        for rel, data in (files or {"out.bin": b"x"}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        return store.publish(tmp, task, stage, {"inputs": inputs or {}, "metrics": {"m": 1.0}})


def ref(art) -> dict:
    return {"version": art.name, "manifest_sha256": art.manifest_sha256}


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def test_publish_versions_and_manifest(store):
    a1 = publish(store, "s", {"model/w.bin": b"\x00" * 100, "log.jsonl": b"{}\n"})
    assert (a1.name, a1.version, a1.stage, a1.task) == ("v1", 1, "s", "MRPC")
    assert a1.path == store.root / "MRPC" / "s" / "v1"
    m = a1.manifest
    assert (m["schema"], m["task"], m["stage"], m["version"], m["status"]) == (
        2, "MRPC", "s", "v1", "complete")
    assert m["metrics"] == {"m": 1.0}
    assert set(m["outputs"]) == {"model/w.bin", "log.jsonl"}  # not manifest.json itself
    for rel, meta in m["outputs"].items():
        assert meta == {"sha256": sha256_file(a1.path / rel), "bytes": (a1.path / rel).stat().st_size}
    assert m["outputs"]["model/w.bin"]["bytes"] == 100
    assert not list(a1.path.glob("*.tmp"))
    a2 = publish(store, "s")
    assert a2.name == "v2"
    assert [a.name for a in store.versions("MRPC", "s")] == ["v1", "v2"]
    assert store.latest("MRPC", "s") == a2 and store.latest("MRPC", "other") is None
    assert store.tasks() == ["MRPC"]
    assert a1.file("model/w.bin").is_file()
    with pytest.raises(ArtifactError, match=r"MRPC/s/v1 has no 'nope.bin'"):
        a1.file("nope.bin")


def test_version_numbers_never_reused(store):
    for _ in range(3):
        publish(store, "s")
    shutil.rmtree(store.stage_dir("MRPC", "s") / "v3")  # the latest, deleted by hand
    shutil.rmtree(store.stage_dir("MRPC", "s") / "v2")
    assert publish(store, "s").name == "v4"
    assert [a.name for a in store.versions("MRPC", "s")] == ["v1", "v4"]
    # a directory without a manifest is not a version, but its number stays taken
    (store.stage_dir("MRPC", "s") / "v7").mkdir()
    assert [a.name for a in store.versions("MRPC", "s")] == ["v1", "v4"]
    assert publish(store, "s").name == "v8"


def test_staging_is_hidden_and_removed_on_error(store):
    publish(store, "s")
    with store.staging("MRPC", "s") as tmp:
        (tmp / "half.bin").write_bytes(b"...")
        (tmp / "manifest.json").write_text("{}")  # even with a manifest in it
        assert tmp.name.startswith(".staging-")
        assert [a.name for a in store.versions("MRPC", "s")] == ["v1"]
        assert store.staging_dirs("MRPC", "s") == [tmp]
        assert store.latest("MRPC", "s").name == "v1"
    # leaving the block without publishing keeps it (an interrupted run), still hidden
    assert store.staging_dirs("MRPC", "s") == [tmp]
    shutil.rmtree(tmp)

    with pytest.raises(RuntimeError, match="boom"):
        with store.staging("MRPC", "s") as tmp:
            (tmp / "partial.bin").write_bytes(b"...")
            raise RuntimeError("boom")
    assert not tmp.exists() and store.staging_dirs("MRPC", "s") == []
    with pytest.raises(KeyboardInterrupt):
        with store.staging("MRPC", "s") as tmp:
            raise KeyboardInterrupt
    assert not tmp.exists()
    assert [a.name for a in store.versions("MRPC", "s")] == ["v1"]


def test_get_and_parse_version(store):
    publish(store, "s")
    publish(store, "s")
    assert store.get("MRPC", "s", "v2").version == 2
    assert store.get("MRPC", "s", "1").version == 1
    assert store.get("MRPC", "s", 2).name == "v2"
    with pytest.raises(ArtifactError, match=r"MRPC/s has no complete version v5; existing: v1, v2"):
        store.get("MRPC", "s", "v5")
    with pytest.raises(ArtifactError, match=r"MRPC/t has no complete version v1; existing: none"):
        store.get("MRPC", "t", "v1")
    assert parse_version(" v12 ") == 12
    for bad in ("version1", "v", "latest", "-1"):
        with pytest.raises(ArtifactError, match="accepted: vN or N"):
            parse_version(bad)


def test_lineage(store):
    a = publish(store, "a")
    publish(store, "a")  # a/v2 exists but b was made from a/v1
    b = publish(store, "b", inputs={"a": ref(a)})
    other = publish(store, "x")
    c = publish(store, "c", inputs={"x": ref(other), "b": ref(b)})
    assert store.lineage(c, "a") == a
    assert store.lineage(c, "b") == b and store.lineage(c, "c") == c
    assert store.lineage(c, "x") == other
    with pytest.raises(ArtifactError, match=r"MRPC/c/v1 was not made from any zzz artifact"):
        store.lineage(c, "zzz")
    # a changed manifest upstream is detected, directly or two levels up
    doc = json.loads(a.manifest_path.read_text())
    doc["metrics"]["m"] = 99.0
    a.manifest_path.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"MRPC/a/v1 changed since b/v1 used it"):
        store.lineage(b, "a")
    with pytest.raises(ArtifactError, match=r"MRPC/a/v1 changed since b/v1 used it"):
        store.lineage(c, "a")
    # a removed ancestor is named too
    shutil.rmtree(b.path)
    with pytest.raises(ArtifactError, match=r"MRPC/b has no complete version v1"):
        store.lineage(c, "a")


def test_verify_detects_modified_files(store):
    from theseus_cli.store.integrity import HashCache, check_artifact

    cache = HashCache(None)
    art = publish(store, "s", {"model/w.bin": b"abc", "r.json": b"{}"})
    assert check_artifact(art, cache).problems == []
    (art.path / "model/w.bin").write_bytes(b"abd")  # same size, other bytes: re-hashed
    assert check_artifact(art, cache).problems == [
        "model/w.bin: sha256 differs from the manifest (the file changed after it was published)"]
    (art.path / "r.json").unlink()
    assert check_artifact(art, cache).problems[1] == "r.json: missing (the manifest lists it)"
    m = art.manifest_path.read_text().replace('"complete"', '"completed"')
    art.manifest_path.write_text(m)
    assert "manifest.json was edited" in check_artifact(art, cache).problems[0]


# -------------------------------------------------- a stage that fails mid-run
def test_failing_stage_publishes_nothing(tmp_path, tiny_model_dir):
    glue = write_glue(tmp_path / "glue")
    dev = glue / "MRPC" / "dev.tsv"
    lines = dev.read_text(encoding="utf-8-sig").splitlines()
    lines[4] = "\t".join(lines[4].split("\t")[:3])  # file line 5: 3 columns instead of 5
    dev.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, glue)

    result = cli("finetune-teacher", "-w", ws, ok=False)
    assert result.exit_code == 2
    assert f"{dev}: line 5: expected 5 tab-separated columns, found 3" in flat(result.stderr)
    assert "Traceback" not in result.output
    stage_dir = ws / "artifacts" / "MRPC" / "finetune-teacher"
    assert versions(ws, "finetune-teacher") == []
    assert not list(stage_dir.glob(".staging-*"))  # the staging dir was removed
    assert "finetune-teacher" in cli("status", "-w", ws).output

    # the same through an upstream run: nothing of either stage is published
    result = cli("replace", "-w", ws, ok=False)
    assert result.exit_code == 2 and "line 5" in flat(result.stderr)
    assert versions(ws, "finetune-teacher") == versions(ws, "replace") == []
    assert not list((ws / "artifacts").rglob(".staging-*"))
