"""The configured deployments, read from settings on every call (tests override settings)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

_THOUSAND = Decimal(1000)
_COST_PLACES = Decimal("0.0000000001")


@dataclass(frozen=True)
class Deployment:
    """One Azure OpenAI deployment: its name in Azure, its base model, quota and prices."""

    name: str
    model: str
    rpm: int
    tpm: int
    input_per_1k: Decimal
    output_per_1k: Decimal

    def cost(self, *, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """USD for one call (a small call costs millionths of a dollar: ten places)."""
        total = (
            Decimal(prompt_tokens) * self.input_per_1k
            + Decimal(completion_tokens) * self.output_per_1k
        ) / _THOUSAND
        return total.quantize(_COST_PLACES)


def deployments() -> dict[str, Deployment]:
    return {
        name: Deployment(
            name=name,
            model=spec["model"],
            rpm=spec["rpm"],
            tpm=spec["tpm"],
            input_per_1k=Decimal(str(spec["input_per_1k"])),
            output_per_1k=Decimal(str(spec["output_per_1k"])),
        )
        for name, spec in settings.AZURE_OPENAI_DEPLOYMENTS.items()
    }


def deployment_get(name: str | None = None) -> Deployment:
    """The named deployment, or the primary (AZURE_OPENAI_DEPLOYMENT)."""
    name = name or settings.AZURE_OPENAI_DEPLOYMENT
    known = deployments()
    if name not in known:
        from ai.errors import DeploymentNotFoundError

        raise DeploymentNotFoundError(
            f"The deployment {name!r} is not configured. Add it to AZURE_OPENAI_DEPLOYMENTS "
            f"(configured: {', '.join(known)}).",
            deployment=name,
        )
    return known[name]


def fallback_for(deployment: Deployment) -> Deployment | None:
    """The fallback deployment when one is configured and differs from `deployment`."""
    name = settings.AZURE_OPENAI_FALLBACK_DEPLOYMENT
    if not name or name == deployment.name:
        return None
    return deployments().get(name)
