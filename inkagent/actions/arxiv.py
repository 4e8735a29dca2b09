"""`ArxivSearch`: find papers on arXiv.org with the `arxiv` 4.x `Client` API.

The API name and output follow lagent's `ArxivSearch.get_arxiv_article_information`, so InternLM2
models trained on lagent prompts call it correctly; lagent's version calls `Search.results()`, which
arxiv 4.0 removed.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, create_model

from ..errors import ActionError
from ..schema import ToolSpec
from .base import Action, BoundApi, api
from .tool import json_schema

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)

_MAX_AUTHORS = 8


def _session_with_timeout(timeout_s: float) -> requests.Session:
    """A requests session whose requests time out (arxiv's client sets no timeout of its own)."""
    import requests

    class _Session(requests.Session):
        def request(self, method, url, **kwargs):  # noqa: ANN001, ANN201 - requests' own signature
            kwargs.setdefault("timeout", timeout_s)
            return super().request(method, url, **kwargs)

    return _Session()


def _root_cause(exc: BaseException) -> str:
    """The innermost cause of a requests error, in one short line (urllib3 nests them deeply)."""
    seen = exc
    while True:
        inner = seen.__cause__ or seen.__context__
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        reason = getattr(seen, "reason", None)
        if inner is None and isinstance(reason, BaseException):
            inner = reason
        if inner is None or inner is seen:
            break
        seen = inner
    text = str(seen) or type(seen).__name__
    text = re.sub(r"<urllib3\.[^>]*>:?\s*", "", text)
    return f"{type(seen).__name__}: {text}"[:300]


class ArxivSearch(Action):
    """Search arXiv.org for scientific papers. Useful for questions about physics, mathematics, computer
    science, quantitative biology, quantitative finance, statistics, electrical engineering and economics."""

    top_k_results: int = 3

    def __init__(
        self,
        top_k_results: int = 3,
        max_query_len: int = 300,
        doc_content_chars_max: int = 1500,
        num_retries: int = 3,
        delay_seconds: float = 3.0,
        timeout_s: float = 20.0,
        session: requests.Session | None = None,
        *,
        description: dict | str | None = None,
        parser: Any = None,
        enable: bool = True,
    ) -> None:
        """
        Args:
            top_k_results: how many papers a search returns when the model does not say (lagent's).
            max_query_len: longer queries are cut to this many characters.
            doc_content_chars_max: each abstract is cut to this many characters.
            num_retries: retries of a failed request (HTTP errors, connection errors, empty pages).
            delay_seconds: the least time between two requests (arXiv's terms ask for 3 s).
            timeout_s: how long one request may take.
            session: the `requests.Session` to fetch with (proxies, custom adapters, tests).
            description, parser, enable: lagent's `BaseAction` keywords (see `Action.lagent_options`).
        """
        if not 1 <= top_k_results <= 20:
            raise ValueError(f"top_k_results must be between 1 and 20, got {top_k_results}")
        self.top_k_results = top_k_results
        self.lagent_options(description, parser, enable)
        self.max_query_len = max_query_len
        self.doc_content_chars_max = doc_content_chars_max
        self.num_retries = num_retries
        self.delay_seconds = delay_seconds
        self.timeout_s = timeout_s
        self._session = session
        self._client: Any = None
        self._lock = threading.Lock()  # one request at a time: arXiv rate-limits per client

    def _get_client(self) -> Any:
        if self._client is None:
            import arxiv

            client = arxiv.Client(
                page_size=10, delay_seconds=self.delay_seconds, num_retries=self.num_retries
            )
            # arxiv 4.x fetches through this private session; replacing it is the supported way to add
            # a timeout, a proxy or a recorded transport
            client._session = self._session or _session_with_timeout(self.timeout_s)
            self._client = client
        return self._client

    @api
    def get_arxiv_article_information(
        self, query: str, max_results: Annotated[int, Field(ge=1, le=20)] = 3
    ) -> str:
        """Search arXiv and get the top papers: title, authors, dates, arXiv id, PDF link and abstract.

        Args:
            query: what to search for: keywords, a title, or arXiv syntax such as `au:hinton AND ti:capsule`
            max_results: how many papers to return
        """
        import arxiv
        import requests

        query = " ".join(query.split())[: self.max_query_len]
        if not query:
            raise ActionError("the query is empty: give keywords, a title or an author")
        client = self._get_client()
        client.page_size = max_results
        search = arxiv.Search(query=query, max_results=max_results)
        attempts = self.num_retries + 1
        tries = f"{attempts} {'try' if attempts == 1 else 'tries'}"
        try:
            with self._lock:
                papers = list(client.results(search))
        except arxiv.HTTPError as exc:
            if exc.status in (429, 503):
                raise ActionError(
                    f"arXiv is busy (HTTP {exc.status}) and refused the search after {tries}; try again in a minute"
                ) from exc
            raise ActionError(f"the arXiv API answered HTTP {exc.status} after {tries}") from exc
        except arxiv.UnexpectedEmptyPageError as exc:
            raise ActionError(f"arXiv returned an empty page after {tries}; try again later") from exc
        except requests.Timeout as exc:
            raise ActionError(f"arXiv did not answer within {self.timeout_s:g} s") from exc
        except requests.ConnectionError as exc:
            raise ActionError(
                f"cannot reach arXiv (export.arxiv.org) after {tries}: {_root_cause(exc)}. Check the network connection."
            ) from exc
        except requests.RequestException as exc:
            raise ActionError(f"the arXiv request failed: {_root_cause(exc)}") from exc
        if not papers:
            return f"No arXiv papers found for {query!r}. Try other or fewer keywords."
        return "\n\n".join(self._describe(i, paper) for i, paper in enumerate(papers, 1))

    def apis(self) -> list[BoundApi]:
        """The search API; its `max_results` defaults to `top_k_results` (3 unless set)."""
        apis = super().apis()
        if self.top_k_results == 3:
            return apis
        for bound in apis:
            default = (Annotated[int, Field(ge=1, le=20)], Field(self.top_k_results, description="how many papers to return"))
            model = create_model(bound.arguments_model.__name__, __base__=bound.arguments_model, max_results=default)
            bound.arguments_model = model
            bound.spec = ToolSpec(name=bound.spec.name, description=bound.spec.description, parameters=json_schema(model))
        return apis

    def _describe(self, index: int, paper: Any) -> str:
        authors = [author.name for author in paper.authors]
        if len(authors) > _MAX_AUTHORS:
            authors = authors[:_MAX_AUTHORS] + ["et al."]
        published, updated = paper.published.date(), paper.updated.date()
        dates = f"{published}" + (f" (updated {updated})" if updated != published else "")
        summary = " ".join(paper.summary.split())
        if len(summary) > self.doc_content_chars_max:
            cut = summary[: self.doc_content_chars_max].rsplit(" ", 1)[0]
            summary = cut + " …"
        lines = [
            f"{index}. {paper.title}",
            f"Authors: {', '.join(authors)}",
            f"Published: {dates}",
            f"arXiv: {paper.get_short_id()}",
        ]
        if paper.pdf_url:
            lines.append(f"PDF: {paper.pdf_url}")
        if paper.primary_category:
            lines.append(f"Category: {paper.primary_category}")
        lines.append(f"Summary: {summary}")
        return "\n".join(lines)
