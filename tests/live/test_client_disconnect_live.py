"""Issue 21, bug 10: a client that goes away mid-request (an upload cut off halfway) is logged as one INFO
line, never as an ERROR with a traceback, and the studio goes on serving."""
from __future__ import annotations

import re
import socket
import time
import urllib.request

from tests.helpers.ui_server import live_app  # noqa: F401 - fixture

BOUNDARY = "studio-cut"


def cut_upload(url: str) -> None:
    """Start a 1 MB upload, send a fifth of it and hang up."""
    host, port = url.split("//")[1].strip("/").split(":")
    head = (f"POST /gradio_api/upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="files"; filename="cut.png"\r\nContent-Type: image/png\r\n\r\n')
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + b"\x89PNG" + bytes(200_000))


def test_a_cut_off_upload_is_no_error(live_app):  # noqa: F811 - fixture
    cut_upload(live_app.url)
    deadline = time.monotonic() + 20
    while "disconnected mid-request" not in live_app.log() and time.monotonic() < deadline:
        time.sleep(0.2)  # the server notices the hang-up on its own time
    log = live_app.log()
    assert re.search(r"INFO:? +a client disconnected mid-request \(ClientDisconnect\)", log), log[-3000:]
    assert "ERROR" not in log and "Traceback" not in log, log[-3000:]
    with urllib.request.urlopen(live_app.url, timeout=10) as response:  # still serving
        assert response.status == 200
