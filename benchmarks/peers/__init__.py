"""Peers: minimal apps of other shapes, measured side by side with Khalex Pay."""
