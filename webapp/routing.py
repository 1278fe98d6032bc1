"""WebSocket routes (the HTTP ones are in ``webapp.urls``)."""

from django.urls import path

from webapp.runs.consumers import RunConsumer

websocket_urlpatterns = [
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
]
