"""The channel edge (handlers layer): one package per channel (telegram, zalo, simulator),
each a plugin that declares what it brings (bot/handlers/plugin.py). Channels translate
between their platform and the conversation service, nothing more; they never touch
storage.
"""
