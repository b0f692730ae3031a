"""Short-horizon demand forecasts from the `demand` topic's hourly counts (not on the event path)."""
