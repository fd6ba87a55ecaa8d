"""The Zalo OA's token pair in the database, against the fake Zalo OAuth endpoint over HTTP:
refreshed once when it expires mid-conversation, spent exactly once by two processes,
kept across a process killed at each point of a refresh (and, where Zalo makes it
impossible, the loss reported to the admins on another channel), never logged."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.handlers.simulator import SimulatorPlugin
from bot.handlers.telegram.application import make_application
from bot.handlers.telegram.sender import TelegramSender
from bot.handlers.zalo.api import (
    ZaloApi,
    ZaloAuthError,
    ZaloError,
    ZaloSettings,
    ZaloUnavailable,
)
from storage import people
from storage.db import Database
from storage.zalo_tokens import TokenRow, ZaloTokenRows
from tests.support.channels import SenderPlugin
from tests.support.database import change, read, write
from tests.support.fake_telegram import TOKEN as TG_TOKEN
from tests.support.fake_zalo import OAUTH_INVALID_APP, OAUTH_INVALID_REFRESH, FakeZalo
from tests.support.waiting import eventually
from tests.support.zalo import (
    admin_alerts,
    database_error,
    sends,
    token_lost_alerts,
    token_rows,
    zalo_plugin,
)

ROOT = Path(__file__).resolve().parent.parent
USER = "8812000000000000001"
ADMIN_TELEGRAM = "5550001"


class Apis:
    """ZaloApi clients made by a test ("processes"), closed at the end."""

    def __init__(self, app: App, fake: FakeZalo, clock: FakeClock) -> None:
        self.app, self.fake, self.clock = app, fake, clock
        self.made: list[ZaloApi] = []

    def make(self, refresh_token: str, database: Database | None = None,
             on_queued: Callable[[], None] | None = None, **changes: Any) -> ZaloApi:
        env = self.fake.env(refresh_token)
        settings = ZaloSettings.from_env(env)
        assert settings is not None
        # Room for a loaded CI machine; a request the fake leaves hanging costs this much.
        fields = {**settings.__dict__, "timeout": 2.0, **changes}
        settings = ZaloSettings(**fields)
        database = database or self.app.database
        api = ZaloApi(settings, ZaloTokenRows(database, settings.oa_id), self.clock,
                      alert_admins=token_lost_alerts(self.app, database, on_queued))
        self.made.append(api)
        return api


@pytest.fixture
async def apis(app: App, fake: FakeZalo, clock: FakeClock) -> AsyncIterator[Apis]:
    made = Apis(app, fake, clock)
    yield made
    for api in made.made:
        await api.close()


@pytest.fixture
async def with_telegram(db_url: str, clock: FakeClock) -> AsyncIterator[App]:
    """The demo commune's process running Telegram too (its channel is attached; nothing
    here delivers, so no server is needed)."""
    bot = make_application(TG_TOKEN, base_url="http://127.0.0.1:9/bot").bot
    app = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                          [SimulatorPlugin(), SenderPlugin(TelegramSender(bot))])
    yield app
    await app.close()


@pytest.fixture
async def telegram_apis(with_telegram: App, fake: FakeZalo,
                        clock: FakeClock) -> AsyncIterator[Apis]:
    made = Apis(with_telegram, fake, clock)
    yield made
    for api in made.made:
        await api.close()


async def other_process_database(db_url: str) -> Database:
    """The same database as another process sees it: its own connections."""
    return await Database.open(db_url)


async def give_admin_telegram_and_zalo(app: App) -> None:
    """The admin uses Zalo most (last seen there), and Telegram too, which this deployment
    runs."""
    admin = await read(app, people.person_by_key, app.directory.commune_id, "admin")
    assert admin is not None
    await write(app, people.bind_identity, admin.id, "telegram", ADMIN_TELEGRAM)
    await write(app, people.bind_identity, admin.id, "zalo", "7700000000000000009")
    await change(app, "identities", {"last_seen_at": app.clock.now()},
                 person_id=admin.id, channel="zalo")


async def test_a_refresh_stores_the_new_pair_and_marks_the_old_used(
        apis: Apis, fake: FakeZalo, app: App, clock: FakeClock) -> None:
    _, first_refresh = fake.authorise()
    api = apis.make(first_refresh)
    await api.send_text(USER, "Xin chào")
    seeded, active = await token_rows(app)
    assert (seeded.status, seeded.refresh_token, seeded.used_at) == ("used", first_refresh,
                                                                     clock.now())
    assert seeded.lease_owner is None
    assert active.status == "active"
    # expires_in came as the string "90000": 25 hours on the clock.
    assert active.expires_at == clock.now() + timedelta(hours=25)
    assert active.refresh_token in fake.refresh_tokens and first_refresh in fake.spent
    assert fake.refresh_outcomes() == ["ok"]
    assert [m.text for m in fake.sent] == ["Xin chào"]


@pytest.mark.parametrize("expiry", ["on_our_clock", "early_at_zalo"])
async def test_expiry_mid_conversation_refreshes_once(apis: Apis, fake: FakeZalo,
                                                      app: App, clock: FakeClock,
                                                      expiry: str) -> None:
    _, refresh = fake.authorise()
    api = apis.make(refresh)
    await api.send_text(USER, "Bạn muốn báo tin gì?")
    if expiry == "on_our_clock":
        clock.advance(timedelta(hours=25, minutes=1))  # expired at Zalo and in our row
    else:
        fake.expire_access_tokens()  # Zalo says -216 while our row thinks it still valid
    await asyncio.gather(*(api.send_text(USER, f"tiếp {n}") for n in range(3)))
    assert fake.refresh_outcomes() == ["ok", "ok"]  # one for the seed, one now
    assert sorted(m.text for m in fake.sent) == ["Bạn muốn báo tin gì?", "tiếp 0", "tiếp 1",
                                                 "tiếp 2"]
    # A -216 costs one refused call per send that met it, and no more.
    refused = sends(fake) - len(fake.sent)
    if expiry == "on_our_clock":
        assert refused == 0  # refreshed before sending
    else:
        assert 1 <= refused <= 3
    assert [r.status for r in await token_rows(app)] == ["used", "used", "active"]


async def test_two_processes_needing_a_refresh_spend_the_refresh_token_once(
        apis: Apis, fake: FakeZalo, app: App, clock: FakeClock, db_url: str) -> None:
    _, refresh = fake.authorise()
    other_db = await other_process_database(db_url)
    try:
        first = apis.make(refresh)
        second = apis.make(refresh, database=other_db)
        await first.send_text(USER, "một")
        await second.send_text(USER, "hai")  # uses the stored pair, spends nothing
        assert fake.refresh_outcomes() == ["ok"]
        clock.advance(timedelta(hours=25, minutes=1))
        fake.oauth_delay = 0.3  # a slow Zalo: the second process arrives mid-refresh
        await asyncio.gather(*(api.send_text(USER, f"{name} {n}")
                               for n in range(3)
                               for name, api in (("A", first), ("B", second))))
    finally:
        await other_db.close()
    assert fake.refresh_outcomes() == ["ok", "ok"]
    assert first.tokens.refreshes + second.tokens.refreshes == 2
    assert len(fake.sent) == 8
    assert [r.status for r in await token_rows(app)] == ["used", "used", "active"]


async def test_seeding_from_the_environment_happens_once(apis: Apis, fake: FakeZalo,
                                                         app: App, db_url: str) -> None:
    _, refresh = fake.authorise()
    other_db = await other_process_database(db_url)
    try:
        first = apis.make(refresh)
        second = apis.make(refresh, database=other_db)
        one, two = await asyncio.gather(first.tokens.access_token(),
                                        second.tokens.access_token())
    finally:
        await other_db.close()
    assert one.token == two.token and one.row_id == two.row_id
    assert fake.refresh_outcomes() == ["ok"]
    # A restart with the same (now spent) environment token does not use it again.
    restarted = apis.make(refresh)
    await restarted.send_text(USER, "sau khi khởi động lại")
    assert fake.refresh_outcomes() == ["ok"]
    assert [r.status for r in await token_rows(app)] == ["used", "active"]


async def test_a_refresh_token_used_twice_is_refused_as_zalo_would(fake: FakeZalo) -> None:
    _, refresh = fake.authorise()
    form = {"refresh_token": refresh, "app_id": fake.app_id, "grant_type": "refresh_token"}
    async with aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/v4/oa/access_token"
        async with http.post(url, data=form, headers={"secret_key": fake.app_secret}) as r:
            first = await r.json()
        async with http.post(url, data=form, headers={"secret_key": fake.app_secret}) as r:
            assert r.status == 200
            second = await r.json()
    assert first["expires_in"] == "90000" and first["refresh_token"] != refresh
    assert second["error"] == OAUTH_INVALID_REFRESH and second["error_name"]
    assert "access_token" not in second
    assert fake.refresh_outcomes() == ["ok", "refused"]


async def test_a_refused_refresh_alerts_the_admins_elsewhere_once(
        telegram_apis: Apis, fake: FakeZalo, with_telegram: App, clock: FakeClock) -> None:
    apis, app = telegram_apis, with_telegram
    await give_admin_telegram_and_zalo(app)
    _, refresh = fake.authorise()
    woken: list[int] = []
    api = apis.make(refresh, on_queued=lambda: woken.append(1))
    await api.send_text(USER, "một")
    stored = (await token_rows(app))[-1]
    # The stored refresh token gets spent behind our back (a copied database elsewhere).
    async with aiohttp.ClientSession() as http, http.post(
            f"{fake.base_url}/v4/oa/access_token", headers={"secret_key": fake.app_secret},
            data={"refresh_token": stored.refresh_token, "app_id": fake.app_id,
                  "grant_type": "refresh_token"}) as r:
        assert "access_token" in await r.json()
    clock.advance(timedelta(hours=25))
    with pytest.raises(ZaloAuthError) as lost:
        await api.send_text(USER, "hai")
    assert lost.value.outside_window and lost.value.permanent
    assert lost.value.code == OAUTH_INVALID_REFRESH
    assert (await token_rows(app))[-1].status == "failed"
    (alert,) = await admin_alerts(app)
    assert woken == [1]  # the outbox was told at once
    # On Telegram, though the admin was last seen on Zalo: Zalo is what broke.
    assert (alert.channel, alert.address) == ("telegram", ADMIN_TELEGRAM)
    text = alert.payload["reply"]["texts"][0]
    assert text == {"id": "zalo.token_lost", "params": {"code": OAUTH_INVALID_REFRESH}}
    # Later sends fail at once, without spending anything or alerting again.
    attempts = len(fake.refreshes)
    with pytest.raises(ZaloAuthError):
        await api.send_text(USER, "ba")
    await api.tokens.sweep()
    assert len(fake.refreshes) == attempts and len(await admin_alerts(app)) == 1
    # The OA manager authorises the app again and restarts with the new refresh token.
    _, renewed = fake.authorise()
    restarted = apis.make(renewed)
    await restarted.send_text(USER, "ba")
    assert [m.text for m in fake.sent] == ["một", "ba"]
    assert [r.status for r in await token_rows(app)] == ["used", "failed", "used",
                                                            "active"]


async def test_a_refusal_that_was_not_for_good_is_undone_at_the_next_start(
        apis: Apis, fake: FakeZalo, app: App) -> None:
    """A wrong app secret makes Zalo refuse without spending the refresh token; once the
    configuration is right, the start tries the refused token again."""
    _, refresh = fake.authorise()
    wrong = apis.make(refresh, app_secret="not-the-secret")
    with pytest.raises(ZaloAuthError) as lost:
        await wrong.send_text(USER, "một")
    assert lost.value.code == OAUTH_INVALID_APP
    assert len(await admin_alerts(app)) == 1  # the admin's simulator phone
    right = apis.make(refresh)
    await right.start()
    await right.send_text(USER, "một")
    assert fake.refresh_outcomes() == ["ok"]
    assert [r.status for r in await token_rows(app)] == ["used", "active"]
    assert len(await admin_alerts(app)) == 1


async def test_the_background_refresher_refreshes_before_expiry(
        fake: FakeZalo, db_url: str, clock: FakeClock) -> None:
    _, refresh = fake.authorise()
    zalo = zalo_plugin(fake, refresh)
    # Building the process opens the channel, which starts the client (seeds the store).
    app = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                          [SimulatorPlugin(), zalo])
    try:
        api = zalo.api
        assert api is not None
        assert fake.refresh_outcomes() == ["ok"]
        await app.start()  # the process's scheduler runs the refresher in the background
        clock.advance(timedelta(hours=23))
        await api.tokens.sweep()
        assert fake.refresh_outcomes() == ["ok"]  # not due yet
        clock.advance(timedelta(hours=1, minutes=1))  # an hour before expiry: wakes it
        # Until the refresher has stored the new pair, a send may still go with the old
        # token (Zalo may have dropped it: one -216 and a second send), so wait for it to
        # finish.
        await eventually(lambda: fake.refresh_outcomes() == ["ok", "ok"]
                         and not api.tokens.refreshing)
        sent_before = sends(fake)
        await api.send_text(USER, "không cần làm mới")
        assert sends(fake) == sent_before + 1 and fake.refresh_outcomes() == ["ok", "ok"]
    finally:
        await app.close()


async def test_an_answer_lost_in_transit_cannot_be_recovered_and_is_reported(
        apis: Apis, fake: FakeZalo, app: App) -> None:
    """Zalo spends the refresh token but its answer never arrives: nothing can bring the
    new pair back. We retry (it might not have reached Zalo), are refused, and say so."""
    _, refresh = fake.authorise()
    api = apis.make(refresh)
    fake.hang_seconds = 5.0  # longer than the client waits
    fake.oauth_fail_next.append("lost")
    with pytest.raises(ZaloUnavailable):
        await api.send_text(USER, "một")
    (row,) = await token_rows(app)
    assert (row.status, row.lease_owner) == ("active", None)  # released for a retry
    with pytest.raises(ZaloAuthError):
        await api.send_text(USER, "một")
    assert fake.refresh_outcomes() == ["lost", "refused"]
    assert len(await admin_alerts(app)) == 1


async def test_a_database_failure_after_the_refresh_keeps_the_pair(
        apis: Apis, fake: FakeZalo, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    _, refresh = fake.authorise()
    api = apis.make(refresh)
    real_replace = ZaloTokenRows.replace
    failures = []

    async def flaky_replace(rows: ZaloTokenRows, old_id: int, access: str,
                            refresh_token: str, *args: Any) -> TokenRow:
        if refresh_token != refresh and not failures:
            failures.append(1)
            raise database_error()
        return await real_replace(rows, old_id, access, refresh_token, *args)

    monkeypatch.setattr(ZaloTokenRows, "replace", flaky_replace)
    await api.send_text(USER, "một")  # sent with the new pair, held in memory
    assert failures and [r.status for r in await token_rows(app)] == ["active"]
    await api.send_text(USER, "hai")  # the next call stores it
    rows = await token_rows(app)
    assert [r.status for r in rows] == ["used", "active"]
    assert rows[1].refresh_token in fake.refresh_tokens
    assert fake.refresh_outcomes() == ["ok"] and len(fake.sent) == 2


CHILD = """
import asyncio, json, os, sys
from datetime import datetime
from bot.clock import FakeClock
from bot.handlers.zalo.api import ZaloApi, ZaloSettings
from storage.db import Database
from storage.zalo_tokens import ZaloTokenRows

async def main() -> None:
    url, now, point, user = sys.argv[1:5]
    settings = ZaloSettings.from_env(json.loads(os.environ["ZALO_ENV"]))
    database = await Database.open(url)
    api = ZaloApi(settings, ZaloTokenRows(database, settings.oa_id),
                  FakeClock(datetime.fromisoformat(now)))
    spend = api.tokens.refresher

    async def refresher(refresh_token):
        if point == "before_call":
            print("POINT", flush=True)
            await asyncio.Event().wait()
        pair = await spend(refresh_token)
        if point == "after_answer":
            print("POINT", flush=True)
            await asyncio.Event().wait()
        return pair

    api.tokens.refresher = refresher
    await api.send_text(user, "from the child")
    print("POINT", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def kill_child_at(point: str, db_url: str, fake: FakeZalo, refresh: str,
                        clock: FakeClock, tmp_path: Path) -> None:
    """Run a refreshing process and SIGKILL it at `point` of its first refresh."""
    script = tmp_path / "zalo_child.py"
    script.write_text(CHILD)
    env = {**os.environ, "ZALO_ENV": json.dumps(fake.env(refresh)), "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), db_url, clock.now().isoformat(), point, USER, cwd=ROOT,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != b"POINT":
            raise AssertionError((await proc.stderr.read()).decode()[-2000:])
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()


@pytest.mark.parametrize("point", ["before_call", "after_commit"])
async def test_a_process_killed_during_a_refresh_loses_nothing_that_can_be_saved(
        apis: Apis, fake: FakeZalo, app: App, clock: FakeClock, db_url: str,
        tmp_path: Path, point: str) -> None:
    _, refresh = fake.authorise()
    await kill_child_at(point, db_url, fake, refresh, clock, tmp_path)
    if point == "before_call":
        # Its claim is still on the row; it runs out, and the token was never spent.
        (row,) = await token_rows(app)
        assert row.status == "active" and row.lease_owner is not None
        assert fake.refresh_outcomes() == []
        clock.advance(timedelta(seconds=31))
    restarted = apis.make(refresh)
    await restarted.send_text(USER, "sau khi khởi động lại")
    assert fake.refresh_outcomes() == ["ok"]  # spent once, by whoever reached Zalo
    assert [r.status for r in await token_rows(app)] == ["used", "active"]
    assert await admin_alerts(app) == []
    assert fake.sent[-1].text == "sau khi khởi động lại"


async def test_a_process_killed_between_zalo_answer_and_commit_reports_the_loss(
        apis: Apis, fake: FakeZalo, app: App, clock: FakeClock, db_url: str,
        tmp_path: Path) -> None:
    """The one window nothing can close: Zalo spent the refresh token and the new pair died
    with the process. The next process is refused and the admins are told; a new
    authorisation brings Zalo back."""
    _, refresh = fake.authorise()
    await kill_child_at("after_answer", db_url, fake, refresh, clock, tmp_path)
    assert fake.refresh_outcomes() == ["ok"]
    clock.advance(timedelta(seconds=31))
    restarted = apis.make(refresh)
    with pytest.raises(ZaloAuthError):
        await restarted.send_text(USER, "một")
    assert fake.refresh_outcomes() == ["ok", "refused"]
    assert len(await admin_alerts(app)) == 1
    _, renewed = fake.authorise()
    await apis.make(renewed).send_text(USER, "một")
    assert [m.text for m in fake.sent] == ["một"]


async def test_no_token_is_ever_logged(apis: Apis, fake: FakeZalo, app: App,
                                       clock: FakeClock,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, refresh = fake.authorise()
    api = apis.make(refresh)
    await api.send_text(USER, "một")
    fake.expire_access_tokens()
    await api.send_text(USER, "hai")  # -216, refresh, retry
    fake.oauth_fail_next.append("timeout")
    fake.hang_seconds = 5.0  # longer than the client waits
    clock.advance(timedelta(hours=25))
    with pytest.raises(ZaloUnavailable):
        await api.send_text(USER, "ba")
    fake.refresh_tokens.clear()  # Zalo forgets every refresh token: refused
    with pytest.raises(ZaloAuthError) as lost:
        await api.send_text(USER, "ba")
    assert "refreshed into row" in caplog.text and "refresh refused" in caplog.text
    for token in fake.issued:
        assert token not in caplog.text
        assert token not in str(lost.value) and token not in repr(api.tokens._current)
    for alert in await admin_alerts(app):
        assert all(token not in json.dumps(alert.payload) for token in fake.issued)


async def test_without_any_token_sends_fail_kindly_and_it_is_said_once(
        apis: Apis, fake: FakeZalo, app: App,
        caplog: pytest.LogCaptureFixture) -> None:
    api = apis.make("")
    for _ in range(2):
        with pytest.raises(ZaloAuthError) as lost:
            await api.send_text(USER, "một")
        assert lost.value.outside_window
    assert caplog.text.count("no ZALO_REFRESH_TOKEN") == 1
    assert fake.calls == [] and await token_rows(app) == []


async def test_while_the_new_pair_is_unsaved_the_spent_token_is_never_used(
        apis: Apis, fake: FakeZalo, app: App, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The database keeps refusing the new pair; meanwhile Zalo rejects an access token
    and the background sweep comes due: neither may spend the stored (spent) token."""
    _, refresh = fake.authorise()
    api = apis.make(refresh)
    real_replace = ZaloTokenRows.replace
    down = [True]

    async def flaky_replace(rows: ZaloTokenRows, old_id: int, access: str,
                            refresh_token: str, *args: Any) -> TokenRow:
        if refresh_token != refresh and down[0]:
            raise database_error()
        return await real_replace(rows, old_id, access, refresh_token, *args)

    monkeypatch.setattr(ZaloTokenRows, "replace", flaky_replace)
    await api.send_text(USER, "một")
    fake.expire_access_tokens()
    with pytest.raises(ZaloError) as rejected:
        await api.send_text(USER, "hai")
    assert rejected.value.code == -216
    clock.advance(timedelta(hours=24, minutes=30))
    await api.tokens.sweep()
    assert fake.refresh_outcomes() == ["ok"] and await admin_alerts(app) == []
    down[0] = False
    await api.tokens.sweep()  # stored now; the pair is due, so it is refreshed
    assert fake.refresh_outcomes() == ["ok", "ok"]
    assert [r.status for r in await token_rows(app)] == ["used", "used", "active"]
    await api.send_text(USER, "hai")
    assert [m.text for m in fake.sent] == ["một", "hai"]
