//! Helpers shared by the end-to-end tests: finding binaries, starting relays, running the LTTng tools.
