"""The weather services `Weather` reads: HTTP clients of Open-Meteo and QWeather, and what they answer.

Each provider finds places (`locate`, a list of `Place`) and reports current conditions and a daily
forecast as flat dicts whose keys carry the unit (`temperature_c`, `wind_mph`, `precipitation_mm`).

Wire formats:
- Open-Meteo (no key): `GET` the geocoding API (https://open-meteo.com/en/docs/geocoding-api;
  `?name=&count=&language=&format=json` -> `{"results": [{name, latitude, longitude, country, ...}]}`)
  and the forecast API (https://open-meteo.com/en/docs; `?latitude=&longitude=&timezone=auto` with
  `current=` or `daily=` field lists -> `{"current": {...}}` / `{"daily": {"time": [...], <field>: [...]}}`),
  weather given as WMO codes (`WMO_CODES`).
- QWeather (和风天气; key sent as the `X-QW-Api-Key` header): the city lookup `/v2/city/lookup` (on
  `geoapi.qweather.com`, or `/geo/v2/city/lookup` on the account's own host) and `/v7/weather/now`,
  `/v7/weather/{3,7,10,15,30}d`; numbers come as strings and the body's `code` is "200" on success.

Every failure (time-out, no network, HTTP 429/4xx/5xx, a body that is not JSON, a QWeather error code)
becomes an `ActionError` worded for the model. httpx is imported on the first request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from ..errors import ActionError

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
