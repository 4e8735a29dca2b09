"""`Weather`: current conditions and daily forecasts for a city, from Open-Meteo (no key) or QWeather.

Place names may be Chinese or English: the geocoder is asked in the script of the name, so `上海` comes
back as 上海 with a Chinese weather description and `Boston` in English. A place the geocoder does not
know exactly is an error that lists its close matches, so the model can ask again instead of getting
the weather of the wrong town.
"""

from __future__ import annotations

import difflib
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from ..errors import ActionError, ConfigError
from .base import Action, api

if TYPE_CHECKING:
    import httpx

Units = Literal["metric", "imperial"]

OPEN_METEO_GEOCODING_URL = "https://geocoding-api.open-meteo.com/v1/search"
OPEN_METEO_FORECAST_URL = "https://api.open-meteo.com/v1/forecast"

# WMO weather interpretation codes, as Open-Meteo documents them
WMO_CODES: dict[int, tuple[str, str]] = {
    0: ("Clear sky", "晴"),
    1: ("Mainly clear", "晴间少云"),
    2: ("Partly cloudy", "多云"),
    3: ("Overcast", "阴"),
    45: ("Fog", "雾"),
    48: ("Depositing rime fog", "雾凇"),
    51: ("Light drizzle", "小毛毛雨"),
    53: ("Moderate drizzle", "中毛毛雨"),
    55: ("Dense drizzle", "大毛毛雨"),
    56: ("Light freezing drizzle", "小冻毛毛雨"),
    57: ("Dense freezing drizzle", "大冻毛毛雨"),
    61: ("Slight rain", "小雨"),
    63: ("Moderate rain", "中雨"),
    65: ("Heavy rain", "大雨"),
    66: ("Light freezing rain", "小冻雨"),
    67: ("Heavy freezing rain", "大冻雨"),
    71: ("Slight snowfall", "小雪"),
    73: ("Moderate snowfall", "中雪"),
    75: ("Heavy snowfall", "大雪"),
    77: ("Snow grains", "米雪"),
    80: ("Slight rain showers", "小阵雨"),
    81: ("Moderate rain showers", "中阵雨"),
    82: ("Violent rain showers", "强阵雨"),
    85: ("Slight snow showers", "小阵雪"),
    86: ("Heavy snow showers", "大阵雪"),
    95: ("Thunderstorm", "雷阵雨"),
    96: ("Thunderstorm with slight hail", "雷阵雨伴有小冰雹"),
    99: ("Thunderstorm with heavy hail", "雷阵雨伴有大冰雹"),
}

_COMPASS_EN = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
_COMPASS_ZH = ("北", "东北", "东", "东南", "南", "西南", "西", "西北")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ZH_SUFFIXES = ("特别行政区", "自治州", "地区", "市", "省", "县", "区")
_QUALIFIER_SPLIT = re.compile(r"\s*[,，]\s*")
# the unit suffix of each reported quantity, by unit system
_SUFFIX = {
    "metric": {"temperature": "c", "wind": "kmh", "precipitation": "mm"},
    "imperial": {"temperature": "f", "wind": "mph", "precipitation": "inch"},
}


def describe_wmo(code: int | None, language: str = "en") -> str:
    """A WMO weather code in words (Chinese for `zh`, English otherwise)."""
    if code is None:
        return "unknown"
    words = WMO_CODES.get(int(code))
    if words is None:
        return f"weather code {code}"
    return words[1] if language.startswith("zh") else words[0]


def compass(degrees: float | None, language: str = "en") -> str | None:
    """A wind direction in degrees as one of eight compass points."""
    if degrees is None:
        return None
    points = _COMPASS_ZH if language.startswith("zh") else _COMPASS_EN
    return points[round(float(degrees) / 45) % 8]


@dataclass(frozen=True)
class Place:
    """A place the geocoder found."""

    name: str
    latitude: float
    longitude: float
    country: str = ""
    country_code: str = ""
    admin1: str = ""
    admin2: str = ""
    timezone: str = "auto"
    id: str = ""  # the provider's own location id (QWeather needs it)

    def label(self) -> str:
        parts = [self.name]
        for part in (self.admin1, self.country):
            if part and part not in parts:
                parts.append(part)
        return ", ".join(parts)


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


class _Http:
    """GETs JSON and turns every failure into an `ActionError` the model can act on."""

    def __init__(self, client: httpx.Client | None, timeout_s: float):
        self._client = client
        self._owns_client = client is None
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(
                    timeout=self.timeout_s,
                    transport=httpx.HTTPTransport(retries=2),  # retries connection failures only
                    headers={"User-Agent": "inkagent-weather"},
                    follow_redirects=True,
                )
        return self._client

    def get_json(
        self, service: str, url: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        import httpx

        host = urlsplit(url).netloc
        try:
            response = self.client.get(url, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise ActionError(
                f"{service} ({host}) did not answer within {self.timeout_s:g} s; try again later"
            ) from exc
        except httpx.TransportError as exc:
            raise ActionError(
                f"cannot reach {service} ({host}): {type(exc).__name__}: {exc}. Check the network connection."
            ) from exc
        status = response.status_code
        if status == 429:
            raise ActionError(
                f"{service} is rate-limiting requests (HTTP 429); wait a minute before asking again"
            )
        if status >= 500:
            raise ActionError(f"{service} is failing (HTTP {status}); try again later")
        try:
            data = response.json()
        except ValueError as exc:
            if status >= 400:
                raise ActionError(f"{service} refused the request (HTTP {status})") from exc
            raise ActionError(f"{service} answered with something that is not JSON (HTTP {status})") from exc
        if status >= 400:
            raise ActionError(f"{service} refused the request (HTTP {status}): {_reason(data)}")
        return data

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None


def _reason(data: Any) -> str:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):  # QWeather's v2 errors
            return str(error.get("detail") or error.get("title") or error)
        for key in ("reason", "message", "detail"):
            if data.get(key):
                return str(data[key])
    return str(data)[:300]


def _number(value: Any) -> float | int | None:
    """QWeather sends numbers as strings; Open-Meteo as numbers; either may be missing."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and "." not in str(value) else number


class _OpenMeteo:
    name = "Open-Meteo"

    def __init__(self, http: _Http, geocoding_url: str, forecast_url: str):
        self.http, self.geocoding_url, self.forecast_url = http, geocoding_url, forecast_url

    def locate(self, name: str, language: str) -> list[Place]:
        params = {"name": name, "count": 10, "language": language, "format": "json"}
        data = self.http.get_json("the Open-Meteo geocoder", self.geocoding_url, params)
        return [
            Place(
                name=item.get("name", ""),
                latitude=item["latitude"],
                longitude=item["longitude"],
                country=item.get("country", ""),
                country_code=item.get("country_code", ""),
                admin1=item.get("admin1", ""),
                admin2=item.get("admin2", ""),
                timezone=item.get("timezone", "auto"),
                id=str(item.get("id", "")),
            )
            for item in (data.get("results") or [])
            if "latitude" in item and "longitude" in item
        ]

    def _params(self, place: Place, units: Units) -> dict[str, Any]:
        params: dict[str, Any] = {
            "latitude": place.latitude,
            "longitude": place.longitude,
            "timezone": "auto",
        }
        if units == "imperial":
            params.update(temperature_unit="fahrenheit", wind_speed_unit="mph", precipitation_unit="inch")
        return params

    def current(self, place: Place, units: Units, language: str) -> dict[str, Any]:
        fields = (
            "temperature_2m,apparent_temperature,relative_humidity_2m,precipitation,weather_code,"
            "wind_speed_10m,wind_direction_10m,is_day"
        )
        data = self.http.get_json(
            "Open-Meteo", self.forecast_url, {**self._params(place, units), "current": fields}
        )
        now = data.get("current") or {}
        if not now:
            raise ActionError("Open-Meteo sent no current conditions for this place")
        unit = _SUFFIX[units]
        return {
            "time": now.get("time"),
            "timezone": data.get("timezone"),
            "weather": describe_wmo(now.get("weather_code"), language),
            f"temperature_{unit['temperature']}": now.get("temperature_2m"),
            f"feels_like_{unit['temperature']}": now.get("apparent_temperature"),
            "humidity_percent": now.get("relative_humidity_2m"),
            f"precipitation_{unit['precipitation']}": now.get("precipitation"),
            f"wind_{unit['wind']}": now.get("wind_speed_10m"),
            "wind_direction": compass(now.get("wind_direction_10m"), language),
            "is_day": bool(now["is_day"]) if "is_day" in now else None,
        }

    def forecast(self, place: Place, days: int, units: Units, language: str) -> dict[str, Any]:
        fields = (
            "weather_code,temperature_2m_min,temperature_2m_max,precipitation_sum,"
            "precipitation_probability_max,wind_speed_10m_max"
        )
        params = {**self._params(place, units), "daily": fields, "forecast_days": days}
        data = self.http.get_json("Open-Meteo", self.forecast_url, params)
        daily = data.get("daily") or {}
        unit = _SUFFIX[units]
        out = []
        for i, date in enumerate(daily.get("time") or []):

            def value(key: str, i: int = i) -> Any:
                values = daily.get(key) or []
                return values[i] if i < len(values) else None

            out.append(
                {
                    "date": date,
                    "weather": describe_wmo(value("weather_code"), language),
                    f"min_{unit['temperature']}": value("temperature_2m_min"),
                    f"max_{unit['temperature']}": value("temperature_2m_max"),
                    f"precipitation_{unit['precipitation']}": value("precipitation_sum"),
                    "precipitation_probability_percent": value("precipitation_probability_max"),
                    f"wind_max_{unit['wind']}": value("wind_speed_10m_max"),
                }
            )
        if not out:
            raise ActionError("Open-Meteo sent no forecast for this place")
        return {"timezone": data.get("timezone"), "days": out}


class _QWeather:
    """QWeather (和风天气), as in the InternLM Tutorial. Its API answers `code` "200" on success."""

    name = "QWeather"
    _PERIODS = (3, 7, 10, 15, 30)
    _CODES = {
        "204": "no data for this place",
        "400": "bad request",
        "401": "the API key was refused (check WEATHER_API_KEY)",
        "402": "the account's quota is used up or its balance is too low",
        "403": "the key may not use this API",
        "404": "no such place",
        "429": "too many requests; wait a minute",
        "500": "server error; try again later",
    }

    def __init__(self, http: _Http, key: str, host: str | None):
        self.http, self.key = http, key
        if host:  # the account's own API host (QWeather's current scheme)
            base = host if host.startswith("http") else f"https://{host}"
            self.geo_url, self.weather_url = f"{base}/geo/v2/city/lookup", f"{base}/v7/weather"
        else:
            self.geo_url = "https://geoapi.qweather.com/v2/city/lookup"
            self.weather_url = "https://devapi.qweather.com/v7/weather"

    def _get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        data = self.http.get_json("QWeather", url, params, headers={"X-QW-Api-Key": self.key})
        code = str(data.get("code", "200"))
        if code != "200":
            if code == "404" and url == self.geo_url:
                return {"location": []}
            raise ActionError(f"QWeather answered code {code}: {self._CODES.get(code, 'unknown error')}")
        return data

    def locate(self, name: str, language: str) -> list[Place]:
        data = self._get(self.geo_url, {"location": name, "number": 10, "lang": language})
        return [
            Place(
                name=item.get("name", ""),
                latitude=float(item["lat"]),
                longitude=float(item["lon"]),
                country=item.get("country", ""),
                admin1=item.get("adm1", ""),
                admin2=item.get("adm2", ""),
                timezone=item.get("tz", "auto"),
                id=str(item.get("id", "")),
            )
            for item in data.get("location") or []
        ]

    def _params(self, place: Place, units: Units, language: str) -> dict[str, Any]:
        return {"location": place.id, "lang": language, "unit": "i" if units == "imperial" else "m"}

    def current(self, place: Place, units: Units, language: str) -> dict[str, Any]:
        now = self._get(f"{self.weather_url}/now", self._params(place, units, language)).get("now") or {}
        unit = _SUFFIX[units]
        return {
            "time": now.get("obsTime"),
            "timezone": place.timezone,
            "weather": now.get("text"),
            f"temperature_{unit['temperature']}": _number(now.get("temp")),
            f"feels_like_{unit['temperature']}": _number(now.get("feelsLike")),
            "humidity_percent": _number(now.get("humidity")),
            f"precipitation_{unit['precipitation']}": _number(now.get("precip")),
            f"wind_{unit['wind']}": _number(now.get("windSpeed")),
            "wind_direction": now.get("windDir"),
        }

    def forecast(self, place: Place, days: int, units: Units, language: str) -> dict[str, Any]:
        period = next((p for p in self._PERIODS if p >= days), self._PERIODS[-1])
        data = self._get(f"{self.weather_url}/{period}d", self._params(place, units, language))
        unit = _SUFFIX[units]
        out = [
            {
                "date": day.get("fxDate"),
                "weather": day.get("textDay")
                if day.get("textDay") == day.get("textNight")
                else f"{day.get('textDay')} / {day.get('textNight')}",
                f"min_{unit['temperature']}": _number(day.get("tempMin")),
                f"max_{unit['temperature']}": _number(day.get("tempMax")),
                f"precipitation_{unit['precipitation']}": _number(day.get("precip")),
                f"wind_max_{unit['wind']}": _number(day.get("windSpeedDay")),
            }
            for day in (data.get("daily") or [])[:days]
        ]
        if not out:
            raise ActionError("QWeather sent no forecast for this place")
        return {"timezone": place.timezone, "days": out}


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
