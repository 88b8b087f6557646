"""Requests per second and p50 / p99 latency of `serve-api` at 1, 4 and 16
concurrent clients, each request one document (`{"text": ...}`), against a
real uvicorn on 127.0.0.1 started as a user would start it. Writes JSON and
markdown.

    python scripts/benchmark_service.py /tmp/minilm_untrained reports/benchmark_service.json --requests 300
"""
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import typer

from spacy_spanjoint.analysis.benchmarks import SENTENCES, benchmark_machine, save_report


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, port: int, threads: int, log_path: Path) -> subprocess.Popen:
    import httpx

    command = [sys.executable, "-m", "spacy_spanjoint", "serve-api", str(model), "--port", str(port), "--threads", str(threads)]
    process = subprocess.Popen(command, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"serve-api did not start: {log_path.read_text()}")


async def load(url: str, clients: int, requests: int) -> Dict[str, Any]:
    import httpx

    latencies: List[float] = []
    statuses: List[int] = []
    sent = [0]

    async def client(http: Any) -> None:
        while sent[0] < requests:
            sent[0] += 1
            text = SENTENCES[sent[0] % len(SENTENCES)]
            start = time.perf_counter()
            response = await http.post(f"{url}/extract", json={"text": text})
            latencies.append(time.perf_counter() - start)
            statuses.append(response.status_code)

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=clients), timeout=120) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - start
    latencies.sort()
    return {
        "clients": clients,
        "requests": len(statuses),
        "errors": sum(status != 200 for status in statuses),
        "seconds": round(seconds, 2),
        "requests_per_second": round(len(statuses) / seconds, 2),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
    }


def main(
    model: Path = typer.Argument(..., help="Pipeline folder", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="JSON report; the markdown goes beside it"),
    requests: int = typer.Option(300, "--requests", help="Requests at each level", min=1),
    levels: List[int] = typer.Option([1, 4, 16], "--clients", help="Concurrent clients"),
    threads: int = typer.Option(os.cpu_count() or 1, "--threads", help="torch threads of the server", min=1),
    label: str = typer.Option("", "--label", help="What the pipeline is, for the report"),
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    report: Dict[str, Any] = {
        "pipeline": str(model),
        "pipeline_label": label,
        "server": {"workers": 1, "threads": threads},
        "machine": benchmark_machine(),
        "levels": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        process = start_server(model, port, threads, Path(tmp) / "server.log")
        try:
            asyncio.run(load(url, 1, 10))  # warm-up
            for clients in levels:
                typer.echo(f"{clients} client(s)")
                report["levels"].append(asyncio.run(load(url, clients, requests)))
        finally:
            process.terminate()
            process.wait(timeout=30)
    save_report(report, output, markdown)


def markdown(report: Dict[str, Any]) -> str:
    machine = report["machine"]
    rows = [
        f"| {level['clients']} | {level['requests']} | {level['errors']} | {level['requests_per_second']} | "
        f"{level['p50_ms']} | {level['p99_ms']} |"
        for level in report["levels"]
    ]
    return "\n".join(
        [
            "# HTTP service: benchmark",
            "",
            f"Pipeline: {report['pipeline_label'] or report['pipeline']}. `serve-api` with 1 worker and "
            f"{report['server']['threads']} torch thread(s) on 127.0.0.1; each request one document of one sentence. "
            f"Machine: {machine['cpus']} CPUs ({machine['processor']}), shared with the clients and with other work "
            f"(load average {machine['load_average_start'][0]} at the start, {machine['load_average_end'][0]} at the end).",
            "",
            "| concurrent clients | requests | errors | requests/s | p50 latency (ms) | p99 latency (ms) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "Concurrent requests share batches (`spacy_spanjoint/service/batcher.py`): more clients raise the "
            "throughput until the pipeline's batches are full, at the cost of latency.",
            "",
        ]
    )


if __name__ == "__main__":
    typer.run(main)
