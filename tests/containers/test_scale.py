"""docker-compose.scale.yml for real: three Execution replicas on PostgreSQL behind HAProxy.

60 trades at once through HAProxy, one replica SIGKILLed mid-load. Clients with an
Idempotency-Key retry (same key) until they get an answer; clients without one do not
retry. The victim is stopped (SIGSTOP) before the load starts, so the trades HAProxy sends
it are still in flight when it is killed, after the first answers from the other two: on a
fast machine all 60 trades took under half a second, and a kill timed by answers alone
could land after the last one. Then the ledger itself (PostgreSQL, read with psql) is
checked: every acknowledged order is there, no key filled twice, no keyless request run
twice (which a balancer that resent a POST would cause), cash and positions equal the
sums over the fills.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest

from tests.containers.compose import ComposeProject, NewProject, port_override
from tests.support import keys as api_keys
from tests.support.servers import wait_until

pytestmark = pytest.mark.containers

# KILL_AFTER: answers seen before the kill (the victim's ~20 trades still wait on it)
TRADES, KEYLESS, KILL_AFTER = 60, 15, 5
RETRY_DEADLINE = 90.0


@pytest.fixture(scope="module")
def scaled(new_project: NewProject) -> Iterator[ComposeProject]:
    files = ["docker-compose.yml", "docker-compose.scale.yml", port_override("ports-scale.yml")]
    project = new_project(files, "scale")
    try:
        project.up()
        wait_until(lambda: replicas_up(project) == 3, timeout=60, interval=0.5, what="3 UP")
        yield project
    finally:
        project.down()


def replicas_up(project: ComposeProject) -> int:
    """How many replicas HAProxy has in rotation (its status page, as CSV)."""
    try:
        page = httpx.get(project.url("execution-lb", 8404, 1) + "/stats;csv", timeout=5)
    except httpx.HTTPError:
        return 0
    rows = csv.DictReader(io.StringIO(page.text.lstrip("# ")))
    return sum(
        1
        for row in rows
        if row["pxname"] == "execution" and row["svname"] != "BACKEND" and row["status"] == "UP"
    )


def psql(project: ComposeProject, sql: str) -> list[list[str]]:
    out = project.compose(
        "exec", "-T", "postgres", "psql", "-h", "/var/run/postgresql", "-p", "5432",
        "-U", "tradestack", "-d", "ledger", "-At", "-F", "\t",
        "-c", sql,
    )  # fmt: skip
    return [line.split("\t") for line in out.splitlines() if line]


@dataclass
class Load:
    lb: str
    answered: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    acknowledged: dict[str, str] = field(default_factory=dict)  # trace id -> order id
    failed_attempts: Counter[str] = field(default_factory=Counter)
    keyless_lost: int = 0
    slowest: float = 0.0  # seconds from a client's first attempt to its answer

    def count(self) -> None:
        self.answered += 1
        if self.answered >= KILL_AFTER:
            self.enough.set()

    async def trade(self, client: httpx.AsyncClient, trace_id: str, key: str | None) -> None:
        """One client: with a key, retry until answered; without one, a single attempt."""
        headers = {"X-Trace-ID": trace_id} | ({"Idempotency-Key": key} if key else {})
        body = {"symbol": "BTC-USD", "side": "buy", "amount": 100}
        started = asyncio.get_running_loop().time()
        deadline = started + RETRY_DEADLINE
        while True:
            try:
                answer = await client.post(self.lb + "/api/v1/trade", json=body, headers=headers)
                status = answer.status_code
            except httpx.TransportError as exc:
                status, answer = type(exc).__name__, None  # type: ignore[assignment]
            if answer is not None and status == 201:
                self.acknowledged[trace_id] = answer.json()["order_id"]
                self.slowest = max(self.slowest, asyncio.get_running_loop().time() - started)
                self.count()
                return
            self.failed_attempts[str(status)] += 1
            if key is None:
                self.keyless_lost += 1
                self.count()
                return
            assert status in (409, 502, 503, 504) or answer is None, answer and answer.text
            assert asyncio.get_running_loop().time() < deadline, f"{key}: no answer"
            await asyncio.sleep(0.2)  # a client's back-off before its retry


def signal(container: str, name: str) -> None:
    subprocess.run(["docker", "kill", "-s", name, container], check=True, capture_output=True)


async def kill(victim: str, load: Load) -> None:
    await load.enough.wait()
    await asyncio.to_thread(signal, victim, "KILL")


async def run_load(
    project: ComposeProject, traces: list[str], keys: dict[str, str | None], victim: str
) -> Load:
    """All the trades at once, and the kill of `victim` mid-load; the outcomes."""
    load = Load(lb=project.url("execution-lb", 8004))
    # Stopped, not frozen by `docker pause`: a paused container cannot be killed. HAProxy
    # keeps sending it trades until two health checks (a second apart) have failed.
    signal(victim, "STOP")
    async with httpx.AsyncClient(headers=api_keys.headers(), timeout=60) as client:
        killer = asyncio.create_task(kill(victim, load))
        await asyncio.gather(*(load.trade(client, t, keys[t]) for t in traces))
        await killer
    return load


def test_sixty_trades_over_three_replicas_one_killed_lose_nothing(
    scaled: ComposeProject,
) -> None:
    """60 concurrent trades spread over 3 replicas, one killed: no acknowledged order lost,
    no key filled twice, no POST run twice, cash and positions equal the fills' sums."""
    replicas = scaled.compose("ps", "-q", "execution").split()
    assert len(replicas) == 3
    traces = [uuid.uuid4().hex for _ in range(TRADES)]
    keys = {t: (None if i < KEYLESS else f"scale-{t}") for i, t in enumerate(traces)}
    victim = replicas[0]
    load = asyncio.run(run_load(scaled, traces, keys, victim))

    # HAProxy sent trades to every replica (its log: the replica and the trace ID) ...
    sent: Counter[str] = Counter()
    for line in scaled.logs("execution-lb").splitlines():
        match = re.search(r" execution/(\S+) .*\{([0-9a-f]+)\}", line)
        if match and match[2] in traces:
            sent[match[1]] += 1
    assert len(sent) == 3, sent
    # ... and each replica logged the trace IDs of those it answered (the killed one only
    # of those it answered before the kill).
    served: dict[str, int] = {}
    for replica in replicas:
        logs = subprocess.run(  # uvicorn logs to stderr
            ["docker", "logs", replica], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, check=True,
        ).stdout  # fmt: skip
        seen = {json.loads(line).get("trace_id") for line in logs.splitlines() if line[:1] == "{"}
        served[replica[:12]] = len(seen & set(traces))
    assert all(n > 0 for replica, n in served.items() if replica != victim[:12]), served

    orders = psql(scaled, "SELECT order_id, trace_id, idempotency_key, status FROM orders")
    found = {order_id for order_id, *_ in orders}
    filled_keys = Counter(key for _, _, key, status in orders if key and status == "FILLED")
    trace_orders = Counter(trace for _, trace, _, _ in orders if trace in traces)
    lost = set(load.acknowledged.values()) - found
    keyed = [t for t in traces if keys[t]]
    print(  # the figures for the note (pytest -s shows them)
        f"\nscale: attempts sent per replica {dict(sent)}, answered per replica {served},"
        f" killed {victim[:12]} after {KILL_AFTER} answers;"
        f" acknowledged {len(load.acknowledged)}/{TRADES} (keyed {len(keyed)}, keyless "
        f"{KEYLESS - load.keyless_lost} answered, {load.keyless_lost} lost to the kill),"
        f" found {len(set(load.acknowledged.values()) & found)}; failed attempts"
        f" {dict(load.failed_attempts)}; keys filled twice"
        f" {sum(1 for n in filled_keys.values() if n > 1)}; slowest answer {load.slowest:.1f} s"
    )
    assert sum(load.failed_attempts.values()) > 0  # the kill cut requests in flight
    assert not lost
    assert all(t in load.acknowledged for t in keyed)  # every keyed client got its answer
    assert max(filled_keys.values()) == 1
    assert max(trace_orders.values()) == 1  # no request ran twice

    ((cash, starting),) = psql(scaled, "SELECT cash, starting_cash FROM accounts")
    fills = psql(
        scaled,
        "SELECT side, symbol, filled_amount, fee, quantity FROM orders WHERE status = 'FILLED'",
    )
    spent = sum(
        Decimal(a) + Decimal(f) if side == "buy" else -(Decimal(a) - Decimal(f))
        for side, _, a, f, _ in fills
    )
    assert Decimal(cash) == Decimal(starting) - spent
    held: defaultdict[str, Decimal] = defaultdict(Decimal)
    for side, symbol, _, _, quantity in fills:
        held[symbol] += Decimal(quantity) if side == "buy" else -Decimal(quantity)
    positions = {s: Decimal(q) for s, q in psql(scaled, "SELECT symbol, quantity FROM positions")}
    assert positions == {s: q for s, q in held.items() if q or s in positions}
