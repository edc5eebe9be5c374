from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from core import views as core_views
from core.forms import LoginForm
from sheets import views as sheets_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("favicon.ico", core_views.favicon),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sheets/", include("sheets.urls")),
    path("webhooks/smartsheet/", sheets_views.smartsheet_webhook, name="smartsheet-webhook"),
    path("jobs/", include("jobs.urls")),
    path("chat/", include("chat.urls")),
    path("admin/", admin.site.urls),
]
