"""The web simulator channel: demo phones in a browser (channel `web`)."""

from __future__ import annotations

from bot.handlers.labels import match_label
from bot.handlers.plugin import Base, Core, Inbound, Outbound
from bot.handlers.simulator.sender import SimulatorSender
from bot.handlers.simulator.server import SimulatorRoutes
from bot.services.simulator_log import CHANNEL, SimulatorLog


class SimulatorPlugin:
    """`serve_page`: the page and its API are served (training only); without it the
    channel still delivers (tests that only read the log)."""

    name = CHANNEL

    def __init__(self, serve_page: bool = True) -> None:
        self.serve_page = serve_page

        self.log: SimulatorLog | None = None

    async def open(self, base: Base) -> Outbound:
        self.log = base.simulator_log
        assert self.log is not None
        return Outbound(sender=SimulatorSender(self.log), labels=match_label)

    async def attach(self, core: Core) -> Inbound:
        assert self.log is not None
        routes = SimulatorRoutes(core, self.log).routes() if self.serve_page else []
        return Inbound(routes=routes)

    async def close(self) -> None:
        return None
