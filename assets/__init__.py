"""Software-defined assets and the pure functions they call, by domain."""
