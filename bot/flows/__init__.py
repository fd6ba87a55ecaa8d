"""Channel-free conversation flows: pure state machines over the Reply/Input vocabulary.

Nothing in this package imports a channel library, aiohttp or SQLAlchemy.
"""
