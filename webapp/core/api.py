"""Authentication (session for the browser, tokens for scripts), the API root and the docs page."""

from __future__ import annotations

import functools

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from webapp.core import services
from webapp.core.exceptions import ApiError
from webapp.runs.selectors import user_usage


class NotAuthenticatedError(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid_credentials"


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    is_staff = serializers.BooleanField()


class StorageUsageSerializer(serializers.Serializer):
    checkpoints = serializers.IntegerField(help_text="bytes of the checkpoints kept of your runs")
    model_versions = serializers.IntegerField(help_text="bytes of your published model versions")
    datasets = serializers.IntegerField(help_text="bytes of your datasets' stored files")


class UsageSerializer(serializers.Serializer):
    runs_queued = serializers.IntegerField()
    runs_queued_limit = serializers.IntegerField(help_text="more queued runs are refused (429)")
    runs_running = serializers.IntegerField()
    runs_running_limit = serializers.IntegerField(help_text="further runs wait in the queue")
    storage_bytes = serializers.IntegerField()
    storage_quota_bytes = serializers.IntegerField(help_text="at the quota, new runs are refused")
    storage = StorageUsageSerializer()


class MeSerializer(UserSerializer):
    usage = UsageSerializer(help_text="your runs and storage against this server's limits")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class RegistrationSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="letters, digits and @ . + - _")
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False,
                                     help_text="checked by the server's password validators")
    email = serializers.EmailField(required=False, default="", allow_blank=True)


class CsrfSerializer(serializers.Serializer):
    csrf_token = serializers.CharField(help_text="also set as the csrftoken cookie; send it as X-CSRFToken")


def _authenticated_user(request, data):
    credentials = CredentialsSerializer(data=data)
    credentials.is_valid(raise_exception=True)
    user = authenticate(request, **credentials.validated_data)
    if user is None:
        raise NotAuthenticatedError("wrong username or password")
    return user


class LoginView(APIView):
    """Session login for the browser: sets the session cookie (and the CSRF cookie, whose value
    goes in the X-CSRFToken header of every later unsafe request)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=CredentialsSerializer, responses={200: UserSerializer})
    def post(self, request):
        user = _authenticated_user(request._request, request.data)
        login(request._request, user)
        get_token(request._request)  # rotate and send the CSRF cookie for the new session
        return Response(UserSerializer(user).data)


class RegisterView(APIView):
    """Sign-up for the browser: creates the account (the password must pass the server's password
    validators), logs the new user in with a session like LoginView and answers what MeView does.
    A taken username or a weak password is a 400 naming the field."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=RegistrationSerializer, responses={201: UserSerializer})
    def post(self, request):
        serializer = RegistrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        password = serializer.validated_data["password"]
        created = services.user_register(**serializer.validated_data)
        # Through the authentication backends, as LoginView does, so that login() knows which one.
        user = authenticate(request._request, username=created.username, password=password)
        login(request._request, user)
        get_token(request._request)  # the CSRF cookie for the new session
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfView(APIView):
    """Sets the csrftoken cookie (and returns its value) for a single-page app that has no session
    yet; every unsafe request of a logged-in browser sends it in the X-CSRFToken header."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: CsrfSerializer})
    def get(self, request):
        return Response({"csrf_token": get_token(request._request)})


class LogoutView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenView(APIView):
    """An API token for scripts (``Authorization: Token <key>``): POST with username and password
    gets (or creates) it; DELETE revokes the caller's token."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_authenticators(self):
        # Logging in for a token needs no session, and so no CSRF token.
        return [] if getattr(self.request, "method", None) == "POST" else super().get_authenticators()

    @extend_schema(request=CredentialsSerializer, responses={200: TokenSerializer})
    def post(self, request):
        user = _authenticated_user(request._request, request.data)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(responses={204: None})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


@method_decorator(ensure_csrf_cookie, name="dispatch")
class MeView(APIView):
    """The logged-in user (and the CSRF cookie a single-page app needs for its requests)."""

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        return Response({**UserSerializer(request.user).data, "usage": user_usage(request.user)})


class ApiRootView(APIView):
    """Where things are. Open to everyone, so a newcomer finds the login and the docs."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request):
        def link(name, **kwargs):
            return reverse(name, request=request, kwargs=kwargs or None)

        return Response({
            "register": link("auth-register"),
            "csrf": link("auth-csrf"),
            "login": link("auth-login"),
            "logout": link("auth-logout"),
            "token": link("auth-token"),
            "me": link("auth-me"),
            "projects": link("project-list"),
            "datasets": link("dataset-list"),
            "builtin_datasets": link("dataset-builtin-list"),
            "runs": link("run-list"),
            "ops": link("ops"),
            "validate_graph": link("graph-validate"),
            "schema": link("schema"),
            "docs": link("docs"),
            "browsable_api_login": link("rest_framework:login"),
        })


def docs(request):
    """The API reference as one server-rendered page, generated from the OpenAPI document (no
    JavaScript or CDN: it works offline). The machine-readable document is at /api/schema/."""
    info, operations = _reference()
    return render(request, "core/api_docs.html", {"info": info, "operations": operations})


@functools.cache
def _reference() -> tuple[dict, list[dict]]:
    """The schema's operations, generated once per process (the code does not change while it runs)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            parameters = [
                {"name": p["name"], "where": p["in"], "required": p.get("required", False),
                 "description": p.get("description", "")}
                for p in operation.get("parameters", [])
            ]
            operations.append({
                "method": method.upper(), "path": path, "tag": (operation.get("tags") or [""])[0],
                "summary": operation.get("summary") or operation.get("description", ""),
                "parameters": parameters,
                "request": ", ".join(sorted(operation.get("requestBody", {}).get("content", {}))),
                "responses": ", ".join(sorted(operation.get("responses", {}))),
            })
    return schema.get("info", {}), operations
