//! GitHub emulator (to come).
