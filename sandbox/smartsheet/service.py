"""The Smartsheet API 2.0 stand-in: auth, per-token rate limit, injected faults, and the routes.

Handlers never await in the middle of a change, so the single event loop makes each request
atomic without locks. A write still marks its sheet busy for its whole duration (latency
included), so a second write to the same sheet with the same token meanwhile gets Smartsheet's
500/4004 "currently being updated by another request" (config `concurrent_write_error`).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.faults import CutMidway, HeldThenDropped
from sandbox.smartsheet import seed
from sandbox.smartsheet.columns import column_new, column_titles_check, column_update
from sandbox.smartsheet.faults import CODES, sheet_of
from sandbox.smartsheet.formulas import formulas_recompute
from sandbox.smartsheet.model import (
    ApiError,
    Column,
    IdMaker,
    Sheet,
    User,
    iso,
    missing_attribute,
    not_allowed,
    not_found,
    now,
    unparseable,
)
from sandbox.smartsheet.rows import Change, add_rows, delete_rows, update_rows
from sandbox.smartsheet.webhooks import WebhookDispatcher
from sandbox.smartsheet.wire import (
    RowView,
    column_wire,
    paged,
    param_bool,
    param_ids,
    param_int,
    param_list,
    param_time,
    rows_wire,
    sheet_summary,
)
from sandbox.state import SandboxState, SlidingWindow

SERVICE = "smartsheet"
FAULTS = {
    4001: (
        503,
        "Smartsheet.com is currently offline for system maintenance. Please check back again "
        "shortly.",
    ),
    4002: (500, "Server timeout exceeded. Request has failed."),
    4003: (429, "Rate limit exceeded."),
    4004: (
        500,
        "An unexpected error has occurred. Please retry your request. If you encounter this "
        "error repeatedly, please contact api@smartsheet.com for assistance.",
    ),
}


# Sharing levels, weakest first; a write needs at least the level its route names.
LEVELS = ("VIEWER", "EDITOR", "EDITOR_SHARE", "ADMIN", "OWNER")
BUSY_ROUTE = "/sheets/{id:int}"  # routes under this path write to the sheet they name


def busy(sheet_id: int) -> ApiError:
    return ApiError(
        500,
        4004,
        f"Request failed because sheetId {sheet_id} is currently being updated by another request "
        "that uses the same access token. Please retry your request once the previous request "
        "has completed.",
    )


def ref_id() -> str:
    return secrets.token_hex(6)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def error_response(error: ApiError) -> Response:
    body: dict[str, Any] = {"errorCode": error.code, "message": error.message, "refId": ref_id()}
    if error.detail is not None:
        body["detail"] = error.detail
    return json_response(body, error.status)


def success(result: Any = None, *, version: int | None = None, failed: list | None = None) -> Any:
    body: dict[str, Any] = {"message": "SUCCESS", "resultCode": 0}
    if failed:
        body["message"], body["resultCode"] = "PARTIAL_SUCCESS", 3
        body["failedItems"] = [
            {
                **{k: v for k, v in item.items() if k != "error"},
                "error": {
                    "errorCode": item["error"].code,
                    "message": item["error"].message,
                    "refId": ref_id(),
                },
            }
            for item in failed
        ]
    if result is not None:
        body["result"] = result
    if version is not None:
        body["version"] = version
    return body


@dataclass
class Call:
    """One authenticated request as a handler sees it."""

    request: Request
    user: User
    token: str

    @property
    def query(self) -> Any:
        return self.request.query_params

    def path_int(self, name: str) -> int:
        return int(self.request.path_params[name])

    async def body(self) -> Any:
        raw = await self.request.body()
        if not raw:
            raise unparseable("the request body is empty.")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise unparseable(str(exc)) from None

    def change(self, sheet: Sheet | None = None) -> Change:
        return Change(
            user=self.user,
            moment=now(),
            change_agent=self.request.headers.get("Smartsheet-Change-Agent"),
            admin=sheet is None or sheet.is_admin(self.user),
            override_validation=param_bool(self.query, "overrideValidation"),
        )


Handler = Callable[[Call], Awaitable[Any]]


class SmartsheetService:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.pristine, ids = seed.build(state.seed)
        self._seed_ids = frozenset(ids.taken)
        self.sheets: dict[int, Sheet] = {}
        self.webhooks = WebhookDispatcher(state)
        self.route_labels: set[str] = set()  # "PUT /sheets/{id}/rows", for scripted faults
        self.reset()
        state.on_reset(self.reset)
        # Render the big sheets once now: live copies share this cache until they change, so even
        # the first fetch after a reset is served without serializing 400,000 cells.
        for sheet in self.sheets.values():
            if len(sheet.rows) > 1000:
                self.render_sheet(sheet, sheet.owner, QueryParams(""))

    def reset(self) -> None:
        """Back to the seed; sheets nobody changed are kept as they are (the fast path)."""
        live = self.sheets
        self.sheets = {}
        recopied = 0
        for sheet in self.pristine:
            current = live.get(sheet.id)
            if current and not current.dirty:
                self.sheets[sheet.id] = current
            else:
                self.sheets[sheet.id] = sheet.clone()
                recopied += 1
        # Stats were just cleared: this says what the reset cost (tests check it, not the clock).
        self.state.stats.add(SERVICE, "sheets_recopied", recopied)
        self.new_id = IdMaker(f"{self.state.seed}:live", taken=set(self._seed_ids))
        self.faults = random.Random(f"{self.state.seed}:faults")
        self.windows: dict[str, Any] = {}
        self.writing: set[tuple[int, str]] = set()  # (sheet id, token) of writes in flight
        self.webhooks.reset()

    async def close(self) -> None:
        await self.webhooks.close()

    @property
    def config(self) -> dict[str, Any]:
        return self.state.config[SERVICE]

    # --- the frame every request goes through --------------------------------------------------

    def _route(
        self, template: str, handlers: dict[str, Handler], weight: int = 1, public: bool = False
    ) -> Route:
        label = template.replace(":int", "")  # stats say "GET /sheets/{id}"
        self.route_labels.update(f"{method} {label}" for method in handlers)

        async def endpoint(request: Request) -> Response:
            method = request.method
            route = f"{method} {label}"
            handler = handlers.get(method)
            auth = request.headers.get("Authorization", "")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            user = seed.USERS_BY_TOKEN.get(token)
            if user is None and public and handler is not None:
                # /serverinfo answers without a token, as Smartsheet's does.
                self.state.stats.record(SERVICE, route)
                return json_response(await handler(None))
            if user is None:
                self.state.stats.record(SERVICE, route)
                if not token:
                    return error_response(ApiError(401, 1001, "An Access Token is required."))
                return error_response(ApiError(401, 1002, "Your Access Token is invalid."))
            cost = weight if method == "GET" else 1
            config = self.config
            window = self.windows.get(token)
            if window is None:
                window = self.windows[token] = SlidingWindow()
            if window.current() + cost > config["rpm"]:
                self.state.stats.record(SERVICE, route, token=token, rate_limited=True, weight=cost)
                return error_response(ApiError(429, 4003, "Rate limit exceeded."))
            window.add(cost)
            busy_key = None
            if method != "GET" and template.startswith(BUSY_ROUTE):
                busy_key = (int(request.path_params["id"]), token)
                if busy_key in self.writing and config["concurrent_write_error"]:
                    self.state.stats.record(SERVICE, route, token=token, weight=cost)
                    self.state.stats.add(SERVICE, "concurrent_write_errors")
                    return error_response(busy(busy_key[0]))
                self.writing.add(busy_key)
                self.state.stats.add(SERVICE, "writes_started")
            try:
                return await self._answer(request, route, handler, user, token, cost, config)
            finally:
                if busy_key is not None:
                    self.writing.discard(busy_key)

        # Every method reaches the endpoint, so an unsupported one gets Smartsheet's JSON 405.
        return Route(template, endpoint, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])

    async def _answer(
        self,
        request: Request,
        route: str,
        handler: Handler | None,
        user: User,
        token: str,
        cost: int,
        config: dict[str, Any],
    ) -> Response:
        """After auth and rate limit: latency, scripted or random faults, then the handler."""
        # Scripted faults are drawn before the first await, so in the order requests arrived.
        scripted = self.state.faults
        fault = None
        if scripted.pending:
            fault = scripted.take(SERVICE, route, sheet=sheet_of(route, request))
        if config["latency_ms"]:
            await asyncio.sleep(config["latency_ms"] / 1000)
        if fault is not None and fault.kind != "stream_cut":
            self.state.stats.record(SERVICE, route, token=token, injected_failure=True, weight=cost)
            if fault.kind == "timeout":
                return HeldThenDropped(fault.seconds)
            status, message = FAULTS[CODES[fault.kind]]
            return error_response(ApiError(status, CODES[fault.kind], message))
        # Draw only when faults are on, so turning them on always starts the same sequence.
        if config["fail_rate"] and self.faults.random() < config["fail_rate"]:
            code = self.faults.choice(config["fail_codes"])
            self.state.stats.record(SERVICE, route, token=token, injected_failure=True, weight=cost)
            status, message = FAULTS[code]
            return error_response(ApiError(status, code, message))
        self.state.stats.record(SERVICE, route, token=token, weight=cost)
        response = await self._handle(request, handler, user, token)
        return response if fault is None else CutMidway(response, fault.after_chunks)

    async def _handle(
        self, request: Request, handler: Handler | None, user: User, token: str
    ) -> Response:
        if handler is None:
            method = request.method
            return error_response(
                ApiError(405, 1122, f"Requested URL does not support this method: {method}.")
            )
        try:
            result = await handler(Call(request, user, token))
        except ApiError as error:
            return error_response(error)
        if isinstance(result, Response):
            return result
        return json_response(result)

    def routes(self) -> list[BaseRoute]:
        r = self._route
        return [
            r("/users/me", {"GET": self.users_me}),
            r("/serverinfo", {"GET": self.server_info}, public=True),
            r("/sheets", {"GET": self.list_sheets, "POST": self.create_sheet}),
            r(
                "/sheets/{id:int}",
                {"GET": self.get_sheet, "PUT": self.update_sheet, "DELETE": self.delete_sheet},
            ),
            r("/sheets/{id:int}/version", {"GET": self.sheet_version}),
            r(
                "/sheets/{id:int}/rows",
                {"POST": self.add_rows, "PUT": self.update_rows, "DELETE": self.delete_rows},
            ),
            r("/sheets/{id:int}/rows/{rowId:int}", {"GET": self.get_row}),
            r(
                "/sheets/{id:int}/rows/{rowId:int}/columns/{columnId:int}/history",
                {"GET": self.cell_history},
                weight=10,
            ),
            r("/sheets/{id:int}/columns", {"GET": self.list_columns, "POST": self.add_columns}),
            r(
                "/sheets/{id:int}/columns/{columnId:int}",
                {"GET": self.get_column, "PUT": self.update_column, "DELETE": self.delete_column},
            ),
            r("/webhooks", {"GET": self.list_webhooks, "POST": self.create_webhook}),
            r(
                "/webhooks/{id:int}",
                {
                    "GET": self.get_webhook,
                    "PUT": self.update_webhook,
                    "DELETE": self.delete_webhook,
                },
            ),
            # The SDK calls .../resetsharedsecret in lower case; the docs spell resetSharedSecret.
            r("/webhooks/{id:int}/{action}", {"POST": self.webhook_action}),
            r("/{path:path}", {}),
        ]

    # --- helpers --------------------------------------------------------------------------------

    def sheet(self, call: Call, need: str = "VIEWER") -> Sheet:
        """The sheet the path names, if the caller's sharing level allows `need` (else 1004)."""
        sheet = self.sheets.get(call.path_int("id"))
        if sheet is None:
            raise not_found()
        if LEVELS.index(sheet.access_level(call.user)) < LEVELS.index(need):
            raise ApiError(403, 1004, "You are not authorized to perform this action.")
        return sheet

    def finish(self, sheet: Sheet, change: Change) -> None:
        if change.events:
            self.webhooks.emit(sheet.id, change.events)

    # --- users and server -----------------------------------------------------------------------

    async def users_me(self, call: Call) -> Any:
        user = call.user
        return {
            "id": user.id,
            "email": user.email,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "locale": "en_US",
            "timeZone": "UTC",
            "account": {"id": 1234567890123456, "name": "Sandbox Account"},
            "admin": user is seed.OWNER,
            "licensedSheetCreator": True,
            "groupAdmin": False,
            "resourceViewer": False,
            "jiraAdmin": False,
            "salesforceAdmin": False,
            "salesforceUser": False,
        }

    async def server_info(self, call: Call | None) -> Any:
        return {
            "supportedLocales": ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "ja_JP"],
            "formats": {
                "defaults": ",,,,,,,,,,,,,,,,",
                "bold": ["none", "on"],
                "italic": ["none", "on"],
                "underline": ["none", "on"],
                "strikethrough": ["none", "on"],
                "horizontalAlign": ["default", "left", "center", "right"],
                "verticalAlign": ["default", "top", "middle", "bottom"],
                "fontFamily": [{"name": "Arial", "traits": ["sans-serif"]}],
                "fontSize": ["8", "9", "10", "12", "14", "16", "18", "20", "24", "28", "32"],
                "currency": [{"code": "USD", "symbol": "$"}, {"code": "EUR", "symbol": "€"}],
                "dateFormat": ["LOCALE_BASED", "MMMM_D_YYYY", "YYYY_MM_DD_HYPHEN"],
                "thousandsSeparator": ["none", "on"],
                "numberFormat": ["none", "NUMBER", "CURRENCY", "PERCENT"],
                "textWrap": ["none", "on"],
            },
        }

    # --- sheets -------------------------------------------------------------------------------

    async def list_sheets(self, call: Call) -> Any:
        with_version = "sheetVersion" in param_list(call.query, "include")
        sheets = sorted(self.sheets.values(), key=lambda s: (s.name.lower(), s.id))
        return paged([sheet_summary(s, call.user, with_version) for s in sheets], call.query)

    async def create_sheet(self, call: Call) -> Any:
        body = await call.body()
        if not isinstance(body, dict):
            raise unparseable("the sheet must be a JSON object.")
        _check_sheet_attributes(body, {"name", "columns"})
        if not body.get("name"):
            raise missing_attribute("sheet.name")
        if not body.get("columns"):
            raise ApiError(400, 1054, "The new sheet requires either a fromId or columns.")
        columns = [
            column_new(new_id=self.new_id, body=c, allow_primary=True)
            for c in _objects(body["columns"])
        ]
        if sum(c.primary for c in columns) != 1:
            raise ApiError(400, 1055, "One and only one column must be primary.")
        column_titles_check(columns)
        moment = now()
        sheet = Sheet(
            id=self.new_id(),
            name=str(body["name"]),
            owner=call.user,
            columns=columns,
            created_at=moment,
        )
        sheet.dirty = True
        self.sheets[sheet.id] = sheet
        result = sheet_summary(sheet, call.user)
        result["columns"] = [c.wire(i) for i, c in enumerate(sheet.columns)]
        return success(result)

    async def get_sheet(self, call: Call) -> Any:
        sheet = self.sheet(call)
        query = call.query
        after = param_int(query, "ifVersionAfter")
        if after is not None and sheet.version <= after:
            return {"version": sheet.version}
        return Response(self.render_sheet(sheet, call.user, query), media_type="application/json")

    def render_sheet(self, sheet: Sheet, user: User, query: QueryParams) -> bytes:
        """The GET /sheets/{id} body; cached per version, since big sheets cost to serialize."""
        level = param_level(query)
        key = (sheet.version, str(query) + str(user.id))
        cached = sheet.response_cache.get(key)
        if cached is not None:
            return cached
        include = param_list(query, "include")
        exclude = param_list(query, "exclude")
        column_ids = param_ids(query, "columnIds")
        columns = None
        if column_ids:
            wanted = set(column_ids)
            columns = [c for c in sheet.columns if c.id in wanted]
        rows = sheet.rows
        row_ids = param_ids(query, "rowIds")
        if row_ids:
            rows = [sheet.rows_by_id[i] for i in row_ids if i in sheet.rows_by_id]
            rows.sort(key=lambda row: sheet.positions[row.id])
        row_numbers = param_ids(query, "rowNumbers")
        if row_numbers:
            wanted_numbers = set(row_numbers)
            rows = [row for row in rows if sheet.positions[row.id] + 1 in wanted_numbers]
        since = param_time(query, "rowsModifiedSince")
        if since is not None:
            rows = [row for row in rows if row.modified_at >= since]
        if "page" in query or "pageSize" in query:
            rows = paged(rows, query)["data"]
        admin = sheet.is_admin(user)
        view = RowView(sheet, columns, include, exclude, level, admin)
        data = sheet_summary(sheet, user)
        data["version"] = sheet.version
        data["totalRowCount"] = len(sheet.rows)
        data.update(
            {
                "ganttEnabled": False,
                "dependenciesEnabled": False,
                "resourceManagementEnabled": False,
                "cellImageUploadEnabled": True,
                "isMultiPicklistEnabled": True,
            }
        )
        if "ownerInfo" in include:
            data["owner"], data["ownerId"] = sheet.owner.email, sheet.owner.id
        shown = columns if columns is not None else sheet.columns
        data["columns"] = [column_wire(c, sheet.column_index(c.id), level, admin) for c in shown]
        data["rows"] = rows_wire(sheet, rows, view)
        body = orjson.dumps(data)
        sheet.response_cache[key] = body
        return body

    async def update_sheet(self, call: Call) -> Any:
        sheet = self.sheet(call, "ADMIN")
        body = await call.body()
        if not isinstance(body, dict) or not body.get("name"):
            raise missing_attribute("sheet.name")
        _check_sheet_attributes(body, {"name"})
        change = call.change(sheet)
        sheet.name = str(body["name"])
        sheet.touch(change.moment)
        change.event("sheet", "updated", id=sheet.id)
        self.finish(sheet, change)
        return success(sheet_summary(sheet, call.user, with_version=True))

    async def delete_sheet(self, call: Call) -> Any:
        sheet = self.sheet(call, "OWNER")
        sheet.dirty = True
        del self.sheets[sheet.id]
        self.webhooks.scope_gone(sheet.id)
        return success()

    async def sheet_version(self, call: Call) -> Any:
        return {"version": self.sheet(call).version}

    # --- rows ---------------------------------------------------------------------------------

    async def add_rows(self, call: Call) -> Any:
        sheet = self.sheet(call, "EDITOR")
        body = await call.body()
        change = call.change(sheet)
        created, failed = add_rows(
            sheet,
            body,
            partial=param_bool(call.query, "allowPartialSuccess"),
            change=change,
            new_id=self.new_id,
            directory=seed.DIRECTORY,
        )
        self.finish(sheet, change)
        view = RowView(sheet, admin=change.admin)
        return success(rows_wire(sheet, created, view), version=sheet.version, failed=failed)

    async def update_rows(self, call: Call) -> Any:
        sheet = self.sheet(call, "EDITOR")
        body = await call.body()
        change = call.change(sheet)
        updated, failed = update_rows(
            sheet,
            body,
            partial=param_bool(call.query, "allowPartialSuccess"),
            change=change,
            directory=seed.DIRECTORY,
        )
        self.finish(sheet, change)
        view = RowView(sheet, admin=change.admin)
        return success(rows_wire(sheet, updated, view), version=sheet.version, failed=failed)

    async def delete_rows(self, call: Call) -> Any:
        sheet = self.sheet(call, "EDITOR")
        ids = param_ids(call.query, "ids")
        if not ids:
            raise ApiError(400, 1009, "A required parameter is missing from your request: ids.")
        change = call.change(sheet)
        deleted = delete_rows(
            sheet, ids, ignore_missing=param_bool(call.query, "ignoreRowsNotFound"), change=change
        )
        self.finish(sheet, change)
        return success(deleted, version=sheet.version)

    async def get_row(self, call: Call) -> Any:
        sheet = self.sheet(call)
        row = sheet.rows_by_id.get(call.path_int("rowId"))
        if row is None:
            raise not_found()
        include = param_list(call.query, "include")
        level = param_level(call.query)
        admin = sheet.is_admin(call.user)
        view = RowView(sheet, None, include, param_list(call.query, "exclude"), level, admin)
        data = rows_wire(sheet, [row], view)[0]
        if "columns" in include:
            data["columns"] = [column_wire(c, i, level, admin) for i, c in enumerate(sheet.columns)]
        return data

    async def cell_history(self, call: Call) -> Any:
        sheet = self.sheet(call)
        row = sheet.rows_by_id.get(call.path_int("rowId"))
        column = sheet.column(call.path_int("columnId"))
        if row is None or column is None:
            raise not_found()
        with_type = "columnType" in param_list(call.query, "include")
        items = []
        for entry in sheet.cell_history(row, column):
            item: dict[str, Any] = {"columnId": column.id}
            if entry.value is not None:
                item["value"] = entry.value
                if entry.display_value is not None:
                    item["displayValue"] = entry.display_value
            if with_type:
                item["columnType"] = column.type
            item["modifiedAt"] = iso(entry.modified_at)
            item["modifiedBy"] = entry.modified_by.contact()
            items.append(item)
        return paged(items, call.query)

    # --- columns ------------------------------------------------------------------------------

    def _column(self, sheet: Sheet, call: Call) -> Column:
        column = sheet.column(call.path_int("columnId"))
        if column is None:
            raise not_found()
        return column

    async def list_columns(self, call: Call) -> Any:
        sheet = self.sheet(call)
        level = param_level(call.query)
        admin = sheet.is_admin(call.user)
        columns = [column_wire(c, i, level, admin) for i, c in enumerate(sheet.columns)]
        return paged(columns, call.query)

    async def add_columns(self, call: Call) -> Any:
        sheet = self.sheet(call, "ADMIN")
        body = await call.body()
        requested = _objects(body)
        added = []
        for item in requested:
            index = item.get("index")
            if index is None:
                raise missing_attribute("column.index")
            if not isinstance(index, int) or not 0 <= index <= len(sheet.columns) + len(added):
                raise unparseable(f"column.index must be between 0 and {len(sheet.columns)}.")
            added.append((index, column_new(new_id=self.new_id, body=item, allow_primary=False)))
        column_titles_check([*sheet.columns, *(column for _, column in added)])
        change = call.change(sheet)
        for index, column in added:
            sheet.columns.insert(index, column)
            change.event("column", "created", id=column.id)
        sheet.touch(change.moment)
        change.event("sheet", "updated", id=sheet.id)
        self.finish(sheet, change)
        result = [column.wire(sheet.column_index(column.id)) for _, column in added]
        return success(result, version=sheet.version)

    async def get_column(self, call: Call) -> Any:
        sheet = self.sheet(call)
        column = self._column(sheet, call)
        index = sheet.column_index(column.id)
        return column_wire(column, index, param_level(call.query), sheet.is_admin(call.user))

    async def update_column(self, call: Call) -> Any:
        sheet = self.sheet(call, "ADMIN")
        column = self._column(sheet, call)
        body = await call.body()
        if not isinstance(body, dict):
            raise unparseable("the column must be a JSON object.")
        column_update(sheet, column, body)
        change = call.change(sheet)
        sheet.touch(change.moment)
        change.event("column", "updated", id=column.id)
        change.event("sheet", "updated", id=sheet.id)
        self.finish(sheet, change)
        return success(column.wire(sheet.column_index(column.id)), version=sheet.version)

    async def delete_column(self, call: Call) -> Any:
        sheet = self.sheet(call, "ADMIN")
        column = self._column(sheet, call)
        if column.primary:
            raise ApiError(400, 1065, "The column specified cannot be deleted.")
        # Rows keep the orphaned cell values; nothing reads a column the sheet no longer has.
        sheet.columns.remove(column)
        formulas_recompute(sheet=sheet)  # formulas that read the column now show #REF
        change = call.change(sheet)
        sheet.touch(change.moment)
        change.event("column", "deleted", id=column.id)
        change.event("sheet", "updated", id=sheet.id)
        self.finish(sheet, change)
        return success(version=sheet.version)

    # --- webhooks -----------------------------------------------------------------------------

    async def list_webhooks(self, call: Call) -> Any:
        return paged([w.wire() for w in self.webhooks.owned_by(call.user)], call.query)

    async def create_webhook(self, call: Call) -> Any:
        webhook = self.webhooks.create(
            await call.body(),
            user=call.user,
            new_id=self.new_id,
            sheet_exists=lambda sheet_id: sheet_id in self.sheets,
        )
        return success(webhook.wire())

    async def get_webhook(self, call: Call) -> Any:
        return self.webhooks.get(call.path_int("id"), call.user).wire()

    async def update_webhook(self, call: Call) -> Any:
        webhook = self.webhooks.get(call.path_int("id"), call.user)
        body = await call.body()
        if body.get("enabled") and webhook.scope_object_id not in self.sheets:
            raise ApiError(404, 1151, "Scope object not found.")
        return success((await self.webhooks.update(webhook, body)).wire())

    async def delete_webhook(self, call: Call) -> Any:
        self.webhooks.delete(self.webhooks.get(call.path_int("id"), call.user))
        return success()

    async def webhook_action(self, call: Call) -> Any:
        if call.request.path_params["action"].lower() != "resetsharedsecret":
            raise not_found()
        webhook = self.webhooks.get(call.path_int("id"), call.user)
        return success({"sharedSecret": self.webhooks.reset_secret(webhook)})


def param_level(query: Any) -> int:
    """`level`: 0 shows multi-value columns as TEXT_NUMBER, 1 adds MULTI_CONTACT_LIST, 2+ both."""
    return param_int(query, "level") or 0


def _check_sheet_attributes(body: dict[str, Any], writable: set[str]) -> None:
    # userSettings, projectSettings, fromId... are not stored: refused (1032), not dropped.
    read_only = {"id", "version", "accessLevel", "permalink", "createdAt", "modifiedAt"}
    refused = [f"sheet.{k}" for k in body if k not in writable | read_only]
    if refused:
        raise not_allowed(refused)


def _objects(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(item, dict) for item in items):
        raise unparseable("expected a JSON object or an array of objects.")
    return items
