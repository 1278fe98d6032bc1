"""Uploads on the real platform: uvicorn with the upload guard, the worker of the ``datasets``
queue converting in a memory-limited child. A declared 1 GiB body is refused without being read,
a truncated upload leaves nothing, bombs fail naming their limit while the web process's memory
stays flat, and a good file becomes ready and trains from its memory-mapped store."""

from __future__ import annotations

import socket
import time

from tests.platform.harness import wait_until
from tests.webapp import upload_bombs

MB = 1024 * 1024


def web_rss_bytes(platform) -> int:
    with open(f"/proc/{platform.web.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def raw_request(platform, head: bytes, body: bytes = b"", *, close_after_send: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", platform.http_port), timeout=10) as connection:
        connection.sendall(head + body)
        if close_after_send:
            return b""
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def upload_head(user, *, content_length: int) -> bytes:
    return (f"POST /api/datasets/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {user.token}\r\n"
            "Content-Type: multipart/form-data; boundary=netforge\r\n"
            f"Content-Length: {content_length}\r\n\r\n").encode()


def wait_for_state(user, dataset_id: int, *, timeout: float = 60) -> dict:
    def settled():
        body = user.api.get(f"/api/datasets/{dataset_id}").json()
        return body if body["state"] != "processing" else None

    return wait_until(settled, timeout=timeout, what=f"dataset {dataset_id} to be converted", interval=0.2)


def test_a_declared_1_gib_body_is_answered_413_without_being_read(platform, make_user):
    user = make_user("uploader")
    started = time.monotonic()
    answer = raw_request(platform, upload_head(user, content_length=1 << 30))  # and not one byte of body
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5
    assert user.api.get("/api/datasets").json()["count"] == 0


def test_a_truncated_upload_leaves_nothing_and_the_server_answers(platform, make_user):
    user = make_user("uploader")
    part = (b"--netforge\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.csv\"\r\n"
            b"Content-Type: text/csv\r\n\r\na,label\n" + b"1,0\n" * 100_000)
    raw_request(platform, upload_head(user, content_length=10 * MB), part, close_after_send=True)
    time.sleep(0.5)
    assert user.api.get("/api/datasets").json()["count"] == 0
    assert user.api.get("/api/datasets").status_code == 200


def test_bombs_fail_on_the_worker_naming_their_limit_while_the_web_process_stays_flat(platform, make_user):
    user = make_user("attacker")
    bombs = [
        ("bombs.zip", upload_bombs.zip_of_huge_pngs(count=4, side=8000), {}, "max_pixels"),
        ("train-images-idx3-ubyte.gz", upload_bombs.gzip_idx_declaring((16384, 256, 256), data_bytes=MB), {},
         "max_array_bytes"),
        ("points.npz", upload_bombs.npz_with_deflated_array((1 << 29,), data_bytes=MB), {"y_key": "none"},
         "max_array_bytes"),
    ]
    user.api.get("/api/datasets")  # the web process's first request has loaded what requests load
    before = web_rss_bytes(platform)
    for name, content, fields, limit in bombs:
        assert len(content) < 2 * MB
        response = user.api.post("/api/datasets/upload", files={"file": (name, content)}, data=fields)
        assert response.status_code == 201, response.text
        assert response.json()["state"] == "processing"
        body = wait_for_state(user, response.json()["id"])
        assert body["state"] == "failed" and limit in body["error"], body
    grown = web_rss_bytes(platform) - before
    assert grown < 40 * MB, f"the web process grew by {grown / MB:.0f} MB while bombs were processed"


def test_a_good_upload_becomes_ready_on_the_worker(platform, make_user):
    user = make_user("uploader")
    content = b"a,b,label\n" + b"".join(f"{i % 7},{i % 5},{i % 2}\n".encode() for i in range(500))
    response = user.api.post("/api/datasets/upload", files={"file": ("pairs.csv", content)}, data={"target": "label"})
    assert response.status_code == 201 and response.json()["state"] == "processing"
    body = wait_for_state(user, response.json()["id"])
    assert body["state"] == "ready" and body["rows"] == 500 and len(body["content_hash"]) == 64
    samples = user.api.get(f"/api/datasets/{body['id']}/samples", params={"offset": 498, "limit": 5}).json()
    assert [sample["index"] for sample in samples["results"]] == [498, 499]
