"""Gemini REST API emulator that the real google-genai SDK talks to over HTTP.

``python -m sandbox.gemini --port P [--config scenario.toml]`` or in-process
``with GeminiEmulator(config=…, port=0) as emu:``. See ``config`` for the scenario file
and ``scenario`` for the outcomes that can be forced.
"""

from sandbox.gemini.clock import Clock
from sandbox.gemini.config import ConfigError, EmulatorConfig, Limits, load_config
from sandbox.gemini.requestlog import RequestRecord
from sandbox.gemini.scenario import OUTCOMES, ScenarioError, key_fp
from sandbox.gemini.server import GeminiEmulator

__all__ = [
    "OUTCOMES",
    "Clock",
    "ConfigError",
    "EmulatorConfig",
    "GeminiEmulator",
    "Limits",
    "RequestRecord",
    "ScenarioError",
    "key_fp",
    "load_config",
]
