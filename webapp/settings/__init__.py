"""Settings split by environment: base, local, test, production (DJANGO_SETTINGS_MODULE picks)."""
