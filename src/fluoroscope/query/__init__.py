"""Queries over the store: whole traces, summaries (and, later, filters and graphs).

Returns model objects (``fluoroscope.model.summary``); only ``server`` knows the X-Ray
JSON shapes.
"""
