"""Market data: the candle and quote models, the sources, and `MarketDataClient`."""
