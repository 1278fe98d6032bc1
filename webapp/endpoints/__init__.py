"""Published models: endpoints, their numbered versions, API keys and serving metrics (contract 6)."""
