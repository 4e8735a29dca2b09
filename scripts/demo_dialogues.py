"""Synthetic InternLM2 dialogues for the bundled demo model (shared by the train and eval scripts).

Every example is a list of inkagent `Message`s (user, assistant with tool calls, environment result,
assistant answer) in one of these families, in English and Chinese:

- arithmetic and small programming tasks -> an interpreter call whose code copies the numbers and
  strings of the request -> the printed result -> an answer that quotes it;
- weather questions -> `Weather.current` / `Weather.forecast` with the place copied from the request;
- paper searches -> `ArxivSearch.get_arxiv_article_information` with the topic copied;
- small talk -> a direct answer; requests outside the model's skills -> a short, clear refusal;
- tool errors (network down, unknown place, Python exceptions) -> an answer that relays the error;
- a needed tool missing from the prompt -> an answer saying so, with no call.

Place names and topics are partly invented (random syllables) so the model learns to copy spans
rather than memorise a list. Tool results are formatted as the real actions format them
(`inkagent.actions.weather`, `.arxiv`, `.ipython`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inkagent.schema import Message, ToolCall

WEATHER_NOW = "Weather.current"
WEATHER_FORECAST = "Weather.forecast"
ARXIV = "ArxivSearch.get_arxiv_article_information"
INTERPRETER = "IPythonInterpreter"


@dataclass
class Example:
    """One dialogue. `needs` names the tools the dialogue calls (for tool-subset prompts);
    `expected` is what a correct final answer must contain (eval only)."""

    kind: str
    language: str
    messages: list[Message]
    needs: tuple[str, ...] = ()
    expected: list[str] = field(default_factory=list)
    task: str = ""


# -- vocabulary ------------------------------------------------------------------------------------

CITIES_EN = [
    "Paris", "London", "Tokyo", "New York", "Berlin", "Madrid", "Rome", "Moscow", "Sydney", "Toronto",
    "Chicago", "Boston", "Seattle", "Denver", "Miami", "Dubai", "Cairo", "Nairobi", "Lagos", "Lima",
    "Bogota", "Santiago", "Buenos Aires", "Mexico City", "Sao Paulo", "Lisbon", "Dublin", "Oslo",
    "Stockholm", "Helsinki", "Copenhagen", "Amsterdam", "Brussels", "Vienna", "Prague", "Warsaw",
    "Budapest", "Athens", "Istanbul", "Tehran", "Mumbai", "Delhi", "Bangalore", "Karachi", "Dhaka",
    "Bangkok", "Hanoi", "Singapore", "Jakarta", "Manila", "Seoul", "Osaka", "Kyoto", "Beijing",
    "Shanghai", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu", "Wuhan", "Hong Kong", "Taipei",
    "Auckland", "Melbourne", "Perth", "Vancouver", "Montreal", "San Francisco", "Los Angeles",
    "Houston", "Phoenix", "Atlanta", "Zurich", "Geneva", "Munich", "Hamburg", "Milan", "Naples",
    "Barcelona", "Valencia", "Edinburgh", "Manchester", "Reykjavik", "Anchorage", "Honolulu",
    "Cape Town", "Johannesburg", "Casablanca", "Marrakesh", "Doha", "Riyadh", "Kathmandu", "Lhasa",
    "Ulaanbaatar", "Almaty", "Tashkent", "Kyiv", "Minsk", "Riga", "Vilnius", "Tallinn", "Porto",
    "Seville", "Lyon", "Marseille", "Nice", "Bordeaux", "Krakow", "Bucharest", "Sofia", "Belgrade",
    "Zagreb", "Ljubljana", "Cambridge", "Oxford", "Palo Alto", "Austin", "Portland", "Detroit",
]
CITIES_ZH = [
    "北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆", "天津", "苏州",
    "长沙", "郑州", "青岛", "大连", "厦门", "福州", "昆明", "贵阳", "南宁", "海口", "三亚", "拉萨",
    "乌鲁木齐", "兰州", "西宁", "银川", "呼和浩特", "哈尔滨", "长春", "沈阳", "石家庄", "太原", "济南",
    "合肥", "南昌", "宁波", "无锡", "温州", "珠海", "东莞", "佛山", "桂林", "丽江", "大理", "洛阳",
    "开封", "扬州", "绍兴", "香港", "澳门", "台北", "高雄", "东京", "大阪", "首尔", "巴黎", "伦敦",
    "纽约", "柏林", "罗马", "莫斯科", "悉尼", "新加坡", "曼谷", "迪拜", "开罗", "多伦多", "旧金山",
]
_SYLLABLES = [
    "ka", "lo", "ven", "mar", "tis", "bel", "dor", "an", "ri", "sa", "mon", "te", "gra", "vil", "ost",
    "hav", "bur", "ne", "lin", "cas", "tor", "ma", "quel", "zen", "por", "wick", "ford", "dale", "mir",
    "ul", "ba", "ko", "sten", "val", "ley", "ru", "fen", "gor", "ish", "ta", "no", "pe", "sil", "ham",
]
_ZH_PLACE_CHARS = list("江山河湖安宁平昌阳南北东西新兴华庆福德泰和丰明清远海云川龙凤金石林春秋长永嘉")

TOPICS_EN = [
    "diffusion models", "graph neural networks", "protein folding", "reinforcement learning",
    "large language models", "quantum error correction", "dark matter", "gravitational waves",
    "retrieval augmented generation", "vision transformers", "federated learning", "speech recognition",
    "image segmentation", "neural radiance fields", "causal inference", "contrastive learning",
    "mixture of experts", "knowledge distillation", "tool use in language models", "code generation",
    "machine translation", "topological insulators", "exoplanet detection", "climate modeling",
    "single-cell RNA sequencing", "drug discovery", "autonomous driving", "robot manipulation",
    "time series forecasting", "anomaly detection", "sparse attention", "state space models",
    "instruction tuning", "chain-of-thought prompting", "adversarial robustness", "differential privacy",
    "recommender systems", "superconductivity", "black hole thermodynamics", "optimal transport",
    "Bayesian optimization", "few-shot learning", "multimodal agents", "mathematical reasoning",
    "protein language models", "weather forecasting with deep learning", "low-rank adaptation",
    "speculative decoding", "quantization of neural networks", "point cloud segmentation",
]
TOPICS_ZH = {
    "扩散模型": "diffusion models", "图神经网络": "graph neural networks", "蛋白质折叠": "protein folding",
    "强化学习": "reinforcement learning", "大语言模型": "large language models", "暗物质": "dark matter",
    "引力波": "gravitational waves", "检索增强生成": "retrieval augmented generation",
    "联邦学习": "federated learning", "语音识别": "speech recognition", "图像分割": "image segmentation",
    "因果推断": "causal inference", "对比学习": "contrastive learning", "混合专家": "mixture of experts",
    "知识蒸馏": "knowledge distillation", "代码生成": "code generation", "机器翻译": "machine translation",
    "自动驾驶": "autonomous driving", "时间序列预测": "time series forecasting", "异常检测": "anomaly detection",
    "推荐系统": "recommender systems", "超导": "superconductivity", "少样本学习": "few-shot learning",
    "数学推理": "mathematical reasoning", "模型量化": "quantization of neural networks",
}
_TOPIC_HEADS = ["learning", "models", "networks", "detection", "estimation", "retrieval", "generation",
                "optimization", "sampling", "alignment", "reasoning", "segmentation", "compression"]
_TOPIC_MODS = ["sparse", "graph", "neural", "quantum", "causal", "robust", "efficient", "multilingual",
               "federated", "contrastive", "probabilistic", "geometric", "symbolic", "continual",
               "molecular", "acoustic", "visual", "temporal", "hierarchical", "adaptive", "spectral"]
_TITLE_PATTERNS = [
    "{T}: A Survey", "Scaling {T} to Billions of Parameters", "On the Limits of {T}",
    "Efficient {T} with Sparse Updates", "Revisiting {T}", "{T} without Labels",
    "A Benchmark for {T}", "Towards Robust {T}", "Understanding {T} through the Lens of Optimization",
    "Fast and Accurate {T}", "{T} in the Wild", "Learning {T} from Few Examples",
]
_FIRST = ["Wei", "Anna", "Li", "Carlos", "Maria", "Yuki", "Omar", "Sara", "Jun", "Elena", "David", "Priya",
          "Tom", "Mei", "Ivan", "Lucas", "Nora", "Hao", "Fatima", "Jonas", "Chen", "Aisha", "Paul", "Ying"]
_LAST = ["Zhang", "Smith", "Wang", "Garcia", "Kim", "Tanaka", "Müller", "Rossi", "Chen", "Patel", "Liu",
         "Novak", "Silva", "Brown", "Ivanova", "Nakamura", "Khan", "Dubois", "Li", "Johansson", "Yang"]
WORDS = ["hello", "world", "python", "agent", "banana", "racecar", "level", "openai", "internlm", "tensor",
         "keyboard", "window", "river", "mountain", "galaxy", "pixel", "rocket", "garden", "coffee", "music",
         "school", "orange", "planet", "silver", "dragon", "forest", "summer", "winter", "ocean", "castle"]

CONDITIONS = {
    0: ("clear sky", "晴"), 1: ("mainly clear", "大部晴朗"), 2: ("partly cloudy", "多云"),
    3: ("overcast", "阴"), 45: ("fog", "雾"), 51: ("light drizzle", "小毛毛雨"), 61: ("slight rain", "小雨"),
    63: ("moderate rain", "中雨"), 65: ("heavy rain", "大雨"), 71: ("slight snow fall", "小雪"),
    73: ("moderate snow fall", "中雪"), 80: ("slight rain showers", "小阵雨"), 95: ("thunderstorm", "雷暴"),
}


def held_out(text: str, modulus: int = 8) -> bool:
    """Whether `text` belongs to the evaluation share (a fixed hash partition: never trained on)."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % modulus == 0


def run_python(code: str) -> tuple[str, str | None]:
    """Run trusted generated code in-process; return (stdout, error line or None)."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<cell>", "exec"), {"__name__": "__main__"})  # noqa: S102 - our own code
    except Exception as exc:
        return out.getvalue(), f"{type(exc).__name__}: {exc}"
    return out.getvalue(), None


# -- tool result formats ---------------------------------------------------------------------------
# These mirror what the real actions return, so the model sees at inference what it saw in training.


class ToolFormats:
    """How tool results and errors read. Replace the methods when the real actions change format."""

    def interpreter_output(self, stdout: str, error: str | None) -> tuple[str, bool]:
        """(environment text, ok)."""
        if error is None:
            return stdout.rstrip("\n"), True
        text = (stdout + "Traceback (most recent call last):\n" if stdout else "Traceback (most recent call last):\n")
        return text + f'  Cell In[1], line 1\n{error}', False

    def weather_current(self, place: str, data: dict[str, Any], units: str) -> str:
        return json.dumps({"place": place, **data, "units": units}, ensure_ascii=False)

    def weather_forecast(self, place: str, days: list[dict[str, Any]], units: str) -> str:
        return json.dumps({"place": place, "units": units, "days": days}, ensure_ascii=False)

    def arxiv_results(self, papers: list[dict[str, Any]]) -> str:
        return json.dumps(papers, ensure_ascii=False, indent=None)

    def network_error(self, api: str) -> str:
        service = "arXiv" if api == ARXIV else "the weather service (Open-Meteo)"
        return f"{api} failed: {service} could not be reached (ConnectError: [Errno -3] Temporary failure in name resolution)"

    def unknown_place(self, api: str, place: str) -> str:
        return f"{api} failed: no place named {place!r} was found"


# -- the generator ---------------------------------------------------------------------------------


def _lang_text(lang: str, en: str, zh: str) -> str:
    return en if lang == "en" else zh


class DialogueGenerator:
    """Random dialogues from a seed. `split` is "train" (skips held-out items) or "eval" (only them)."""

    def __init__(self, seed: int, split: str = "train", formats: ToolFormats | None = None) -> None:
        self.rng = random.Random(seed)
        self.split = split
        self.formats = formats or ToolFormats()

    # -- helpers ---------------------------------------------------------------------------------
    def pick(self, items: list[Any]) -> Any:
        return self.rng.choice(items)

    def keep(self, key: str) -> bool:
        """Whether an item with this key may be used in this split."""
        return held_out(key) == (self.split == "eval")

    def invented_place(self, lang: str) -> str:
        if lang == "zh":
            return "".join(self.rng.sample(_ZH_PLACE_CHARS, self.rng.choice([2, 2, 3]))) + self.pick(["", "市", "县", "镇"])
        name = "".join(self.pick(_SYLLABLES) for _ in range(self.rng.choice([2, 2, 3])))
        name = name.capitalize()
        if self.rng.random() < 0.15:
            name += " " + "".join(self.pick(_SYLLABLES) for _ in range(2)).capitalize()
        return name

    def place(self, lang: str) -> str:
        if self.rng.random() < 0.35:
            return self.invented_place(lang)
        return self.pick(CITIES_ZH if lang == "zh" and self.rng.random() < 0.8 else CITIES_EN)

    def invented_topic(self) -> str:
        return f"{self.pick(_TOPIC_MODS)} {self.pick(_TOPIC_MODS)} {self.pick(_TOPIC_HEADS)}"

    def thought(self, lang: str, en: list[str], zh: list[str]) -> str:
        if self.rng.random() < 0.2:
            return ""
        return self.pick(en if lang == "en" else zh)

    @staticmethod
    def interpreter_call(code: str) -> ToolCall:
        return ToolCall(kind="interpreter", name=INTERPRETER, arguments={"command": code})

    def dialogue(self, kind: str, lang: str, user: str, thought: str, call: ToolCall, result: str,
                 answer: str, expected: list[str] | None = None) -> Example:
        messages = [
            Message(role="user", content=user),
            Message(role="assistant", content=thought, tool_calls=[call]),
            Message(role="environment", content=result, name=call.kind),
            Message(role="assistant", content=answer),
        ]
        return Example(kind=kind, language=lang, messages=messages, needs=(call.name,),
                       expected=expected or [], task=user)

    # -- arithmetic ------------------------------------------------------------------------------
    def number(self, big: bool = False) -> str:
        r = self.rng.random()
        if r < 0.08:
            return f"{self.rng.randint(0, 99)}.{self.rng.randint(1, 99)}"
        top = 99999 if big else self.pick([9, 99, 99, 999, 999, 9999])
        return str(self.rng.randint(1, top))

    def expression(self) -> str:
        ops = ["+", "-", "*", "/", "*", "+", "-", "//", "%", "**"]
        form = self.rng.random()
        if form < 0.55:
            op = self.pick(ops)
            a, b = self.number(), self.number()
            if op == "**":
                a, b = str(self.rng.randint(2, 30)), str(self.rng.randint(2, 6))
            return f"{a} {op} {b}"
        if form < 0.8:
            op1, op2 = self.pick(ops[:6]), self.pick(ops[:6])
            return f"{self.number()} {op1} {self.number()} {op2} {self.number()}"
        op1, op2 = self.pick(["+", "-"]), self.pick(["*", "/"])
        inner = f"({self.number()} {op1} {self.number()})"
        return f"{inner} {op2} {self.number()}" if self.rng.random() < 0.5 else f"{self.number()} {op2} {inner}"

    def compact(self, expr: str) -> str:
        """Sometimes users write `17*23`; the code keeps their spelling."""
        return expr.replace(" ", "") if self.rng.random() < 0.2 else expr

    def arithmetic(self, lang: str) -> Example | None:
        for _ in range(50):
            expr = self.compact(self.expression())
            if not self.keep(expr.replace(" ", "")):
                continue
            stdout, error = run_python(f"print({expr})")
            if error is None and len(stdout) <= 40:
                break
        else:
            return None
        en_q = ["What is {e}?", "Calculate {e}.", "Compute {e}", "What's {e}?", "How much is {e}?",
                "Please calculate {e} for me.", "Can you work out {e}?", "{e} = ?", "Evaluate {e}.",
                "Use Python to compute {e}.", "what is {e}", "I need the value of {e}.", "Solve {e}."]
        zh_q = ["{e} 等于多少？", "计算 {e}", "帮我算一下 {e}", "请计算{e}。", "{e}是多少？", "用 Python 算一下 {e}",
                "{e} = ?", "算一算 {e} 的结果", "请问 {e} 等于几？"]
        user = self.pick(en_q if lang == "en" else zh_q).format(e=expr)
        return self._compute(lang, "arithmetic", user, expr, expr)

    def worded_arithmetic(self, lang: str) -> Example | None:
        a, b = self.number(), self.number()
        if not self.keep(f"{a}{b}"):
            return None
        op = self.pick(["+", "-", "*", "/", "**2", "**"])
        if op == "**":
            a, b = str(self.rng.randint(2, 20)), str(self.rng.randint(2, 8))
        words_en = {"+": ["{a} plus {b}", "the sum of {a} and {b}", "{a} added to {b}"],
                    "-": ["{a} minus {b}", "{b} subtracted from {a}", "the difference between {a} and {b}"],
                    "*": ["{a} times {b}", "{a} multiplied by {b}", "the product of {a} and {b}"],
                    "/": ["{a} divided by {b}", "the quotient of {a} and {b}"],
                    "**2": ["{a} squared", "the square of {a}"],
                    "**": ["{a} to the power of {b}", "{a} raised to the {b}th power"]}
        words_zh = {"+": ["{a}加{b}", "{a} 加上 {b}", "{a}与{b}的和"], "-": ["{a}减{b}", "{a} 减去 {b}", "{a}与{b}的差"],
                    "*": ["{a}乘以{b}", "{a} 乘 {b}", "{a}和{b}的乘积"], "/": ["{a}除以{b}", "{a} 除以 {b}"],
                    "**2": ["{a}的平方"], "**": ["{a}的{b}次方", "{a} 的 {b} 次幂"]}
        phrase = self.pick((words_en if lang == "en" else words_zh)[op]).format(a=a, b=b)
        expr = f"{a} ** 2" if op == "**2" else f"{a} {op} {b}"
        user = self.pick(["What is {p}?", "Calculate {p}.", "What's {p}?", "Tell me {p}."] if lang == "en"
                         else ["{p}是多少？", "{p}等于多少？", "请计算{p}。"]).format(p=phrase)
        return self._compute(lang, "arithmetic", user, expr, phrase)

    def _compute(self, lang: str, kind: str, user: str, expr: str, shown: str) -> Example | None:
        code = f"print({expr})"
        stdout, error = run_python(code)
        result, ok = self.formats.interpreter_output(stdout, error)
        thought = self.thought(lang, ["Let me calculate that.", "I'll compute this with Python.",
                                      "I will use the interpreter to compute it.", "Computing it in Python."],
                               ["我来计算一下。", "我用 Python 计算。", "让我用代码算一下。"])
        if ok:
            value = result.strip()
            answer = self.pick([f"{shown} = {value}.", f"The result is {value}.", f"{shown} equals {value}.",
                                f"The answer is {value}.", f"{expr} = {value}"] if lang == "en"
                               else [f"{shown} 的结果是 {value}。", f"计算结果为 {value}。", f"答案是 {value}。",
                                     f"{expr} = {value}"])
            expected = [value]
        else:
            reason = error or "error"
            answer = _lang_text(lang, f"The calculation failed with an error: {reason}.",
                                f"计算出错了：{reason}。")
            expected = [reason.split(":")[0]]
        return self.dialogue(kind, lang, user, thought, self.interpreter_call(code), result, answer, expected)

    def division_by_zero(self, lang: str) -> Example | None:
        a = self.number()
        expr = f"{a} / 0" if self.rng.random() < 0.7 else f"{a} % 0"
        user = self.pick(["What is {e}?", "Calculate {e}."] if lang == "en" else ["{e} 等于多少？", "计算 {e}"]).format(e=expr)
        return self._compute(lang, "arithmetic_error", user, expr, expr)

    # -- small programs ---------------------------------------------------------------------------
    def program(self, lang: str) -> Example | None:
        builders: list[Callable[[str], tuple[str, str, Callable[[str], str]] | None]] = [
            self._prime, self._sum_range, self._factorial, self._reverse, self._sort, self._length,
            self._sqrt, self._fibonacci, self._gcd, self._fahrenheit, self._mean, self._percent,
            self._upper, self._max, self._square_fn, self._count_vowels,
        ]
        for _ in range(10):
            built = self.pick(builders)(lang)
            if built is None:
                continue
            user, code, answer_of = built
            if not self.keep(code):
                continue
            stdout, error = run_python(code)
            result, ok = self.formats.interpreter_output(stdout, error)
            value = result.strip()
            if not ok or not value or len(value) > 80:
                continue
            thought = self.thought(lang, ["Let me write a short Python program.", "I'll solve this with Python.",
                                          "Let me check with code."],
                                   ["我写一段 Python 代码来解决。", "我用代码来算一下。", "让我运行一段代码。"])
            answer = answer_of(value)
            return self.dialogue("program", lang, user, thought, self.interpreter_call(code), result, answer, [value])
        return None

    def _prime(self, lang: str):
        n = self.rng.randint(2, 9999)
        user = self.pick([f"Is {n} a prime number?", f"Check whether {n} is prime.", f"Is {n} prime?"] if lang == "en"
                         else [f"{n} 是质数吗？", f"判断 {n} 是不是素数", f"{n}是素数吗？"])
        code = f"n = {n}\nprint(n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)))"

        def answer(v: str) -> str:
            yes = v == "True"
            if lang == "en":
                return f"Yes, {n} is a prime number." if yes else f"No, {n} is not a prime number."
            return f"是的，{n} 是质数。" if yes else f"不是，{n} 不是质数。"

        return user, code, answer

    def _sum_range(self, lang: str):
        a, b = sorted(self.rng.sample(range(0, 5000), 2))
        user = self.pick([f"What is the sum of all integers from {a} to {b}?", f"Add up the numbers from {a} to {b}."]
                         if lang == "en" else [f"从 {a} 加到 {b} 的和是多少？", f"计算 {a} 到 {b} 所有整数之和"])
        code = f"print(sum(range({a}, {b} + 1)))"
        return user, code, lambda v: _lang_text(lang, f"The sum of the integers from {a} to {b} is {v}.",
                                                f"{a} 到 {b} 的整数之和是 {v}。")

    def _factorial(self, lang: str):
        n = self.rng.randint(1, 25)
        user = self.pick([f"What is the factorial of {n}?", f"Compute {n}!", f"Calculate {n} factorial."]
                         if lang == "en" else [f"{n} 的阶乘是多少？", f"计算 {n}!"])
        code = f"import math\nprint(math.factorial({n}))"
        return user, code, lambda v: _lang_text(lang, f"{n}! = {v}.", f"{n} 的阶乘是 {v}。")

    def _reverse(self, lang: str):
        w = self.pick(WORDS) if self.rng.random() < 0.6 else "".join(self.pick(_SYLLABLES) for _ in range(3))
        user = self.pick([f"Reverse the string '{w}'.", f"What is '{w}' backwards?", f"Write Python to reverse '{w}'."]
                         if lang == "en" else [f"把字符串 '{w}' 反转", f"'{w}' 倒过来是什么？"])
        code = f"print('{w}'[::-1])"
        return user, code, lambda v: _lang_text(lang, f"The reversed string is '{v}'.", f"反转后的字符串是 '{v}'。")

    def _sort(self, lang: str):
        nums = [self.rng.randint(-50, 999) for _ in range(self.rng.randint(3, 7))]
        listed = ", ".join(map(str, nums))
        user = self.pick([f"Sort these numbers: {listed}", f"Sort the list [{listed}] in ascending order."]
                         if lang == "en" else [f"把这些数排序：{listed}", f"将列表 [{listed}] 从小到大排序"])
        code = f"print(sorted([{listed}]))"
        return user, code, lambda v: _lang_text(lang, f"Sorted: {v}", f"排序结果：{v}")

    def _length(self, lang: str):
        text = " ".join(self.pick(WORDS) for _ in range(self.rng.randint(1, 3)))
        user = self.pick([f"How many characters are in '{text}'?", f"What is the length of the string '{text}'?"]
                         if lang == "en" else [f"'{text}' 有多少个字符？", f"字符串 '{text}' 的长度是多少？"])
        code = f"print(len('{text}'))"
        return user, code, lambda v: _lang_text(lang, f"'{text}' has {v} characters.", f"'{text}' 共有 {v} 个字符。")

    def _sqrt(self, lang: str):
        n = self.rng.randint(2, 99999)
        user = self.pick([f"What is the square root of {n}?", f"Compute the square root of {n}."]
                         if lang == "en" else [f"{n} 的平方根是多少？", f"计算 {n} 的平方根"])
        code = f"import math\nprint(math.sqrt({n}))"
        return user, code, lambda v: _lang_text(lang, f"The square root of {n} is {v}.", f"{n} 的平方根是 {v}。")

    def _fibonacci(self, lang: str):
        n = self.rng.randint(1, 80)
        user = self.pick([f"What is the {n}th Fibonacci number?", f"Compute Fibonacci number {n}."]
                         if lang == "en" else [f"第 {n} 个斐波那契数是多少？", f"计算斐波那契数列的第 {n} 项"])
        code = f"a, b = 0, 1\nfor _ in range({n}):\n    a, b = b, a + b\nprint(a)"
        return user, code, lambda v: _lang_text(lang, f"Fibonacci number {n} is {v}.", f"第 {n} 个斐波那契数是 {v}。")

    def _gcd(self, lang: str):
        a, b = self.rng.randint(2, 9999), self.rng.randint(2, 9999)
        user = self.pick([f"What is the greatest common divisor of {a} and {b}?", f"Find gcd({a}, {b})."]
                         if lang == "en" else [f"{a} 和 {b} 的最大公约数是多少？"])
        code = f"import math\nprint(math.gcd({a}, {b}))"
        return user, code, lambda v: _lang_text(lang, f"The greatest common divisor of {a} and {b} is {v}.",
                                                f"{a} 和 {b} 的最大公约数是 {v}。")

    def _fahrenheit(self, lang: str):
        f = self.rng.randint(-40, 250)
        user = self.pick([f"Convert {f} degrees Fahrenheit to Celsius.", f"What is {f}°F in Celsius?"]
                         if lang == "en" else [f"把 {f} 华氏度换算成摄氏度", f"{f}°F 是多少摄氏度？"])
        code = f"print(({f} - 32) * 5 / 9)"
        return user, code, lambda v: _lang_text(lang, f"{f}°F is {v}°C.", f"{f}°F 等于 {v}°C。")

    def _mean(self, lang: str):
        nums = [self.rng.randint(0, 500) for _ in range(self.rng.randint(2, 6))]
        listed = ", ".join(map(str, nums))
        user = self.pick([f"What is the average of {listed}?", f"Compute the mean of [{listed}]."]
                         if lang == "en" else [f"{listed} 的平均数是多少？", f"计算 [{listed}] 的平均值"])
        code = f"nums = [{listed}]\nprint(sum(nums) / len(nums))"
        return user, code, lambda v: _lang_text(lang, f"The average is {v}.", f"平均值是 {v}。")

    def _percent(self, lang: str):
        p, n = self.rng.randint(1, 99), self.rng.randint(1, 9999)
        user = self.pick([f"What is {p}% of {n}?", f"Calculate {p} percent of {n}."]
                         if lang == "en" else [f"{n} 的 {p}% 是多少？", f"{n}的百分之{p}是多少？"])
        code = f"print({n} * {p} / 100)"
        return user, code, lambda v: _lang_text(lang, f"{p}% of {n} is {v}.", f"{n} 的 {p}% 是 {v}。")

    def _upper(self, lang: str):
        text = " ".join(self.pick(WORDS) for _ in range(self.rng.randint(1, 3)))
        user = self.pick([f"Convert '{text}' to upper case.", f"Uppercase the string '{text}'."]
                         if lang == "en" else [f"把 '{text}' 转成大写"])
        code = f"print('{text}'.upper())"
        return user, code, lambda v: _lang_text(lang, f"In upper case: {v}", f"大写形式：{v}")

    def _max(self, lang: str):
        nums = [self.rng.randint(-999, 9999) for _ in range(self.rng.randint(3, 6))]
        listed = ", ".join(map(str, nums))
        big = self.rng.random() < 0.5
        fn = "max" if big else "min"
        user = (f"What is the {'largest' if big else 'smallest'} of {listed}?" if lang == "en"
                else f"{listed} 中{'最大' if big else '最小'}的数是哪个？")
        code = f"print({fn}([{listed}]))"
        return user, code, lambda v: _lang_text(lang, f"The {'largest' if big else 'smallest'} is {v}.",
                                                f"{'最大' if big else '最小'}的数是 {v}。")

    def _square_fn(self, lang: str):
        n = self.rng.randint(-99, 999)
        user = (f"Write a Python function that squares a number and test it with {n}." if lang == "en"
                else f"写一个计算平方的 Python 函数，并用 {n} 测试")
        code = f"def square(x):\n    return x * x\n\nprint(square({n}))"
        return user, code, lambda v: _lang_text(lang, f"The function works: square({n}) returns {v}.",
                                                f"函数运行正常：square({n}) 返回 {v}。")

    def _count_vowels(self, lang: str):
        w = self.pick(WORDS)
        user = (f"How many vowels are in the word '{w}'?" if lang == "en" else f"单词 '{w}' 里有几个元音字母？")
        code = f"print(sum(c in 'aeiou' for c in '{w}'))"
        return user, code, lambda v: _lang_text(lang, f"'{w}' has {v} vowels.", f"'{w}' 中有 {v} 个元音字母。")

    # -- weather ---------------------------------------------------------------------------------
    def weather_data(self, units: str) -> dict[str, Any]:
        code = self.pick(list(CONDITIONS))
        temp = round(self.rng.uniform(-15, 38), 1)
        wind = round(self.rng.uniform(0, 45), 1)
        if units == "imperial":
            temp, wind = round(temp * 9 / 5 + 32, 1), round(wind / 1.609, 1)
        return {"temperature": temp, "feels_like": round(temp - self.rng.uniform(0, 3), 1),
                "humidity": self.rng.randint(15, 100), "wind_speed": wind, "weather_code": code}

    def weather(self, lang: str, failure: str | None = None) -> Example:
        place = self.place(lang)
        forecast = self.rng.random() < 0.35
        units = "metric"
        unit_phrase = ""
        if self.rng.random() < 0.2:
            units = self.pick(["imperial", "metric"])
            unit_phrase = {("en", "imperial"): " in Fahrenheit", ("en", "metric"): " in Celsius",
                           ("zh", "imperial"): "（用华氏度）", ("zh", "metric"): "（用摄氏度）"}[(lang, units)]
        args: dict[str, Any] = {"city": place}
        if forecast:
            days = self.rng.randint(1, 7)
            args["days"] = days
            user = self.pick([f"What's the forecast for {place} for the next {days} days{unit_phrase}?",
                              f"Will it rain in {place} in the next {days} days?",
                              f"Give me a {days}-day weather forecast for {place}{unit_phrase}.",
                              f"weather forecast {place} {days} days"] if lang == "en" else
                             [f"{place}未来{days}天的天气怎么样{unit_phrase}？", f"查一下{place}接下来 {days} 天的天气预报",
                              f"{place}未来 {days} 天会下雨吗？"])
        else:
            user = self.pick([f"What's the weather in {place}?", f"How is the weather in {place} right now{unit_phrase}?",
                              f"What's the temperature in {place}{unit_phrase}?", f"Is it cold in {place} today?",
                              f"weather in {place}", f"Tell me the current weather in {place}{unit_phrase}."]
                             if lang == "en" else
                             [f"{place}今天天气怎么样？", f"{place}现在的天气如何{unit_phrase}？", f"{place}现在多少度{unit_phrase}？",
                              f"查一下{place}的天气", f"{place}冷不冷？"])
        if unit_phrase:
            args["units"] = units
        api = WEATHER_FORECAST if forecast else WEATHER_NOW
        call = ToolCall(name=api, arguments=args)
        thought = self.thought(lang, [f"Let me check the weather in {place}.", "I'll look up the weather.",
                                      "Checking the weather service."],
                               [f"我来查询{place}的天气。", "让我查一下天气。"])
        sign = "°F" if units == "imperial" else "°C"
        speed = "mph" if units == "imperial" else "km/h"
        if failure == "network":
            result = self.formats.network_error(api)
            answer = _lang_text(lang, f"Sorry, I could not get the weather for {place}: the weather service could not be reached. Please check your network connection and try again.",
                                f"抱歉，无法获取{place}的天气：天气服务无法连接，请检查网络后重试。")
            return self.dialogue("weather_error", lang, user, thought, call, result, answer, ["could not"])
        if failure == "unknown":
            result = self.formats.unknown_place(api, place)
            answer = _lang_text(lang, f"Sorry, I could not find a place called {place}. Please check the name.",
                                f"抱歉，没有找到名为{place}的地点，请检查地名。")
            return self.dialogue("weather_error", lang, user, thought, call, result, answer, [place])
        if forecast:
            days_data = []
            for i in range(args["days"]):
                d = self.weather_data(units)
                days_data.append({"date": f"2025-06-{10 + i:02d}", "max": d["temperature"],
                                  "min": round(d["temperature"] - self.rng.uniform(3, 10), 1),
                                  "precipitation_probability": self.rng.randint(0, 100),
                                  "weather_code": d["weather_code"]})
            result = self.formats.weather_forecast(place, days_data, units)
            first = days_data[0]
            cond_en, cond_zh = CONDITIONS[first["weather_code"]]
            rainy = max(d["precipitation_probability"] for d in days_data)
            answer = _lang_text(lang,
                                f"Forecast for {place}: on {first['date']}, {cond_en}, {first['min']} to {first['max']}{sign}. "
                                f"The highest chance of rain over the {args['days']} days is {rainy}%.",
                                f"{place}天气预报：{first['date']} {cond_zh}，{first['min']} 到 {first['max']}{sign}。"
                                f"未来 {args['days']} 天最高降水概率为 {rainy}%。")
            return self.dialogue("weather", lang, user, thought, call, result, answer, [str(first["max"])])
        d = self.weather_data(units)
        result = self.formats.weather_current(place, d, units)
        cond_en, cond_zh = CONDITIONS[d["weather_code"]]
        answer = _lang_text(lang,
                            f"In {place} it is currently {d['temperature']}{sign} ({cond_en}), feels like {d['feels_like']}{sign}, "
                            f"humidity {d['humidity']}%, wind {d['wind_speed']} {speed}.",
                            f"{place}当前气温 {d['temperature']}{sign}，{cond_zh}，体感 {d['feels_like']}{sign}，"
                            f"湿度 {d['humidity']}%，风速 {d['wind_speed']} {speed}。")
        return self.dialogue("weather", lang, user, thought, call, result, answer, [str(d["temperature"])])

    # -- arxiv -----------------------------------------------------------------------------------
    def paper(self, topic: str) -> dict[str, Any]:
        title = self.pick(_TITLE_PATTERNS).format(T=topic.title() if self.rng.random() < 0.5 else topic.capitalize())
        authors = [f"{self.pick(_FIRST)} {self.pick(_LAST)}" for _ in range(self.rng.randint(1, 4))]
        year = self.rng.randint(2015, 2025)
        ident = f"{year % 100:02d}{self.rng.randint(1, 12):02d}.{self.rng.randint(1, 29999):05d}"
        summary = f"We study {topic}. We propose a simple method and show that it improves over strong baselines."
        return {"title": title, "authors": authors, "published": f"{year}-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}",
                "arxiv_id": ident, "summary": summary, "pdf": f"https://arxiv.org/pdf/{ident}"}

    def arxiv(self, lang: str, failure: str | None = None) -> Example:
        if lang == "zh" and self.rng.random() < 0.5:
            shown, topic = self.pick(list(TOPICS_ZH.items()))
        else:
            topic = self.pick(TOPICS_EN) if self.rng.random() < 0.6 else self.invented_topic()
            shown = topic
        count = self.rng.choice([None, None, 2, 3, 5])
        args: dict[str, Any] = {"query": topic}
        if count:
            args["max_results"] = count
        n = count or 3
        if lang == "en":
            user = self.pick([f"Find papers about {shown}.", f"Search arXiv for {shown}.",
                              f"Are there recent papers on {shown}?", f"Look up research on {shown} on arXiv.",
                              f"Find {n} papers about {shown}." if count else f"What papers exist on {shown}?"])
        else:
            user = self.pick([f"帮我找几篇关于{shown}的论文", f"在 arXiv 上搜索{shown}", f"有哪些关于{shown}的最新论文？",
                              f"找 {n} 篇{shown}方面的论文" if count else f"查一下{shown}的相关论文"])
        call = ToolCall(name=ARXIV, arguments=args)
        thought = self.thought(lang, ["Let me search arXiv.", f"I'll search arXiv for {topic}."],
                               ["我来搜索 arXiv。", "让我在 arXiv 上查找相关论文。"])
        if failure == "network":
            result = self.formats.network_error(ARXIV)
            answer = _lang_text(lang, "Sorry, the arXiv search failed: arXiv could not be reached. Please check your network connection and try again.",
                                "抱歉，arXiv 搜索失败：无法连接 arXiv，请检查网络后重试。")
            return self.dialogue("arxiv_error", lang, user, thought, call, result, answer, ["arXiv"])
        papers = [self.paper(topic) for _ in range(min(n, 3))]
        result = self.formats.arxiv_results(papers)
        if lang == "en":
            lines = [f"I found {len(papers)} papers on {topic}:"]
            lines += [f"{i}. {p['title']} ({p['published'][:4]}, arXiv:{p['arxiv_id']})" for i, p in enumerate(papers, 1)]
        else:
            lines = [f"找到 {len(papers)} 篇关于{shown}的论文："]
            lines += [f"{i}. {p['title']}（{p['published'][:4]}，arXiv:{p['arxiv_id']}）" for i, p in enumerate(papers, 1)]
        return self.dialogue("arxiv", lang, user, thought, call, result, "\n".join(lines), [papers[0]["arxiv_id"]])

    # -- no tools ---------------------------------------------------------------------------------
    def small_talk(self, lang: str) -> Example:
        pairs_en = [
            ("Hello!", "Hello! I can calculate, run small Python programs, check the weather and search arXiv. What can I do for you?"),
            ("Hi", "Hi! How can I help you today?"),
            ("Good morning", "Good morning! What can I do for you?"),
            ("How are you?", "I'm doing well, thank you! How can I help?"),
            ("Who are you?", "I am inkagent's small demo assistant. I can do calculations and small programs in Python, check the weather, and search arXiv papers."),
            ("What can you do?", "I can calculate and run small Python programs, look up the weather for a place, and search arXiv for papers."),
            ("Thanks!", "You're welcome!"), ("Thank you very much.", "You're welcome! Anything else?"),
            ("Goodbye", "Goodbye! Have a nice day."), ("Bye!", "Bye! See you next time."),
            ("Nice to meet you.", "Nice to meet you too! How can I help?"),
            ("Are you a robot?", "I am a small language model running as an agent with a few tools."),
            ("Help", "Ask me to compute something (\"What is 17 * 23?\"), check the weather (\"weather in Paris\"), or find papers (\"papers about diffusion models\")."),
        ]
        pairs_zh = [
            ("你好", "你好！我可以做计算、运行小段 Python 代码、查询天气和搜索 arXiv 论文。有什么可以帮你的？"),
            ("你好！", "你好！有什么可以帮你的吗？"), ("早上好", "早上好！需要我做些什么？"),
            ("你是谁？", "我是 inkagent 的小型演示助手，可以用 Python 计算、查询天气、搜索 arXiv 论文。"),
            ("你能做什么？", "我可以做计算和运行小程序、查询某地的天气，以及在 arXiv 上搜索论文。"),
            ("谢谢", "不客气！"), ("谢谢你！", "不客气，还有别的需要吗？"), ("再见", "再见，祝你愉快！"),
            ("你好吗？", "我很好，谢谢！有什么可以帮你？"), ("你是机器人吗？", "我是一个带有几个工具的小型语言模型智能体。"),
        ]
        user, answer = self.pick(pairs_en if lang == "en" else pairs_zh)
        if self.rng.random() < 0.2:
            user = user.lower() if lang == "en" else user
        messages = [Message(role="user", content=user), Message(role="assistant", content=answer)]
        return Example(kind="small_talk", language=lang, messages=messages, task=user)

    def out_of_scope(self, lang: str) -> Example:
        subjects_en = ["the sea", "autumn", "a cat", "the moon", "friendship", "coffee", "winter", "a robot", "the city"]
        asks_en = [
            ("Write a poem about {s}.", "poems"), ("Tell me a story about {s}.", "stories"),
            ("Who was the first emperor of Rome?", "history questions"),
            ("When did World War II end?", "history questions"), ("Who wrote Hamlet?", "literature questions"),
            ("Translate 'good night' into French.", "translation"), ("What is the capital of Australia?", "general knowledge questions"),
            ("Write an essay about {s}.", "essays"), ("Tell me a joke.", "jokes"),
            ("What is the meaning of life?", "philosophy questions"), ("Summarize the news today.", "news"),
            ("Recommend a good movie.", "recommendations"), ("What happened in 1066?", "history questions"),
            ("Explain photosynthesis.", "science explanations"), ("Compose a song about {s}.", "songs"),
        ]
        asks_zh = [
            ("写一首关于{s}的诗", "写诗"), ("给我讲一个故事", "讲故事"), ("秦始皇是哪一年统一六国的？", "历史问题"),
            ("唐朝是哪一年建立的？", "历史问题"), ("把“晚安”翻译成英文", "翻译"), ("讲个笑话", "讲笑话"),
            ("写一篇关于{s}的作文", "写作文"), ("推荐一部电影", "推荐"), ("解释一下光合作用", "科学解释"),
            ("中国的首都是哪里？", "常识问答"),
        ]
        subjects_zh = ["大海", "秋天", "月亮", "友谊", "猫", "春天", "家乡"]
        if lang == "en":
            template, skill = self.pick(asks_en)
            user = template.format(s=self.pick(subjects_en))
            answer = (f"Sorry, I am a small demo model and cannot help with {skill} reliably. "
                      "I can calculate and run small Python programs, check the weather, and search arXiv papers.")
        else:
            template, skill = self.pick(asks_zh)
            user = template.format(s=self.pick(subjects_zh))
            answer = f"抱歉，我只是一个小型演示模型，无法可靠地处理{skill}。我可以用 Python 计算、查询天气和搜索 arXiv 论文。"
        messages = [Message(role="user", content=user), Message(role="assistant", content=answer)]
        return Example(kind="out_of_scope", language=lang, messages=messages, task=user)

    def missing_tool(self, lang: str, example: Example) -> Example:
        """The request needs a tool the prompt does not offer: say so, make no call."""
        user = example.messages[0].content
        need = example.needs[0]
        what_en = {INTERPRETER: "a code interpreter", ARXIV: "an arXiv search tool"}.get(need, "a weather tool")
        what_zh = {INTERPRETER: "代码解释器", ARXIV: "arXiv 搜索工具"}.get(need, "天气查询工具")
        answer = _lang_text(lang, f"Sorry, I cannot do that here: no {what_en} is available to me.",
                            f"抱歉，这里没有可用的{what_zh}，我无法完成这个请求。")
        messages = [Message(role="user", content=user), Message(role="assistant", content=answer)]
        return Example(kind="missing_tool", language=lang, messages=messages, needs=example.needs, task=user)

    # -- mixture ---------------------------------------------------------------------------------
    def sample(self) -> Example:
        """One dialogue from the training mixture."""
        lang = "en" if self.rng.random() < 0.6 else "zh"
        r = self.rng.random()
        example: Example | None = None
        if r < 0.26:
            example = self.arithmetic(lang)
        elif r < 0.32:
            example = self.worded_arithmetic(lang)
        elif r < 0.33:
            example = self.division_by_zero(lang)
        elif r < 0.47:
            example = self.program(lang)
        elif r < 0.62:
            example = self.weather(lang)
        elif r < 0.66:
            example = self.weather(lang, failure=self.pick(["network", "network", "unknown"]))
        elif r < 0.77:
            example = self.arxiv(lang)
        elif r < 0.80:
            example = self.arxiv(lang, failure="network")
        elif r < 0.88:
            example = self.small_talk(lang)
        else:
            example = self.out_of_scope(lang)
        return example if example is not None else self.sample()

    def arithmetic_task(self) -> Example:
        """A held-out style arithmetic task (for evaluation)."""
        lang = "en" if self.rng.random() < 0.7 else "zh"
        example = self.arithmetic(lang) if self.rng.random() < 0.8 else self.worded_arithmetic(lang)
        return example if example is not None and example.messages[2].content and "Error" not in example.messages[2].content \
            else self.arithmetic_task()


def expected_number(expression: str) -> float:
    """The value of an arithmetic expression (for scoring answers)."""
    return float(eval(expression, {"__builtins__": {}, "math": math}))  # noqa: S307 - our own expressions
