"""Stand-ins for Smartsheet API 2.0 and Azure OpenAI, run in their own process.

Imports nothing from the product apps: it plays an outside service.
"""
