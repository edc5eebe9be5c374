"""Chat pages: the session list and one conversation. Each view fetches with the owner check,
calls one service and renders a page or (for htmx) the fragment that changed."""

from __future__ import annotations

import contextlib

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from chat import services
from chat.models import ChangeSet, Message
from chat.selectors import (
    SESSIONS_SHOWN,
    change_set_view,
    conversation_of,
    message_view,
    session_for_owner,
    sessions_of,
)
from sheets.selectors import sheets_visible_to


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")
    sessions = list(sessions_of(user=request.user, search=search)[:SESSIONS_SHOWN])
    context = {
        "sessions": sessions,
        "search": search,
        "sheets": sheets_visible_to(request.user).order_by("name", "pk"),
        "chosen_sheet": request.GET.get("sheet", ""),
    }
    if request.htmx and request.htmx.target == "sessions":
        return render(request, "chat/index.html#sessions", context)
    return render(request, "chat/index.html", context)


@require_POST
def session_create(request: HttpRequest) -> HttpResponse:
    """New chat, optionally on a sheet (from this page or the grid's "Chat about this sheet")."""
    sheet = None
    if request.POST.get("sheet"):
        try:
            sheet_id = int(request.POST["sheet"])
        except ValueError:
            return HttpResponseBadRequest("Choose a sheet from the list.")
        sheet = get_object_or_404(sheets_visible_to(request.user), pk=sheet_id)
    session = services.session_create(owner=request.user, sheet=sheet)
    return redirect("chat:session", session_id=session.pk)


@require_GET
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_owner(user=request.user, session_id=session_id)
    context = {"session": session, "messages": conversation_of(session=session)}
    if request.htmx and request.htmx.target == "messages":
        return render(request, "chat/session.html#messages", context)
    return render(request, "chat/session.html", context)


@require_POST
def session_rename(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_owner(user=request.user, session_id=session_id)
    error = ""
    try:
        services.session_rename(session=session, title=request.POST.get("title", ""))
    except services.ChatInvalid as exc:
        error = exc.message
    if request.htmx:
        return render(
            request, "chat/index.html#session_item", {"item": session, "rename_error": error}
        )
    return redirect("chat:session", session_id=session.pk)


@require_POST
def session_delete(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_owner(user=request.user, session_id=session_id)
    services.session_delete(session=session)
    if request.htmx:
        return HttpResponse("")
    return redirect("chat:index")


@require_POST
def message_create(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_owner(user=request.user, session_id=session_id)
    try:
        question, reply = services.message_send(session=session, text=request.POST.get("text", ""))
    except services.ChatInvalid as exc:
        return render(
            request,
            "chat/session.html#composer",
            {"session": session, "error": exc.message},
            status=400,
        )
    if not request.htmx:
        return redirect("chat:session", session_id=session.pk)
    session.refresh_from_db(fields=["title"])  # named after the first message
    messages = [
        message_view(session_id=session.pk, message_id=question.pk),
        message_view(session_id=session.pk, message_id=reply.pk),
    ]
    return render(
        request,
        "chat/session.html#sent",
        {"session": session, "sent": [m for m in messages if m is not None]},
    )


def _message(request: HttpRequest, session_id: int, message_id: int) -> Message:
    session = session_for_owner(user=request.user, session_id=session_id)
    return get_object_or_404(Message, pk=message_id, session=session)


def _message_fragment(request: HttpRequest, message: Message) -> HttpResponse:
    if not request.htmx:
        return redirect("chat:session", session_id=message.session_id)
    shown = message_view(session_id=message.session_id, message_id=message.pk)
    return render(request, "chat/session.html#message", {"message": shown})


@require_GET
def message_detail(request: HttpRequest, session_id: int, message_id: int) -> HttpResponse:
    message = _message(request, session_id, message_id)
    shown = message_view(session_id=message.session_id, message_id=message.pk)
    return render(request, "chat/session.html#message", {"message": shown})


@require_POST
def message_stop(request: HttpRequest, session_id: int, message_id: int) -> HttpResponse:
    message = services.message_stop(message=_message(request, session_id, message_id))
    return _message_fragment(request, message)


@require_POST
def message_retry(request: HttpRequest, session_id: int, message_id: int) -> HttpResponse:
    message = _message(request, session_id, message_id)
    # Retried in another tab meanwhile: show it as it is.
    with contextlib.suppress(services.ChatInvalid):
        message = services.message_retry(message=message)
    return _message_fragment(request, message)


def _change_set(request: HttpRequest, session_id: int, change_set_id: int) -> ChangeSet:
    session = session_for_owner(user=request.user, session_id=session_id)
    return get_object_or_404(
        ChangeSet.objects.select_related("session"), pk=change_set_id, session=session
    )


def _card_fragment(request: HttpRequest, change_set: ChangeSet, error: str = "") -> HttpResponse:
    if not request.htmx:
        return redirect("chat:session", session_id=change_set.session_id)
    shown = change_set_view(session_id=change_set.session_id, change_set_id=change_set.pk)
    return render(
        request, "chat/session.html#change_set", {"change_set": shown, "card_error": error}
    )


@require_POST
def change_set_apply(request: HttpRequest, session_id: int, change_set_id: int) -> HttpResponse:
    change_set = _change_set(request, session_id, change_set_id)
    error = ""
    if (change_set.outcome or {}).get("blocked"):
        error = change_set.outcome["blocked"]
    else:
        try:
            services.change_set_apply(change_set=change_set, user=request.user)
        except services.ChatInvalid as exc:
            error = exc.message
    return _card_fragment(request, change_set, error)


@require_POST
def change_set_discard(request: HttpRequest, session_id: int, change_set_id: int) -> HttpResponse:
    change_set = _change_set(request, session_id, change_set_id)
    error = ""
    try:
        services.change_set_discard(change_set=change_set)
    except services.ChatInvalid as exc:
        error = exc.message
    return _card_fragment(request, change_set, error)
