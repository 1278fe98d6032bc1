"""WSGI entry point (the REST API alone; WebSockets need the ASGI application, webapp.asgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")

application = get_wsgi_application()
