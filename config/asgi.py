"""HTTP and WebSocket entry point (daphne).

WebSockets pass the origin check and the session auth stack before any consumer sees them; each
consumer still refuses anonymous users itself.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import WebsocketDenier  # noqa: E402
from django.conf import settings  # noqa: E402
from django.http.request import is_same_domain, split_domain_port, validate_host  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_and_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    host, port = split_domain_port(netloc.lower())
    if not host:
        return None
    try:
        return host, int(port) if port else _DEFAULT_PORTS[scheme]
    except ValueError:
        return None


def websocket_origin_allowed(*, origin: str | None, host: str | None, secure: bool) -> bool:
    """Is a WebSocket from a page at `origin` to this server (`host`, as the Host header) allowed?

    Same origin means scheme, host and port: channels' AllowedHostsOriginValidator compares the
    host only, so any other service on the same machine (another port) could open a socket with
    the user's cookies. Origins listed in CSRF_TRUSTED_ORIGINS (`https://*.example.com` too) are
    allowed as they are for forms. No Origin at all is refused: browsers always send one.
    """
    if not origin:
        return False
    parsed = urlsplit(origin)
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.netloc:
        return False
    netloc = parsed.netloc.lower()
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        allowed = urlsplit(trusted)
        if allowed.scheme != parsed.scheme:
            continue
        if allowed.netloc.startswith("*"):
            if is_same_domain(netloc, allowed.netloc[1:].lower()):
                return True
        elif netloc == allowed.netloc.lower():
            return True
    if host is None or (secure and parsed.scheme != "https"):
        return False
    page = _host_and_port(netloc, parsed.scheme)
    server = _host_and_port(host, parsed.scheme)
    return page is not None and page == server and validate_host(page[0], settings.ALLOWED_HOSTS)


class SameOriginValidator:
    """ASGI middleware: refuses WebSocket handshakes whose Origin is not this very server."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin1") or None
        host = headers.get(b"host", b"").decode("latin1") or None
        if host is None and scope.get("server"):
            server_host, server_port = scope["server"]
            host = f"{server_host}:{server_port}"
        secure = scope.get("scheme") == "wss"
        if websocket_origin_allowed(origin=origin, host=host, secure=secure):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
