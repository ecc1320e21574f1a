"""The harness: connector protocol, runner, checks, pytest plugin, CLI and reports."""
