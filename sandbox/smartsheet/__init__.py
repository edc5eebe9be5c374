"""The Smartsheet API 2.0 stand-in."""

from __future__ import annotations

from sandbox.smartsheet.service import SmartsheetService

__all__ = ["SmartsheetService"]
