"""Resource providers: one class per CloudFormation resource type Lamina can make.

`REGISTRY` maps a type name to its provider class (see `base.Provider` for the interface).
A type that is not here is refused before anything is created, unless the deploy was asked
to skip unsupported types. To add a type: write a Provider subclass and list it below.
"""

from __future__ import annotations

from lamina.service.providers import apigw, aws, events, iam, lambda_
from lamina.service.providers.base import Provider

REGISTRY: dict[str, type[Provider]] = {
    provider.type: provider
    for module in (lambda_, aws, iam, events, apigw)
    for provider in module.PROVIDERS
}
