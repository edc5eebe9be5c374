"""Request checks Azure OpenAI makes before running the model, beyond the basic body shape:

- features the api-version lacks are refused (as "Unrecognized request argument" or Azure's own
  sentence for json_schema), so a client cannot rely on a parameter its version ignores;
- every tool call an assistant message asked for must be answered by a tool message before the
  conversation goes on, and a tool message must answer a call that was made;
- a strict schema (response_format json_schema, or a function with "strict": true) must be one
  strict mode accepts: every object closed (additionalProperties false) and every property
  required (optional ones are nullable instead).
Each check returns the 400's (message, param, code), or None when the request passes;
`body_problem` comes first: the request mistakes any version refuses (shape, roles, limits).
"""

from __future__ import annotations

from typing import Any

from sandbox.azure_openai.tokens import content_text

MAX_OUTPUT_TOKENS = 16_384  # the most a completion may ask for

Problem = tuple[str, str | None, str | None]


def _problem(message: str, param: str | None = None, code: str | None = None) -> Problem:
    return (message, param, code)


# The first api-version (dated, previews included) that accepts each request argument.
FEATURES: dict[str, str] = {
    "tools": "2023-12-01-preview",
    "tool_choice": "2023-12-01-preview",
    "response_format": "2023-12-01-preview",
    "seed": "2023-12-01-preview",
    "parallel_tool_calls": "2024-08-01-preview",
    "json_schema": "2024-08-01-preview",
    "stream_options": "2024-09-01-preview",
    "max_completion_tokens": "2024-09-01-preview",
}


def _version_key(version: str) -> tuple[str, int]:
    # A preview comes before the GA version of the same date.
    return version[:10], 0 if version.endswith("-preview") else 1


def version_allows(api_version: str, feature: str) -> bool:
    return _version_key(api_version) >= _version_key(FEATURES[feature])


def api_version_problem(body: dict[str, Any], api_version: str) -> Problem | None:
    for argument in (
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "seed",
        "stream_options",
        "max_completion_tokens",
    ):
        if body.get(argument) is not None and not version_allows(api_version, argument):
            return (f"Unrecognized request argument supplied: {argument}", None, None)
    response_format = body.get("response_format")
    if (
        isinstance(response_format, dict)
        and response_format.get("type") == "json_schema"
        and not version_allows(api_version, "json_schema")
    ):
        return (
            "response_format value as json_schema is enabled only for api versions "
            f"{FEATURES['json_schema']} and later",
            "response_format",
            None,
        )
    return None


def tool_messages_problem(messages: list[dict[str, Any]]) -> Problem | None:
    """Each assistant tool_calls message answered (by id) before anything else follows."""
    waiting: list[str] = []
    waiting_at = 0
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in waiting:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                    None,
                )
            waiting.remove(call_id)
            continue
        if waiting:
            return _unanswered(waiting, waiting_at)
        calls = message.get("tool_calls") or [] if role == "assistant" else []
        waiting = [str(call.get("id")) for call in calls if isinstance(call, dict)]
        waiting_at = index
    if waiting:
        return _unanswered(waiting, waiting_at)
    return None


def _unanswered(ids: list[str], index: int) -> Problem:
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(ids),
        f"messages.[{index}].role",
        None,
    )


def strict_schema_problem(schema: Any, where: str, path: str = "") -> str | None:
    """Why strict mode refuses `schema`, or None."""
    if not isinstance(schema, dict):
        return None
    context = f"context=({path})" if path else "context=()"
    for key in ("anyOf",):
        for i, branch in enumerate(schema.get(key) or []):
            problem = strict_schema_problem(branch, where, f"{path}, {key}, {i}".lstrip(", "))
            if problem:
                return problem
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            problem = strict_schema_problem(sub, where, f"{path}, {key}, {name}".lstrip(", "))
            if problem:
                return problem
    if "oneOf" in schema or "allOf" in schema:
        return f"Invalid schema for {where}: In {context}, 'oneOf'/'allOf' are not permitted."
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties", True) is not False:
            return (
                f"Invalid schema for {where}: In {context}, 'additionalProperties' is required "
                "to be supplied and to be false."
            )
        missing = [name for name in properties if name not in (schema.get("required") or [])]
        if missing:
            return (
                f"Invalid schema for {where}: In {context}, 'required' is required to be "
                "supplied and to be an array including every key in properties. Missing "
                f"'{missing[0]}'."
            )
        for name, sub in properties.items():
            problem = strict_schema_problem(sub, where, f"{path}, properties, {name}".lstrip(", "))
            if problem:
                return problem
    if "items" in schema:
        return strict_schema_problem(schema["items"], where, f"{path}, items".lstrip(", "))
    return None


def strict_problem(body: dict[str, Any]) -> Problem | None:
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        if spec.get("strict"):
            problem = strict_schema_problem(
                spec.get("schema") or {}, f"response_format '{spec.get('name')}'"
            )
            if problem:
                return (problem, "response_format", "invalid_json_schema")
    for i, tool in enumerate(body.get("tools") or []):
        function = (tool or {}).get("function") or {}
        if function.get("strict"):
            problem = strict_schema_problem(
                function.get("parameters") or {}, f"function '{function.get('name')}'"
            )
            if problem:
                return (problem, f"tools[{i}].function.parameters", "invalid_function_parameters")
    return None


def body_problem(body: Any) -> Problem | None:
    """The request mistakes Azure rejects with a 400 before running the model."""
    if not isinstance(body, dict):
        return _problem("The request body must be a JSON object.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _problem("'messages' is a required property", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ):
            return _problem(
                f"Invalid value for 'messages[{i}].role': expected one of system, developer, "
                "user, assistant, tool.",
                param=f"messages[{i}].role",
            )
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return _problem(f"Invalid '{key}': expected an integer of at least 1.", param=key)
        if value > MAX_OUTPUT_TOKENS:
            return _problem(
                f"{key} is too large: {value}. This model supports at most {MAX_OUTPUT_TOKENS} "
                f"completion tokens, whereas you provided {value}.",
                param=key,
                code="invalid_value",
            )
    if "max_tokens" in body and "max_completion_tokens" in body:
        return _problem(
            "max_tokens and max_completion_tokens cannot both be set; use max_completion_tokens.",
            param="max_tokens",
        )
    tools = body.get("tools") or []
    names = {(t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)}
    choice = body.get("tool_choice")
    if choice is not None:
        if isinstance(choice, str) and choice not in ("none", "auto", "required"):
            return _problem(f"Invalid value for 'tool_choice': {choice!r}.", param="tool_choice")
        if choice in ("auto", "required") and not tools:
            return _problem(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified.",
                param="tool_choice",
            )
        if isinstance(choice, dict):
            wanted = (choice.get("function") or {}).get("name")
            if wanted not in names:
                return _problem(
                    f"Invalid value for 'tool_choice': no function named '{wanted}' was "
                    "specified in the 'tools' parameter.",
                    param="tool_choice",
                )
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            return _problem(
                "Invalid value for 'response_format.type': expected text, json_object or "
                "json_schema.",
                param="response_format",
            )
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            if not isinstance(spec, dict) or not spec.get("name"):
                return _problem(
                    "Missing required parameter: 'response_format.json_schema.name'.",
                    param="response_format.json_schema.name",
                    code="missing_required_parameter",
                )
        if kind == "json_object":
            text = " ".join(content_text(m.get("content")) for m in messages).lower()
            if "json" not in text:
                return _problem(
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.",
                    param="messages",
                )
    return None
