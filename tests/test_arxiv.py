"""ArxivSearch on recorded arXiv API responses, replayed at the HTTP level under the real `arxiv` client."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import FIXTURES
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from inkagent.actions import ActionExecutor, ArxivSearch
from inkagent.agents import Internlm2Agent
from inkagent.errors import ActionError
from inkagent.llms import ScriptedLLM
from inkagent.schema import ToolCall

FEEDS = {
    "au:del_maestro": "au_del_maestro.xml",
    "au:del_maestro AND ti:checkerboard": "au_del_maestro_AND_ti_checkerboard.xml",
}
API = "ArxivSearch.get_arxiv_article_information"


class RecordedArxiv(BaseAdapter):
    """Answers arXiv API requests from tests/fixtures/arxiv; `statuses` are served first (e.g. 503s)."""

    def __init__(self, statuses: list[int] | None = None):
        super().__init__()
        self.statuses = list(statuses or [])
        self.urls: list[str] = []

    def send(self, request, **kwargs):
        self.urls.append(request.url)
        url = urlsplit(request.url)
        assert (url.scheme, url.netloc, url.path) == ("https", "export.arxiv.org", "/api/query")
        query = parse_qs(url.query)["search_query"][0]
        response = requests.Response()
        response.status_code = self.statuses.pop(0) if self.statuses else 200
        response._content = (FIXTURES / "arxiv" / FEEDS.get(query, "no_results.xml")).read_bytes()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/atom+xml; charset=utf-8"})
        response.url, response.request = request.url, request
        return response

    def close(self):
        pass


def search_with(adapter: BaseAdapter, **kwargs) -> ArxivSearch:
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return ArxivSearch(session=session, delay_seconds=0, **kwargs)


def test_top_papers_with_authors_dates_ids_and_pdf_links():
    adapter = RecordedArxiv()
    text = search_with(adapter).get_arxiv_article_information("au:del_maestro", max_results=3)
    papers = text.split("\n\n")
    assert len(papers) == 3
    assert papers[0].splitlines()[:6] == [
        "1. A Luttinger Liquid Core Inside Helium-4 Filled Nanopores",
        "Authors: Adrian Del Maestro",
        "Published: 2012-01-23",
        "arXiv: 1201.4869v1",
        "PDF: http://arxiv.org/pdf/1201.4869v1",
        "Category: cond-mat.mes-hall",
    ]
    assert "Authors: B. Kulchytskyy, G. Gervais, A. Del Maestro" in papers[2]
    assert "Published: 2013-03-27 (updated 2013-09-03)" in papers[2]
    assert (
        "Summary: As helium-4 is cooled below 2.17 K it undergoes a phase transition to a fundamentally"
        in papers[0]
    )
    assert parse_qs(urlsplit(adapter.urls[0]).query)["max_results"] == ["3"]


def test_summaries_are_cut_to_the_configured_length():
    text = search_with(RecordedArxiv(), doc_content_chars_max=120).get_arxiv_article_information(
        "au:del_maestro"
    )
    summary = text.split("\n\n")[0].split("Summary: ", 1)[1]
    assert summary.endswith(" …") and len(summary) <= 122


def test_the_model_calls_it_by_lagents_api_name():
    executor = ActionExecutor([search_with(RecordedArxiv())])
    call = ToolCall(name=API, arguments={"query": "au:del_maestro AND ti:checkerboard", "max_results": "2"})
    result = executor.run(call)
    assert result.ok, result.error
    assert result.output.startswith(
        "1. From stripe to checkerboard order on the square lattice in the presence of"
    )
    assert "arXiv: cond-mat/0603029v1" in result.output


def test_the_internlm2_fixture_call_is_valid_and_an_empty_result_says_so():
    fixture = [json.loads(line) for line in (FIXTURES / "internlm2_outputs.jsonl").read_text().splitlines()]
    expected = next(item["expect"] for item in fixture if item["expect"].get("name") == API)
    result = ActionExecutor([search_with(RecordedArxiv())]).run(
        ToolCall(name=API, arguments=expected["parameters"])
    )
    assert (
        result.ok
        and result.output
        == "No arXiv papers found for 'tool learning large language models'. Try other or fewer keywords."
    )


def test_schema_bounds_max_results():
    executor = ActionExecutor([search_with(RecordedArxiv())])
    spec = {s.name: s for s in executor.specs()}[API]
    assert spec.parameters["properties"]["max_results"] == {
        "type": "integer",
        "default": 3,
        "minimum": 1,
        "maximum": 20,
        "description": "how many papers to return",
    }
    result = executor.run(ToolCall(name=API, arguments={"query": "x", "max_results": 500}))
    assert result.error_type == "invalid_arguments" and "max_results" in result.error


def test_a_transient_server_error_is_retried():
    adapter = RecordedArxiv(statuses=[503])
    text = search_with(adapter).get_arxiv_article_information("au:del_maestro AND ti:checkerboard")
    assert text.startswith("1. From stripe") and len(adapter.urls) == 2


def test_a_persistent_server_error_is_a_clear_error_after_the_retries():
    adapter = RecordedArxiv(statuses=[503] * 10)
    with pytest.raises(ActionError, match=r"arXiv is busy \(HTTP 503\).*after 3 tries"):
        search_with(adapter, num_retries=2).get_arxiv_article_information("au:del_maestro")
    assert len(adapter.urls) == 3


def test_no_network_reaches_the_model_as_a_clear_error():
    # no recorded transport: the real session meets the test suite's network block (or a missing DNS)
    llm = ScriptedLLM(
        [
            f'<|action_start|><|plugin|>\n{{"name": "{API}", "parameters": {{"query": "tool learning"}}}}<|action_end|>',
            "arXiv cannot be reached right now.<|im_end|>",
        ]
    )
    executor = ActionExecutor([ArxivSearch(delay_seconds=0, num_retries=1)])
    with Internlm2Agent(llm, plugin_executor=executor) as agent:
        result = agent.chat("Find papers on tool learning")
    assert result.response == "arXiv cannot be reached right now."
    environment = llm.prompts[1].split("<|im_start|>environment name=<|plugin|>\n", 1)[1]
    assert environment.startswith(f"{API} failed: cannot reach arXiv (export.arxiv.org) after 2 tries: ")
    assert "Check the network connection." in environment.split("<|im_end|>")[0]
