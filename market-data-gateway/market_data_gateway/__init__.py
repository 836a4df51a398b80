"""Market Data Gateway (:8001): prices and closed candles for every other service, cached."""
