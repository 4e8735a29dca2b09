"""Weather on recorded Open-Meteo and QWeather responses, served by httpx.MockTransport."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import FIXTURES

from inkagent.actions import ActionExecutor, Weather
from inkagent.agents import Internlm2Agent
from inkagent.errors import ActionError, ConfigError
from inkagent.llms import ScriptedLLM
from inkagent.schema import ToolCall

GEOCODES = {
    ("上海", "zh"): "geocode_shanghai_zh.json",
    ("Boston", "en"): "geocode_boston_en.json",
    ("Springfield", "en"): "geocode_springfield_en.json",
    ("Springfeld", "en"): "geocode_springfield_en.json",  # the geocoder's fuzzy matches for a typo
}
FORECASTS = {  # (latitude asked, "current" or "daily", units) -> response
    ("31.22222", "current", "metric"): "current_shanghai_metric.json",
    ("39.80172", "current", "metric"): "current_springfield_illinois_metric.json",
    ("42.35843", "daily", "imperial"): "forecast_boston_imperial.json",
}


def body(name: str) -> dict:
    return json.loads((FIXTURES / "weather" / name).read_text(encoding="utf-8"))


class Recorded:
    """An httpx transport answering Open-Meteo and QWeather requests from tests/fixtures/weather."""

    def __init__(self, status: int | None = None, raises: type[Exception] | None = None):
        self.status, self.raises = status, raises
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.raises is not None:
            raise self.raises("simulated", request=request)
        if self.status is not None:
            text = "rate limited" if self.status == 429 else "<html>Bad Gateway</html>"
            return httpx.Response(self.status, text=text)
        params, host, path = request.url.params, request.url.host, request.url.path
        if host == "geocoding-api.open-meteo.com" and path == "/v1/search":
            return httpx.Response(
                200, json=body(GEOCODES.get((params["name"], params["language"]), "geocode_no_results.json"))
            )
        if host == "api.open-meteo.com" and path == "/v1/forecast":
            if params.get("forecast_days") == "40":
                return httpx.Response(400, json=body("error_400_forecast_days.json"))
            kind = "current" if "current" in params else "daily"
            units = "imperial" if params.get("temperature_unit") == "fahrenheit" else "metric"
            return httpx.Response(200, json=body(FORECASTS[(params["latitude"], kind, units)]))
        if host == "geoapi.qweather.com" and path == "/v2/city/lookup":
            return httpx.Response(200, json=body("qweather_lookup_shanghai.json"))
        if host == "devapi.qweather.com" and path in ("/v7/weather/now", "/v7/weather/3d"):
            if request.headers.get("X-QW-Api-Key") != "test-key":
                return httpx.Response(200, json=body("qweather_code_401.json"))
            name = "qweather_now_shanghai.json" if path.endswith("now") else "qweather_3d_shanghai.json"
            return httpx.Response(200, json=body(name))
        raise AssertionError(f"unexpected request {request.url}")


def weather(transport: Recorded | None = None, **kwargs) -> Weather:
    transport = transport or Recorded()
    return Weather(client=httpx.Client(transport=httpx.MockTransport(transport)), **kwargs)


def test_current_weather_for_a_chinese_name_comes_back_in_chinese():
    transport = Recorded()
    report = weather(transport).current("上海")
    assert report["city"] == "上海" and report["place"] == "上海, 上海市, 中国"
    assert report["weather"] == "晴" and report["wind_direction"] == "东南"
    assert (report["temperature_c"], report["feels_like_c"], report["wind_kmh"]) == (22.5, 21.9, 11.2)
    assert report["humidity_percent"] == 56 and report["time"] == "2024-05-01T14:00"
    assert transport.requests[0].url.params["language"] == "zh"


def test_the_model_reads_the_report_as_json_with_chinese_unescaped():
    executor = ActionExecutor([weather()])
    result = executor.run(ToolCall(name="Weather.current", arguments={"city": "上海"}))
    assert result.ok, result.error
    assert json.loads(result.output)["weather"] == "晴" and '"晴"' in result.output


def test_forecast_in_imperial_units_with_wmo_codes_in_words():
    transport = Recorded()
    report = weather(transport).forecast("Boston", days=3, units="imperial")
    assert report["place"] == "Boston, Massachusetts, United States"  # the geocoder's first match
    assert [day["weather"] for day in report["days"]] == ["Overcast", "Slight rain", "Thunderstorm"]
    assert report["days"][1] == {
        "date": "2024-05-02",
        "weather": "Slight rain",
        "min_f": 47.1,
        "max_f": 55.4,
        "precipitation_inch": 0.213,
        "precipitation_probability_percent": 68,
        "wind_max_mph": 14.3,
    }
    params = transport.requests[-1].url.params
    assert (params["temperature_unit"], params["wind_speed_unit"], params["precipitation_unit"]) == (
        "fahrenheit",
        "mph",
        "inch",
    )
    assert params["forecast_days"] == "3"


def test_configured_units_are_the_default():
    report = weather(units="imperial").forecast("Boston")
    assert report["units"] == "imperial" and "max_f" in report["days"][0]


def test_a_region_tells_places_with_one_name_apart():
    transport = Recorded()
    report = weather(transport).current("Springfield, Illinois")
    assert (
        report["place"] == "Springfield, Illinois, United States"
        and report["weather"] == "Slight rain showers"
    )
    assert transport.requests[0].url.params["name"] == "Springfield"  # the geocoder searches names only


def test_a_region_without_that_place_lists_the_places_of_that_name():
    with pytest.raises(ActionError) as error:
        weather().current("Springfield, Texas")
    assert "no place named 'Springfield' in 'Texas'" in str(error.value)
    assert "Springfield, Illinois, United States" in str(error.value)


def test_a_misspelled_place_is_an_error_with_close_matches():
    with pytest.raises(
        ActionError, match=r"unknown place 'Springfeld'\. Close matches: Springfield, Missouri"
    ):
        weather().current("Springfeld")


def test_an_unknown_place_is_a_clear_error():
    with pytest.raises(
        ActionError, match="unknown place 'Qwxzzyv': the geocoder knows no place of that name"
    ):
        weather().current("Qwxzzyv")


def test_places_are_geocoded_once_per_session():
    transport = Recorded()
    tool = weather(transport)
    tool.current("上海")
    tool.current(" 上海 ")
    hosts = [request.url.host for request in transport.requests]
    assert hosts.count("geocoding-api.open-meteo.com") == 1 and hosts.count("api.open-meteo.com") == 2


@pytest.mark.parametrize(
    ("transport", "message"),
    [
        (Recorded(status=429), "rate-limiting requests (HTTP 429); wait a minute"),
        (Recorded(status=503), "the Open-Meteo geocoder is failing (HTTP 503); try again later"),
        (Recorded(raises=httpx.ReadTimeout), "(geocoding-api.open-meteo.com) did not answer within 10 s"),
        (
            Recorded(raises=httpx.ConnectError),
            "cannot reach the Open-Meteo geocoder (geocoding-api.open-meteo.com)",
        ),
    ],
)
def test_http_failures_are_clear_errors(transport, message):
    with pytest.raises(ActionError) as error:
        weather(transport).current("Boston")
    assert message in str(error.value)


def test_an_api_refusal_gives_its_reason():
    tool = weather()
    with pytest.raises(ActionError, match=r"refused the request \(HTTP 400\): Forecast days is invalid"):
        tool._provider.forecast(tool._place("Boston")[0], 40, "metric", "en")


def test_days_out_of_range_are_refused_before_any_request():
    transport = Recorded()
    result = ActionExecutor([weather(transport)]).run(
        ToolCall(name="Weather.forecast", arguments={"city": "Boston", "days": 30})
    )
    assert result.error_type == "invalid_arguments" and "days" in result.error
    assert transport.requests == []


def test_qweather_provider_uses_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEATHER_API_KEY", "test-key")
    transport = Recorded()
    tool = weather(transport, provider="qweather")
    now = tool.current("上海")
    assert (now["weather"], now["temperature_c"], now["wind_kmh"], now["source"]) == (
        "晴",
        23,
        13,
        "QWeather",
    )
    forecast = tool.forecast("上海", days=2)
    assert [day["weather"] for day in forecast["days"]] == ["晴", "多云 / 小雨"]
    assert forecast["days"][1]["precipitation_mm"] == 1.2
    assert transport.requests[-1].url.path == "/v7/weather/3d"
    assert all("test-key" not in str(request.url) for request in transport.requests)  # a header, not the URL


def test_qweather_without_a_key_or_with_a_bad_one_says_so(monkeypatch):
    monkeypatch.delenv("WEATHER_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="WEATHER_API_KEY"):
        Weather(provider="qweather")
    monkeypatch.setenv("WEATHER_API_KEY", "wrong-key")
    with pytest.raises(ActionError, match="code 401: the API key was refused"):
        weather(provider="qweather").current("上海")


def test_bad_units_and_providers_are_config_errors():
    with pytest.raises(ConfigError, match="units"):
        Weather(units="kelvin")
    with pytest.raises(ConfigError, match="provider"):
        Weather(provider="accuweather")


def test_no_network_reaches_the_model_as_a_clear_error():
    llm = ScriptedLLM(
        [
            '我来查询上海的天气。<|action_start|><|plugin|>\n{"name": "Weather.current", "parameters": {"city": "上海"}}'
            "<|action_end|>\n",
            "抱歉，现在无法查询天气。<|im_end|>",
        ]
    )
    with Internlm2Agent(llm, plugin_executor=ActionExecutor([Weather(timeout_s=5)])) as agent:
        result = agent.chat("上海今天天气怎么样？")
    assert result.response == "抱歉，现在无法查询天气。"
    environment = (
        llm.prompts[1].split("<|im_start|>environment name=<|plugin|>\n", 1)[1].split("<|im_end|>")[0]
    )
    assert environment.startswith(
        "Weather.current failed: cannot reach the Open-Meteo geocoder (geocoding-api.open-meteo.com)"
    )
    assert environment.endswith("Check the network connection.")


@pytest.mark.network
def test_live_open_meteo_answers_in_the_recorded_shape():
    tool = Weather()
    report = tool.current("上海")
    assert report["city"] == "上海" and isinstance(report["temperature_c"], float)
    forecast = tool.forecast("Boston", days=2, units="imperial")
    assert len(forecast["days"]) == 2 and "max_f" in forecast["days"][0]
