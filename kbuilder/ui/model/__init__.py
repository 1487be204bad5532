"""The Model tab: the canvas, palette, inspector, summary and code view."""
