"""Downloading released weights, against a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import hydranet
from hydranet.checkpoints import RELEASED, cached_path, download_released, git_blob_id
from hydranet.checkpoints.registry import WeightsEntry
from hydranet.cli.main import main
from hydranet.errors import DownloadError


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[bytes, int | None]] = {}

    def do_GET(self):  # noqa: N802
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, claimed = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(claimed if claimed is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.routes
    httpd.shutdown()
    httpd.server_close()
    _Handler.routes.clear()


@pytest.fixture()
def served_kitti6(monkeypatch, server, parity_ckpt):
    """Serve the parity checkpoint as ExpKITTI_joint.ckpt, registered under its own blob id."""
    base, routes = server
    payload = parity_ckpt.read_bytes()
    routes["/ExpKITTI_joint.ckpt"] = (payload, None)
    entry = WeightsEntry("kitti6", "kitti6", "released", "ExpKITTI_joint.ckpt", "test", git_blob_id(parity_ckpt))
    monkeypatch.setitem(RELEASED, "kitti6", entry)
    monkeypatch.setenv("HYDRANET_WEIGHTS_URL", base)
    return payload, routes


def test_git_blob_id_matches_git(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_id(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


def test_download_then_load_by_name(served_kitti6, parity_ckpt):
    path = download_released("kitti6", progress=False)
    assert path == cached_path("kitti6") and path.read_bytes() == served_kitti6[0]
    model = hydranet.load_model("kitti6")
    assert model.config.num_classes == 6
    # A verified copy is not fetched again.
    served_kitti6[1].clear()
    assert download_released("kitti6", progress=False) == path


def test_corrupted_download_is_rejected_and_cache_untouched(served_kitti6):
    payload, routes = served_kitti6
    corrupted = bytearray(payload)
    corrupted[len(corrupted) // 2] ^= 0xFF
    routes["/ExpKITTI_joint.ckpt"] = (bytes(corrupted), None)
    with pytest.raises(DownloadError, match=r"ExpKITTI_joint\.ckpt: checksum mismatch .*nothing was written"):
        download_released("kitti6", progress=False)
    assert not cached_path("kitti6").exists()
    assert not list(cached_path("kitti6").parent.glob("*.part"))


def test_truncated_download_is_rejected(served_kitti6):
    payload, routes = served_kitti6
    routes["/ExpKITTI_joint.ckpt"] = (payload[:1000], len(payload))
    with pytest.raises(DownloadError, match=r"ExpKITTI_joint\.ckpt: (truncated download|connection broke)"):
        download_released("kitti6", progress=False)
    assert not cached_path("kitti6").exists()


def test_failed_download_keeps_a_good_cached_copy(served_kitti6):
    good = download_released("kitti6", progress=False)
    routes = served_kitti6[1]
    routes["/ExpKITTI_joint.ckpt"] = (b"garbage", None)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_released("kitti6", progress=False, force=True)
    assert good.read_bytes() == served_kitti6[0]


def test_missing_file_on_server(served_kitti6, capsys):
    served_kitti6[1].clear()
    assert main(["weights", "download", "kitti6"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hydranet: error: http://127.0.0.1:") and "download failed" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_download(served_kitti6, capsys):
    assert main(["weights", "download", "kitti6"]) == 0
    assert str(cached_path("kitti6")) in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["kitti6"][1:3] == ["kitti6", "yes"] and rows["default"][1:3] == ["camvid11_lite0", "yes"]
    assert rows["nyud40"][2] == "no"


class _Endless(BaseHTTPRequestHandler):
    """/drip: one byte every 0.2 s; /endless: 64 KiB chunks without end (no Content-Length)."""

    def do_GET(self):  # noqa: N802
        import time

        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(10_000):  # bounded: the client gives up long before
                if self.path == "/drip":
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
                else:
                    self.wfile.write(b"\0" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture()
def endless_server(monkeypatch):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    entry = WeightsEntry("kitti6", "kitti6", "released", "ExpKITTI_joint.ckpt", "test", "0" * 40,
                         max_bytes=1 << 20)
    monkeypatch.setitem(RELEASED, "kitti6", entry)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_drip_server_meets_the_overall_deadline(endless_server):
    import time

    start = time.monotonic()
    with pytest.raises(DownloadError, match="no complete file after 1.5 s"):
        download_released("kitti6", url=f"{endless_server}/drip", progress=False, timeout=5, deadline=1.5)
    assert time.monotonic() - start < 5
    assert not list(cached_path("kitti6").parent.glob("*.part"))


def test_an_endless_body_is_cut_at_the_size_cap(endless_server):
    with pytest.raises(DownloadError, match="more than 1048576 bytes"):
        download_released("kitti6", url=f"{endless_server}/endless", progress=False, timeout=5)
    folder = cached_path("kitti6").parent
    assert not list(folder.glob("*.part")) and not cached_path("kitti6").exists()


def test_a_killed_download_leaves_no_part_file_behind(endless_server):
    import os

    folder = cached_path("kitti6").parent
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / ".ExpKITTI_joint.ckpt.abc123.part"
    stale.write_bytes(b"half a file")
    os.utime(stale, (1, 1))  # left by a download killed long ago
    with pytest.raises(DownloadError):
        download_released("kitti6", url=f"{endless_server}/endless", progress=False, timeout=5)
    assert not stale.exists()


def test_a_tampered_cached_checkpoint_is_refused_when_loaded(served_kitti6):
    path = download_released("kitti6", progress=False)
    assert hydranet.load_model("kitti6").config.num_classes == 6
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte inside a tensor: still loads, computes something else
    path.write_bytes(bytes(data))
    with pytest.raises(hydranet.CheckpointError, match="not the released kitti6 checkpoint .* --force"):
        hydranet.load_model("kitti6")
