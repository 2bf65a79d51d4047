# Broadsheet API and worker image. Secrets come from the environment at run time, never the image.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /srv/broadsheet
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
COPY alembic ./alembic
COPY alembic.ini ./
RUN uv sync --frozen --no-dev && useradd --system --uid 10001 broadsheet \
    && mkdir -p /srv/broadsheet/var && chown broadsheet /srv/broadsheet/var
USER broadsheet
# Production unless told otherwise: the image never starts with development defaults (the
# local payment gateway, the file mailer, open docs). Four workers need a shared rate-limit
# store (BROADSHEET_RATE_LIMIT_STORAGE=redis://...); the API refuses memory:// with more than one.
ENV BROADSHEET_ENV=production BROADSHEET_WEB_WORKERS=4
EXPOSE 8000
CMD ["sh", "-c", "broadsheet migrate && exec broadsheet serve --host 0.0.0.0 --port 8000"]
