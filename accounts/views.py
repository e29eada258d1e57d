"""Accounts over HTTP: registration, JWTs, logout and profiles.

Views only translate: input serializers validate, services act, output serializers shape.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.models import User
from accounts.selectors import user_list
from accounts.serializers import (
    ErrorSerializer,
    LogoutSerializer,
    PasswordChangeErrorSerializer,
    PasswordChangeSerializer,
    RegisterErrorSerializer,
    RegisterResponseSerializer,
    RegisterSerializer,
    TokenObtainPairSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
    UserBriefSerializer,
    UserSerializer,
)
from accounts.services import (
    user_create,
    user_logout,
    user_password_change,
    user_sessions_revoke,
    user_token_pair,
    user_update,
)
from accounts.throttling import (
    FailedLoginThrottle,
    SettingsScopedRateThrottle,
    admin_login_throttled,
)

UNAUTHENTICATED = OpenApiResponse(
    ErrorSerializer, description="No access token, or an invalid or expired one."
)
THROTTLED = OpenApiResponse(
    ErrorSerializer, description="Too many attempts; the `Retry-After` header says when to retry."
)
BAD_REQUEST = OpenApiResponse(description='Field errors: `{"<field>": ["<message>", ...]}`.')


@extend_schema(tags=["auth"])
class RegisterView(APIView):
    """Creates a user and logs them in."""

    # No authentication at all: a stale Authorization header must not block signing up.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: RegisterResponseSerializer,
            400: RegisterErrorSerializer,
            429: THROTTLED,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_create(**serializer.validated_data)
        body = {"user": user, **user_token_pair(user=user)}
        return Response(RegisterResponseSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["auth"],
    responses={
        200: TokenPairSerializer,
        400: BAD_REQUEST,
        401: OpenApiResponse(
            ErrorSerializer,
            description="Wrong password, unknown user or inactive user: the same body for all.",
        ),
        429: THROTTLED,
    },
)
class TokenObtainView(TokenObtainPairView):
    """Logs in: username (in any case) and password for an access/refresh pair."""

    serializer_class = TokenObtainPairSerializer
    throttle_classes = [SettingsScopedRateThrottle, FailedLoginThrottle]
    throttle_scope = "login"


@extend_schema(
    tags=["auth"],
    responses={
        200: TokenPairSerializer,
        400: BAD_REQUEST,
        401: OpenApiResponse(
            ErrorSerializer,
            description="Invalid, expired or already used refresh token, or inactive user.",
        ),
    },
)
class TokenRefreshRotateView(TokenRefreshView):
    """Trades a refresh token for a new pair; the one sent is blacklisted (rotation)."""

    serializer_class = TokenRefreshSerializer


@extend_schema(tags=["auth"])
class LogoutView(APIView):
    """Ends a session by blacklisting its refresh token.

    The body's ``refresh`` must be a valid, unused refresh token of the caller. A
    malformed, expired or already blacklisted token, or an access token, is a 400 field
    error on ``refresh``: 401 stays reserved for the caller's own Authorization header,
    so a client can tell that its session is gone. A refresh token of another user is a
    403: it is valid, but not the caller's to revoke. The access token keeps working
    until it expires (minutes): access tokens are not checked against the blacklist.
    """

    @extend_schema(
        request=LogoutSerializer,
        responses={
            204: OpenApiResponse(description="The refresh token is blacklisted."),
            400: BAD_REQUEST,
            401: UNAUTHENTICATED,
            403: OpenApiResponse(ErrorSerializer, description="Another user's refresh token."),
        },
    )
    def post(self, request: Request) -> Response:
        assert isinstance(request.user, User)
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_logout(user=request.user, refresh=serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Logs the caller out everywhere: every access and refresh token issued to them so far
    stops working (this request's too), and every socket of theirs closes with 4401."""

    @extend_schema(
        tags=["auth"],
        request=None,
        responses={
            204: OpenApiResponse(description="Every earlier token is revoked."),
            401: UNAUTHENTICATED,
        },
    )
    def post(self, request: Request) -> Response:
        assert isinstance(request.user, User)
        user_sessions_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    """Changes the caller's password and, as logging out everywhere does, revokes every
    token issued to them so far and closes their sockets: log in again with the new one."""

    @extend_schema(
        tags=["users"],
        request=PasswordChangeSerializer,
        responses={
            204: OpenApiResponse(description="Changed; every earlier token is revoked."),
            400: PasswordChangeErrorSerializer,
            401: UNAUTHENTICATED,
        },
    )
    def post(self, request: Request) -> Response:
        assert isinstance(request.user, User)
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_password_change(user=request.user, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["users"])
@extend_schema_view(
    get=extend_schema(responses={200: UserSerializer, 401: UNAUTHENTICATED}),
    patch=extend_schema(responses={200: UserSerializer, 400: BAD_REQUEST, 401: UNAUTHENTICATED}),
)
class MeView(generics.RetrieveUpdateAPIView[User]):
    """The caller's own profile; only ``display_name`` can change (empty: the username)."""

    serializer_class = UserSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self) -> User:
        assert isinstance(self.request.user, User)
        return self.request.user

    def perform_update(self, serializer: BaseSerializer[User]) -> None:
        assert isinstance(serializer.instance, User)
        data: dict[str, Any] = serializer.validated_data
        if "display_name" in data:
            serializer.instance = user_update(
                user=serializer.instance, display_name=data["display_name"]
            )


@extend_schema(
    tags=["users"],
    responses={
        200: UserBriefSerializer,
        401: UNAUTHENTICATED,
        404: OpenApiResponse(ErrorSerializer, description="No such user."),
    },
)
class UserDetailView(generics.RetrieveAPIView[User]):
    """Any user, as others see them."""

    serializer_class = UserBriefSerializer
    lookup_url_kwarg = "user_id"

    def get_queryset(self) -> Any:
        return user_list()


def admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
    """The admin's login page, behind the same throttles as the API's login."""
    return admin_login_throttled(request) or admin.site.login(request, extra_context)
