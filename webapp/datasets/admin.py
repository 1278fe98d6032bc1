from django.contrib import admin

from webapp.datasets.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "kind", "owner", "rows", "created_at"]
    list_filter = ["kind"]
