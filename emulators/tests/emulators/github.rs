//! GitHub emulator tests (to come).
