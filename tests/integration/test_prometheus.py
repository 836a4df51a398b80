"""A real Prometheus, from the repository's config, scrapes the stack and counts the trades."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.support import keys
from tests.support.metrics import parse_metrics
from tests.support.servers import REPO, free_port, wait_until

pytestmark = pytest.mark.integration


class PrometheusServer:
    """`prometheus` on a spare port, scraping `urls` (compose name -> base URL) every second."""

    def __init__(self, binary: str, workdir: Path, urls: dict[str, str]) -> None:
        config: dict[str, Any] = yaml.safe_load(
            (REPO / "observability" / "prometheus.yml").read_text()
        )
        config["global"]["scrape_interval"] = "1s"
        for job in config["scrape_configs"]:
            # The repository's job names are the compose names: each points at that service.
            job["static_configs"] = [{"targets": [urlsplit(urls[job["job_name"]]).netloc]}]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.cmd = [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={urlsplit(self.url).netloc}",
        ]
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._ready, timeout=30, what="prometheus ready")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector `promql` evaluates to now."""
        answer = httpx.get(self.url + "/api/v1/query", params={"query": promql}, timeout=5).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


@pytest.fixture
def prometheus(tmp_path: Path, urls: dict[str, str]) -> Iterator[PrometheusServer]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is missing: `apt-get install prometheus` (.ci/run does)")
    server = PrometheusServer(binary, tmp_path, urls)
    server.start()
    yield server
    server.stop()


def test_prometheus_reads_the_trade_count_back(
    prometheus: PrometheusServer, urls: dict[str, str]
) -> None:
    """After trades, `sum(execution_orders_total)` in Prometheus equals execution's own count,
    and every one of the four scrape targets is up."""
    for amount in (110, 120):
        response = httpx.post(
            urls["execution"] + "/api/v1/trade",
            json={"symbol": "BTC-USD", "side": "buy", "amount": amount},
            headers=keys.headers(),
            timeout=15,
        )
        assert response.status_code == 201, response.text
    page = httpx.get(urls["execution"] + "/metrics", timeout=5).text
    expected = parse_metrics(page).total("execution_orders_total")
    assert expected >= 2

    def counted() -> bool:
        result = prometheus.query("sum(execution_orders_total)")
        return bool(result) and float(result[0]["value"][1]) == expected

    wait_until(counted, timeout=30, what=f"Prometheus to count {expected} orders")

    def all_up() -> bool:
        # Each target's first scrape comes at its own offset within the interval.
        up = {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up")}
        return up == dict.fromkeys(urls, "1")

    wait_until(all_up, timeout=30, what="all four targets up in Prometheus")
