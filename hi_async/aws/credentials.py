"""Region, endpoint and credentials from the standard AWS configuration, without an SDK
client: what the lean data plane needs to sign its requests.

The credential chain is botocore's own (environment, shared files and ``--profile``,
SSO, ``credential_process``, container and instance roles), read through a plain
botocore session, except for its first link, static keys in the environment, which is
read here without loading botocore; nothing is cached or written anywhere. Credentials
that do not expire can be handed, in memory, to worker processes, which then need no
chain of their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError, CredentialsError
from ..settings import Settings, configured_endpoint_url

#: The region the local stack answers in when none is configured.
LOCAL_DEFAULT_REGION = "us-east-1"
SERVICE = "medical-imaging"

#: (access key ID, secret access key, session token or None)
Frozen = tuple[str, str, str | None]


def custom_endpoint(settings: Settings, service: str) -> str | None:
    """The endpoint a client of ``service`` is pointed at when it is not AWS's own:
    ``settings.endpoint_url`` or botocore's ``AWS_ENDPOINT_URL[_<SERVICE>]``.

    botocore prepends the data-plane host prefix (``runtime-``) even to a custom
    endpoint, which the local stack, a proxy or a VPC endpoint does not answer to: every
    client with a custom endpoint turns host-prefix injection off.
    """
    return settings.endpoint_url or configured_endpoint_url(service)


def explicit_credentials(settings: Settings) -> dict[str, str]:
    """Keyword arguments for ``create_client`` when Settings carries credentials, else {}.

    Explicit credentials let a caller (the local stack's workflow, a test) sign requests
    without putting keys into the process environment, where child processes and crash
    reports would inherit them.
    """
    key, secret = settings.access_key_id, settings.secret_access_key
    if key is None and secret is None:
        if settings.session_token is not None:
            raise ConfigurationError(
                "a session token was given without an access key ID and secret",
                hint="pass access_key_id and secret_access_key with session_token",
            )
        return {}
    if not key or not secret:
        raise ConfigurationError(
            "explicit credentials need both an access key ID and a secret access key",
            hint="set both access_key_id and secret_access_key, or neither to use the "
            "standard credential chain",
        )
    kwargs = {"aws_access_key_id": key, "aws_secret_access_key": secret}
    if settings.session_token:
        kwargs["aws_session_token"] = settings.session_token
    return kwargs


def _session(settings: Settings) -> Any:
    import botocore.exceptions as bx
    import botocore.session

    try:
        return botocore.session.Session(profile=settings.profile)
    except bx.ProfileNotFound as exc:
        raise ConfigurationError(
            f"AWS profile {settings.profile!r} is not configured",
            hint="check --profile against ~/.aws/config",
        ) from exc


def region_of(settings: Settings, session: Any | None = None) -> str:
    """``settings.region``, else the profile's or environment's; the local stack's default
    when an endpoint URL is given; else a ConfigurationError."""
    region = settings.region
    if not region:
        import botocore.exceptions as bx

        try:
            region = (session or _session(settings)).get_config_variable("region")
        except bx.BotoCoreError as exc:
            from .errors import translate

            raise translate(exc, "read the AWS configuration", settings) from None
    if region:
        return str(region)
    if custom_endpoint(settings, SERVICE):
        return LOCAL_DEFAULT_REGION
    raise ConfigurationError(
        "no AWS region is configured",
        hint="pass --region (for example --region us-east-1) or set AWS_REGION",
    )


def control_plane_url(settings: Settings, region: str) -> str:
    """HealthImaging's endpoint for ``region`` (the data plane adds ``runtime-``)."""
    custom = custom_endpoint(settings, SERVICE)
    if custom:
        return custom.rstrip("/")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{SERVICE}.{region}.{suffix}"


def from_environment(settings: Settings,
                     environ: Mapping[str, str] = os.environ) -> Frozen | None:
    """The credentials the standard chain takes first, read without loading botocore
    (about 0.15 s of a short run's start-up, before any worker could start): the access
    key and secret in the environment, with ``AWS_SECURITY_TOKEN`` or else
    ``AWS_SESSION_TOKEN``. None, leaving the chain to botocore, when a profile is named
    (the chain then skips the environment), when the environment's credentials expire
    (``AWS_CREDENTIAL_EXPIRATION``: refreshable) or when they are incomplete (botocore
    says which variable is missing)."""
    if settings.profile:
        return None
    key = environ.get("AWS_ACCESS_KEY_ID", "")
    secret = environ.get("AWS_SECRET_ACCESS_KEY", "")
    if not key or not secret or environ.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    token = environ.get("AWS_SECURITY_TOKEN") or environ.get("AWS_SESSION_TOKEN") or None
    return key, secret, token


class CredentialSource:
    """Frozen credentials for each request: given ones, or the standard chain's."""

    def __init__(self, settings: Settings, *, frozen: Frozen | None = None) -> None:
        self._frozen = frozen
        self._chain: Any = None
        if frozen is None:
            explicit = explicit_credentials(settings)
            if explicit:
                self._frozen = (explicit["aws_access_key_id"],
                                explicit["aws_secret_access_key"],
                                explicit.get("aws_session_token"))
        self._settings = settings

    def resolve(self) -> None:
        """Find credentials in the chain (blocking: may ask a credential process or an
        instance role): call it off the event loop."""
        if self._frozen is not None or self._chain is not None:
            return
        self._frozen = from_environment(self._settings)
        if self._frozen is not None:
            return
        import botocore.exceptions as bx

        try:
            chain = _session(self._settings).get_credentials()
        except bx.BotoCoreError as exc:
            from .errors import translate

            raise translate(exc, "get AWS credentials", self._settings) from None
        if chain is None:
            raise CredentialsError(
                "no AWS credentials were found while trying to get AWS credentials",
                hint="run 'aws configure', set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or pass --profile")
        from botocore.credentials import DeferredRefreshableCredentials, RefreshableCredentials

        if isinstance(chain, (RefreshableCredentials, DeferredRefreshableCredentials)):
            self._chain = chain  # it expires: refreshed by botocore when asked for
        else:
            self._frozen = (chain.access_key, chain.secret_key, chain.token)

    @property
    def static(self) -> Frozen | None:
        """The credentials when they never expire (they can be handed on), else None."""
        return self._frozen

    def frozen(self) -> Frozen:
        """The credentials to sign a request with now (a refreshable set refreshes)."""
        if self._frozen is not None:
            return self._frozen
        assert self._chain is not None, "resolve() first"
        now = self._chain.get_frozen_credentials()
        return now.access_key, now.secret_key, now.token
