from django.contrib import admin

from webapp.runs.models import Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "state", "attempt", "device", "worker", "created_at", "finished_at"]
    list_filter = ["state", "device"]
