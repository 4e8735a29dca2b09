"""`inkagent web`: the agent and the skills in the browser (a streamlit app).

- `session.py`: one browser session: its agent, its turns (run on a worker thread), Stop, settings,
  downloads. No streamlit import, so it is tested on its own.
- `controls.py`: what a session wraps around the agent: the tool view (enable/disable, cancellable
  calls) and the shared-model gate (one generation at a time per heavy model).
- `view.py`: streamlit rendering of a turn's events (status boxes, streamed text, images, articles).
- `app.py`: the streamlit script that `inkagent web CONFIG` serves (`inkagent/runners/web.py`).
"""
