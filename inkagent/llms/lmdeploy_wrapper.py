"""`LMDeployClient`: lagent's client of an LMDeploy `api_server`, on inkagent's `OpenAICompatible`.

`from lagent.llms.lmdeploy_wrapper import LMDeployClient` ports by renaming the package: the same
arguments (`url`, `model_name`, lagent's generation keywords) and methods. Requests go to the server's
OpenAI-compatible `/v1/completions` with the prompt rendered by the meta template and special tokens
kept (`skip_special_tokens: false`), as lagent's client sends them; on top, inkagent streams over
server-sent events, retries, times out and cuts stop words (see `OpenAICompatible`).
"""

from __future__ import annotations

from typing import Any

from .base import Prompt
from .meta_template import INTERNLM2_META
from .openai_compat import OpenAICompatible

#: Generation fields LMDeploy's `/v1/completions` understands besides OpenAI's.
LMDEPLOY_FIELDS = ("top_k", "repetition_penalty", "ignore_eos", "session_id")


class LMDeployClient(OpenAICompatible):
    """A model served by `lmdeploy serve api_server`.

    Args:
        url: the server's address, `http://<ip>:<port>` (lagent's meaning; `/v1` is added).
        model_name: the model name the server serves (`GET /v1/models`).
        meta_template: as for every backend; INTERNLM2 by default (lagent's default is None).
        **kwargs: lagent's generation keywords (`max_new_tokens`, `top_p`, `top_k`, `temperature`,
            `repetition_penalty`, `stop_words`) and `OpenAICompatible`'s (`timeout`, `max_retries`,
            `api_key_env`...). `top_k` and `repetition_penalty` are sent, as LMDeploy accepts them.
    """

    def __init__(self, url: str, model_name: str, meta_template: list[dict] | None = INTERNLM2_META, **kwargs: Any):
        kwargs.setdefault("mode", "completions")
        super().__init__(model=model_name, base_url=url.rstrip("/") + "/v1", meta_template=meta_template, **kwargs)
        self.url = url
        self.model_name = model_name

    def _payload(self, inputs: Prompt, gen_params: dict, stream: bool) -> tuple[dict, tuple[str, ...]]:
        payload, stop_words = super()._payload(inputs, gen_params, stream)
        params = self.update_gen_params(**gen_params)
        for key in LMDEPLOY_FIELDS:
            if params.get(key) is not None and key not in self.extra_body:
                payload[key] = params[key]
        return payload, stop_words
