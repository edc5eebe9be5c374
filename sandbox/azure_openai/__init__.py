"""The Azure OpenAI half of the sandbox: chat completions with limits, faults and a stand-in model.

service.py speaks HTTP (auth, deployments, rate limits, injected faults, streaming); model.py,
tools.py and structured.py are the deterministic model; tokens.py counts like the real service.
"""

from __future__ import annotations

from sandbox.azure_openai.service import AzureOpenAIService

__all__ = ["AzureOpenAIService"]
