"""Inbound Telegram updates per second through the webhook, for a province on PostgreSQL with
1, 2 and 4 `safechild serve` processes behind one webhook URL (issue 14, item 8).

    .venv/bin/python -m bench.province_inbound [--communes 100] [--processes 1,2,4]
                                               [--rounds 2] [--citizens 150] [--quick]

A province of N communes (tests/support/province.py: 30 people each, all on Telegram) on a
throwaway PostgreSQL server (tests/support/pg.py). For each process count, a fresh database,
a fresh fake Bot API on 127.0.0.1 (tests/support/fake_telegram.py) with its rate limits
off, and that many bot processes: `safechild serve` in webhook mode with the Telegram
client's rate limiter off as well (tests/support/serve_unlimited.py), so that the figures
are the bots' own cost. In front of them one webhook URL: a round-robin forwarder in this
process spreads the POSTs over the processes' webhooks in turn, as a load balancer would.

Then `--citizens` new people, spread over the communes and their villages, all at once:
each opens their commune's poster link (`/start c-<official code>`) and files a whole report
by its buttons (14 updates: the commune's home, report, no danger, violence, village, age,
sex, skip, count, a typed description, no photos, anonymous, confirm), each update posted
as soon as the bot's answer to the previous one reached the fake Bot API, at most 40 POSTs
in flight (Telegram's default max_connections). An update counts when its answer has reached
the fake Bot API (its messages are counted per chat: how many each step brings is measured
once, by one citizen walking the flow slowly); the rate is all updates over the time from
the first POST to the last answer. The alerts to each commune's team are sent meanwhile
(counted once no more come: how many a report brought; not in the rate).

Rounds are interleaved (1, 2, 4, 1, 2, 4, ...); the table has each count's median rate, its
ratio to 1 process, and CPU milliseconds per update of the bot processes (utime + stime
from /proc), with PostgreSQL's and this process's (fake Bot API, forwarder, citizens)
beside them, and "others": the machine's busy time (/proc/stat) that was none of these,
other jobs on the same cores. The bots, PostgreSQL and this process share the machine's
cores. The default sizes take about 7 minutes on 2 cores; `--quick` is a one-minute smoke run
(10 communes, 1 and 2 processes, 20 citizens).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.official_units import units_of
from tests.support import pg
from tests.support.fake_telegram import TOKEN, FakeTelegram, Sent
from tests.support.processes import free_port
from tests.support.province import PEOPLE_PER_COMMUNE, THANH_HOA, write_province
from tests.support.serve_unlimited import UnlimitedBotProcess

UNLIMITED = 10**9
SECRET = "bench-province-inbound"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_CONNECTIONS = 40  # Telegram's default for a webhook
CITIZENS = 20_000_000  # citizens' Telegram ids from here; staff are 10_000_000 + ...
PROVINCE_PEOPLE = (9_000_001, 9_000_002, 9_000_003)
ANSWER_TIMEOUT = 120.0
DESCRIPTION = "Hàng xóm thấy cháu bị đánh nhiều lần, nghe tiếng khóc mỗi tối."
CLK_TCK = os.sysconf("SC_CLK_TCK")
CASE_CODE = re.compile(r"\b[A-Z]{1,6}-\d{4}-\d{4}\b")


def steps(code: int, village: int) -> list[tuple[str, str]]:
    return [("text", f"/start c-{code}"), ("choice", "menu:report"), ("choice", "danger:no"),
            ("choice", "type:violence"), ("choice", "types:done"),
            ("choice", f"village:v{village}"), ("choice", "age:6-10"), ("choice", "sex:boy"),
            ("choice", "skip"), ("choice", "count:1"), ("text", DESCRIPTION),
            ("choice", "photos:done"), ("choice", "contact:anonymous"), ("choice", "confirm")]


STEPS = len(steps(0, 1))


class CountingFake(FakeTelegram):
    """The fake Bot API without limits, counting the messages each chat received and
    waking whoever waits for a chat's count to reach a number."""

    def __init__(self) -> None:
        super().__init__(per_second=UNLIMITED, per_chat_burst=UNLIMITED,
                         per_group_minute=UNLIMITED)
        self.received: Counter[int] = Counter()
        self.last: dict[int, Sent] = {}
        self.waiters: dict[int, tuple[int, asyncio.Future[float]]] = {}
        self.to_staff = 0

    def _record(self, sent: Sent) -> None:
        super()._record(sent)
        chat = sent.chat_id
        self.received[chat] += 1
        self.last[chat] = sent
        if chat < CITIZENS and CASE_CODE.search(sent.text):
            self.to_staff += 1
        waiting = self.waiters.get(chat)
        if waiting is not None and self.received[chat] >= waiting[0]:
            del self.waiters[chat]
            if not waiting[1].done():
                waiting[1].set_result(sent.at)

    async def reached(self, chat: int, count: int) -> float:
        """When chat's count reached `count` (now, if it has)."""
        if self.received[chat] >= count:
            return time.perf_counter()
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[chat] = (count, future)
        return await asyncio.wait_for(future, ANSWER_TIMEOUT)

    def staff_messages(self) -> int:
        """Messages to the province's staff that name a case (not the calendar's)."""
        return self.to_staff


class Forwarder:
    """One webhook URL in front of the processes: each POST goes to the next one in turn."""

    def __init__(self) -> None:
        self.port = free_port()
        self.backends: list[str] = []
        self.turn = itertools.count()
        self.runner: web.AppRunner | None = None
        self.http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        app = web.Application()
        app.router.add_post("/telegram/webhook", self.forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def forward(self, request: web.Request) -> web.Response:
        assert self.http is not None
        if not self.backends:
            return web.Response(status=503)
        target = self.backends[next(self.turn) % len(self.backends)]
        headers = {SECRET_HEADER: request.headers.get(SECRET_HEADER, ""),
                   "Content-Type": request.headers.get("Content-Type", "application/json")}
        async with self.http.post(target, data=await request.read(), headers=headers) as r:
            body = await r.read()
            kept = {"Content-Type": r.headers["Content-Type"]} if body else {}
            return web.Response(status=r.status, body=body, headers=kept)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.http is not None:
            await self.http.close()


@dataclass
class Telegram:
    """Plays Telegram's side of the webhook: updates as JSON, POSTed with the secret."""

    fake: CountingFake
    url: str
    http: aiohttp.ClientSession
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    retried: int = 0

    def update(self, user: int, kind: str, value: str) -> dict[str, Any]:
        update_id = next(self.ids)
        sender = self.fake.users[user]
        if kind == "text":
            message: dict[str, Any] = {
                "message_id": next(self.fake.message_ids), "date": int(time.time()),
                "chat": {"id": user, "type": "private"}, "from": sender, "text": value}
            if value.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": len(value.split()[0])}]
            return {"update_id": update_id, "message": message}
        # A press of a button of the newest message the bot sent the citizen.
        shown = self.fake.last.get(user) or Sent(user, 1, "…", None)
        return {"update_id": update_id, "callback_query": {
            "id": f"cq{update_id}", "from": sender, "chat_instance": "ci", "data": value,
            "message": self.fake._message(shown)}}

    async def post(self, body: dict[str, Any]) -> None:
        """Until the webhook answers 200 (Telegram delivers a failed update again)."""
        for attempt in range(5):
            async with self.http.post(self.url, json=body,
                                      headers={SECRET_HEADER: SECRET}) as r:
                await r.read()
                if r.status == 200:
                    return
            self.retried += 1
            await asyncio.sleep(0.2 * (attempt + 1))
        raise SystemExit(f"the webhook refused update {body['update_id']} five times "
                         f"(HTTP {r.status}); see the bots' logs")


def citizen_steps(index: int, codes: list[int]) -> list[tuple[str, str]]:
    """The `index`th citizen's report: in commune index % N, a village of it in turn."""
    communes = len(codes)
    return steps(codes[index % communes], (index // communes) % 10 + 1)


async def calibrate(telegram: Telegram, codes: list[int]) -> list[int]:
    """One citizen walks the flow slowly: how many messages each step brings them (each is
    counted once all have come: nothing new for a second)."""
    fake = telegram.fake
    user = CITIZENS - 1
    fake.add_user(user)
    counts: list[int] = []
    for kind, value in citizen_steps(0, codes):
        before = fake.received[user]
        await telegram.post(telegram.update(user, kind, value))
        try:
            await fake.reached(user, before + 1)
        except TimeoutError:
            raise SystemExit(f"calibration: no answer to {value!r} in "
                             f"{ANSWER_TIMEOUT:.0f} s") from None
        while True:
            seen = fake.received[user]
            await asyncio.sleep(1.0)
            if fake.received[user] == seen:
                break
        counts.append(fake.received[user] - before)
    return counts


async def walk(telegram: Telegram, user: int, flow: list[tuple[str, str]],
               expected: list[int]) -> float:
    """One citizen's whole report, each update posted once the previous one's answer has
    arrived; returns when the last answer arrived."""
    telegram.fake.add_user(user)
    target = telegram.fake.received[user]
    at = 0.0
    for (kind, value), count in zip(flow, expected, strict=True):
        target += count
        await telegram.post(telegram.update(user, kind, value))
        try:
            at = await telegram.fake.reached(user, target)
        except TimeoutError:
            raise SystemExit(f"citizen {user}: no answer to {value!r} within "
                             f"{ANSWER_TIMEOUT:.0f} s ({telegram.fake.received[user]} of "
                             f"{target} messages); see the bots' logs") from None
    return at


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (0 for one that is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """Seconds of CPU the whole machine spent busy so far (all cores, /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle, iowait
    return (sum(ticks[:8]) - idle) / CLK_TCK


def postgres_pids(server: pg.PostgresServer) -> list[int]:
    """The postmaster and its children (backends, writers)."""
    postmaster = int((server.dir / "data" / "postmaster.pid").read_text().split()[0])
    found = [postmaster]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
            found.append(int(entry.name))
    return found


def postgres_cpu(server: pg.PostgresServer, seen: dict[int, float]) -> float:
    """PostgreSQL's CPU seconds since `seen` was filled (a backend born since counts from
    0); fills `seen` with the current figures."""
    total = 0.0
    for pid in postgres_pids(server):
        now = cpu_seconds(pid)
        total += now - seen.get(pid, 0.0)
        seen[pid] = now
    return total


@dataclass
class Run:
    processes: int
    updates: int
    seconds: float
    bots_cpu: float
    per_bot_cpu: list[float]
    postgres_cpu: float
    bench_cpu: float
    retried: int
    team_per_report: float
    machine_cpu: float
    setup: float

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds

    @property
    def others_cpu(self) -> float:
        """The machine's busy time not ours (other jobs on the shared cores)."""
        return max(0.0, self.machine_cpu - self.bots_cpu - self.postgres_cpu - self.bench_cpu)

    def ms_per_update(self, cpu: float) -> float:
        return 1000 * cpu / self.updates


@dataclass
class Province:
    server: pg.PostgresServer
    file: Path
    tmp: Path
    codes: list[int]
    communes: int
    expected: list[int] | None = None


async def one_run(province: Province, processes: int, citizens: int, warm_up: int,
                  label: str) -> Run:
    setup_started = time.perf_counter()
    url = province.server.create_database()
    fake = CountingFake()
    await fake.start()
    for index in range(province.communes):
        for n in range(1, PEOPLE_PER_COMMUNE + 1):
            fake.add_user(10_000_000 + index * 100 + n)
    for user in PROVINCE_PEOPLE:
        fake.add_user(user)
    forwarder = Forwarder()
    await forwarder.start()
    env = {"SAFECHILD_CONFIG": str(province.file), "SAFECHILD_SIMULATOR": "0",
           "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url,
           "TELEGRAM_FILE_BASE_URL": f"http://127.0.0.1:{fake.port}/file/bot",
           "TELEGRAM_WEBHOOK_URL": forwarder.url, "TELEGRAM_WEBHOOK_SECRET": SECRET}
    procs = [UnlimitedBotProcess(province.tmp / "unused.db", free_port(), env,
                                 database_url=url,
                                 log=province.tmp / f"bot-{label}-{n}.log")
             for n in range(processes)]
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS))
    try:
        # The first applies the migrations and writes the province's people; then the rest.
        for proc in procs:
            try:
                await proc.start(None, seconds=180)
            except RuntimeError as exc:
                raise SystemExit(f"a bot process did not start: {str(exc)[-1500:]}") from None
        forwarder.backends = [f"{p.base}/telegram/webhook" for p in procs]
        telegram = Telegram(fake, forwarder.url, http)
        if province.expected is None:
            province.expected = await calibrate(telegram, province.codes)
            print(f"  one report: {sum(province.expected)} messages to the citizen over "
                  f"{STEPS} updates {province.expected}", flush=True)
        expected = province.expected
        # Warm-up: a few whole reports, every process served some.
        await asyncio.gather(*(walk(telegram, CITIZENS + n, citizen_steps(n, province.codes),
                                    expected) for n in range(warm_up)))
        await asyncio.sleep(1.0)
        team_before = fake.staff_messages()
        pids = [p.proc.pid for p in procs if p.proc is not None]
        bots_before = [cpu_seconds(pid) for pid in pids]
        pg_seen: dict[int, float] = {}
        postgres_cpu(province.server, pg_seen)
        bench_before = time.process_time()
        machine_before = machine_busy()
        started = time.perf_counter()
        finished = await asyncio.gather(*(
            walk(telegram, CITIZENS + n, citizen_steps(n, province.codes), expected)
            for n in range(warm_up, warm_up + citizens)))
        last = max(finished)
        bots_after = [cpu_seconds(pid) for pid in pids]
        pg_cpu = postgres_cpu(province.server, pg_seen)
        bench_cpu = time.process_time() - bench_before
        machine_cpu = machine_busy() - machine_before
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is not None:
                raise SystemExit(f"a bot process died: {proc.died()[-1500:]}")
        # The teams' alerts, sent meanwhile: counted once no more come (not in the rate).
        quiet_since, seen = time.perf_counter(), fake.staff_messages()
        give_up = quiet_since + 60
        while time.perf_counter() - quiet_since < 2 and time.perf_counter() < give_up:
            await asyncio.sleep(0.1)
            if fake.staff_messages() != seen:
                quiet_since, seen = time.perf_counter(), fake.staff_messages()
        per_bot = [a - b for a, b in zip(bots_after, bots_before, strict=True)]
        return Run(processes, citizens * STEPS, last - started, sum(per_bot), per_bot,
                   pg_cpu, bench_cpu, telegram.retried,
                   (fake.staff_messages() - team_before) / citizens, machine_cpu,
                   started - setup_started)
    finally:
        for proc in procs:
            proc.stop()
        await http.close()
        await forwarder.stop()
        await fake.stop()


def shown(run: Run) -> str:
    share = " ".join(f"{100 * c / run.seconds:.0f}" for c in run.per_bot_cpu)
    return (f"processes={run.processes}  updates={run.updates}  seconds={run.seconds:.1f}  "
            f"updates/s={run.per_second:.1f}  bots_cpu_ms/update="
            f"{run.ms_per_update(run.bots_cpu):.1f}  pg_cpu_ms/update="
            f"{run.ms_per_update(run.postgres_cpu):.1f}  bench_cpu_ms/update="
            f"{run.ms_per_update(run.bench_cpu):.1f}  %core: bots [{share}] "
            f"pg {100 * run.postgres_cpu / run.seconds:.0f} "
            f"bench {100 * run.bench_cpu / run.seconds:.0f}  retried={run.retried}  "
            f"team_alerts/report={run.team_per_report:.1f}  machine busy "
            f"{100 * run.machine_cpu / run.seconds:.0f}%core of which others "
            f"{100 * run.others_cpu / run.seconds:.0f}  setup={run.setup:.0f}s")


def table(runs: list[Run], counts: list[int]) -> list[str]:
    def median(n: int, value: Any) -> float:
        return statistics.median(value(r) for r in runs if r.processes == n)

    base = median(counts[0], lambda r: r.per_second)
    lines = [f"{'processes':>9} | {'updates/s (median)':>18} | {f'ratio to {counts[0]}':>10} "
             f"| {'CPU ms/update bots':>18} | {'PG':>5} | {'bench':>5} | {'others %core':>12} "
             f"| rounds (updates/s)", "-" * 110]
    for n in counts:
        rates = sorted(r.per_second for r in runs if r.processes == n)
        lines.append(
            f"{n:>9} | {median(n, lambda r: r.per_second):>18.1f} | "
            f"{median(n, lambda r: r.per_second) / base:>10.2f} | "
            f"{median(n, lambda r: r.ms_per_update(r.bots_cpu)):>18.1f} | "
            f"{median(n, lambda r: r.ms_per_update(r.postgres_cpu)):>5.1f} | "
            f"{median(n, lambda r: r.ms_per_update(r.bench_cpu)):>5.1f} | "
            f"{median(n, lambda r: 100 * r.others_cpu / r.seconds):>12.0f} | "
            + " ".join(f"{x:.1f}" for x in rates))
    return lines


async def main_async(communes: int, counts: list[int], rounds: int, citizens: int,
                     warm_up: int) -> None:
    if not pg.available():
        raise SystemExit("PostgreSQL is not installed (initdb, pg_ctl): "
                         "bash scripts/test_setup.sh installs it")
    server = pg.PostgresServer()
    pg.use_test_keys()
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            file = write_province(tmp, communes=communes, calendar=False)
            codes = [unit.code for unit in units_of(THANH_HOA)[:communes]]
            province = Province(server, file, tmp, codes, communes)
            cores = os.cpu_count()
            print(f"SafeChild inbound Telegram updates through the webhook: a province of "
                  f"{communes} communes ({PEOPLE_PER_COMMUNE} people each) on one "
                  f"PostgreSQL, {citizens} citizens x {STEPS} updates a run, "
                  f"{MAX_CONNECTIONS} POSTs in flight at most, rate limits off; {cores} "
                  f"cores, shared by the bot processes, PostgreSQL and this process "
                  f"(fake Bot API, forwarder, citizens)", flush=True)
            runs: list[Run] = []
            for round_ in range(1, rounds + 1):
                for n in counts:
                    run = await one_run(province, n, citizens, max(warm_up, 2 * n),
                                        f"{round_}-{n}")
                    runs.append(run)
                    print(f"  round {round_}: {shown(run)}", flush=True)
            print(f"\n{cores} cores shared by the bots, PostgreSQL and the bench; CPU ms "
                  f"per update: bots (sum over the processes), PG, bench (fake Bot API, "
                  f"forwarder, citizens); others: the machine's busy time that was none of "
                  f"these (other jobs), in % of one core; medians over {rounds} round(s)")
            for line in table(runs, counts):
                print(line)
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.province_inbound")
    parser.add_argument("--communes", type=int, default=100)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--citizens", type=int, default=150,
                        help="people filing a report at once in each run")
    parser.add_argument("--warm-up", type=int, default=8,
                        help="whole reports before each run's measure (at least 2 per process)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 10 communes, 1,2 processes, 1 round, 20 citizens")
    args = parser.parse_args()
    if args.quick:
        args.communes, args.processes, args.rounds, args.citizens = 10, "1,2", 1, 20
    counts = [int(n) for n in args.processes.split(",")]
    asyncio.run(main_async(args.communes, counts, args.rounds, args.citizens, args.warm_up))


if __name__ == "__main__":
    main()
