"""A QuickFIX Application that does nothing on any callback, for engines a test builds."""

from __future__ import annotations

import quickfix as fix


class QuietApplication(fix.Application):  # type: ignore[misc]
    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogout(self, sessionID: fix.SessionID) -> None:
        pass

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass
