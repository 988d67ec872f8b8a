"""The independent judge of the Hub emulator: the official Python client
(`huggingface_hub` 2.4.0 with `hf_xet` 1.8.0) publishes to and downloads from a freshly started
`hub-emulator`, and every result is checked against what was uploaded.

Usage: python hub_judge.py HUB_EMULATOR_BINARY SCENARIO...   (or `all`)
Each scenario prints `ok NAME` or the failure; the last line is `N passed, M failed` and the exit
status is non-zero when anything failed. The emulators crate runs one scenario per cargo test.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

# Before the import: no telemetry, and a broken CAS fails at once instead of retrying for minutes.
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_XET_CLIENT_RETRY_MAX_ATTEMPTS"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
for name in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_XET"):
    os.environ.pop(name, None)

WRITE = "hf_judge_write"
READ = "hf_judge_read"
OTHER = "hf_judge_bob"
SEED = {
    "tokens": [
        {"token": WRITE, "user": "alice", "scopes": ["read", "write"], "orgs": ["acme"]},
        {"token": READ, "user": "alice", "scopes": ["read"]},
        {"token": OTHER, "user": "bob", "scopes": ["read", "write"]},
    ]
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def expect_http_error(status, fn, *args, **kwargs):
    from huggingface_hub.errors import HfHubHTTPError

    try:
        fn(*args, **kwargs)
    except HfHubHTTPError as e:
        got = e.response.status_code if e.response is not None else None
        check(got == status, f"{fn.__name__}: expected HTTP {status}, got {got}: {e}")
        return e
    raise AssertionError(f"{fn.__name__}: expected HTTP {status}, but it succeeded")


class Emulator:
    """A hub-emulator process on a free port, with its own data folder and HF_HOME."""

    def __init__(self, binary, root):
        self.root = Path(root)
        self.data = self.root / "data"
        seed = self.root / "seed.json"
        seed.write_text(json.dumps(SEED))
        self.proc = subprocess.Popen(
            [binary, "--data", str(self.data), "--port", "0", "--seed", str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline().strip()
        if not first.startswith("listening on http://127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {first!r} {self.proc.stderr.read()}")
        self.url = first.split(" ", 2)[2]
        os.environ["HF_HOME"] = str(self.root / "hf_home")

    def requests(self):
        lines = (self.data / "requests.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def make_folder(root):
    """A release folder: a binary > 64 KiB (goes through Xet), a model card, a nested text file."""
    folder = Path(root) / "release"
    (folder / "onnx").mkdir(parents=True)
    # Deterministic pseudo-random bytes, incompressible like real weights.
    blob = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(160 * 1024 // 32))
    (folder / "model.safetensors").write_bytes(blob)
    (folder / "onnx" / "generator.onnx").write_bytes(blob[::-1] + b"\0tail")
    (folder / "README.md").write_text(
        "---\nlicense: apache-2.0\nlibrary_name: onnx\ntags:\n- diffusion\n---\n# TinyDiT\n\nA model card.\n"
    )
    (folder / "config.json").write_text('{"hidden_size": 64}\n')
    return folder


def local_digests(folder):
    return {
        str(p.relative_to(folder)).replace(os.sep, "/"): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()
    }


def scenario_publish_and_download(emu, tmp):
    """Upload through Xet, tag, download at the tag with both download paths, compare sha256,
    and find exactly one release commit and one tag."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.utils.sha import git_hash

    api = HfApi(endpoint=emu.url, token=WRITE)
    repo = "alice/tinydit"
    url = api.create_repo(repo, private=True)
    check(str(url).endswith("/alice/tinydit"), f"create_repo url {url}")
    check(api.repo_info(repo).private is True, "private flag not kept")

    folder = make_folder(tmp)
    expected = local_digests(folder)
    initial = api.repo_info(repo).sha
    info = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="Release v1.0.0")
    commit = info.oid
    check(len(commit) == 40, f"commit id {commit!r}")
    api.create_tag(repo, tag="v1.0.0", revision=commit, tag_message="TinyDiT v1.0.0")

    # Every binary went through the Xet write token, and the commit carried it as lfsFile.
    paths = [(r["method"], r["path"]) for r in emu.requests()]
    check(("GET", f"/api/models/{repo}/xet-write-token/main") in paths, f"no Xet upload: {paths}")
    tree = {e.path: e for e in api.list_repo_tree(repo, revision="v1.0.0", recursive=True, expand=True) if hasattr(e, "size")}
    for path in ("model.safetensors", "onnx/generator.onnx"):
        entry = tree[path]
        check(entry.lfs is not None and entry.lfs.sha256 == expected[path], f"{path}: lfs {entry.lfs}")
        check(getattr(entry, "xet_hash", None), f"{path}: no xetHash in the tree")
        check(entry.last_commit is not None and entry.last_commit.oid == commit, f"{path}: lastCommit {entry.last_commit}")
    for path in ("README.md", "config.json"):
        entry = tree[path]
        check(entry.lfs is None, f"{path} stored as LFS")
        check(entry.blob_id == git_hash((folder / path).read_bytes()), f"{path}: oid is not the git blob sha1")
    infos = {p.path: p for p in api.get_paths_info(repo, ["model.safetensors", "onnx", "missing.txt"], revision="v1.0.0")}
    check(set(infos) == {"model.safetensors", "onnx"}, f"paths-info: {sorted(infos)}")

    # Cache download through Xet (hf_xet reads the local:// CAS) at the tag.
    cache = Path(tmp) / "cache"
    for path, digest in expected.items():
        got = hf_hub_download(repo, path, revision="v1.0.0", endpoint=emu.url, token=WRITE, cache_dir=cache)
        check(sha256(got) == digest, f"hf_hub_download {path}: sha256 differs")
    reads = [r for r in emu.requests() if "/xet-read-token/" in r["path"]]
    check(reads and all(r["path"].endswith(commit) for r in reads), f"Xet read token not asked for the commit: {reads}")
    snap = Path(snapshot_download(repo, revision="v1.0.0", endpoint=emu.url, token=WRITE, cache_dir=Path(tmp) / "snap"))
    got = local_digests(snap)
    got.pop(".gitattributes", None)
    check(got == expected, f"snapshot_download differs:\n{got}\n{expected}")
    check(snap.name == commit, f"snapshot folder {snap.name} is not the tagged commit {commit}")

    refs = api.list_repo_refs(repo)
    check([(t.name, t.target_commit) for t in refs.tags] == [("v1.0.0", commit)], f"tags: {refs.tags}")
    check([(b.name, b.target_commit) for b in refs.branches] == [("main", commit)], f"branches: {refs.branches}")
    commits = api.list_repo_commits(repo)
    check([c.commit_id for c in commits] == [commit, initial], f"commits: {commits}")
    check(commits[0].title == "Release v1.0.0", f"title {commits[0].title!r}")
    check(api.model_info(repo, revision="v1.0.0").card_data.get("license") == "apache-2.0", "cardData")

    # Anonymous and outsider reads of the private repo fail like on the Hub.
    from huggingface_hub.errors import RepositoryNotFoundError

    for token in (False, OTHER):
        try:
            HfApi(endpoint=emu.url, token=token).repo_info(repo)
            raise AssertionError(f"private repo readable with token={token}")
        except RepositoryNotFoundError:
            pass


def scenario_stale_parent_refused(emu, tmp):
    """A commit whose parent_commit is no longer the head is refused and changes nothing."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=emu.url, token=WRITE)
    repo = "acme/model"
    api.create_repo(repo)
    initial = api.repo_info(repo).sha
    first = api.create_commit(
        repo,
        operations=[CommitOperationAdd("a.txt", b"first\n")],
        commit_message="first",
        parent_commit=initial,
    )
    check(first.oid != initial, "no new commit")
    e = expect_http_error(
        412,
        api.create_commit,
        repo,
        operations=[CommitOperationAdd("a.txt", b"second\n")],
        commit_message="second",
        parent_commit=initial,
    )
    check("A commit has happened since" in str(e), f"message: {e}")
    check(api.repo_info(repo).sha == first.oid, "the refused commit moved the branch")
    check(len(api.list_repo_commits(repo)) == 2, "the refused commit was recorded")


def scenario_rerun_is_no_change(emu, tmp):
    """Uploading the same folder twice: the client finds nothing changed and makes no commit."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=emu.url, token=WRITE)
    repo = "alice/rerun"
    api.create_repo(repo)
    folder = make_folder(tmp)
    first = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="v1")
    commits_before = [r for r in emu.requests() if r["path"].endswith("/commit/main")]
    second = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="v1 again")
    commits_after = [r for r in emu.requests() if r["path"].endswith("/commit/main")]
    check(second.oid == first.oid, f"second run made commit {second.oid}")
    check(len(commits_after) == len(commits_before) == 1, f"commit POSTs: {commits_after}")
    check(len(api.list_repo_commits(repo)) == 2, "an extra commit exists")
    # One changed file: only that one is sent again.
    (folder / "config.json").write_text('{"hidden_size": 128}\n')
    third = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="v2")
    check(third.oid != first.oid, "the change made no commit")
    changed = [c for c in api.list_repo_commits(repo)]
    check(len(changed) == 3, f"commits: {changed}")


def scenario_conflicts_and_auth(emu, tmp):
    """409 on an existing repo and tag (exist_ok accepts them), 401 for unknown tokens,
    403 for a read token writing or a user writing to another namespace."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=emu.url, token=WRITE)
    repo = "alice/conflicts"
    api.create_repo(repo)
    expect_http_error(409, api.create_repo, repo)
    api.create_repo(repo, exist_ok=True)
    api.create_tag(repo, tag="v1")
    expect_http_error(409, api.create_tag, repo, tag="v1")
    api.create_tag(repo, tag="v1", exist_ok=True)
    api.create_branch(repo, branch="rc")
    expect_http_error(409, api.create_branch, repo, branch="rc")
    api.delete_tag(repo, tag="v1")
    check(api.list_repo_refs(repo).tags == [], "tag not deleted")

    expect_http_error(401, HfApi(endpoint=emu.url, token="hf_unknown").whoami)
    reader = HfApi(endpoint=emu.url, token=READ)
    check(reader.whoami()["name"] == "alice", "whoami")
    expect_http_error(403, reader.create_repo, "alice/by-reader")
    expect_http_error(403, reader.upload_file, path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo)
    expect_http_error(403, HfApi(endpoint=emu.url, token=OTHER).create_tag, repo, tag="v2")
    api.delete_repo(repo)
    check(not api.repo_exists(repo), "repo not deleted")


SCENARIOS = {
    "publish_and_download": scenario_publish_and_download,
    "stale_parent_refused": scenario_stale_parent_refused,
    "rerun_is_no_change": scenario_rerun_is_no_change,
    "conflicts_and_auth": scenario_conflicts_and_auth,
}


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    binary, names = argv[1], argv[2:]
    if names == ["all"]:
        names = list(SCENARIOS)
    passed = failed = 0
    for name in names:
        tmp = tempfile.mkdtemp(prefix=f"hub-judge-{name}-")
        emu = None
        try:
            emu = Emulator(binary, tmp)
            SCENARIOS[name](emu, tmp)
            print(f"ok {name}")
            passed += 1
        except Exception:
            print(f"FAILED {name}")
            traceback.print_exc(file=sys.stdout)
            if emu is not None:
                print("emulator requests:")
                for r in emu.requests():
                    print(f"  {r['method']} {r['path']}?{r['query']} -> {r['status']}")
            failed += 1
        finally:
            if emu is not None:
                emu.close()
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
