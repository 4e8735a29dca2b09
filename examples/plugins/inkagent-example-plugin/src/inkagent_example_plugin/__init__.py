"""An example inkagent plugin package (see pyproject.toml for the entry points)."""
