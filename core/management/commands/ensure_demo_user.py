from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the demo user (DEMO_USER / DEMO_PASSWORD, default demo/demo) if missing; in "
        "sandbox mode it is staff and superuser, so the admin opens for it."
    )

    def handle(self, *args, **options) -> None:
        username = settings.DEMO_USER
        if not username:
            self.stdout.write("DEMO_USER is empty: no demo user.")
            return
        if not settings.SANDBOX and settings.DEMO_PASSWORD == "demo":
            # On real data a well-known password is an open door.
            self.stdout.write(
                "Not in sandbox mode: no demo user with the well-known password. Set "
                "DEMO_PASSWORD to a password of your own, or create users with "
                "`manage.py createsuperuser`."
            )
            return
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(settings.DEMO_PASSWORD)
            user.save(update_fields=["password"])
            self.stdout.write(f"Created the demo user {username!r}.")
        else:
            self.stdout.write(f"The demo user {username!r} already exists.")
        # Only on the sandbox: with real data, who administers the app is not a demo's decision.
        if settings.SANDBOX and not (user.is_staff and user.is_superuser):
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
            self.stdout.write(f"{username!r} is staff (sandbox mode): the admin is at /admin/.")
