#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 (loads the settings, which may refuse to start)
    except ImproperlyConfigured as refusal:
        # The settings' refusals are sentences saying what to set; a traceback adds nothing.
        sys.exit(str(refusal))
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
