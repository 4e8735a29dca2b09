"""Generate the `inkagent-tools` benchmark: tool-call cases over inkagent's built-in actions.

    python scripts/make_inkagent_tools.py [--out inkagent/bench/data/inkagent_tools] [--seed 20240607]

Writes BFCL-format files (so `inkagent.bench.bfcl.score` and the bench report serve unchanged):

    <out>/manifest.json
    <out>/{train,test}/INKAGENT_TOOLS_<category>.json                    questions + offered functions
    <out>/{train,test}/possible_answer/INKAGENT_TOOLS_<category>.json    expected calls (not for irrelevance)

Categories follow BFCL's meaning: simple (one function offered, one call), multiple (several offered,
one call), parallel (one function, several calls), parallel_multiple (several functions, several
calls), irrelevance (functions offered, none fits: no call). English and Chinese, about half each.
Every case is generated from a seed, so the files are reproducible; each category is split 1:2 into
test and train by a seeded shuffle (the test split is what the demo model is measured on).

The function schemas live in `FUNCTIONS` below, in one place; they mirror the actions' own specs
(`Weather.current` / `.forecast`, `ArxivSearch.get_arxiv_article_information`, `IPythonInterpreter`,
`ImageCaption`, `ImageRetrieval`, and the skills as tools: `ChatAgent`, `IllustratedWriter`,
`ImageUnderstanding`), and tests/test_bench_tools.py fails when they drift apart. After changing an
action's parameters, update `FUNCTIONS`, rerun this script and commit the data.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

VERSION = "1.0"
DEFAULT_SEED = 20240607
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "inkagent" / "bench" / "data" / "inkagent_tools"
PREFIX = "INKAGENT_TOOLS"
CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")
COUNTS = {"simple": 240, "multiple": 160, "parallel": 80, "parallel_multiple": 64, "irrelevance": 96}
TEST_SHARE = 1 / 3


def _param(kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


# ---------------------------------------------------------------------------------------------
# The function schemas (BFCL format). Update here when the actions change, then regenerate.
# ---------------------------------------------------------------------------------------------
UNITS = _param(
    "string",
    "metric (°C, km/h, mm) or imperial (°F, mph, inch); the configured units when omitted",
    enum=["metric", "imperial"],
)
FUNCTIONS: dict[str, dict[str, Any]] = {
    "Weather.current": {
        "name": "Weather.current",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "dict",
            "properties": {
                "city": _param(
                    "string",
                    "city name, e.g. 上海 or Boston; add the region or country to tell places apart, "
                    'e.g. "Springfield, Illinois"',
                ),
                "units": UNITS,
            },
            "required": ["city"],
        },
    },
    "Weather.forecast": {
        "name": "Weather.forecast",
        "description": "Get the daily weather forecast for a city: weather, lowest and highest temperature, "
        "precipitation and wind.",
        "parameters": {
            "type": "dict",
            "properties": {
                "city": _param(
                    "string", "city name, e.g. 北京 or London; add the region or country to tell places apart"
                ),
                "days": _param("integer", "how many days, starting today (1 to 16, default 3)"),
                "units": UNITS,
            },
            "required": ["city"],
        },
    },
    "ArxivSearch.get_arxiv_article_information": {
        "name": "ArxivSearch.get_arxiv_article_information",
        "description": "Search arXiv and get the top papers: title, authors, dates, arXiv id, PDF link and abstract.",
        "parameters": {
            "type": "dict",
            "properties": {
                "query": _param(
                    "string",
                    "what to search for: keywords, a title, or arXiv syntax such as `au:hinton AND ti:capsule`",
                ),
                "max_results": _param("integer", "how many papers to return (1 to 20, default 3)"),
            },
            "required": ["query"],
        },
    },
    "IPythonInterpreter": {
        "name": "IPythonInterpreter",
        "description": "Run Python code in a stateful Jupyter notebook (IPython kernel). Variables, imports and "
        "files persist between calls. Print what you want to see; the value of the last line is shown too.",
        "parameters": {
            "type": "dict",
            "properties": {"command": _param("string", "the Python code to run")},
            "required": ["command"],
        },
    },
    "ImageRetrieval": {
        "name": "ImageRetrieval",
        "description": "Find images in the local gallery that match a text description; returns their paths and "
        "similarity scores.",
        "parameters": {
            "type": "dict",
            "properties": {
                "query": _param("string", "what the image should show"),
                "top_k": _param("integer", "how many images to return (default 4)"),
                "exclude": _param(
                    "array", "image paths not to return (e.g. images already used)", items={"type": "string"}
                ),
            },
            "required": ["query"],
        },
    },
    "ImageCaption": {
        "name": "ImageCaption",
        "description": "Describe what a local image shows, in one or two sentences.",
        "parameters": {
            "type": "dict",
            "properties": {
                "image": _param("string", "path of a local image file (PNG, JPEG, WebP...)"),
                "prompt": _param("string", "what to ask about the image (default: a short description)"),
            },
            "required": ["image"],
        },
    },
    "ChatAgent": {
        "name": "ChatAgent",
        "description": "Chat with a persona (猪八戒 / Zhu Bajie from Journey to the West): give it a message, "
        "it answers in character.",
        "parameters": {
            "type": "dict",
            "properties": {"message": _param("string", "what to say")},
            "required": ["message"],
        },
    },
    "IllustratedWriter": {
        "name": "IllustratedWriter",
        "description": "Write an illustrated article (text and images from the gallery) for a title; returns the "
        "folder with article.md and article.html.",
        "parameters": {
            "type": "dict",
            "properties": {
                "title": _param("string", "the article's title (or a short instruction)"),
                "material": _param("string", "text the article should draw on"),
            },
            "required": ["title"],
        },
    },
    "ImageUnderstanding": {
        "name": "ImageUnderstanding",
        "description": "Answer a question about one or several local images.",
        "parameters": {
            "type": "dict",
            "properties": {
                "images": _param("array", "paths of local image files", items={"type": "string"}),
                "question": _param("string", "the question about them"),
            },
            "required": ["images", "question"],
        },
    },
}

# ---------------------------------------------------------------------------------------------
# vocabulary
# ---------------------------------------------------------------------------------------------
CITIES = [  # (English, Chinese)
    ("Beijing", "北京"), ("Shanghai", "上海"), ("Guangzhou", "广州"), ("Shenzhen", "深圳"), ("Hangzhou", "杭州"),
    ("Chengdu", "成都"), ("Wuhan", "武汉"), ("Nanjing", "南京"), ("Chongqing", "重庆"), ("Tianjin", "天津"),
    ("Suzhou", "苏州"), ("Qingdao", "青岛"), ("Xiamen", "厦门"), ("Kunming", "昆明"), ("Harbin", "哈尔滨"),
    ("Lhasa", "拉萨"), ("Hong Kong", "香港"), ("Taipei", "台北"), ("Tokyo", "东京"), ("Osaka", "大阪"),
    ("Seoul", "首尔"), ("Singapore", "新加坡"), ("Bangkok", "曼谷"), ("Dubai", "迪拜"), ("Cairo", "开罗"),
    ("London", "伦敦"), ("Paris", "巴黎"), ("Berlin", "柏林"), ("Rome", "罗马"), ("Madrid", "马德里"),
    ("Moscow", "莫斯科"), ("New York", "纽约"), ("San Francisco", "旧金山"), ("Los Angeles", "洛杉矶"),
    ("Boston", "波士顿"), ("Toronto", "多伦多"), ("Sydney", "悉尼"), ("Melbourne", "墨尔本"),
    ("Vancouver", "温哥华"), ("Zurich", "苏黎世"),
]  # fmt: skip
TOPICS = [  # (English, Chinese)
    ("diffusion models", "扩散模型"), ("graph neural networks", "图神经网络"), ("protein folding", "蛋白质折叠"),
    ("reinforcement learning", "强化学习"), ("large language models", "大语言模型"), ("dark matter", "暗物质"),
    ("gravitational waves", "引力波"), ("retrieval augmented generation", "检索增强生成"),
    ("federated learning", "联邦学习"), ("speech recognition", "语音识别"), ("image segmentation", "图像分割"),
    ("causal inference", "因果推断"), ("contrastive learning", "对比学习"), ("mixture of experts", "混合专家"),
    ("knowledge distillation", "知识蒸馏"), ("code generation", "代码生成"), ("machine translation", "机器翻译"),
    ("autonomous driving", "自动驾驶"), ("time series forecasting", "时间序列预测"), ("anomaly detection", "异常检测"),
    ("recommender systems", "推荐系统"), ("superconductivity", "超导"), ("few-shot learning", "少样本学习"),
    ("mathematical reasoning", "数学推理"), ("tool learning", "工具学习"), ("vision transformers", "视觉Transformer"),
]  # fmt: skip
SCENES = [  # (English, Chinese) gallery queries
    ("a cat sleeping on a sofa", "沙发上睡觉的猫"), ("sunset over the sea", "海上日落"),
    ("a snowy mountain", "雪山"), ("a busy city street at night", "夜晚繁忙的城市街道"),
    ("a bowl of noodles", "一碗面条"), ("children playing in a park", "在公园里玩耍的孩子"),
    ("a red sports car", "一辆红色跑车"), ("cherry blossoms in spring", "春天的樱花"),
    ("an old library", "古老的图书馆"), ("a lighthouse on a cliff", "悬崖上的灯塔"),
    ("a panda eating bamboo", "吃竹子的熊猫"), ("West Lake in Hangzhou", "杭州西湖"),
    ("a rainy window", "下雨的窗户"), ("a bicycle by a river", "河边的自行车"),
]  # fmt: skip
IMAGES = [
    "photos/cat.jpg", "photos/beach.png", "images/IMG_2041.jpg", "gallery/sunset_01.jpg", "./pics/dog.png",
    "/data/images/street.jpg", "screenshots/chart.png", "docs/figure3.png", "图片/西湖.jpg", "相册/熊猫.png",
    "uploads/receipt.jpg", "photos/family_2023.jpg", "img/mountain.webp", "scan/page1.png",
]  # fmt: skip
IMAGE_QUESTIONS = [  # (English, Chinese)
    ("How many people are in the picture?", "图中有几个人？"),
    ("What color is the car?", "车是什么颜色的？"),
    ("Which month had the highest sales?", "哪个月的销售额最高？"),
    ("What is written on the sign?", "牌子上写的是什么？"),
    ("Is it day or night?", "现在是白天还是晚上？"),
    ("What animal is this?", "这是什么动物？"),
    ("What is the total amount on the receipt?", "收据上的总金额是多少？"),
]  # fmt: skip
CHAT_MESSAGES = [  # (English, Chinese)
    ("What do you like to eat?", "你最喜欢吃什么？"), ("Where is your master going?", "你师父要去哪里？"),
    ("Are you afraid of monsters?", "你怕妖怪吗？"), ("What is your favourite weapon?", "你最喜欢的兵器是什么？"),
    ("Do you miss Gao Village?", "你想念高老庄吗？"), ("Tell me about Sun Wukong.", "给我讲讲孙悟空。"),
]  # fmt: skip
TITLES = [  # (English, Chinese)
    ("A Trip to Hangzhou", "杭州之旅"), ("Spring at West Lake", "春天的西湖"), ("The Joy of Cooking Noodles", "煮面的乐趣"),
    ("Cats and Their Secret Lives", "猫咪的秘密生活"), ("A Day in the Mountains", "山中一日"),
    ("Cities at Night", "夜晚的城市"), ("Why We Need Libraries", "我们为什么需要图书馆"),
]  # fmt: skip
SMALL_TALK = {
    "en": [
        "Hello!", "Hi, how are you?", "Good morning!", "Thanks a lot!", "Who are you?", "Tell me a joke.",
        "What is the capital of France?", "Goodbye!", "Translate 'good night' into French.",
        "What does 'agent' mean?", "Recommend a good book to read.", "How do I say thank you in Japanese?",
        "Can you write a haiku about autumn?", "What year did the Second World War end?",
    ],
    "zh": [
        "你好！", "早上好", "谢谢你！", "你是谁？", "讲个笑话吧", "法国的首都是哪里？", "再见！",
        "把“晚安”翻译成英文", "推荐一本好书", "写一首关于秋天的短诗", "李白是哪个朝代的诗人？", "你今天心情怎么样？",
    ],
}  # fmt: skip
WORDS = ["hello", "python", "agent", "banana", "racecar", "galaxy", "rocket", "garden", "coffee", "dragon"]


def _v(*alternatives: Any) -> list[Any]:
    """Alternatives of one parameter, duplicates dropped, order kept."""
    out: list[Any] = []
    for alternative in alternatives:
        if alternative not in out:
            out.append(alternative)
    return out


class CaseMaker:
    """Builds one case (question, calls) per tool; `lang` is "en" or "zh"."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, items: list[Any]) -> Any:
        return self.rng.choice(items)

    def city(self, lang: str) -> tuple[str, list[str]]:
        en, zh = self.pick(CITIES)
        return (en, _v(en, zh)) if lang == "en" else (zh, _v(zh, en))

    # -- interpreter ----------------------------------------------------------------------------
    def interpreter(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        kind = self.pick(
            ["arith", "arith", "arith", "factorial", "sum", "sqrt", "sort", "reverse", "gcd", "max"]
        )
        r = self.rng
        if kind == "arith":
            a, b = r.randint(2, 9999), r.randint(2, 999)
            op = self.pick(["*", "+", "-", "/", "**"])
            if op == "**":
                a, b = r.randint(2, 20), r.randint(2, 8)
            expr = f"{a} {op} {b}"
            question = self.pick(
                [f"What is {expr}?", f"Calculate {expr}.", f"Use Python to compute {expr}."]
                if lang == "en"
                else [f"{expr} 等于多少？", f"帮我算一下 {expr}", f"用 Python 计算 {expr}"]
            )
            code = _v(f"print({expr})", expr, f"print({expr.replace(' ', '')})")
        elif kind == "factorial":
            n = r.randint(3, 25)
            question = f"What is the factorial of {n}?" if lang == "en" else f"{n} 的阶乘是多少？"
            code = _v(
                f"import math\nprint(math.factorial({n}))",
                f"print(math.factorial({n}))",
                f"math.factorial({n})",
            )
        elif kind == "sum":
            a, b = sorted(r.sample(range(0, 2000), 2))
            question = (
                f"What is the sum of all integers from {a} to {b}?"
                if lang == "en"
                else f"从 {a} 加到 {b} 的和是多少？"
            )
            code = _v(
                f"print(sum(range({a}, {b} + 1)))",
                f"sum(range({a}, {b} + 1))",
                f"print(sum(range({a}, {b + 1})))",
            )
        elif kind == "sqrt":
            n = r.randint(2, 99999)
            question = f"What is the square root of {n}?" if lang == "en" else f"{n} 的平方根是多少？"
            code = _v(f"import math\nprint(math.sqrt({n}))", f"print(math.sqrt({n}))", f"print({n} ** 0.5)")
        elif kind == "sort":
            nums = ", ".join(str(r.randint(-50, 999)) for _ in range(r.randint(3, 6)))
            question = f"Sort these numbers: {nums}" if lang == "en" else f"把这些数从小到大排序：{nums}"
            code = _v(f"print(sorted([{nums}]))", f"sorted([{nums}])")
        elif kind == "reverse":
            word = self.pick(WORDS)
            question = f"Reverse the string '{word}'." if lang == "en" else f"把字符串 '{word}' 反转"
            code = _v(f"print('{word}'[::-1])", f"'{word}'[::-1]")
        elif kind == "gcd":
            a, b = r.randint(2, 9999), r.randint(2, 9999)
            question = (
                f"What is the greatest common divisor of {a} and {b}?"
                if lang == "en"
                else f"{a} 和 {b} 的最大公约数是多少？"
            )
            code = _v(
                f"import math\nprint(math.gcd({a}, {b}))", f"print(math.gcd({a}, {b}))", f"math.gcd({a}, {b})"
            )
        else:
            nums = ", ".join(str(r.randint(-999, 9999)) for _ in range(r.randint(3, 6)))
            question = f"What is the largest of {nums}?" if lang == "en" else f"{nums} 中最大的数是哪个？"
            code = _v(f"print(max([{nums}]))", f"max([{nums}])", f"print(max({nums}))")
        return question, [("IPythonInterpreter", {"command": code})]

    # -- weather --------------------------------------------------------------------------------
    def _units(self, lang: str) -> tuple[str, list[Any]]:
        if self.rng.random() < 0.25:
            units = self.pick(["metric", "imperial"])
            phrase = {
                ("en", "imperial"): " in Fahrenheit",
                ("en", "metric"): " in Celsius",
                ("zh", "imperial"): "（用华氏度）",
                ("zh", "metric"): "（用摄氏度）",
            }[(lang, units)]
            return phrase, [units]
        return "", ["", "metric"]

    def weather_now(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        shown, cities = self.city(lang)
        phrase, units = self._units(lang)
        question = self.pick(
            [f"What's the weather in {shown}{phrase}?", f"How is the weather in {shown} right now{phrase}?"]
            if lang == "en"
            else [f"{shown}今天天气怎么样{phrase}？", f"查一下{shown}现在的天气{phrase}"]
        )
        return question, [("Weather.current", {"city": cities, "units": units})]

    def weather_forecast(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        shown, cities = self.city(lang)
        phrase, units = self._units(lang)
        if self.rng.random() < 0.2:  # no number of days: the action's default (3) or any count is fine
            question = (
                f"What's the weather forecast for {shown}{phrase}?"
                if lang == "en"
                else f"{shown}的天气预报{phrase}"
            )
            return question, [("Weather.forecast", {"city": cities, "days": ["", 3], "units": units})]
        days = self.rng.randint(2, 7)
        question = self.pick(
            [
                f"What's the forecast for {shown} for the next {days} days{phrase}?",
                f"Give me a {days}-day forecast for {shown}{phrase}.",
            ]
            if lang == "en"
            else [
                f"{shown}未来{days}天的天气怎么样{phrase}？",
                f"查一下{shown}接下来 {days} 天的天气预报{phrase}",
            ]
        )
        return question, [("Weather.forecast", {"city": cities, "days": [days], "units": units})]

    # -- arxiv ----------------------------------------------------------------------------------
    def arxiv(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        en, zh = self.pick(TOPICS)
        shown = en if lang == "en" else zh
        count = self.pick([None, None, 2, 5])
        max_results = [count] if count else ["", 3]
        if lang == "en":
            question = (
                f"Find {count} papers about {shown}."
                if count
                else self.pick([f"Find papers about {shown}.", f"Search arXiv for {shown}."])
            )
        else:
            question = (
                f"找 {count} 篇关于{shown}的论文"
                if count
                else self.pick([f"帮我找几篇关于{shown}的论文", f"在 arXiv 上搜索{shown}"])
            )
        query = _v(shown, en)
        return question, [
            ("ArxivSearch.get_arxiv_article_information", {"query": query, "max_results": max_results})
        ]

    # -- images and skills ----------------------------------------------------------------------
    def retrieval(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        en, zh = self.pick(SCENES)
        shown = en if lang == "en" else zh
        top_k = self.pick([None, None, 1, 3, 6])
        exclude = self.pick([None, None, None, [self.pick(IMAGES)]])
        if lang == "en":
            question = (
                f"Find {top_k} pictures of {shown} in my gallery"
                if top_k
                else f"Find a picture of {shown} in my gallery"
            )
            question += f", but not {exclude[0]}." if exclude else "."
        else:
            question = f"在图库里找 {top_k} 张{shown}的图片" if top_k else f"在图库里找一张{shown}的图片"
            question += f"，不要 {exclude[0]}。" if exclude else "。"
        # "a picture" may be asked for as top_k=1, or left to the default
        params = {"query": _v(shown, en), "top_k": [top_k] if top_k else ["", 1, 4]}
        params["exclude"] = [exclude] if exclude else ["", []]
        return question, [("ImageRetrieval", params)]

    def caption(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        image = self.pick(IMAGES)
        question = self.pick(
            [f"Describe the image {image}.", f"What does {image} show?"]
            if lang == "en"
            else [f"描述一下图片 {image}", f"{image} 这张图里有什么？"]
        )
        return question, [("ImageCaption", {"image": [image]})]

    def understanding(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        images = self.rng.sample(IMAGES, self.pick([1, 1, 1, 2]))
        en, zh = self.pick(IMAGE_QUESTIONS)
        if len(images) == 1:
            question = (
                f"Look at {images[0]} and tell me: {en}" if lang == "en" else f"看一下 {images[0]}，{zh}"
            )
            orders = [images]
        else:
            a, b = images
            question = f"Compare {a} and {b}: {en}" if lang == "en" else f"对比 {a} 和 {b}：{zh}"
            orders = [images, [b, a]]
        asked = en if lang == "en" else zh
        return question, [("ImageUnderstanding", {"images": orders, "question": _v(asked, en)})]

    def chat(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        en, zh = self.pick(CHAT_MESSAGES)
        message = en if lang == "en" else zh
        question = self.pick(
            [f'Ask Zhu Bajie: "{message}"', f'Let the persona chat answer this: "{message}"']
            if lang == "en"
            else [f"让猪八戒回答：“{message}”", f"问问猪八戒：“{message}”"]
        )
        return question, [("ChatAgent", {"message": [message]})]

    def writer(self, lang: str) -> tuple[str, list[tuple[str, dict]]]:
        en, zh = self.pick(TITLES)
        title = en if lang == "en" else zh
        question = (
            f"Write an illustrated article titled '{title}'."
            if lang == "en"
            else f"写一篇图文并茂的文章，题目是《{title}》"
        )
        return question, [("IllustratedWriter", {"title": _v(title, en)})]


# which case maker each tool uses, and how often single-call cases pick it
SINGLE_CALL: list[tuple[str, Callable[[CaseMaker, str], tuple[str, list]], int]] = [
    ("IPythonInterpreter", CaseMaker.interpreter, 6),
    ("Weather.current", CaseMaker.weather_now, 4),
    ("Weather.forecast", CaseMaker.weather_forecast, 3),
    ("ArxivSearch.get_arxiv_article_information", CaseMaker.arxiv, 4),
    ("ImageRetrieval", CaseMaker.retrieval, 2),
    ("ImageCaption", CaseMaker.caption, 2),
    ("ImageUnderstanding", CaseMaker.understanding, 2),
    ("ChatAgent", CaseMaker.chat, 1),
    ("IllustratedWriter", CaseMaker.writer, 1),
]


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.maker = CaseMaker(self.rng)

    def lang(self) -> str:
        return self.rng.choice(["en", "zh"])

    def single(self) -> tuple[str, Callable]:
        names = [name for name, _, weight in SINGLE_CALL for _ in range(weight)]
        name = self.rng.choice(names)
        return name, next(make for tool, make, _ in SINGLE_CALL if tool == name)

    def offered(self, needed: list[str], extra: int) -> list[str]:
        others = [name for name in FUNCTIONS if name not in needed]
        tools = list(dict.fromkeys(needed)) + self.rng.sample(others, extra)
        self.rng.shuffle(tools)
        return tools

    def case(self, category: str) -> tuple[str, str, list[str], list]:
        """(language, question, offered tool names, calls as (name, params) pairs)."""
        lang = self.lang()
        if category in ("simple", "multiple"):
            name, make = self.single()
            question, calls = make(self.maker, lang)
            extra = 0 if category == "simple" else self.rng.randint(1, 3)
            return lang, question, self.offered([name], extra), calls
        if category == "parallel":
            return (lang, *self.parallel(lang))
        if category == "parallel_multiple":
            return (lang, *self.parallel_multiple(lang))
        return (lang, *self.irrelevance(lang))

    def parallel(self, lang: str) -> tuple[str, list[str], list]:
        kind = self.rng.choice(["weather_now", "weather_now", "forecast", "arxiv", "caption"])
        count = self.rng.choice([2, 2, 3])
        if kind in ("weather_now", "forecast"):
            picks = self.rng.sample(CITIES, count)
            shown = [en if lang == "en" else zh for en, zh in picks]
            listed = _join(shown, lang)
            if kind == "weather_now":
                question = (
                    f"What's the weather like in {listed}?" if lang == "en" else f"{listed}现在的天气怎么样？"
                )
                calls = [
                    ("Weather.current", {"city": _v(s, en, zh), "units": ["", "metric"]})
                    for s, (en, zh) in zip(shown, picks, strict=True)
                ]
                return question, ["Weather.current"], calls
            days = self.rng.randint(2, 5)
            question = (
                f"Give me the {days}-day forecast for {listed}."
                if lang == "en"
                else f"查一下{listed}未来{days}天的天气预报"
            )
            calls = [
                ("Weather.forecast", {"city": _v(s, en, zh), "days": [days], "units": ["", "metric"]})
                for s, (en, zh) in zip(shown, picks, strict=True)
            ]
            return question, ["Weather.forecast"], calls
        if kind == "arxiv":
            picks = self.rng.sample(TOPICS, 2)
            shown = [en if lang == "en" else zh for en, zh in picks]
            question = (
                f"Search arXiv for papers on {shown[0]} and on {shown[1]}."
                if lang == "en"
                else f"分别搜索关于{shown[0]}和{shown[1]}的论文"
            )
            calls = [
                ("ArxivSearch.get_arxiv_article_information", {"query": _v(s, en), "max_results": ["", 3]})
                for s, (en, _) in zip(shown, picks, strict=True)
            ]
            return question, ["ArxivSearch.get_arxiv_article_information"], calls
        images = self.rng.sample(IMAGES, count)
        listed = _join(images, lang)
        question = (
            f"Describe each of these images: {listed}." if lang == "en" else f"分别描述这几张图片：{listed}"
        )
        return question, ["ImageCaption"], [("ImageCaption", {"image": [image]}) for image in images]

    def parallel_multiple(self, lang: str) -> tuple[str, list[str], list]:
        pairs = [
            (CaseMaker.weather_now, CaseMaker.arxiv),
            (CaseMaker.interpreter, CaseMaker.weather_now),
            (CaseMaker.arxiv, CaseMaker.interpreter),
            (CaseMaker.retrieval, CaseMaker.caption),
            (CaseMaker.weather_forecast, CaseMaker.writer),
            (CaseMaker.caption, CaseMaker.chat),
        ]
        first, second = self.rng.choice(pairs)
        q1, calls1 = first(self.maker, lang)
        q2, calls2 = second(self.maker, lang)
        if lang == "en":
            q1 = q1 if q1[-1] in ".?!" else q1 + "."
            question = f"{q1} Also, {q2[0].lower() + q2[1:]}"
        else:
            q1 = q1 if q1[-1] in "。？！" else q1 + "。"
            question = f"{q1}另外，{q2}"
        needed = [calls1[0][0], calls2[0][0]]
        return question, self.offered(needed, self.rng.randint(0, 2)), calls1 + calls2

    def irrelevance(self, lang: str) -> tuple[str, list[str], list]:
        if self.rng.random() < 0.5:  # small talk; the persona chat and the writer could pass for answers
            question = self.rng.choice(SMALL_TALK[lang])
            plain = [t for t in FUNCTIONS if t not in ("ChatAgent", "IllustratedWriter")]
            return question, self.rng.sample(plain, self.rng.randint(1, 3)), []
        # a request whose tool is not offered
        name, make = self.single()
        question, _ = make(self.maker, lang)
        family = name.split(".")[0]
        others = [t for t in FUNCTIONS if t.split(".")[0] != family]
        return question, self.rng.sample(others, self.rng.randint(1, 3)), []


def _join(items: list[str], lang: str) -> str:
    if lang == "zh":
        return "、".join(items[:-1]) + "和" + items[-1]
    return ", ".join(items[:-1]) + " and " + items[-1]


def generate(seed: int = DEFAULT_SEED) -> dict[str, dict[str, list[tuple[dict, dict | None]]]]:
    """{split: {category: [(question record, answer record or None)]}}."""
    generator = Generator(seed)
    splits: dict[str, dict[str, list]] = {"test": {}, "train": {}}
    for category in CATEGORIES:
        seen: set[str] = set()
        cases = []
        while len(cases) < COUNTS[category]:
            lang, question, tools, calls = generator.case(category)
            if question in seen:
                continue
            seen.add(question)
            case_id = f"tools_{category}_{len(cases)}"
            record = {
                "id": case_id,
                "language": lang,
                "question": [[{"role": "user", "content": question}]],
                "function": [json.loads(json.dumps(FUNCTIONS[name])) for name in tools],
            }
            answer = None
            if category != "irrelevance":
                answer = {"id": case_id, "ground_truth": [{name: params} for name, params in calls]}
            cases.append((record, answer))
        order = list(range(len(cases)))
        generator.rng.shuffle(order)
        test_ids = set(order[: round(len(cases) * TEST_SHARE)])
        splits["test"][category] = [case for i, case in enumerate(cases) if i in test_ids]
        splits["train"][category] = [case for i, case in enumerate(cases) if i not in test_ids]
    return splits


def write(out: Path, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Generate and write the suite under `out`; return the manifest."""
    splits = generate(seed)
    counts: dict[str, dict[str, int]] = {}
    languages: dict[str, int] = {}
    for split, categories in splits.items():
        (out / split / "possible_answer").mkdir(parents=True, exist_ok=True)
        counts[split] = {}
        for category, cases in categories.items():
            counts[split][category] = len(cases)
            lines = [json.dumps(record, ensure_ascii=False) for record, _ in cases]
            (out / split / f"{PREFIX}_{category}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
            answer_path = out / split / "possible_answer" / f"{PREFIX}_{category}.json"
            answers = [json.dumps(answer, ensure_ascii=False) for _, answer in cases if answer is not None]
            if answers:
                answer_path.write_text("\n".join(answers) + "\n", encoding="utf-8")
            for record, _ in cases:
                languages[record["language"]] = languages.get(record["language"], 0) + 1
    manifest = {
        "name": "inkagent-tools",
        "version": VERSION,
        "seed": seed,
        "generator": "scripts/make_inkagent_tools.py",
        "format": "BFCL v4 single-turn layout (questions + possible_answer)",
        "categories": list(CATEGORIES),
        "counts": counts,
        "total": sum(sum(c.values()) for c in counts.values()),
        "languages": languages,
        "tools": sorted(FUNCTIONS),
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    args = parser.parse_args(argv)
    manifest = write(args.out, args.seed)
    print(f"wrote {manifest['total']} cases to {args.out}: {json.dumps(manifest['counts'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
