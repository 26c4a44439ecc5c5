"""Past one machine on Ray: batch scoring (Ray Data), camera fleets (actors), the API (Serve)."""
