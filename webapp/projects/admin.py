from django.contrib import admin

from webapp.projects.models import GraphVersion, Project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "updated_at"]
    search_fields = ["name", "owner__username"]


@admin.register(GraphVersion)
class GraphVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "name", "number", "created_at"]
    readonly_fields = ["project", "name", "number", "editor_document", "spec", "summary", "created_by", "created_at"]
