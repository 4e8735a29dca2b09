"""inkagent: InternLM2-protocol agents built on lagent.

The public names live in the subpackages (`inkagent.agents`, `inkagent.actions`, `inkagent.llms`,
`inkagent.protocols`); importing `inkagent` itself loads none of the heavy libraries.
"""

__version__ = "0.1.0"
