from __future__ import annotations

import math

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.login_throttle import client_address, login_lockout_until


class LoginForm(AuthenticationForm):
    """The login page's form: says plainly when too many failures locked the account out."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "That username and password do not match an account. Check both and try again."
        ),
        "locked_out": (
            "Too many failed log-in attempts. Try again in %(minutes)s, after %(time)s."
        ),
    }

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            # A locked-out attempt fails like a wrong password (the throttle backend refuses it);
            # so does the failure that reaches the limit. Say which it is.
            username = self.cleaned_data.get("username")
            address = client_address(self.request)
            until = username and address and login_lockout_until(username=username, address=address)
            if not until:
                raise
            minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
            local = timezone.localtime(until)
            raise ValidationError(
                self.error_messages["locked_out"],
                code="locked_out",
                params={
                    "minutes": f"{minutes} minute{'s' if minutes != 1 else ''}",
                    "time": f"{local:%H:%M} {local.tzname()}",
                },
            ) from None
