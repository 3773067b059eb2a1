"""Shared vocabulary: identifiers, segment documents, validation, errors.

Pure data and pure functions, no I/O. Every other layer may import this one;
this one imports nothing of the project's.
"""
