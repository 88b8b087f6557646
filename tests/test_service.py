"""`serve-api`: a real uvicorn on 127.0.0.1 (started by the command line, as a
user would), with small limits so that every bad-request class is cheap to send."""
import asyncio
import json
import socket
import subprocess
import sys
import time

import pytest

from extras import require
from spacy_spanjoint.data.predict import predict_file

httpx = require("httpx")
require("fastapi")
require("uvicorn")

TEXTS = ["John Smith lives in New York. Mary works for Acme Corp in Paris.", "Anna married Tom.", "Bob visited Rome."]
LIMITS = {"--max-texts": 4, "--max-chars": 200, "--max-body-bytes": 2000}
# The load test: requests, concurrent clients, and the time it may take at most.
LOAD_REQUESTS, LOAD_CLIENTS, LOAD_SECONDS = 2000, 16, 240


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(saved_tiny_pipeline, tmp_path_factory):
    """The base URL of `serve-api` on the tiny pipeline, default host (127.0.0.1)."""
    _, model = saved_tiny_pipeline
    port = free_port()
    args = [sys.executable, "-m", "spacy_spanjoint", "serve-api", str(model), "--port", str(port), "--threads", "1"]
    for option, value in LIMITS.items():
        args += [option, str(value)]
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve-api did not start: {open(log.name).read()}")
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def expected(saved_tiny_pipeline, tmp_path_factory):
    """What `predict` writes for each of `TEXTS`."""
    nlp, _ = saved_tiny_pipeline
    folder = tmp_path_factory.mktemp("expected")
    (folder / "in.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in TEXTS), encoding="utf8")
    predict_file(nlp, folder / "in.jsonl", folder / "out.jsonl")
    return [json.loads(line) for line in (folder / "out.jsonl").read_text(encoding="utf8").splitlines()]


def test_answers_equal_predict(server, expected):
    one = httpx.post(f"{server}/extract", json={"text": TEXTS[1]})
    assert one.status_code == 200
    assert one.json() == expected[1]
    several = httpx.post(f"{server}/extract", json={"texts": TEXTS})
    assert several.status_code == 200
    assert several.json() == {"documents": expected}


def test_health_meta_and_openapi_docs(server):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    meta = httpx.get(f"{server}/meta").json()
    assert meta["entity_labels"] == ["LOC", "ORG", "PER"] and "Spouse" in meta["relation_labels"]
    assert meta["thresholds"]["entity_threshold"] == 0.0 and meta["thresholds"]["relation_threshold"] == 0.0
    assert meta["version"] == "0.0.0" and meta["pipeline"][-1] == "spanjoint"
    assert meta["limits"]["max_texts"] == 4 and meta["limits"]["max_chars"] == 200
    schema = httpx.get(f"{server}/openapi.json").json()
    assert set(schema["paths"]) == {"/extract", "/health", "/meta"}
    assert httpx.get(f"{server}/docs").status_code == 200


JSON = {"content-type": "application/json"}
BAD_REQUESTS = {
    "malformed JSON": (b'{"text": "Anna', JSON, 400, "Malformed JSON"),
    "not JSON": (b"Anna married Tom.", {"content-type": "text/plain"}, 415, "Content-Type: application/json"),
    "text not a string": (b'{"text": 5}', JSON, 422, "valid string"),
    "texts not a list": (b'{"texts": "Anna"}', JSON, 422, "valid list"),
    "a text in texts not a string": (b'{"texts": ["Anna", null]}', JSON, 422, "valid string"),
    "not an object": (b'["Anna"]', JSON, 422, "valid dictionary"),
    "unknown field": (b'{"text": "Anna", "lang": "en"}', JSON, 422, "Extra inputs"),
    "empty body": (b"", JSON, 422, "Field required"),
    "neither text nor texts": (b"{}", JSON, 422, "either 'text' or 'texts'"),
    "both text and texts": (b'{"text": "a", "texts": ["b"]}', JSON, 422, "either 'text' or 'texts'"),
    "empty texts": (b'{"texts": []}', JSON, 422, "'texts' is empty"),
    "empty text": (b'{"text": "  "}', JSON, 422, "Text 0 is empty"),
    "too many texts": (json.dumps({"texts": ["a"] * 5}).encode(), JSON, 422, "at most 4"),
    "too long a text": (json.dumps({"texts": ["a", "b" * 201]}).encode(), JSON, 422, "Text 1 has 201 characters"),
    "body too large": (json.dumps({"text": "a" * 3000}).encode(), JSON, 413, "Too Large"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_get_a_clear_4xx(server, name):
    body, headers, status, detail = BAD_REQUESTS[name]
    response = httpx.post(f"{server}/extract", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert detail in response.text
    assert len(response.content) < 1000  # the input is not echoed


def test_a_large_chunked_body_is_cut_off(server):
    def chunks():
        for _ in range(100):
            yield b'{"text": "' + b"a" * 100

    response = httpx.post(f"{server}/extract", content=chunks(), headers=JSON)
    assert response.status_code == 413


def test_a_slow_client_does_not_stall_others(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as slow:
        # Headers and half the announced body, then nothing.
        slow.sendall(b"POST /extract HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"text\":")
        start = time.monotonic()
        response = httpx.post(f"{server}/extract", json={"text": TEXTS[2]}, timeout=30)
        assert response.status_code == 200
        assert time.monotonic() - start < 15
    assert httpx.get(f"{server}/health").status_code == 200


def test_load_of_concurrent_clients_has_no_errors(server, expected):
    async def client(http, counter, statuses, wrong):
        while counter[0] < LOAD_REQUESTS:
            counter[0] += 1
            i = counter[0] % len(TEXTS)
            response = await http.post(f"{server}/extract", json={"text": TEXTS[i]})
            statuses.append(response.status_code)
            if response.status_code == 200 and response.json() != expected[i]:
                wrong.append(i)

    async def run():
        counter, statuses, wrong = [0], [], []
        limits = httpx.Limits(max_connections=LOAD_CLIENTS)
        async with httpx.AsyncClient(limits=limits, timeout=60) as http:
            clients = [client(http, counter, statuses, wrong) for _ in range(LOAD_CLIENTS)]
            await asyncio.wait_for(asyncio.gather(*clients), LOAD_SECONDS)
        return statuses, wrong

    statuses, wrong = asyncio.run(run())
    assert len(statuses) == LOAD_REQUESTS
    assert set(statuses) == {200} and not wrong
    assert httpx.get(f"{server}/health").status_code == 200


def test_batcher_fails_only_the_request_that_breaks_the_pipeline():
    from spacy_spanjoint.service.batcher import Batcher, Overloaded

    def annotate(texts):
        if any("BOOM" in text for text in texts):
            raise ValueError("BOOM")
        return [text.upper() for text in texts]

    async def run():
        batcher = Batcher(annotate, max_batch=8, max_queued=5)
        await batcher.start()
        try:
            results = await asyncio.gather(
                batcher.submit(["a", "b"]), batcher.submit(["BOOM"]), batcher.submit(["c"]), return_exceptions=True
            )
            with pytest.raises(Overloaded):
                await batcher.submit(["x"] * 6)
        finally:
            await batcher.stop()
        return results

    ok, failed, alone = asyncio.run(run())
    assert ok == ["A", "B"] and alone == ["C"]
    assert isinstance(failed, ValueError)
