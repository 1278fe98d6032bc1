"""``GET /api/workers``: which queues have a live worker, and how loaded they are (``webapp.runs.queues``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.runs import queues


class WorkerStatusSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    queues = serializers.ListField(child=serializers.CharField())
    device = serializers.CharField(help_text="'gpu' or 'cpu' for a training worker, '' for one that only converts data")
    concurrency = serializers.IntegerField(allow_null=True, help_text="pool slots")
    active = serializers.IntegerField(allow_null=True, help_text="tasks running now")
    pid = serializers.IntegerField(allow_null=True)


class QueueStatusSerializer(serializers.Serializer):
    name = serializers.CharField()
    purpose = serializers.CharField()
    live = serializers.BooleanField(help_text="at least one worker serves it")
    workers = serializers.ListField(child=serializers.CharField(), help_text="hostnames of its workers")
    concurrency = serializers.IntegerField(help_text="pool slots of its workers, together")
    active = serializers.IntegerField(help_text="tasks running on its workers")
    start_command = serializers.CharField(help_text="how to start a worker for it")


class WorkersSerializer(serializers.Serializer):
    checked_at = serializers.FloatField(help_text="Unix time of the workers' answers")
    broker_reachable = serializers.BooleanField()
    error = serializers.CharField(help_text="why the workers could not be asked ('' when they could)")
    workers = WorkerStatusSerializer(many=True)
    queues = QueueStatusSerializer(many=True)


class WorkersView(APIView):
    @extend_schema(
        responses={200: WorkersSerializer},
        description="The live Celery workers (hostname, queues, CPU or GPU, pool slots, tasks running) and per queue "
                    "(cpu, gpu, datasets and any other a worker serves) whether a worker serves it. Asked over the "
                    "broker with a timeout of about a second, cached for a few seconds. A run whose device's queue "
                    "has no live worker is refused with 503 `no_worker`.")
    def get(self, request):
        # Always through the cache: however often it is asked, the workers are asked once per few seconds.
        return Response(WorkersSerializer(queues.worker_status().as_dict()).data)
