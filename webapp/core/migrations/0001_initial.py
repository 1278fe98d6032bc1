"""API tokens hashed at rest, with expiry. Tokens of DRF's authtoken table (stored in plain text)
are carried over as their hashes, expiring after the default lifetime, and deleted there."""

import hashlib
from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def carry_over_plain_tokens(apps, schema_editor):
    ApiToken = apps.get_model("core", "ApiToken")
    PlainToken = apps.get_model("authtoken", "Token")
    expires_at = timezone.now() + timedelta(days=getattr(settings, "API_TOKEN_LIFETIME_DAYS", 90))
    for plain in PlainToken.objects.all():
        ApiToken.objects.create(user_id=plain.user_id, name="token from before hashing", prefix=plain.key[:8],
                                key_sha256=hashlib.sha256(plain.key.encode()).hexdigest(), expires_at=expires_at)
    PlainToken.objects.all().delete()


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(blank=True, default="", max_length=100)),
                ("prefix", models.CharField(max_length=16)),
                ("key_sha256", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField()),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="api_tokens",
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-created_at"]},
        ),
        migrations.RunPython(carry_over_plain_tokens, migrations.RunPython.noop),
    ]
