"""Channel-free conversation flows (flow layer): pure state machines over the domain's
Reply/Input vocabulary, the one routing table (routes.py) and the typed effects they hand
their host (effects.py). Nothing here does I/O or imports anything but bot.domain
(tests/test_layers.py checks it)."""
