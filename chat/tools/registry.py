"""The one tool registry: what the assistant (and the MCP server) may do with a person's sheets.

A tool is a name, a description, a JSON schema for its arguments, whether it writes, the grant
it needs on the sheet it names, and a handler. Nothing here knows about chat or HTTP: callers
pass a ToolContext (who is asking) and get plain data back.

Reads return a JSON-able dict. Writes never write from the handler: it returns a Proposal (what
would change, with the values it starts from), and `tool_apply` carries a proposal out later
through the sheets/jobs services, once the person has agreed. Every failure a caller should show
the model or the person is a ToolError whose message says what to do instead.

Schemas are written for strict mode (every property required, optional ones nullable, no extra
properties), which Azure OpenAI enforces on the model's arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from jsonschema import Draft202012Validator

from sheets.models import Sheet
from sheets.selectors import sheets_visible_to


class ToolError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ToolContext:
    user: Any
    source: str = "chat"  # journal source of writes: "chat" or "mcp"


@dataclass
class Proposal:
    """A write not made yet: `preview` is what the person is shown and what apply checks."""

    summary: str
    preview: dict[str, Any]
    sheet_id: int | None = None
    # Why the person cannot apply it (a viewer), or "" when they can.
    blocked: str = ""


@dataclass
class Outcome:
    status: str  # "applied" | "partial" | "conflict" | "failed"
    text: str  # a sentence for the person and the model
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    handler: Callable[..., Any]
    writes: bool = False
    # The grant needed on the sheet named by `sheet_id` to run (reads) or apply (writes).
    needs: str = "view"
    apply: Callable[..., Outcome] | None = None

    def spec(self) -> dict[str, Any]:
        """As Azure OpenAI's `tools` parameter takes it."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
                "strict": True,
            },
        }


TOOLS: dict[str, Tool] = {}


def tool(
    *,
    name: str,
    description: str,
    parameters: dict[str, Any],
    writes: bool = False,
    needs: str = "view",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a handler `handler(context, sheet, **arguments)` (sheet is None when the tool
    takes no sheet_id). Schemas are checked here, so a malformed one fails at import."""
    Draft202012Validator.check_schema(parameters)

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        TOOLS[name] = Tool(name, description, parameters, handler, writes, needs)
        return handler

    return register


def applier(name: str) -> Callable[[Callable[..., Outcome]], Callable[..., Outcome]]:
    """Register how a write tool's proposal is carried out: `apply(context, sheet, preview)`."""

    def register(apply: Callable[..., Outcome]) -> Callable[..., Outcome]:
        TOOLS[name] = replace(TOOLS[name], apply=apply)
        return apply

    return register


def tool_specs() -> list[dict[str, Any]]:
    """Every tool as the model is offered it: reads first, then writes."""
    return [t.spec() for t in sorted(TOOLS.values(), key=lambda t: t.writes)]


def tool_get(name: str) -> Tool:
    try:
        return TOOLS[name]
    except KeyError:
        raise ToolError(
            f"There is no tool named {name!r}; use one of {', '.join(TOOLS)}."
        ) from None


def sheet_for(*, user, sheet_id: Any) -> Sheet:
    """The sheet if `user` may read it. Unknown and unshared sheets read alike (no leak)."""
    sheet = None
    if isinstance(sheet_id, int) and not isinstance(sheet_id, bool):
        sheet = sheets_visible_to(user).filter(pk=sheet_id).first()
    if sheet is None:
        raise ToolError(
            f"No sheet with id {sheet_id} is shared with you; call list_sheets for the ids."
        )
    return sheet


def sheet_role(*, user, sheet: Sheet) -> str | None:
    from sheets.selectors import sheet_role_for

    return sheet_role_for(user=user, sheet=sheet)


def _arguments_check(tool_: Tool, arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, dict):
        raise ToolError(f"The arguments of {tool_.name} must be a JSON object.")
    errors = sorted(
        Draft202012Validator(tool_.parameters).iter_errors(arguments), key=lambda e: e.path
    )
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "arguments"
        raise ToolError(f"Invalid {where} for {tool_.name}: {first.message}.")
    return arguments


def tool_run(*, name: str, arguments: Any, context: ToolContext) -> dict[str, Any] | Proposal:
    """Run a read (its result) or a write's handler (a Proposal); raises ToolError."""
    tool_ = tool_get(name)
    arguments = _arguments_check(tool_, arguments)
    sheet = None
    if "sheet_id" in tool_.parameters.get("properties", {}):
        sheet = sheet_for(user=context.user, sheet_id=arguments.get("sheet_id"))
    args = {k: v for k, v in arguments.items() if k != "sheet_id"}
    result = tool_.handler(context, sheet, **args)
    if tool_.writes and isinstance(result, Proposal):
        result.sheet_id = sheet.pk if sheet is not None else result.sheet_id
        viewer = (
            sheet is not None
            and tool_.needs == "edit"
            and sheet_role(user=context.user, sheet=sheet) != "edit"
        )
        if viewer and not result.blocked:
            result.blocked = (
                f"You can view “{sheet.name}” but not change it; ask its owner for edit access."
            )
    return result


def tool_apply(*, name: str, preview: dict[str, Any], context: ToolContext) -> Outcome:
    """Carry out a proposal the person agreed to, through the same services as the grid."""
    tool_ = tool_get(name)
    if not tool_.writes or tool_.apply is None:
        raise ToolError(f"{name} changes nothing, so there is nothing to apply.")
    sheet = None
    if preview.get("sheet_id") is not None:
        sheet = sheet_for(user=context.user, sheet_id=preview["sheet_id"])
        if tool_.needs == "edit" and sheet_role(user=context.user, sheet=sheet) != "edit":
            raise ToolError(
                f"You can view “{sheet.name}” but not change it; ask its owner for edit access."
            )
    return tool_.apply(context, sheet, preview)
