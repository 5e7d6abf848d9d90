"""AWS access for the aws seam (S3 lake, Glue catalog, Athena) through one Airflow connection.

The Amazon provider's ``AwsBaseHook`` resolves the connection (``Settings.aws_conn_id``, default
``aws_default``): credentials (login/password, a profile, ``role_arn`` to assume), region,
``verify``, ``config_kwargs`` and endpoints (``extra.endpoint_url`` for every service, or
``extra.service_config.<service>.endpoint_url``). Inside a task the connection comes from the
Task SDK (metadata DB, secrets backend, ``AIRFLOW_CONN_*``); outside one (CLI tools, tests) from
``AIRFLOW_CONN_<ID>`` or a secrets backend. A connection id that resolves to nothing falls back to
boto3's default chain, as every Amazon operator does.

A ``boto3.Session`` carries credentials and region, not endpoints: the hook applies those when it
builds a client. awswrangler builds its clients from the session we pass, so ``session()`` returns
a ``Session`` that fills in the connection's endpoint, ``verify`` and botocore config wherever a
caller (awswrangler, ``S3Lake``) leaves them unset. Without a connection endpoint for a service,
botocore's own configuration applies (``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL``, the
shared config file), so ``AWS_ENDPOINT_URL_S3`` keeps working; the connection's endpoint wins.
"""

from __future__ import annotations

from typing import Any

import boto3

DEFAULT_CONN_ID = "aws_default"


class ConnectionSession(boto3.session.Session):
    """A boto3 Session whose clients and resources get the Airflow connection's endpoints and client config."""

    @classmethod
    def adopt(cls, base: boto3.session.Session, conn_config: Any) -> ConnectionSession:
        """The hook's own session, given this class: its credentials (maybe refreshable, an assumed role)
        stay as they are. (A second ``boto3.Session`` over the same botocore session would register
        boto3's client handlers twice, which boto3 refuses.)"""
        base.__class__ = cls
        base.conn_id = getattr(conn_config, "conn_id", None)
        base._conn_config = conn_config
        return base

    def endpoint_url(self, service_name: str) -> str | None:
        return self._conn_config.get_service_endpoint_url(service_name=service_name)

    def _fill(self, service_name: str, kwargs: dict) -> dict:
        if kwargs.get("endpoint_url") is None:
            kwargs["endpoint_url"] = self.endpoint_url(service_name)
        if kwargs.get("verify") is None and self._conn_config.verify is not None:
            kwargs["verify"] = self._conn_config.verify
        conn_botocore = self._conn_config.botocore_config
        if conn_botocore is not None:
            given = kwargs.get("config")
            kwargs["config"] = given.merge(conn_botocore) if given is not None else conn_botocore  # the connection wins
        return kwargs

    def client(self, service_name, *args, **kwargs):
        if args:  # positional (region_name, api_version, ...): name them so the defaults can be filled in
            names = ("region_name", "api_version", "use_ssl", "verify", "endpoint_url", "aws_access_key_id",
                     "aws_secret_access_key", "aws_session_token", "config", "aws_account_id")  # fmt: skip
            kwargs = {**dict(zip(names, args, strict=False)), **kwargs}
        return super().client(service_name, **self._fill(service_name, kwargs))

    def resource(self, service_name, *args, **kwargs):
        if args:
            names = ("region_name", "api_version", "use_ssl", "verify", "endpoint_url", "aws_access_key_id",
                     "aws_secret_access_key", "aws_session_token", "config")  # fmt: skip
            kwargs = {**dict(zip(names, args, strict=False)), **kwargs}
        return super().resource(service_name, **self._fill(service_name, kwargs))


def session(aws_conn_id: str | None = DEFAULT_CONN_ID, region_name: str | None = None) -> ConnectionSession:
    """A boto3 session from the Airflow connection ``aws_conn_id`` (``AwsBaseHook``).

    ``region_name`` is the fallback when neither the connection nor the environment names a region.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=aws_conn_id or None)
    base = hook.get_session()
    if base.region_name is None and region_name:
        base = hook.get_session(region_name=region_name)
    return ConnectionSession.adopt(base, hook.conn_config)
