"""`Weather`: current conditions and daily forecasts for a city, from Open-Meteo (no key) or QWeather.

Place names may be Chinese or English: the geocoder is asked in the script of the name, so `上海` comes
back as 上海 with a Chinese weather description and `Boston` in English. A place the geocoder does not
know exactly is an error that lists its close matches, so the model can ask again instead of getting
the weather of the wrong town.

This module holds the action and the matching of place names; the HTTP clients of the two services
(requests, answers, errors) are in `weather_providers`.
"""

from __future__ import annotations

import difflib
import os
import re
import unicodedata
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from ..errors import ActionError, ConfigError
from .base import Action, api
from .weather_providers import (  # noqa: F401  (re-exported: they lived here)
    _COMPASS_EN,
    _COMPASS_ZH,
    _SUFFIX,
    OPEN_METEO_FORECAST_URL,
    OPEN_METEO_GEOCODING_URL,
    WMO_CODES,
    Place,
    Units,
    _Http,
    _number,
    _OpenMeteo,
    _QWeather,
    _reason,
    compass,
    describe_wmo,
)

if TYPE_CHECKING:
    import httpx

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ZH_SUFFIXES = ("特别行政区", "自治州", "地区", "市", "省", "县", "区")
_QUALIFIER_SPLIT = re.compile(r"\s*[,，]\s*")


def _normalize(name: str) -> str:
    """Case-, accent- and space-insensitive form of a place name; Chinese admin suffixes dropped."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[\s\-'’.]+", " ", text).strip()
    for suffix in _ZH_SUFFIXES:
        if _CJK.search(text) and text.endswith(suffix) and len(text) > len(suffix) + 1:
            text = text[: -len(suffix)]
            break
    return text


def _names_match(query: str, name: str) -> bool:
    """Whether the geocoder's `name` is the place the user named (not just a similar one)."""
    a, b = _normalize(query), _normalize(name)
    if not a or not b:
        return False
    if a == b:
        return True
    # "New York" for "New York City" and back: one name is the other plus whole words
    shorter, longer = sorted((a, b), key=len)
    return longer.startswith(shorter + " ")


def _qualifier_matches(qualifier: str, place: Place) -> bool:
    wanted = _normalize(qualifier)
    fields = (place.admin1, place.admin2, place.country, place.country_code)
    return any(
        field and (_normalize(field) == wanted or _normalize(field).startswith(wanted)) for field in fields
    )


def choose_place(query: str, candidates: list[Place]) -> Place:
    """The candidate that is the place `query` names ("City" or "City, Region/Country"), or an `ActionError`
    listing the close matches."""
    name, qualifier = _split_query(query)
    if not candidates:
        raise ActionError(
            f"unknown place {query!r}: the geocoder knows no place of that name. Check the spelling, "
            "or name a nearby city (Chinese and English names both work)."
        )
    exact = [place for place in candidates if _names_match(name, place.name)]
    if qualifier:
        in_region = [place for place in exact if _qualifier_matches(qualifier, place)]
        if not in_region:
            known = "; ".join(place.label() for place in (exact or candidates)[:5])
            raise ActionError(f"no place named {name!r} in {qualifier!r}. Places with that name: {known}.")
        return in_region[0]
    if exact:
        return exact[0]
    ranked = sorted(
        candidates, key=lambda p: -difflib.SequenceMatcher(None, _normalize(name), _normalize(p.name)).ratio()
    )
    close = "; ".join(place.label() for place in ranked[:5])
    raise ActionError(f"unknown place {query!r}. Close matches: {close}. Call again with one of these names.")


def _split_query(query: str) -> tuple[str, str]:
    """ "Springfield, Illinois" -> ("Springfield", "Illinois"); the geocoder searches names only."""
    parts = _QUALIFIER_SPLIT.split(query.strip(), maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


class Weather(Action):
    """Weather of a city: current conditions and a daily forecast of up to 16 days. Chinese and English
    city names both work."""

    def __init__(
        self,
        provider: Literal["open-meteo", "qweather"] = "open-meteo",
        units: Units = "metric",
        language: str = "auto",
        timeout_s: float = 10.0,
        api_key_env: str = "WEATHER_API_KEY",
        qweather_host: str | None = None,
        geocoding_url: str = OPEN_METEO_GEOCODING_URL,
        forecast_url: str = OPEN_METEO_FORECAST_URL,
        client: httpx.Client | None = None,
    ) -> None:
        """
        Args:
            provider: `open-meteo` (free, no key) or `qweather` (和风天气; key in the `api_key_env` variable).
            units: the default units: metric (°C, km/h, mm) or imperial (°F, mph, inch).
            language: the language of place names and descriptions: `auto` (Chinese for names written in
                Chinese, English otherwise) or a language code such as `en`, `zh`, `de`.
            timeout_s: how long one HTTP request may take.
            api_key_env: the environment variable holding the QWeather key.
            qweather_host: your QWeather account's API host (e.g. `abc123.re.qweatherapi.com`); by default
                the public `devapi.qweather.com` and `geoapi.qweather.com`.
            geocoding_url: Open-Meteo's geocoding endpoint (change it for a self-hosted instance).
            forecast_url: Open-Meteo's forecast endpoint.
            client: the `httpx.Client` to send requests with (proxies, tests).
        """
        if units not in ("metric", "imperial"):
            raise ConfigError(f"units must be 'metric' or 'imperial', not {units!r}")
        self.units: Units = units
        self.language = language
        self.provider_name = provider
        self._http = _Http(client, timeout_s)
        if provider == "open-meteo":
            self._provider: _OpenMeteo | _QWeather = _OpenMeteo(self._http, geocoding_url, forecast_url)
        elif provider == "qweather":
            key = os.environ.get(api_key_env, "").strip()
            if not key:
                raise ConfigError(
                    f"the QWeather provider needs an API key in the {api_key_env} environment variable"
                )
            self._provider = _QWeather(self._http, key, qweather_host)
        else:
            raise ConfigError(f"unknown weather provider {provider!r} (expected 'open-meteo' or 'qweather')")
        self._places: dict[tuple[str, str], Place] = {}

    def _language(self, city: str) -> str:
        if self.language != "auto":
            return self.language
        return "zh" if _CJK.search(city) else "en"

    def _place(self, city: str) -> tuple[Place, str]:
        city = " ".join(city.split())
        if not city:
            raise ActionError("no city given: name a city, e.g. 上海 or Boston")
        language = self._language(city)
        key = (_normalize(city), language)
        if key not in self._places:
            name, _ = _split_query(city)
            self._places[key] = choose_place(city, self._provider.locate(name, language))
        return self._places[key], language

    def _report(self, place: Place, units: Units) -> dict[str, Any]:
        return {
            "city": place.name,
            "place": place.label(),
            "latitude": place.latitude,
            "longitude": place.longitude,
            "units": units,
            "source": self._provider.name,
        }

    @api
    def current(self, city: str, units: Units | None = None) -> dict[str, Any]:
        """Get the current weather for a city.

        Args:
            city: city name, e.g. 上海 or Boston; add the region or country to tell places apart, e.g. "Springfield, Illinois"
            units: metric (°C, km/h, mm) or imperial (°F, mph, inch); the configured units when omitted
        """
        units = units or self.units
        place, language = self._place(city)
        return {**self._report(place, units), **self._provider.current(place, units, language)}

    @api
    def forecast(
        self, city: str, days: Annotated[int, Field(ge=1, le=16)] = 3, units: Units | None = None
    ) -> dict[str, Any]:
        """Get the daily weather forecast for a city: weather, lowest and highest temperature, precipitation and wind.

        Args:
            city: city name, e.g. 北京 or London; add the region or country to tell places apart
            days: how many days, starting today
            units: metric (°C, km/h, mm) or imperial (°F, mph, inch); the configured units when omitted
        """
        units = units or self.units
        place, language = self._place(city)
        return {**self._report(place, units), **self._provider.forecast(place, days, units, language)}

    def close(self) -> None:
        self._http.close()
