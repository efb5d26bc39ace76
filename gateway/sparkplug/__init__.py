"""Sparkplug B 3.0 for the uplink: payload encoding, metric mapping, the edge node."""
