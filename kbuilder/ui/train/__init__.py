"""The Train tab: run settings and the live dashboard."""
