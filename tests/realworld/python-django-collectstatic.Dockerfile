FROM python:3.12-alpine
LABEL org.opencontainers.image.source="https://example.com/acme/site"
ENV PYTHONUNBUFFERED 1
ENV DJANGO_SETTINGS_MODULE site.settings.production
RUN apk add --no-cache postgresql-libs \
    && apk add --no-cache --virtual .build-deps gcc musl-dev postgresql-dev
WORKDIR /srv/site
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/production.txt \
    && apk --purge del .build-deps
COPY . .
RUN python manage.py collectstatic --noinput
EXPOSE 8000
CMD gunicorn site.wsgi:application --bind 0.0.0.0:8000 --workers 3
# expect-warning: LegacyKeyValueFormat
# expect-warning: LegacyKeyValueFormat
# expect-warning: JSONArgsRecommended
