"""OKX v5 protocol pieces shared by the adapter, the feed and the simulator."""
