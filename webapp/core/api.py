"""Authentication (session for the browser, tokens for scripts), the API root and the docs page."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import CSRFCheck
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from webapp.core import services
from webapp.core.exceptions import ApiError
from webapp.core.models import ApiToken
from webapp.core.throttles import AccountLockout, LoginAddressThrottle, RegisterAddressThrottle, TokenAddressThrottle
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
    layer_stats = serializers.IntegerField(help_text="bytes of your runs' per-layer statistics")
    imported_weights = serializers.IntegerField(help_text="bytes of the weights of your imported ONNX models")


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
    token = serializers.CharField(help_text="the key, shown this once: only its SHA-256 is stored")
    id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class ApiTokenSerializer(serializers.ModelSerializer):
    expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "expired"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="", allow_blank=True,
                                 help_text="what the token is for")
    expires_in_days = serializers.IntegerField(required=False, default=None, allow_null=True, min_value=1,
                                               max_value=3650, help_text="default 90; at most the server's "
                                                                         "API_TOKEN_MAX_LIFETIME_DAYS")


class NewApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="the key, shown this once: only its SHA-256 is stored")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class RegistrationSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="letters, digits and @ . + - _")
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False,
                                     help_text="checked by the server's password validators")
    # no default in the document: '' is not an email, and a schema whose default breaks its own format
    # is invalid (openapi-spec-validator); the service defaults it to ''
    email = serializers.EmailField(required=False, allow_blank=True)


class CsrfSerializer(serializers.Serializer):
    csrf_token = serializers.CharField(help_text="also set as the csrftoken cookie; send it as X-CSRFToken")


def _authenticated_user(request, data):
    """The user of a username and password, after the account's lockout (``AccountLockout``)."""
    credentials = CredentialsSerializer(data=data)
    credentials.is_valid(raise_exception=True)
    lockout = AccountLockout(credentials.validated_data["username"])
    lockout.check()
    user = authenticate(request, **credentials.validated_data)
    if user is None:
        lockout.record_failure()
        raise NotAuthenticatedError("wrong username or password")
    lockout.clear()
    return user


def enforce_browser_csrf(request) -> None:
    """Login CSRF: a page of another site must not log a browser into an account, and sign-up must
    not be posted by one. A request with cookies or an Origin header comes from a browser and must
    pass Django's CSRF check (the csrftoken cookie and the X-CSRFToken header, the Origin); a
    script that sends neither is not riding anyone's browser."""
    meta = request.META
    if not meta.get("HTTP_COOKIE") and not meta.get("HTTP_ORIGIN"):
        return
    check = CSRFCheck(lambda _request: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")


class LoginView(APIView):
    """Session login for the browser: sets the session cookie (and the CSRF cookie, whose value
    goes in the X-CSRFToken header of every later unsafe request)."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [LoginAddressThrottle]

    @extend_schema(request=CredentialsSerializer, responses={200: UserSerializer})
    def post(self, request):
        enforce_browser_csrf(request._request)
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
    throttle_classes = [RegisterAddressThrottle]

    @extend_schema(request=RegistrationSerializer, responses={201: UserSerializer})
    def post(self, request):
        enforce_browser_csrf(request._request)
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
    makes a new one (it expires after ``API_TOKEN_LIFETIME_DAYS``; the key is shown this once);
    DELETE revokes the token the request came with (with a session: every token of the user)."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_authenticators(self):
        # Logging in for a token needs no session, and so no CSRF token.
        return [] if getattr(self.request, "method", None) == "POST" else super().get_authenticators()

    def get_throttles(self):
        return [TokenAddressThrottle()] if self.request.method == "POST" else []

    @extend_schema(request=CredentialsSerializer, responses={200: TokenSerializer})
    def post(self, request):
        user = _authenticated_user(request._request, request.data)
        token, key = services.api_token_create(user=user, name="from POST /api/auth/token/")
        return Response({"token": key, "id": token.pk, "expires_at": token.expires_at})

    @extend_schema(responses={204: None})
    def delete(self, request):
        tokens = ApiToken.objects.filter(user=request.user)
        if isinstance(request.auth, ApiToken):
            tokens = tokens.filter(pk=request.auth.pk)
        tokens.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiTokenListView(APIView):
    """The user's API tokens (never their keys: those are shown once); POST makes one."""

    @extend_schema(responses={200: ApiTokenSerializer(many=True)})
    def get(self, request):
        return Response(ApiTokenSerializer(ApiToken.objects.filter(user=request.user), many=True).data)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: NewApiTokenSerializer})
    def post(self, request):
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=request.user, name=serializer.validated_data["name"],
                                               lifetime_days=serializer.validated_data["expires_in_days"])
        return Response({**ApiTokenSerializer(token).data, "token": key}, status=status.HTTP_201_CREATED)


class ApiTokenDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, token_id: int):
        """Revoke one of the user's tokens: requests with it are refused from now on."""
        services.api_token_revoke(user=request.user, token_id=token_id)
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

    @extend_schema(operation_id="api_root", responses={200: OpenApiResponse(
        {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}},
        description="the API's entry points by name")})
    def get(self, request):
        def link(name, **kwargs):
            return reverse(name, request=request, kwargs=kwargs or None)

        return Response({
            "register": link("auth-register"),
            "csrf": link("auth-csrf"),
            "login": link("auth-login"),
            "logout": link("auth-logout"),
            "token": link("auth-token"),
            "tokens": link("auth-token-list"),
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
