"""The domain layer: SafeChild's vocabulary and rules as pure code.

Nothing here does I/O or imports a channel library, aiohttp, SQLAlchemy, storage or the
services (tests/test_layers.py checks it). Flows, services, workers, storage and the
channels all speak these words.
"""
