"""Channel adapters: they translate between a channel and the engine, nothing more."""
