"""A local stand-in for the Hugging Face Hub on 127.0.0.1, for tests (``HF_ENDPOINT`` points at it).

It implements only what huggingface_hub (and ``datasets.push_to_hub``) call for the studio's
fetch and push paths:

- repo info ``GET /api/{models,datasets}/<repo>[/revision/<rev>]`` with ``siblings``;
- tree listing ``GET /api/<type>s/<repo>/tree/<rev>[/<path>]`` and ``POST .../paths-info/<rev>``;
- file download ``HEAD|GET [/datasets]/<repo>/resolve/<rev>/<path>`` with ``ETag``, ``X-Repo-Commit``,
  ``Content-Length`` and ``Range`` (206) support;
- uploads: ``POST /api/repos/create``, ``POST .../preupload/<rev>``, the LFS batch API
  (``POST [/datasets]/<repo>.git/info/lfs/objects/batch`` + ``PUT /_lfs/<oid>``) and the ndjson
  ``POST .../commit/<rev>``; ``POST /api/validate-yaml``.

Every request is recorded (method, path, Range and Authorization headers) so tests can check what
was asked for; failures can be injected per file (a dropped connection after N bytes, or an HTTP error).
Clients must disable Xet (``HF_HUB_DISABLE_XET=1``): the double speaks only plain HTTP and LFS.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

#: Files uploaded through LFS (as the real hub does for binaries); the rest are regular git blobs.
LFS_SUFFIXES = (".safetensors", ".parquet", ".bin", ".png", ".jpg", ".zip")


@dataclass
class Repo:
    """One repository: its files at the head commit and the commits it received."""

    files: dict[str, bytes] = field(default_factory=dict)
    sha: str = "0" * 40
    commits: list[dict] = field(default_factory=list)

    def bump(self) -> None:
        digest = hashlib.sha1(self.sha.encode() + b"".join(
            k.encode() + hashlib.sha256(v).digest() for k, v in sorted(self.files.items())))
        self.sha = digest.hexdigest()


@dataclass
class Recorded:
    method: str
    path: str
    range: str | None
    authorization: str | None


class HubDouble:
    """The server: ``with HubDouble() as hub: hub.add_folder(...); os.environ["HF_ENDPOINT"] = hub.url``."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[Recorded] = []
        #: (repo type, repo id, path) -> bytes to send before dropping the connection (one-shot).
        self.drop_after: dict[tuple[str, str, str], int] = {}
        #: (repo type, repo id, path) -> HTTP status returned for every GET until removed.
        self.fail: dict[tuple[str, str, str], int] = {}
        #: Seconds each file GET waits before answering (to watch progress).
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "HubDouble":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ content
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos.setdefault((repo_type, repo_id), Repo())

    def add_folder(self, repo_id: str, folder: str | Path, repo_type: str = "model", prefix: str = "") -> Repo:
        """Serve every file under ``folder`` (relative paths, optionally under ``prefix``) in ``repo_id``."""
        repo = self.repo(repo_id, repo_type)
        root = Path(folder)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                repo.files[prefix + path.relative_to(root).as_posix()] = path.read_bytes()
        repo.bump()
        return repo

    def add_file(self, repo_id: str, path: str, data: bytes, repo_type: str = "model") -> None:
        repo = self.repo(repo_id, repo_type)
        repo.files[path] = data
        repo.bump()

    def gets(self, suffix: str = "") -> list[Recorded]:
        """Recorded GETs of resolved files whose path ends with ``suffix``."""
        return [r for r in self.requests if r.method == "GET" and "/resolve/" in r.path and r.path.endswith(suffix)]


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_REPO = r"(?P<repo>[^/]+/[^/]+)"
_ROUTES = [
    ("GET", re.compile(rf"^/api/(?P<type>model|dataset)s/{_REPO}(?:/revision/(?P<rev>[^/]+))?$"), "info"),
    ("GET", re.compile(rf"^/api/(?P<type>model|dataset)s/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
    ("POST", re.compile(rf"^/api/(?P<type>model|dataset)s/{_REPO}/paths-info/(?P<rev>[^/]+)$"), "paths_info"),
    ("POST", re.compile(rf"^/api/(?P<type>model|dataset)s/{_REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/(?P<type>model|dataset)s/{_REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("POST", re.compile(r"^/api/repos/create$"), "create"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(rf"^/(?:(?P<type>dataset)s/)?{_REPO}\.git/info/lfs/objects/batch$"), "lfs_batch"),
    ("PUT", re.compile(r"^/_lfs/(?P<oid>[0-9a-f]{64})$"), "lfs_put"),
    ("HEAD", re.compile(rf"^/(?:(?P<type>dataset)s/)?{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("GET", re.compile(rf"^/(?:(?P<type>dataset)s/)?{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]


def _handler(hub: HubDouble):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        # ------------------------------------------------------------ plumbing
        def _dispatch(self, method: str) -> None:
            url = urlparse(self.path)
            path = unquote(url.path)
            hub.requests.append(Recorded(method, path, self.headers.get("Range"), self.headers.get("Authorization")))
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            self.query = parse_qs(url.query)
            for verb, pattern, name in _ROUTES:
                match = pattern.match(path)
                if verb == method and match:
                    groups = match.groupdict()
                    if "type" in groups:
                        groups["type"] = groups["type"] or "model"
                    with hub._lock if name != "resolve" else contextlib.nullcontext():
                        return getattr(self, name)(method, **groups)
            self._json({"error": f"no route {method} {path}"}, 404)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, data, status: int = 200, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), headers)

        def _missing_repo(self) -> None:
            self._json({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})

        def _repo(self, type: str, repo: str) -> Repo | None:
            return hub.repos.get((type, repo))

        def _endpoint_prefix(self, type: str) -> str:
            return hub.url + ("/datasets" if type == "dataset" else "")

        # ------------------------------------------------------------ routes
        def info(self, method, type, repo, rev=None) -> None:
            r = self._repo(type, repo)
            if r is None:
                return self._missing_repo()
            self._json({"id": repo, "sha": r.sha, "private": False, "disabled": False,
                        "siblings": [{"rfilename": p} for p in sorted(r.files)]})

        def _entry(self, r: Repo, path: str) -> dict:
            data = r.files[path]
            entry = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            if path.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": _etag(data), "size": len(data), "pointerSize": 134}
            return entry

        def tree(self, method, type, repo, rev, path=None) -> None:
            r = self._repo(type, repo)
            if r is None:
                return self._missing_repo()
            prefix = (path.strip("/") + "/") if path else ""
            recursive = self.query.get("recursive", ["false"])[0].lower() == "true"
            entries, folders = [], set()
            for name in sorted(r.files):
                if not name.startswith(prefix):
                    continue
                rest = name[len(prefix):]
                if "/" in rest and not recursive:
                    folders.add(prefix + rest.split("/")[0])
                    continue
                if recursive:
                    parts = rest.split("/")[:-1]
                    folders.update(prefix + "/".join(parts[:i + 1]) for i in range(len(parts)))
                entries.append(self._entry(r, name))
            if prefix and not entries and not folders:
                return self._json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})
            listing = [{"type": "directory", "path": f, "oid": "0" * 40} for f in sorted(folders)] + entries
            self._json(listing)

        def paths_info(self, method, type, repo, rev) -> None:
            r = self._repo(type, repo)
            if r is None:
                return self._missing_repo()
            form = parse_qs(self.body.decode())
            asked = form.get("paths", [])
            out = []
            for p in asked:
                if p in r.files:
                    out.append(self._entry(r, p))
                elif any(f.startswith(p.rstrip("/") + "/") for f in r.files):
                    out.append({"type": "directory", "path": p, "oid": "0" * 40})
            self._json(out)

        def resolve(self, method, type, repo, rev, path) -> None:
            r = self._repo(type, repo)
            if r is None:
                return self._missing_repo()
            if path not in r.files:
                return self._json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})
            key = (type, repo, path)
            if method == "GET" and hub.delay_s:
                time.sleep(hub.delay_s)
            if method == "GET" and key in hub.fail:
                return self._json({"error": "injected failure"}, hub.fail[key])
            data = r.files[path]
            headers = {"ETag": f'"{_etag(data)}"', "X-Repo-Commit": r.sha, "Accept-Ranges": "bytes"}
            status, body = 200, data
            wanted = self.headers.get("Range")
            if method == "GET" and wanted:
                m = re.match(r"bytes=(\d+)-(\d*)$", wanted)
                if m:
                    start = int(m.group(1))
                    end = int(m.group(2)) if m.group(2) else len(data) - 1
                    body = data[start:end + 1]
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            drop = hub.drop_after.pop(key, None) if method == "GET" else None
            if drop is None:
                return self._send(status, body, headers, "application/octet-stream")
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)

        def create(self, method) -> None:
            data = json.loads(self.body or b"{}")
            name = data["name"] if not data.get("organization") else f"{data['organization']}/{data['name']}"
            kind = data.get("type") or "model"
            url = self._endpoint_prefix(kind) + "/" + name
            if (kind, name) in hub.repos:
                return self._json({"error": "You already created this repo", "url": url}, 409)
            hub.repo(name, kind)
            self._json({"url": url, "name": name})

        def validate_yaml(self, method) -> None:
            self._json({"errors": [], "warnings": []})

        def preupload(self, method, type, repo, rev) -> None:
            r = self._repo(type, repo)
            if r is None:
                return self._missing_repo()
            files = json.loads(self.body)["files"]
            self._json({"files": [{
                "path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                "shouldIgnore": False, "oid": None,
            } for f in files]})

        def lfs_batch(self, method, type, repo) -> None:
            payload = json.loads(self.body)
            objects = []
            for obj in payload["objects"]:
                item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs:
                    item["actions"] = {"upload": {"href": f"{hub.url}/_lfs/{obj['oid']}"}}
                objects.append(item)
            self._json({"transfer": "basic", "objects": objects})

        def lfs_put(self, method, oid) -> None:
            if hashlib.sha256(self.body).hexdigest() != oid:
                return self._json({"error": "checksum mismatch"}, 400)
            hub.lfs[oid] = self.body
            self._json({})

        def commit(self, method, type, repo, rev) -> None:
            r = self._repo(type, repo)
            if r is None:
                return self._missing_repo()
            summary = ""
            changed: list[str] = []
            for line in self.body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    summary = value.get("summary", "")
                elif key == "file":
                    r.files[value["path"]] = base64.b64decode(value["content"])
                    changed.append(value["path"])
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        return self._json({"error": f"LFS object {value['oid']} was never uploaded"}, 422)
                    r.files[value["path"]] = hub.lfs[value["oid"]]
                    changed.append(value["path"])
                elif key == "deletedFile":
                    r.files.pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    for name in [n for n in r.files if n.startswith(prefix)]:
                        del r.files[name]
            r.bump()
            r.commits.append({"summary": summary, "files": changed, "sha": r.sha})
            self._json({"commitUrl": f"{self._endpoint_prefix(type)}/{repo}/commit/{r.sha}",
                        "commitOid": r.sha, "pullRequestUrl": None})

    return Handler


# ---------------------------------------------------------------------- the real repos, in miniature

#: The public repos' file lists (names only), see its ``_about``.
MANIFEST = {repo: files for repo, files in json.loads((Path(__file__).with_name("hub_manifest.json")).read_text()).items()
            if not repo.startswith("_")}


def _slow_tokenizer_files(tokenizer, folder: Path) -> None:
    """The vocabulary files the public repos ship (vocab.json + merges.txt for CLIP, vocab.txt for BERT) and the
    special-tokens map, written from a tokenizer whose own ``save_pretrained`` writes only ``tokenizer.json``."""
    vocab = tokenizer.get_vocab()
    if type(tokenizer).__name__.startswith("CLIP"):
        (folder / "vocab.json").write_text(json.dumps(vocab))
        (folder / "merges.txt").write_text("#version: 0.2\n")  # the miniature vocabulary has no merges
    else:
        (folder / "vocab.txt").write_text("".join(tok + "\n" for tok, _ in sorted(vocab.items(), key=lambda kv: kv[1])))
    (folder / "special_tokens_map.json").write_text(json.dumps(tokenizer.special_tokens_map))


def tiny_real_repos(bundle, folder: Path) -> tuple[dict[str, dict[str, bytes]], set[tuple[str, str]]]:
    """Every file of :data:`MANIFEST`, with the tiny models saved through the real save code under the real names
    (SD in fp16 safetensors, BLIP-2 in fp32, IP-Adapter SD-1.5 and a miniature CLIP image encoder); files with
    no miniature (pickles, the .ckpt, the other IP-Adapters, the safety checker) hold placeholder bytes.

    Returns (repo -> {name: bytes}, the (repo, name) pairs that are placeholders).
    """
    from studio.engines.anomalycontrol.ip_adapter import save_ip_adapter
    from studio.engines.anomalycontrol.models import save_bundle
    from studio.engines.anomalycontrol.tiny import tiny_image_encoder
    from studio.engines.anomalycontrol.weights import (
        BLIP_DIR, BLIP_REPO, IMAGE_ENCODER_DIR, IP_ADAPTER_FILE, IP_ADAPTER_REPO, SD_DIR, SD_REPO,
    )

    save_bundle(bundle, folder, with_sga=False, variant="fp16")
    _slow_tokenizer_files(bundle.tokenizer, folder / SD_DIR / "tokenizer")
    _slow_tokenizer_files(bundle.blip_tokenizer, folder / BLIP_DIR)
    if not (folder / BLIP_DIR / "tokenizer.json").is_file():  # transformers 4.x saves the slow files only
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(folder / BLIP_DIR, use_fast=True)
        fast.backend_tokenizer.save(str(folder / BLIP_DIR / "tokenizer.json"))
    ip = folder / "h94-IP-Adapter"
    tiny_image_encoder().save_pretrained(ip / IMAGE_ENCODER_DIR)
    save_ip_adapter(bundle.adapter, ip / IP_ADAPTER_FILE)
    saved = {SD_REPO: folder / SD_DIR, BLIP_REPO: folder / BLIP_DIR, IP_ADAPTER_REPO: ip}
    repos: dict[str, dict[str, bytes]] = {}
    placeholders: set[tuple[str, str]] = set()
    for repo, names in MANIFEST.items():
        repos[repo] = {}
        for name in names:
            path = saved[repo] / name
            if path.is_file():
                repos[repo][name] = path.read_bytes()
            else:
                repos[repo][name] = f"placeholder for {repo}/{name}: never fetched by the studio".encode()
                placeholders.add((repo, name))
    return repos, placeholders


def serve(hub: HubDouble, repos: dict[str, dict[str, bytes]]) -> None:
    """Serve ``repos`` (repo -> {name: bytes}) from ``hub``."""
    for repo_id, files in repos.items():
        repo = hub.repo(repo_id)
        repo.files.update(files)
        repo.bump()
