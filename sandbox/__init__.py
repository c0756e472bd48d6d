"""Offline stand-ins for what cannot be reached from here: an XHS-style site and a
Gemini API emulator. Tests, the demo and the benchmarks run against them."""
