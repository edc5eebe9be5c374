# One image for every process of the workbench (web, worker, beat, sandbox); compose picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings STATIC_ROOT=/app/var/staticfiles \
    WHITENOISE_USE_FINDERS=false

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# collectstatic needs settings that load; at build time there are no credentials, so sandbox mode.
RUN mkdir -p var && SANDBOX=true python manage.py collectstatic --no-input -v 0 \
    && useradd --system --home /app workbench && chown -R workbench /app/var
USER workbench

EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "config.asgi:application"]
