"""The lagent edge: what lets lagent 0.2.4 code run on inkagent by renaming `lagent` to `inkagent`.

- `steps`: lagent's message lists (`inner_steps`, roles `language` / `tool`) <-> inkagent `Message`s.
- `lagent_agent`: lagent's agent API (`chat`, `stream_chat`, `batch_chat`, `add_action`, `_llm`,
  `_protocol`, `_action_executor`, `_interpreter_executor`...) as a mixin of inkagent agents.

lagent itself is imported only where a lagent object is built (`AgentReturn`, `ActionReturn`, lagent's
status codes), never on the path of a plain `agent.stream(...)` run.
"""
