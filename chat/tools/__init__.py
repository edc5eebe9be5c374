"""The one tool registry (registry.py) and its tools: reads.py, queries.py, writes.py,
jobs.py.

Importing this package registers every tool; chat and the MCP server call `tool_specs`,
`tool_run` and `tool_apply` and nothing else.
"""

from __future__ import annotations

from chat.tools import jobs, queries, reads, writes  # noqa: F401 (registers the tools)
from chat.tools.registry import (
    TOOLS,
    Outcome,
    Proposal,
    ToolContext,
    ToolError,
    tool_apply,
    tool_get,
    tool_run,
    tool_specs,
)

__all__ = [
    "TOOLS",
    "Outcome",
    "Proposal",
    "ToolContext",
    "ToolError",
    "tool_apply",
    "tool_get",
    "tool_run",
    "tool_specs",
]
