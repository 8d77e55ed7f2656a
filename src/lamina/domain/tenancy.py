"""Tenant isolation (`TenancyConfig: {TenantIsolationMode: PER_TENANT}`, dg/tenant-isolation).

A PER_TENANT function's invocations name a tenant (`X-Amz-Tenant-Id`, 1-256 characters of
`[a-zA-Z0-9._:/=+\\-@ ]`); its execution environments each serve one tenant, and a tenant's
invocations reuse only that tenant's warm ones. A function without tenant isolation refuses a
tenant id. Both mistakes are AWS's InvalidParameterValueException.
"""

from __future__ import annotations

import re

from lamina.domain import errors
from lamina.domain.model import FunctionConfig

TENANT_ID_RE = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")
_MISMATCH = (
    "Tenant ID configuration not specified or passed to a function when tenant "
    "isolation is not enabled."
)


def check(config: FunctionConfig, tenant_id: str | None) -> None:
    """Raise AWS's error when the invocation's tenant id does not fit the function."""
    if tenant_id is not None and not TENANT_ID_RE.fullmatch(tenant_id):
        raise errors.ValidationError.field(
            tenant_id,
            "tenantId",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9\\._:\\/=+\\-@ ]+",
        )
    if bool(config.tenant_isolation) != (tenant_id is not None):
        raise errors.InvalidParameterValue(_MISMATCH)
