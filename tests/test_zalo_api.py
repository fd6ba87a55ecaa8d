"""The Zalo OA client against the fake Zalo server over HTTP: what it sends, what it refuses
before sending, and how Zalo's answers become ZaloError / ZaloUnavailable."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import App
from bot.clock import FakeClock
from bot.handlers.zalo.api import (
    MAX_BUTTONS,
    ZaloApi,
    ZaloButton,
    ZaloError,
    ZaloSettings,
    ZaloUnavailable,
)
from storage.zalo_tokens import ZaloTokenRows
from tests.support.fake_zalo import FakeZalo
from tests.support.zalo import sends, settings_for

USER = "8812000000000000001"


@pytest.fixture
async def api(app: App, fake: FakeZalo, clock: FakeClock) -> AsyncIterator[ZaloApi]:
    _, refresh = fake.authorise()
    settings = settings_for(fake, refresh, timeout=2.0)
    client = ZaloApi(settings, ZaloTokenRows(app.database, settings.oa_id), clock)
    yield client
    await client.close()


async def test_text_buttons_and_image_arrive_as_zalo_shapes(api: ZaloApi,
                                                            fake: FakeZalo) -> None:
    first = await api.send_text(USER, "Xin chào")
    second = await api.send_buttons(USER, "Chọn một", [
        ZaloButton("Có nguy hiểm", "oa.query.hide", "danger_now"),
        ZaloButton("Gọi 111", "oa.open.phone", "111"),
        ZaloButton("Xem hướng dẫn", "oa.open.url", "https://example.org/help")])
    third = await api.send_image(USER, "https://zalo-cdn.example/photo.jpg", "Ảnh từ người báo")
    assert len({first, second, third}) == 3 and all(m.startswith("m") for m in (first, second))
    text, buttons, image = fake.sent_to(USER)
    assert (text.text, text.buttons, text.image_url) == ("Xin chào", [], None)
    assert buttons.text == "Chọn một"
    assert buttons.payloads == ["danger_now"]
    assert buttons.phones == ["111"]
    assert buttons.urls == ["https://example.org/help"]
    assert [b["type"] for b in buttons.buttons] == ["oa.query.hide", "oa.open.phone",
                                                    "oa.open.url"]
    assert (image.image_url, image.text) == ("https://zalo-cdn.example/photo.jpg",
                                             "Ảnh từ người báo")
    assert image.message_id == third
    # The environment's refresh token was spent once, on the first call.
    assert fake.refresh_outcomes() == ["ok"]


async def test_exact_limits_are_accepted(api: ZaloApi, fake: FakeZalo) -> None:
    await api.send_text(USER, "a" * 2000)
    await api.send_buttons(USER, "b", [ZaloButton("t" * 100, "oa.query.hide", "p" * 1000)]
                           * MAX_BUTTONS)
    assert [len(m.text) for m in fake.sent] == [2000, 1]
    assert len(fake.sent[1].buttons) == MAX_BUTTONS


@pytest.mark.parametrize("call", [
    "long_text", "empty_text", "long_title", "long_payload", "too_many", "no_buttons",
    "bad_phone", "tel_url", "bad_image", "long_caption", "no_user"])
async def test_limits_are_refused_before_any_request(api: ZaloApi, fake: FakeZalo,
                                                     call: str) -> None:
    ok = ZaloButton("Có", "oa.query.hide", "yes")
    attempts = {
        "long_text": lambda: api.send_text(USER, "a" * 2001),
        "empty_text": lambda: api.send_text(USER, "  "),
        "long_title": lambda: api.send_buttons(USER, "x", [
            ZaloButton("t" * 101, "oa.query.hide", "yes")]),
        "long_payload": lambda: api.send_buttons(USER, "x", [
            ZaloButton("Có", "oa.query.hide", "p" * 1001)]),
        "too_many": lambda: api.send_buttons(USER, "x", [ok] * (MAX_BUTTONS + 1)),
        "no_buttons": lambda: api.send_buttons(USER, "x", []),
        "bad_phone": lambda: api.send_buttons(USER, "x", [
            ZaloButton("Gọi", "oa.open.phone", "call-111")]),
        "tel_url": lambda: api.send_buttons(USER, "x", [
            ZaloButton("Gọi", "oa.open.url", "tel:111")]),
        "bad_image": lambda: api.send_image(USER, "file:///etc/passwd"),
        "long_caption": lambda: api.send_image(USER, "https://x.example/a.jpg", "c" * 2001),
        "no_user": lambda: api.send_text("", "Xin chào"),
    }
    with pytest.raises(ValueError):
        await attempts[call]()
    assert fake.calls == [] and fake.sent == []


async def test_outside_window_and_unfollowed_are_unreachable(api: ZaloApi,
                                                             fake: FakeZalo) -> None:
    fake.close_window(USER)
    with pytest.raises(ZaloError) as outside:
        await api.send_text(USER, "Cảnh báo")
    assert outside.value.code == -230
    assert outside.value.outside_window and outside.value.permanent
    assert not outside.value.rate_limited
    fake.open_window(USER)  # the user wrote again
    await api.send_text(USER, "Cảnh báo")
    fake.unfollow("42")
    with pytest.raises(ZaloError) as gone:
        await api.send_text("42", "Cảnh báo")
    assert (gone.value.code, gone.value.outside_window) == (-213, True)
    assert [m.user_id for m in fake.sent] == [USER]


async def test_rate_limit_backs_off_without_calling_zalo(api: ZaloApi, fake: FakeZalo,
                                                         clock: FakeClock) -> None:
    await api.send_text(USER, "một")
    fake.fail_next.append(-32)
    with pytest.raises(ZaloError) as limited:
        await api.send_text(USER, "hai")
    assert limited.value.rate_limited and not limited.value.permanent
    assert limited.value.retry_after == 60.0
    before = sends(fake)
    clock.advance(timedelta(seconds=20))
    with pytest.raises(ZaloError) as waiting:
        await api.send_text(USER, "hai")
    assert waiting.value.rate_limited and waiting.value.retry_after == pytest.approx(40.0)
    assert sends(fake) == before  # Zalo was left alone meanwhile
    clock.advance(timedelta(seconds=41))
    await api.send_text(USER, "hai")
    assert [m.text for m in fake.sent] == ["một", "hai"]


async def test_the_fake_enforces_4000_calls_a_minute(api: ZaloApi, fake: FakeZalo,
                                                     clock: FakeClock) -> None:
    fake.per_minute = 3
    for n in range(3):
        await api.send_text(USER, f"tin {n}")
    with pytest.raises(ZaloError) as limited:
        await api.send_text(USER, "tin 3")
    assert (limited.value.code, limited.value.rate_limited) == (-32, True)
    assert fake.rejected_rate == 1
    clock.advance(timedelta(seconds=61))
    await api.send_text(USER, "tin 3")
    assert len(fake.sent) == 4


async def test_server_errors_and_timeouts_are_unavailable(api: ZaloApi,
                                                          fake: FakeZalo) -> None:
    await api.send_text(USER, "một")
    fake.fail_next.extend([502, "timeout"])
    with pytest.raises(ZaloUnavailable):
        await api.send_text(USER, "hai")
    started = time.perf_counter()
    with pytest.raises(ZaloUnavailable):
        await api.send_text(USER, "hai")
    assert time.perf_counter() - started < 3  # the client's timeout, not the server's hang
    await api.send_text(USER, "hai")
    assert [m.text for m in fake.sent] == ["một", "hai"]


async def test_other_error_codes(api: ZaloApi, fake: FakeZalo) -> None:
    fake.fail_next.extend([-201, -200, -211])
    with pytest.raises(ZaloError) as bad:
        await api.send_text(USER, "x")
    assert bad.value.permanent and not bad.value.outside_window
    with pytest.raises(ZaloError) as unknown:
        await api.send_text(USER, "x")
    assert not (unknown.value.permanent or unknown.value.rate_limited
                or unknown.value.outside_window)
    with pytest.raises(ZaloError) as quota:
        await api.send_text(USER, "x")
    assert quota.value.rate_limited and quota.value.retry_after == 3600.0


async def test_profile_and_quota(api: ZaloApi, fake: FakeZalo) -> None:
    fake.profiles[USER] = {"display_name": "Chị Lan"}
    profile = await api.user_profile(USER)
    assert (profile["user_id"], profile["display_name"]) == (USER, "Chị Lan")
    await api.send_text(USER, "x")
    quota = await api.quota()
    assert quota["remain"] == fake.quota_total - 1


def test_settings_from_the_environment() -> None:
    assert ZaloSettings.from_env({}) is None
    with pytest.raises(ValueError, match="ZALO_APP_SECRET"):
        ZaloSettings.from_env({"ZALO_APP_ID": "1", "ZALO_OA_ID": "2",
                               "ZALO_OA_SECRET_KEY": "k"})
    settings = ZaloSettings.from_env({
        "ZALO_APP_ID": "1", "ZALO_OA_ID": "2", "ZALO_OA_SECRET_KEY": "oa-secret",
        "ZALO_APP_SECRET": "app-secret", "ZALO_REFRESH_TOKEN": "refresh-secret",
        "ZALO_ACCESS_TOKEN": "access-secret", "ZALO_API_BASE_URL": "http://127.0.0.1:9/",
        "ZALO_MAX_BUTTONS": "3"})
    assert settings is not None
    assert settings.api_base_url == "http://127.0.0.1:9"
    assert settings.oauth_base_url == "https://oauth.zaloapp.com"
    assert settings.max_buttons == 3
    assert "secret" not in repr(settings)
