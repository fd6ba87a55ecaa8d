"""The command menus (workers layer): the commands a channel lists beside the text box
(Telegram's setMyCommands), everyone's in the default scope (in each language the bot
speaks) and each staff member's in a scope of their own chat, in their language, with
what their role may use (bot/flows/routes.command_menu).

It looks at who is staff at its first run (startup), when woken (an invitation made
someone staff) and every `idle` seconds (a role or a language changed), and calls the
channel only for a menu that is not yet set as wanted. What was set is kept in memory: a
new process sets every menu once (the calls are idempotent), then only what changes. No
transaction is open while it calls out, so a slow channel holds nothing up; a call that
fails is tried again after a growing pause (the channel's menus wait meanwhile, so an
outage costs one call per try), a menu the channel refuses (a chat it does not know)
is not asked for again until it changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot import i18n
from bot.domain.delivery import DeliveryError
from bot.domain.roles import STAFF
from bot.flows.routes import EVERYONE_COMMANDS, command_menu
from storage import people
from storage.db import Database

log = logging.getLogger(__name__)
NAME = "command_menus"
LONGEST_PAUSE = 300


class CommandMenuSetter(Protocol):
    """A channel's way of setting the commands it lists."""

    name: str

    async def set_commands(self, chat: str | None, language_code: str | None,
                           language: str, names: Sequence[str]) -> None:
        """List `names` (described in `language`) for `chat` (None: everyone) and the
        clients in `language_code` (None: any). Raise DeliveryError when it did not go."""
        ...

    async def clear_commands(self, chat: str) -> None:
        """`chat` lists everyone's commands again."""
        ...


@dataclass(frozen=True)
class Menu:
    language: str
    names: tuple[str, ...]


# (chat or None for everyone, the clients' language code or None for any)
Scope = tuple[str | None, str | None]


@dataclass
class _Pause:
    attempts: int
    until: datetime


class CommandMenus:
    name = NAME
    idle = 60.0

    def __init__(self, database: Database, commune_ids: Sequence[int],
                 setters: Mapping[str, CommandMenuSetter]) -> None:
        self.database = database
        # The staff of every commune served.
        self.commune_ids = list(commune_ids)
        self.setters = dict(setters)
        # Per channel: the menus as set (or refused for good), by scope.
        self._set: dict[str, dict[Scope, Menu]] = {name: {} for name in self.setters}
        self._paused: dict[str, _Pause] = {}

    async def wanted(self) -> dict[str, dict[Scope, Menu]]:
        """Every channel's menus as they should be now."""
        async with self.database.read() as tx:
            staff = [p for commune_id in self.commune_ids
                     for p in await people.people_with_roles(tx, commune_id, tuple(STAFF))]
            identities = await people.identities_for(tx, [p.id for p in staff])
        found: dict[str, dict[Scope, Menu]] = {}
        for channel in self.setters:
            menus: dict[Scope, Menu] = {(None, None): Menu(i18n.DEFAULT_LOCALE,
                                                           EVERYONE_COMMANDS)}
            for locale in i18n.available_locales():
                if locale != i18n.DEFAULT_LOCALE:
                    menus[(None, locale)] = Menu(locale, EVERYONE_COMMANDS)
            for person in staff:
                for ident in identities.get(person.id, ()):
                    if ident.channel == channel and ident.unreachable_at is None:
                        menus[(ident.external_id, None)] = Menu(person.language,
                                                                command_menu(person.role))
            found[channel] = menus
        return found

    async def run_due(self, now: datetime) -> int:
        """Set what is not set as wanted; how many calls went through."""
        if not self.setters:
            return 0
        done = 0
        for channel, menus in (await self.wanted()).items():
            pause = self._paused.get(channel)
            if pause is not None and now < pause.until:
                continue
            done += await self._bring(channel, menus, now)
        return done

    async def _bring(self, channel: str, menus: Mapping[Scope, Menu], now: datetime) -> int:
        setter, already = self.setters[channel], self._set[channel]
        done = 0
        try:
            for scope, menu in menus.items():
                if already.get(scope) == menu:
                    continue
                chat, language_code = scope
                try:
                    await setter.set_commands(chat, language_code, menu.language, menu.names)
                except DeliveryError as exc:
                    if not exc.permanent:
                        raise
                    log.warning("%s command menu refused (chat scope: %s): %s", channel,
                                chat is not None, exc.reason[:80])
                else:
                    done += 1
                already[scope] = menu
            for scope in [s for s in already if s not in menus]:
                chat = scope[0]
                if chat is not None:
                    # No longer staff: their chat shows everyone's commands again.
                    try:
                        await setter.clear_commands(chat)
                    except DeliveryError as exc:
                        if not exc.permanent:
                            raise
                    done += 1
                del already[scope]
        except Exception as exc:
            # Any failure (a sender's bug too) waits and is tried again, never spins.
            reason = exc.reason if isinstance(exc, DeliveryError) else type(exc).__name__
            attempts = self._paused[channel].attempts + 1 if channel in self._paused else 1
            wait = (timedelta(seconds=exc.retry_after)
                    if isinstance(exc, DeliveryError) and exc.retry_after is not None
                    else timedelta(seconds=min(2 ** attempts, LONGEST_PAUSE)))
            self._paused[channel] = _Pause(attempts, now + wait)
            log.warning("%s command menus: %s; again in %s s", channel, reason[:80],
                        int(wait.total_seconds()))
            return done
        self._paused.pop(channel, None)
        if done:
            log.info("%s command menus: %s set", channel, done)
        return done

    async def next_due(self, now: datetime) -> datetime | None:
        """A try again after a failure; otherwise the idle look (roles and languages)."""
        return min((p.until for p in self._paused.values()), default=None)
