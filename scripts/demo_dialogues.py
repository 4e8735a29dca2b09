"""Synthetic InternLM2 requests and dialogues for the bundled demo model (train and eval scripts).

A `Request` is what a user asks, in English or Chinese, and what a good assistant does with it: the
tool calls (arguments copied from the request), or a direct answer. Families:

- interpreter: arithmetic (symbols or words) and small programs (primes, sums, factorials, strings,
  lists...); the code copies the numbers and strings of the request;
- Weather.current / Weather.forecast with the place copied; ArxivSearch with the topic copied;
- the image tools and skills (ImageCaption, ImageRetrieval, ImageUnderstanding, IllustratedWriter,
  ChatAgent), for prompts that offer them (the tool-call benchmark's);
- several calls in one turn: the same tool for two or three places / topics / images, or two requests
  joined ("... Also, ..." / "……另外，……");
- small talk (a direct answer) and requests off the model's skills (a short, clear refusal).

`ToolWorld` answers the calls of the demo config's tools with the text the real actions produce
(inkagent's Weather behind a mock HTTP transport, ArxivSearch's own formatting, Python run here),
including their errors (no network, unknown place, exceptions), so `Request.finish` can write the
final answer from what the tool said. Place names, topics and paths are partly invented (random
syllables) so that the model learns to copy spans, not to recall a list.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from inkagent.schema import Message, ToolCall

WEATHER_NOW = "Weather.current"
WEATHER_FORECAST = "Weather.forecast"
ARXIV = "ArxivSearch.get_arxiv_article_information"
INTERPRETER = "IPythonInterpreter"
CAPTION = "ImageCaption"
RETRIEVAL = "ImageRetrieval"
UNDERSTANDING = "ImageUnderstanding"
WRITER = "IllustratedWriter"
PERSONA = "ChatAgent"
DEMO_TOOLS = (INTERPRETER, WEATHER_NOW, WEATHER_FORECAST, ARXIV)
ALL_TOOLS = (*DEMO_TOOLS, CAPTION, RETRIEVAL, UNDERSTANDING, WRITER, PERSONA)

Results = list[tuple[str, bool]]  # (environment text, ok) per call


@dataclass
class Request:
    """A user request and the ideal first assistant turn.

    `calls` is empty for a direct answer (`direct`). `finish(results)` writes the final answer from the
    tools' results (demo tools only). `expected` holds what a right final answer must contain (eval).
    """

    kind: str
    lang: str
    user: str
    calls: list[ToolCall] = field(default_factory=list)
    direct: str = ""
    thought: str = ""
    finish: Callable[[Results], str] | None = None
    expected: list[str] = field(default_factory=list)

    @property
    def needs(self) -> set[str]:
        return {c.name for c in self.calls}


# -- vocabulary ------------------------------------------------------------------------------------
# fmt: off

CITIES = [  # (English, Chinese)
    ("Paris", "巴黎"), ("London", "伦敦"), ("Tokyo", "东京"), ("New York", "纽约"), ("Berlin", "柏林"),
    ("Madrid", "马德里"), ("Rome", "罗马"), ("Moscow", "莫斯科"), ("Sydney", "悉尼"), ("Toronto", "多伦多"),
    ("Chicago", "芝加哥"), ("Boston", "波士顿"), ("Seattle", "西雅图"), ("Dubai", "迪拜"), ("Cairo", "开罗"),
    ("Singapore", "新加坡"), ("Bangkok", "曼谷"), ("Seoul", "首尔"), ("Osaka", "大阪"), ("Kyoto", "京都"),
    ("Beijing", "北京"), ("Shanghai", "上海"), ("Shenzhen", "深圳"), ("Guangzhou", "广州"), ("Hangzhou", "杭州"),
    ("Chengdu", "成都"), ("Wuhan", "武汉"), ("Nanjing", "南京"), ("Suzhou", "苏州"), ("Xi'an", "西安"),
    ("Chongqing", "重庆"), ("Tianjin", "天津"), ("Qingdao", "青岛"), ("Xiamen", "厦门"), ("Harbin", "哈尔滨"),
    ("Kunming", "昆明"), ("Lhasa", "拉萨"), ("Hong Kong", "香港"), ("Taipei", "台北"), ("Macau", "澳门"),
    ("Zurich", "苏黎世"), ("Vienna", "维也纳"), ("Amsterdam", "阿姆斯特丹"), ("Lisbon", "里斯本"),
    ("Athens", "雅典"), ("Istanbul", "伊斯坦布尔"), ("Mumbai", "孟买"), ("Delhi", "德里"), ("Hanoi", "河内"),
    ("Jakarta", "雅加达"), ("Manila", "马尼拉"), ("Melbourne", "墨尔本"), ("Vancouver", "温哥华"),
    ("San Francisco", "旧金山"), ("Los Angeles", "洛杉矶"), ("Mexico City", "墨西哥城"), ("Lima", "利马"),
    ("Buenos Aires", "布宜诺斯艾利斯"), ("Cape Town", "开普敦"), ("Nairobi", "内罗毕"), ("Oslo", "奥斯陆"),
    ("Stockholm", "斯德哥尔摩"), ("Helsinki", "赫尔辛基"), ("Dublin", "都柏林"), ("Prague", "布拉格"),
    ("Warsaw", "华沙"), ("Budapest", "布达佩斯"), ("Munich", "慕尼黑"), ("Milan", "米兰"), ("Barcelona", "巴塞罗那"),
    ("Edinburgh", "爱丁堡"), ("Reykjavik", "雷克雅未克"), ("Honolulu", "火奴鲁鲁"), ("Anchorage", "安克雷奇"),
    ("Dalian", "大连"), ("Shenyang", "沈阳"), ("Changsha", "长沙"), ("Zhengzhou", "郑州"), ("Jinan", "济南"),
    ("Hefei", "合肥"), ("Fuzhou", "福州"), ("Nanning", "南宁"), ("Guiyang", "贵阳"), ("Lanzhou", "兰州"),
    ("Urumqi", "乌鲁木齐"), ("Sanya", "三亚"), ("Guilin", "桂林"), ("Lijiang", "丽江"), ("Luoyang", "洛阳"),
    ("Ningbo", "宁波"), ("Wuxi", "无锡"), ("Zhuhai", "珠海"), ("Foshan", "佛山"), ("Dongguan", "东莞"),
    ("Austin", "奥斯汀"), ("Denver", "丹佛"), ("Miami", "迈阿密"), ("Montreal", "蒙特利尔"), ("Auckland", "奥克兰"),
]
_SYLLABLES = [
    "ka", "lo", "ven", "mar", "tis", "bel", "dor", "an", "ri", "sa", "mon", "te", "gra", "vil", "ost",
    "hav", "bur", "ne", "lin", "cas", "tor", "ma", "quel", "zen", "por", "wick", "ford", "dale", "mir",
    "ul", "ba", "ko", "sten", "val", "ley", "ru", "fen", "gor", "ish", "ta", "no", "pe", "sil", "ham",
]
_ZH_PLACE_CHARS = list("江山河湖安宁平昌阳南北东西新兴华庆福德泰和丰明清远海云川龙凤金石林春秋长永嘉临")

TOPICS = [  # (English, Chinese)
    ("diffusion models", "扩散模型"), ("graph neural networks", "图神经网络"), ("protein folding", "蛋白质折叠"),
    ("reinforcement learning", "强化学习"), ("large language models", "大语言模型"), ("dark matter", "暗物质"),
    ("gravitational waves", "引力波"), ("retrieval augmented generation", "检索增强生成"),
    ("federated learning", "联邦学习"), ("speech recognition", "语音识别"), ("image segmentation", "图像分割"),
    ("causal inference", "因果推断"), ("contrastive learning", "对比学习"), ("mixture of experts", "混合专家模型"),
    ("knowledge distillation", "知识蒸馏"), ("code generation", "代码生成"), ("machine translation", "机器翻译"),
    ("autonomous driving", "自动驾驶"), ("time series forecasting", "时间序列预测"), ("anomaly detection", "异常检测"),
    ("recommender systems", "推荐系统"), ("superconductivity", "超导"), ("few-shot learning", "少样本学习"),
    ("mathematical reasoning", "数学推理"), ("tool learning", "工具学习"), ("quantum computing", "量子计算"),
    ("vision transformers", "视觉Transformer"), ("neural radiance fields", "神经辐射场"), ("drug discovery", "药物发现"),
    ("climate modeling", "气候建模"), ("robot manipulation", "机器人操作"), ("speculative decoding", "推测解码"),
    ("model quantization", "模型量化"), ("instruction tuning", "指令微调"), ("differential privacy", "差分隐私"),
    ("optimal transport", "最优传输"), ("state space models", "状态空间模型"), ("exoplanets", "系外行星"),
    ("black holes", "黑洞"), ("protein design", "蛋白质设计"), ("multimodal agents", "多模态智能体"),
]
_TOPIC_HEADS = ["learning", "models", "networks", "detection", "estimation", "retrieval", "generation",
                "optimization", "sampling", "alignment", "reasoning", "segmentation", "compression", "search"]
_TOPIC_MODS = ["sparse", "graph", "neural", "quantum", "causal", "robust", "efficient", "multilingual",
               "federated", "contrastive", "probabilistic", "geometric", "symbolic", "continual",
               "molecular", "acoustic", "visual", "temporal", "hierarchical", "adaptive", "spectral", "latent"]
_ZH_TOPIC_A = ["稀疏", "图", "量子", "因果", "鲁棒", "高效", "多语言", "对比", "概率", "几何", "分子", "视觉", "时序", "自适应"]
_ZH_TOPIC_B = ["学习", "模型", "网络", "检测", "估计", "检索", "生成", "优化", "采样", "推理", "压缩", "搜索"]
_TITLE_PATTERNS = [
    "{T}: A Survey", "Scaling {T} to Billions of Parameters", "On the Limits of {T}",
    "Efficient {T} with Sparse Updates", "Revisiting {T}", "{T} without Labels", "A Benchmark for {T}",
    "Towards Robust {T}", "Understanding {T} through the Lens of Optimization", "Fast and Accurate {T}",
    "{T} in the Wild", "Learning {T} from Few Examples",
]
_FIRST = ["Wei", "Anna", "Li", "Carlos", "Maria", "Yuki", "Omar", "Sara", "Jun", "Elena", "David", "Priya",
          "Tom", "Mei", "Ivan", "Lucas", "Nora", "Hao", "Fatima", "Jonas", "Chen", "Aisha", "Paul", "Ying"]
_LAST = ["Zhang", "Smith", "Wang", "Garcia", "Kim", "Tanaka", "Müller", "Rossi", "Chen", "Patel", "Liu",
         "Novak", "Silva", "Brown", "Ivanova", "Nakamura", "Khan", "Dubois", "Li", "Johansson", "Yang"]
WORDS = ["hello", "world", "python", "agent", "banana", "racecar", "level", "openai", "internlm", "tensor",
         "keyboard", "window", "river", "mountain", "galaxy", "pixel", "rocket", "garden", "coffee", "music",
         "school", "orange", "planet", "silver", "dragon", "forest", "summer", "winter", "ocean", "castle"]
_DIRS = ["photos", "images", "pics", "./pics", "gallery", "uploads", "screenshots", "docs", "scan", "img",
         "/data/images", "相册", "图片", "/home/me/Pictures", "data", "assets", "downloads", "照片"]
_STEMS = ["cat", "dog", "beach", "family_2023", "sunset_01", "receipt", "chart", "figure3", "page1", "mountain",
          "street", "IMG_2041", "熊猫", "西湖", "lake", "garden_party", "whiteboard", "menu", "poster", "bridge",
          "snow", "birthday", "car", "desk", "plot", "map", "invoice", "kitchen", "长城", "猫咪"]
_EXTS = [".jpg", ".png", ".jpeg", ".webp"]
SCENES = [  # (English, Chinese)
    ("a red sports car", "一辆红色跑车"), ("a cat sleeping on a sofa", "沙发上睡觉的猫"),
    ("sunset over the sea", "海上日落"), ("cherry blossoms in spring", "春天的樱花"),
    ("a lighthouse on a cliff", "悬崖上的灯塔"), ("a panda eating bamboo", "吃竹子的熊猫"),
    ("a bowl of noodles", "一碗面条"), ("children playing in a park", "在公园里玩耍的孩子"),
    ("a busy city street at night", "夜晚繁忙的城市街道"), ("a rainy window", "下雨的窗户"),
    ("a bicycle by a river", "河边的自行车"), ("West Lake in Hangzhou", "杭州西湖"), ("snowy mountains", "雪山"),
    ("a dog running on the beach", "在沙滩上奔跑的狗"), ("an old wooden bridge", "一座古老的木桥"),
    ("a cup of coffee on a desk", "桌上的一杯咖啡"), ("fireworks over a city", "城市上空的烟花"),
    ("a field of sunflowers", "一片向日葵田"), ("a train in the countryside", "乡间的火车"),
    ("a robot toy", "一个机器人玩具"),
]
IMAGE_QUESTIONS = [  # (English, Chinese)
    ("What color is the car?", "车是什么颜色的？"), ("How many people are in the picture?", "图中有几个人？"),
    ("Is it day or night?", "现在是白天还是晚上？"), ("What is written on the sign?", "牌子上写的是什么？"),
    ("What is the total amount on the receipt?", "收据上的总金额是多少？"),
    ("Which month had the highest sales?", "哪个月的销售额最高？"), ("What animal is this?", "这是什么动物？"),
    ("What is the weather like in the photo?", "照片里的天气怎么样？"), ("Which one is bigger?", "哪一个更大？"),
    ("What is the person holding?", "这个人手里拿着什么？"), ("What time does the clock show?", "钟上显示几点？"),
]
TITLES = [  # (English, Chinese)
    ("The Joy of Cooking Noodles", "煮面的乐趣"), ("A Day in the Mountains", "山中一日"),
    ("Spring at West Lake", "西湖之春"), ("Why We Need Libraries", "我们为什么需要图书馆"),
    ("Cats and Their Secret Lives", "猫的秘密生活"), ("A Trip to Hangzhou", "杭州之旅"),
    ("The City at Night", "夜晚的城市"), ("Autumn in Beijing", "北京的秋天"), ("Life by the Sea", "海边的生活"),
    ("The Story of Tea", "茶的故事"), ("Learning to Ride a Bike", "学骑自行车"), ("My Grandmother's Garden", "奶奶的花园"),
    ("Winter Festivals", "冬天的节日"), ("The Last Train Home", "回家的末班车"), ("Robots in Our Homes", "家里的机器人"),
]
PERSONA_LINES = [  # (English, Chinese)
    ("What do you like to eat?", "你最喜欢吃什么？"), ("Where is your master going?", "你师父要去哪里？"),
    ("What is your favourite weapon?", "你最喜欢的兵器是什么？"), ("Do you miss Gao Village?", "你想念高老庄吗？"),
    ("Are you afraid of monsters?", "你怕妖怪吗？"), ("Tell me about Sun Wukong.", "给我讲讲孙悟空。"),
    ("Are you tired of walking?", "你走累了吗？"), ("What do you think of Sha Wujing?", "你觉得沙僧怎么样？"),
    ("Can you fly?", "你会飞吗？"), ("What will you do after the journey?", "取经以后你要做什么？"),
]
# Words and characters for composed titles, scenes, image questions and persona lines (`novel` > 0).
# The fixed lists above are few enough to memorise, and a model that has memorised them writes a
# title it knows instead of the one asked for. Composed values follow no template (a template is
# memorised too, and then it bends real titles into its shape): the only way to get them right is to
# copy them.
_EN_WORDS = WORDS + [
    "old", "red", "small", "quiet", "snowy", "wooden", "golden", "busy", "empty", "green", "tiny", "giant",
    "sleepy", "blue", "broken", "bright", "dark", "lonely", "happy", "ancient", "bridge", "library", "cat",
    "boat", "market", "tower", "piano", "bicycle", "teapot", "owl", "lantern", "harbor", "village", "kite",
    "night", "morning", "rain", "light", "road", "home", "letters", "secrets", "journey", "stars", "city",
]
_EN_LINKS = [" ", " ", " ", " of ", " and ", " in ", " at ", " on ", " for ", " with "]
_ZH_CHARS = list(
    "山水花鸟风月云雨雪春夏秋冬城村河湖海桥塔灯船猫狗鱼书画茶酒歌梦家路门窗星光夜晨古老新小大红绿金银"
    "石木林园市街港岛天地心手眼人生日年时光里上下前后的之与和在"
)
_QUESTION_HEADS = ["What", "Where", "How many", "Is there", "Which", "Why", "Who", "When", "Can you"]
# fmt: on


def held_out(text: str, modulus: int = 8) -> bool:
    """Whether `text` belongs to the evaluation share (a fixed hash partition, never trained on)."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % modulus == 0


def run_python(code: str) -> tuple[str, str | None]:
    """Run trusted generated code in this process; return (stdout, "Type: message" or None)."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<cell>", "exec"), {"__name__": "__main__"})  # noqa: S102 - our own code
    except Exception as exc:
        return out.getvalue(), f"{type(exc).__name__}: {exc}"
    return out.getvalue(), None


def _say(lang: str, en: str, zh: str) -> str:
    return en if lang == "en" else zh


# -- what the demo config's tools answer ---------------------------------------------------------------


class ToolWorld:
    """Runs calls of the demo config's tools the way the real actions answer them, offline."""

    NETWORK_CAUSES = [
        "ConnectError: [Errno -2] Name or service not known",
        "ConnectError: [Errno -3] Temporary failure in name resolution",
        "ConnectError: [Errno 101] Network is unreachable",
        "ConnectError: [Errno 111] Connection refused",
    ]
    ARXIV_CAUSES = [
        "gaierror: [Errno -2] Name or service not known",
        "gaierror: [Errno -3] Temporary failure in name resolution",
        "NewConnectionError: Failed to establish a new connection: [Errno 101] Network is unreachable",
        "ConnectionRefusedError: [Errno 111] Connection refused",
    ]

    def __init__(self, rng: random.Random) -> None:
        import httpx

        from inkagent.actions import ActionExecutor, ArxivSearch, Weather

        self.rng = rng
        self.mode = "ok"  # ok | network | unknown | timeout | busy
        self.weather = Weather(client=httpx.Client(transport=httpx.MockTransport(self._http)))
        self.executor = ActionExecutor([self.weather], timeout_s=None)
        self.arxiv = ArxivSearch()
        self.cell = 1

    # the mock HTTP service behind the real Weather action
    def _http(self, request: Any) -> Any:
        import httpx

        if self.mode == "network":
            raise httpx.ConnectError(self.rng.choice(self.NETWORK_CAUSES).split(": ", 1)[1], request=request)
        if self.mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if self.mode == "busy":
            return httpx.Response(429, json={"reason": "Too many requests"})
        params = dict(request.url.params)
        if "geocoding" in request.url.host:
            if self.mode == "unknown":
                return httpx.Response(200, json={"generationtime_ms": 0.3})
            name = params["name"]
            country = self.rng.choice(
                [
                    "China",
                    "France",
                    "Japan",
                    "United States",
                    "Germany",
                    "Brazil",
                    "India",
                    "中国",
                    "日本",
                    "Canada",
                    "Australia",
                    "Italy",
                    "Spain",
                ]
            )
            return httpx.Response(
                200,
                json={
                    "results": [
                        {
                            "id": self.rng.randint(1000, 9999999),
                            "name": name,
                            "latitude": round(self.rng.uniform(-60, 70), 4),
                            "longitude": round(self.rng.uniform(-170, 170), 4),
                            "country": country,
                            "admin1": self.rng.choice(["", "Province", "Region", name]),
                            "timezone": "Etc/UTC",
                        }
                    ]
                },
            )
        imperial = params.get("temperature_unit") == "fahrenheit"
        base = self.rng.uniform(-15, 36)

        def temp(t: float) -> float:
            return round(t * 9 / 5 + 32 if imperial else t, 1)

        wind_factor = 1 / 1.609 if imperial else 1.0
        codes = [0, 1, 2, 3, 45, 51, 61, 63, 65, 71, 73, 80, 95]
        if "current" in params:
            now = {
                "time": f"2025-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}T{self.rng.randint(0, 23):02d}:00",
                "temperature_2m": temp(base),
                "apparent_temperature": temp(base - self.rng.uniform(0, 4)),
                "relative_humidity_2m": self.rng.randint(12, 100),
                "precipitation": round(self.rng.choice([0, 0, 0, self.rng.uniform(0, 8)]), 1),
                "weather_code": self.rng.choice(codes),
                "wind_speed_10m": round(self.rng.uniform(0, 40) * wind_factor, 1),
                "wind_direction_10m": self.rng.randint(0, 359),
                "is_day": self.rng.randint(0, 1),
            }
            return httpx.Response(200, json={"timezone": "Etc/UTC", "current": now})
        days = int(params.get("forecast_days", 3))
        start = dt.date(2025, 1, 1) + dt.timedelta(days=self.rng.randint(0, 360))
        lows = [base - self.rng.uniform(2, 9) + self.rng.uniform(-3, 3) for _ in range(days)]
        daily = {
            "time": [str(start + dt.timedelta(days=i)) for i in range(days)],
            "weather_code": [self.rng.choice(codes) for _ in range(days)],
            "temperature_2m_min": [temp(t) for t in lows],
            "temperature_2m_max": [temp(t + self.rng.uniform(3, 11)) for t in lows],
            "precipitation_sum": [
                round(self.rng.choice([0, 0, self.rng.uniform(0, 20)]), 1) for _ in range(days)
            ],
            "precipitation_probability_max": [self.rng.randint(0, 100) for _ in range(days)],
            "wind_speed_10m_max": [round(self.rng.uniform(3, 50) * wind_factor, 1) for _ in range(days)],
        }
        return httpx.Response(200, json={"timezone": "Etc/UTC", "daily": daily})

    def run_weather(self, call: ToolCall, mode: str) -> tuple[str, bool, dict | None]:
        self.mode = mode
        self.weather._places.clear()
        result = self.executor.run(call)
        return result.text(), result.ok, (json.loads(result.output) if result.ok else None)

    def run_python(self, code: str) -> tuple[str, bool]:
        """The interpreter's answer: the printed text, or IPython's traceback."""
        stdout, error = run_python(code)
        self.cell += self.rng.randint(1, 3)
        if error is None:
            return stdout.rstrip("\n"), True
        name, _, message = error.partition(": ")
        if name == "SyntaxError":
            return (
                f"  Cell In[{self.cell}], line 1\n    {code.splitlines()[0]}\n    ^\nSyntaxError: {message}",
                False,
            )
        lines = code.splitlines()
        trace = [
            "-" * 75,
            f"{name:<42}Traceback (most recent call last)",
            f"Cell In[{self.cell}], line {len(lines)}",
        ]
        trace += [f"      {i} {line}" for i, line in enumerate(lines[:-1], 1)]
        trace += [f"----> {len(lines)} {lines[-1]}", "", f"{name}: {message}"]
        return "\n".join(stdout.splitlines() + trace), False

    def papers(self, topic: str, count: int) -> str:
        described = []
        for i in range(1, count + 1):
            year = self.rng.randint(2016, 2025)
            month, day = self.rng.randint(1, 12), self.rng.randint(1, 28)
            published = dt.datetime(year, month, day)
            updated = published + dt.timedelta(days=self.rng.choice([0, 0, self.rng.randint(5, 300)]))
            ident = f"{year % 100:02d}{month:02d}.{self.rng.randint(1, 29999):05d}v{self.rng.randint(1, 3)}"
            shown = topic.title() if self.rng.random() < 0.5 else topic.capitalize()
            paper = SimpleNamespace(
                title=self.rng.choice(_TITLE_PATTERNS).format(T=shown),
                authors=[
                    SimpleNamespace(name=f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}")
                    for _ in range(self.rng.randint(1, 5))
                ],
                published=published,
                updated=updated,
                summary=(
                    f"We study {topic}. "
                    + self.rng.choice(
                        [
                            "We propose a simple method that improves over strong baselines.",
                            "Experiments on three benchmarks show consistent gains.",
                            "We release code and data to support further research.",
                            "Our analysis explains when and why existing approaches fail.",
                        ]
                    )
                ),
                pdf_url=f"https://arxiv.org/pdf/{ident}",
                primary_category=self.rng.choice(
                    ["cs.LG", "cs.CL", "cs.CV", "astro-ph.CO", "quant-ph", "q-bio.BM", "stat.ML"]
                ),
            )
            paper.get_short_id = lambda ident=ident: ident
            described.append(self.arxiv._describe(i, paper))
        return "\n\n".join(described)

    def arxiv_error(self) -> str:
        return (
            f"{ARXIV} failed: cannot reach arXiv (export.arxiv.org) after 4 tries: "
            f"{self.rng.choice(self.ARXIV_CAUSES)}. Check the network connection."
        )


# -- the generator -------------------------------------------------------------------------------------


class RequestGenerator:
    """Random requests from a seed. `split="train"` never yields held-out items, `"eval"` only them."""

    def __init__(self, seed: int, split: str = "train", novel: float = 0.0, multi_call: float = 1.0) -> None:
        """`novel`: the share of titles, gallery scenes, image questions and persona lines composed from
        words rather than taken from the fixed lists. `multi_call`: how much more often than the default
        mixture a request needs several calls (the same tool several times, or two tools)."""
        self.rng = random.Random(seed)
        self.split = split
        self.novel = novel
        self.families = dict(self.FAMILIES)
        self.families["parallel"] *= multi_call
        self.families["combo"] *= multi_call
        # the probabilities in servable() (0.2 and 0.25 by default), at most 80% together: single calls
        # stay in the mixture
        scale = min(multi_call, 0.8 / 0.45)
        self.parallel_share = 0.2 * scale
        self.combo_share = 0.25 * scale

    def pick(self, items: list[Any] | tuple[Any, ...]) -> Any:
        return self.rng.choice(items)

    def keep(self, key: str) -> bool:
        return held_out(key) == (self.split == "eval")

    def maybe_thought(self, lang: str, en: list[str], zh: list[str]) -> str:
        return "" if self.rng.random() < 0.3 else self.pick(en if lang == "en" else zh)

    @staticmethod
    def code_call(code: str) -> ToolCall:
        return ToolCall(kind="interpreter", name=INTERPRETER, arguments={"command": code})

    # -- values ------------------------------------------------------------------------------------
    def place(self, lang: str) -> str:
        if self.rng.random() < 0.3:
            if lang == "zh" and self.rng.random() < 0.85:
                return "".join(self.rng.sample(_ZH_PLACE_CHARS, self.pick([2, 2, 3]))) + self.pick(
                    ["", "", "市", "县", "镇"]
                )
            name = "".join(self.pick(_SYLLABLES) for _ in range(self.pick([2, 2, 3]))).capitalize()
            return name + (
                " " + "".join(self.pick(_SYLLABLES) for _ in range(2)).capitalize()
                if self.rng.random() < 0.15
                else ""
            )
        en, zh = self.pick(CITIES)
        return zh if lang == "zh" and self.rng.random() < 0.9 else en

    def topic(self, lang: str) -> str:
        if self.rng.random() < 0.3:
            if lang == "zh" and self.rng.random() < 0.7:
                return self.pick(_ZH_TOPIC_A) + self.pick(_ZH_TOPIC_B)
            return f"{self.pick(_TOPIC_MODS)} {self.pick(_TOPIC_MODS)} {self.pick(_TOPIC_HEADS)}"
        en, zh = self.pick(TOPICS)
        return zh if lang == "zh" and self.rng.random() < 0.85 else en

    def path(self) -> str:
        if self.rng.random() < 0.4:
            stem = "".join(self.pick(_SYLLABLES) for _ in range(2)) + self.pick(
                ["", "_01", "_2024", "-a", str(self.rng.randint(1, 99))]
            )
        else:
            stem = self.pick(_STEMS)
        return f"{self.pick(_DIRS)}/{stem}{self.pick(_EXTS)}"

    def pair(self, pairs: list[tuple[str, str]], lang: str) -> str:
        en, zh = self.pick(pairs)
        return zh if lang == "zh" else en

    def _composed(self) -> bool:
        # no draw at all when novel == 0: the default stream of requests stays what it was
        return self.novel > 0 and self.rng.random() < self.novel

    def _en_phrase(self, low: int, high: int, capitalize: bool) -> str:
        words = []
        for _ in range(self.rng.randint(low, high)):
            if self.rng.random() < 0.3:
                word = "".join(self.pick(_SYLLABLES) for _ in range(self.pick([2, 3])))
            else:
                word = self.pick(_EN_WORDS)
            words.append(word.capitalize() if capitalize else word)
        text = words[0]
        for word in words[1:]:
            text += self.pick(_EN_LINKS) + word
        return text

    def _zh_phrase(self, low: int, high: int) -> str:
        return "".join(self.pick(_ZH_CHARS) for _ in range(self.rng.randint(low, high)))

    def title(self, lang: str) -> str:
        if not self._composed():
            return self.pair(TITLES, lang)
        return self._zh_phrase(2, 7) if lang == "zh" else self._en_phrase(1, 4, capitalize=True)

    def scene(self, lang: str) -> str:
        if not self._composed():
            return self.pair(SCENES, lang)
        if lang == "zh":
            return self._zh_phrase(2, 8)
        phrase = self._en_phrase(1, 4, capitalize=False)
        return phrase if self.rng.random() < 0.5 else self.pick(["a ", "the ", "some "]) + phrase

    def image_question(self, lang: str) -> str:
        if not self._composed():
            return self.pair(IMAGE_QUESTIONS, lang)
        if lang == "zh":
            return self._zh_phrase(3, 9) + "？"
        return f"{self.pick(_QUESTION_HEADS)} {self._en_phrase(1, 4, capitalize=False)}?"

    def persona_line(self, lang: str) -> str:
        if not self._composed():
            return self.pair(PERSONA_LINES, lang)
        if lang == "zh":
            return self._zh_phrase(3, 10) + self.pick(["？", "。", "！"])
        head = self.pick([*_QUESTION_HEADS, "Tell me about", "Do you like", "I think"])
        return f"{head} {self._en_phrase(1, 4, capitalize=False)}{self.pick(['?', '.', '!'])}"

    def number(self, top: int | None = None) -> str:
        if top is None and self.rng.random() < 0.08:
            return f"{self.rng.randint(0, 99)}.{self.rng.randint(1, 99)}"
        return str(self.rng.randint(1, top or self.pick([9, 99, 99, 999, 999, 9999, 9999])))

    # -- interpreter -------------------------------------------------------------------------------
    def expression(self) -> str:
        ops = ["+", "-", "*", "/", "*", "+", "-", "//", "%", "**"]
        form = self.rng.random()
        if form < 0.6:
            op = self.pick(ops)
            a, b = self.number(), self.number()
            if op == "**":
                a, b = str(self.rng.randint(2, 30)), str(self.rng.randint(2, 6))
            return f"{a} {op} {b}"
        if form < 0.82:
            return (
                f"{self.number()} {self.pick(ops[:6])} {self.number()} {self.pick(ops[:6])} {self.number()}"
            )
        inner = f"({self.number()} {self.pick(['+', '-'])} {self.number()})"
        op = self.pick(["*", "/"])
        return f"{inner} {op} {self.number()}" if self.rng.random() < 0.5 else f"{self.number()} {op} {inner}"

    def arithmetic(self, lang: str) -> Request | None:
        expr = self.expression()
        if self.rng.random() < 0.15:
            expr = expr.replace(" ", "")
        if not self.keep(expr.replace(" ", "")):
            return None
        stdout, error = run_python(f"print({expr})")
        if error is not None or len(stdout) > 30:
            return None
        user = self.pick(
            [
                "What is {e}?",
                "Calculate {e}.",
                "Compute {e}",
                "What's {e}?",
                "How much is {e}?",
                "Please calculate {e} for me.",
                "Can you work out {e}?",
                "{e} = ?",
                "Evaluate {e}.",
                "Use Python to compute {e}.",
                "what is {e}",
                "I need the value of {e}.",
                "Solve {e}.",
                "Quick question: what is {e}?",
                "Could you tell me what {e} is?",
            ]
            if lang == "en"
            else [
                "{e} 等于多少？",
                "计算 {e}",
                "帮我算一下 {e}",
                "请计算{e}。",
                "{e}是多少？",
                "用 Python 计算 {e}",
                "{e} = ?",
                "算一算 {e} 的结果",
                "请问 {e} 等于几？",
                "{e}等于几",
                "帮我计算{e}",
            ]
        ).format(e=expr)
        return self._compute("arithmetic", lang, user, expr, expr)

    def worded_arithmetic(self, lang: str) -> Request | None:
        a, b = self.number(), self.number()
        op = self.pick(["+", "-", "*", "/", "**2", "**"])
        if op == "**":
            a, b = str(self.rng.randint(2, 20)), str(self.rng.randint(2, 8))
        expr = f"{a} ** 2" if op == "**2" else f"{a} {op} {b}"
        if not self.keep(expr.replace(" ", "")):
            return None
        words = (
            {
                "+": ["{a} plus {b}", "the sum of {a} and {b}", "{a} added to {b}"],
                "-": ["{a} minus {b}", "the difference between {a} and {b}"],
                "*": ["{a} times {b}", "{a} multiplied by {b}", "the product of {a} and {b}"],
                "/": ["{a} divided by {b}", "the quotient of {a} and {b}"],
                "**2": ["{a} squared", "the square of {a}"],
                "**": ["{a} to the power of {b}", "{a} raised to the power {b}"],
            }
            if lang == "en"
            else {
                "+": ["{a}加{b}", "{a} 加上 {b}", "{a}与{b}的和"],
                "-": ["{a}减{b}", "{a} 减去 {b}", "{a}与{b}的差"],
                "*": ["{a}乘以{b}", "{a} 乘 {b}", "{a}和{b}的乘积"],
                "/": ["{a}除以{b}", "{a} 除以 {b}"],
                "**2": ["{a}的平方"],
                "**": ["{a}的{b}次方", "{a} 的 {b} 次幂"],
            }
        )
        phrase = self.pick(words[op]).format(a=a, b=b)
        user = self.pick(
            ["What is {p}?", "Calculate {p}.", "What's {p}?", "Tell me {p}."]
            if lang == "en"
            else ["{p}是多少？", "{p}等于多少？", "请计算{p}。"]
        ).format(p=phrase)
        return self._compute("arithmetic", lang, user, expr, phrase)

    def _compute(self, kind: str, lang: str, user: str, expr: str, shown: str) -> Request:
        stdout, error = run_python(f"print({expr})")

        def finish(results: Results) -> str:
            text, ok = results[0]
            if not ok:
                return self._python_failure(lang, text)
            value = text.strip()
            # the value alone: every extra copied span is a chance to miscopy
            return self.pick(
                [f"The result is {value}.", f"The answer is {value}.", f"It is {value}."]
                if lang == "en"
                else [f"计算结果为 {value}。", f"答案是 {value}。", f"结果是 {value}。"]
            )

        thought = self.maybe_thought(
            lang,
            ["Let me calculate that.", "I'll compute this with Python.", "Computing it in Python."],
            ["我来计算一下。", "我用 Python 计算。", "让我用代码算一下。"],
        )
        return Request(
            kind,
            lang,
            user,
            [self.code_call(f"print({expr})")],
            thought=thought,
            finish=finish,
            expected=[stdout.strip()] if error is None else [],
        )

    def _python_failure(self, lang: str, text: str) -> str:
        last = text.strip().splitlines()[-1] if text.strip() else "an error"
        return _say(lang, f"The code failed with an error: {last}", f"代码运行出错：{last}")

    def division_by_zero(self, lang: str) -> Request:
        expr = f"{self.number()} {self.pick(['/', '/', '%', '//'])} 0"
        user = self.pick(
            ["What is {e}?", "Calculate {e}."] if lang == "en" else ["{e} 等于多少？", "计算 {e}"]
        ).format(e=expr)
        return self._compute("arithmetic_error", lang, user, expr, expr)

    def program(self, lang: str) -> Request | None:
        builder = self.pick(
            [
                self._prime,
                self._sum_range,
                self._factorial,
                self._reverse,
                self._sort,
                self._length,
                self._sqrt,
                self._fibonacci,
                self._gcd,
                self._fahrenheit,
                self._mean,
                self._percent,
                self._upper,
                self._max,
                self._square_fn,
                self._count_vowels,
            ]
        )
        user, code, answer_of = builder(lang)
        if not self.keep(code):
            return None
        stdout, error = run_python(code)
        if error is not None or not stdout.strip() or len(stdout) > 80:
            return None

        def finish(results: Results) -> str:
            text, ok = results[0]
            return answer_of(text.strip()) if ok else self._python_failure(lang, text)

        thought = self.maybe_thought(
            lang,
            ["Let me write a short Python program.", "I'll solve this with Python."],
            ["我写一段 Python 代码来解决。", "我用代码来算一下。"],
        )
        return Request(
            "program",
            lang,
            user,
            [self.code_call(code)],
            thought=thought,
            finish=finish,
            expected=[stdout.strip()],
        )

    def _prime(self, lang: str):
        n = self.rng.randint(2, 9999)
        user = self.pick(
            [f"Is {n} a prime number?", f"Check whether {n} is prime.", f"Is {n} prime?"]
            if lang == "en"
            else [f"{n} 是质数吗？", f"判断 {n} 是不是素数", f"{n}是素数吗？"]
        )
        code = f"n = {n}\nprint(n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)))"

        def answer(v: str) -> str:
            yes = v == "True"
            if lang == "en":
                return f"Yes, {n} is a prime number." if yes else f"No, {n} is not a prime number."
            return f"是的，{n} 是质数。" if yes else f"不是，{n} 不是质数。"

        return user, code, answer

    def _sum_range(self, lang: str):
        a, b = sorted(self.rng.sample(range(0, 5000), 2))
        user = self.pick(
            [f"What is the sum of all integers from {a} to {b}?", f"Add up the numbers from {a} to {b}."]
            if lang == "en"
            else [f"从 {a} 加到 {b} 的和是多少？", f"计算 {a} 到 {b} 所有整数之和"]
        )
        return (
            user,
            f"print(sum(range({a}, {b} + 1)))",
            lambda v: _say(
                lang, f"The sum of the integers from {a} to {b} is {v}.", f"{a} 到 {b} 的整数之和是 {v}。"
            ),
        )

    def _factorial(self, lang: str):
        n = self.rng.randint(1, 25)
        user = self.pick(
            [f"What is the factorial of {n}?", f"Compute {n}!", f"Calculate {n} factorial."]
            if lang == "en"
            else [f"{n} 的阶乘是多少？", f"计算 {n}!"]
        )
        return (
            user,
            f"import math\nprint(math.factorial({n}))",
            lambda v: _say(lang, f"{n}! = {v}.", f"{n} 的阶乘是 {v}。"),
        )

    def _reverse(self, lang: str):
        w = self.pick(WORDS) if self.rng.random() < 0.6 else "".join(self.pick(_SYLLABLES) for _ in range(3))
        user = self.pick(
            [f"Reverse the string '{w}'.", f"What is '{w}' backwards?", f"Write Python to reverse '{w}'."]
            if lang == "en"
            else [f"把字符串 '{w}' 反转", f"'{w}' 倒过来是什么？"]
        )
        return (
            user,
            f"print('{w}'[::-1])",
            lambda v: _say(lang, f"The reversed string is '{v}'.", f"反转后的字符串是 '{v}'。"),
        )

    def _sort(self, lang: str):
        listed = ", ".join(str(self.rng.randint(-50, 999)) for _ in range(self.rng.randint(3, 7)))
        user = self.pick(
            [f"Sort these numbers: {listed}", f"Sort the list [{listed}] in ascending order."]
            if lang == "en"
            else [f"把这些数排序：{listed}", f"将列表 [{listed}] 从小到大排序"]
        )
        return user, f"print(sorted([{listed}]))", lambda v: _say(lang, f"Sorted: {v}", f"排序结果：{v}")

    def _length(self, lang: str):
        text = " ".join(self.pick(WORDS) for _ in range(self.rng.randint(1, 3)))
        user = self.pick(
            [f"How many characters are in '{text}'?", f"What is the length of the string '{text}'?"]
            if lang == "en"
            else [f"'{text}' 有多少个字符？", f"字符串 '{text}' 的长度是多少？"]
        )
        return (
            user,
            f"print(len('{text}'))",
            lambda v: _say(lang, f"'{text}' has {v} characters.", f"'{text}' 共有 {v} 个字符。"),
        )

    def _sqrt(self, lang: str):
        n = self.rng.randint(2, 99999)
        user = self.pick(
            [f"What is the square root of {n}?", f"Compute the square root of {n}."]
            if lang == "en"
            else [f"{n} 的平方根是多少？", f"计算 {n} 的平方根"]
        )
        return (
            user,
            f"import math\nprint(math.sqrt({n}))",
            lambda v: _say(lang, f"The square root of {n} is {v}.", f"{n} 的平方根是 {v}。"),
        )

    def _fibonacci(self, lang: str):
        n = self.rng.randint(1, 80)
        user = self.pick(
            [f"What is the {n}th Fibonacci number?", f"Compute Fibonacci number {n}."]
            if lang == "en"
            else [f"第 {n} 个斐波那契数是多少？", f"计算斐波那契数列的第 {n} 项"]
        )
        return (
            user,
            f"a, b = 0, 1\nfor _ in range({n}):\n    a, b = b, a + b\nprint(a)",
            lambda v: _say(lang, f"Fibonacci number {n} is {v}.", f"第 {n} 个斐波那契数是 {v}。"),
        )

    def _gcd(self, lang: str):
        a, b = self.rng.randint(2, 9999), self.rng.randint(2, 9999)
        user = self.pick(
            [f"What is the greatest common divisor of {a} and {b}?", f"Find gcd({a}, {b})."]
            if lang == "en"
            else [f"{a} 和 {b} 的最大公约数是多少？"]
        )
        return (
            user,
            f"import math\nprint(math.gcd({a}, {b}))",
            lambda v: _say(
                lang,
                f"The greatest common divisor of {a} and {b} is {v}.",
                f"{a} 和 {b} 的最大公约数是 {v}。",
            ),
        )

    def _fahrenheit(self, lang: str):
        f = self.rng.randint(-40, 250)
        user = self.pick(
            [f"Convert {f} degrees Fahrenheit to Celsius.", f"What is {f}°F in Celsius?"]
            if lang == "en"
            else [f"把 {f} 华氏度换算成摄氏度", f"{f}°F 是多少摄氏度？"]
        )
        return (
            user,
            f"print(({f} - 32) * 5 / 9)",
            lambda v: _say(lang, f"{f}°F is {v}°C.", f"{f}°F 等于 {v}°C。"),
        )

    def _mean(self, lang: str):
        listed = ", ".join(str(self.rng.randint(0, 500)) for _ in range(self.rng.randint(2, 6)))
        user = self.pick(
            [f"What is the average of {listed}?", f"Compute the mean of [{listed}]."]
            if lang == "en"
            else [f"{listed} 的平均数是多少？", f"计算 [{listed}] 的平均值"]
        )
        return (
            user,
            f"nums = [{listed}]\nprint(sum(nums) / len(nums))",
            lambda v: _say(lang, f"The average is {v}.", f"平均值是 {v}。"),
        )

    def _percent(self, lang: str):
        p, n = self.rng.randint(1, 99), self.rng.randint(1, 9999)
        user = self.pick(
            [f"What is {p}% of {n}?", f"Calculate {p} percent of {n}."]
            if lang == "en"
            else [f"{n} 的 {p}% 是多少？", f"{n}的百分之{p}是多少？"]
        )
        return (
            user,
            f"print({n} * {p} / 100)",
            lambda v: _say(lang, f"{p}% of {n} is {v}.", f"{n} 的 {p}% 是 {v}。"),
        )

    def _upper(self, lang: str):
        text = " ".join(self.pick(WORDS) for _ in range(self.rng.randint(1, 3)))
        user = self.pick(
            [f"Convert '{text}' to upper case.", f"Uppercase the string '{text}'."]
            if lang == "en"
            else [f"把 '{text}' 转成大写"]
        )
        return user, f"print('{text}'.upper())", lambda v: _say(lang, f"In upper case: {v}", f"大写形式：{v}")

    def _max(self, lang: str):
        listed = ", ".join(str(self.rng.randint(-999, 9999)) for _ in range(self.rng.randint(3, 6)))
        big = self.rng.random() < 0.5
        fn, en, zh = ("max", "largest", "最大") if big else ("min", "smallest", "最小")
        user = f"What is the {en} of {listed}?" if lang == "en" else f"{listed} 中{zh}的数是哪个？"
        return (
            user,
            f"print({fn}([{listed}]))",
            lambda v: _say(lang, f"The {en} is {v}.", f"{zh}的数是 {v}。"),
        )

    def _square_fn(self, lang: str):
        n = self.rng.randint(-99, 999)
        user = (
            f"Write a Python function that squares a number and test it with {n}."
            if lang == "en"
            else f"写一个计算平方的 Python 函数，并用 {n} 测试"
        )
        return (
            user,
            f"def square(x):\n    return x * x\n\nprint(square({n}))",
            lambda v: _say(
                lang, f"The function works: square({n}) returns {v}.", f"函数运行正常：square({n}) 返回 {v}。"
            ),
        )

    def _count_vowels(self, lang: str):
        w = self.pick(WORDS)
        user = f"How many vowels are in the word '{w}'?" if lang == "en" else f"单词 '{w}' 里有几个元音字母？"
        return (
            user,
            f"print(sum(c in 'aeiou' for c in '{w}'))",
            lambda v: _say(lang, f"'{w}' has {v} vowels.", f"'{w}' 中有 {v} 个元音字母。"),
        )

    # -- weather -----------------------------------------------------------------------------------
    def weather(self, lang: str, forecast: bool | None = None, places: list[str] | None = None) -> Request:
        forecast = self.rng.random() < 0.4 if forecast is None else forecast
        places = places or [self.place(lang)]
        units = None
        unit_phrase = ""
        if self.rng.random() < 0.2:
            units = self.pick(["imperial", "metric"])
            unit_phrase = {
                ("en", "imperial"): " in Fahrenheit",
                ("en", "metric"): " in Celsius",
                ("zh", "imperial"): "（用华氏度）",
                ("zh", "metric"): "（用摄氏度）",
            }[(lang, units)]
        where = self._join(places, lang)
        days = None
        if forecast:
            if self.rng.random() < 0.75:
                days = self.rng.randint(1, 7)
            if days is None:
                user = self.pick(
                    [
                        f"What's the weather forecast for {where}{unit_phrase}?",
                        f"weather forecast {where}",
                        f"Will it rain in {where} in the coming days?",
                    ]
                    if lang == "en"
                    else [
                        f"{where}的天气预报{unit_phrase}",
                        f"{where}未来几天的天气怎么样{unit_phrase}？",
                        f"查一下{where}的天气预报",
                    ]
                )
            else:
                user = self.pick(
                    [
                        f"What's the forecast for {where} for the next {days} days{unit_phrase}?",
                        f"Give me a {days}-day forecast for {where}{unit_phrase}.",
                        f"Give me the {days}-day forecast for {where}{unit_phrase}.",
                        f"Will it rain in {where} in the next {days} days?",
                        f"weather forecast {where} {days} days",
                    ]
                    if lang == "en"
                    else [
                        f"{where}未来{days}天的天气怎么样{unit_phrase}？",
                        f"查一下{where}接下来 {days} 天的天气预报{unit_phrase}",
                        f"{where}未来 {days} 天会下雨吗？",
                    ]
                )
        else:
            user = self.pick(
                [
                    f"What's the weather in {where}{unit_phrase}?",
                    f"How is the weather in {where} right now{unit_phrase}?",
                    f"What's the weather like in {where}{unit_phrase}?",
                    f"What's the temperature in {where}{unit_phrase}?",
                    f"Is it cold in {where} today?",
                    f"weather in {where}",
                    f"Tell me the current weather in {where}{unit_phrase}.",
                ]
                if lang == "en"
                else [
                    f"{where}今天天气怎么样{unit_phrase}？",
                    f"{where}现在的天气如何{unit_phrase}？",
                    f"{where}现在多少度{unit_phrase}？",
                    f"查一下{where}现在的天气{unit_phrase}",
                    f"{where}现在的天气怎么样？",
                    f"{where}冷不冷？",
                ]
            )
        api = WEATHER_FORECAST if forecast else WEATHER_NOW
        calls = []
        for place in places:
            args: dict[str, Any] = {"city": place}
            if days is not None:
                args["days"] = days
            if units and unit_phrase in user:  # only units the request states
                args["units"] = units
            calls.append(ToolCall(name=api, arguments=args))
        thought = self.maybe_thought(
            lang,
            [f"Let me check the weather in {where}.", "I'll look up the weather."],
            [f"我来查询{where}的天气。", "让我查一下天气。"],
        )
        kind = "weather_forecast" if forecast else "weather"
        return Request(
            kind,
            lang,
            user,
            calls,
            thought=thought,
            finish=lambda results: self._weather_answer(lang, places, results),
        )

    def _join(self, items: list[str], lang: str) -> str:
        if len(items) == 1:
            return items[0]
        if lang == "zh":
            return "、".join(items[:-1]) + "和" + items[-1]
        return ", ".join(items[:-1]) + " and " + items[-1]

    def _weather_answer(self, lang: str, places: list[str], results: Results) -> str:
        parts = []
        for place, (text, ok) in zip(places, results, strict=True):
            parts.append(self._one_weather(lang, place, text, ok))
        return (" " if lang == "en" else "").join(parts)

    def _one_weather(self, lang: str, place: str, text: str, ok: bool) -> str:
        if not ok:
            if "cannot reach" in text:
                return _say(
                    lang,
                    f"Sorry, I could not get the weather for {place}: the weather service cannot be reached. Please check the network connection.",
                    f"抱歉，无法获取{place}的天气：连接不上天气服务，请检查网络连接。",
                )
            if "unknown place" in text or "no place named" in text:
                return _say(
                    lang,
                    f"Sorry, I could not find a place called {place}. Please check the name.",
                    f"抱歉，没有找到名为{place}的地点，请检查地名。",
                )
            if "rate-limiting" in text:
                return _say(
                    lang,
                    "Sorry, the weather service is busy right now; please ask again in a minute.",
                    "抱歉，天气服务现在繁忙，请一分钟后再试。",
                )
            return _say(
                lang,
                f"Sorry, the weather service did not answer for {place}; please try again later.",
                f"抱歉，天气服务没有响应{place}的查询，请稍后再试。",
            )
        data = json.loads(text)
        imperial = data.get("units") == "imperial"
        deg, speed = ("°F", "mph") if imperial else ("°C", "km/h")
        t = "f" if imperial else "c"
        w = "mph" if imperial else "kmh"
        if "days" in data:
            days = data["days"]
            shown = days[:3]
            if lang == "en":
                lines = [
                    f"{d['date']}: {d['weather']}, {d[f'min_{t}']} to {d[f'max_{t}']}{deg}, {d['precipitation_probability_percent']}% chance of rain"
                    for d in shown
                ]
                more = f" ({len(days) - 3} more days in the forecast)" if len(days) > 3 else ""
                return f"Forecast for {place}: " + "; ".join(lines) + "." + more
            lines = [
                f"{d['date']} {d['weather']}，{d[f'min_{t}']} 到 {d[f'max_{t}']}{deg}，降水概率 {d['precipitation_probability_percent']}%"
                for d in shown
            ]
            more = f"（另有 {len(days) - 3} 天的预报）" if len(days) > 3 else ""
            return f"{place}天气预报：" + "；".join(lines) + "。" + more
        if lang == "en":
            return (
                f"In {place} it is currently {data[f'temperature_{t}']}{deg} ({data['weather']}), feels like "
                f"{data[f'feels_like_{t}']}{deg}, humidity {data['humidity_percent']}%, wind {data[f'wind_{w}']} {speed}."
            )
        return (
            f"{place}当前气温 {data[f'temperature_{t}']}{deg}，{data['weather']}，体感 {data[f'feels_like_{t}']}{deg}，"
            f"湿度 {data['humidity_percent']}%，风速 {data[f'wind_{w}']} {speed}。"
        )

    # -- arxiv -------------------------------------------------------------------------------------
    def arxiv(self, lang: str, topics: list[str] | None = None) -> Request:
        topics = topics or [self.topic(lang)]
        count = None if len(topics) > 1 or self.rng.random() < 0.5 else self.pick([1, 2, 3, 5, 5, 10])
        what = self._join(topics, lang)
        if len(topics) > 1:
            user = self.pick(
                [f"Search arXiv for papers on {' and on '.join(topics)}.", f"Find papers about {what}."]
                if lang == "en"
                else [f"分别搜索关于{'和'.join(topics)}的论文", f"帮我找{what}方面的论文"]
            )
        elif count:
            user = self.pick(
                [f"Find {count} papers about {what}.", f"Search arXiv for {count} papers on {what}."]
                if lang == "en"
                else [f"找 {count} 篇关于{what}的论文", f"在 arXiv 上搜 {count} 篇{what}的论文"]
            )
        else:
            user = self.pick(
                [
                    f"Find papers about {what}.",
                    f"Search arXiv for {what}.",
                    f"Are there recent papers on {what}?",
                    f"Look up research on {what} on arXiv.",
                    f"What papers exist on {what}?",
                ]
                if lang == "en"
                else [
                    f"帮我找几篇关于{what}的论文",
                    f"在 arXiv 上搜索{what}",
                    f"有哪些关于{what}的最新论文？",
                    f"查一下{what}的相关论文",
                ]
            )
        calls = []
        for topic in topics:
            args: dict[str, Any] = {"query": topic}
            if count:
                args["max_results"] = count
            calls.append(ToolCall(name=ARXIV, arguments=args))
        thought = self.maybe_thought(
            lang,
            ["Let me search arXiv.", "I'll search arXiv."],
            ["我来搜索 arXiv。", "让我在 arXiv 上查找相关论文。"],
        )
        return Request(
            "arxiv",
            lang,
            user,
            calls,
            thought=thought,
            finish=lambda results: self._arxiv_answer(lang, topics, results),
        )

    def _arxiv_answer(self, lang: str, topics: list[str], results: Results) -> str:
        parts = []
        for topic, (text, ok) in zip(topics, results, strict=True):
            if not ok:
                parts.append(
                    _say(
                        lang,
                        f"Sorry, the arXiv search for {topic} failed: arXiv cannot be reached. Please check the network connection.",
                        f"抱歉，{topic}的 arXiv 搜索失败：连接不上 arXiv，请检查网络连接。",
                    )
                )
                continue
            if text.startswith("No arXiv papers"):
                parts.append(
                    _say(lang, f"I found no arXiv papers on {topic}.", f"没有找到关于{topic}的 arXiv 论文。")
                )
                continue
            papers = [block.splitlines() for block in text.split("\n\n")]
            titles = [(lines[0].split(". ", 1)[1], lines[3].removeprefix("arXiv: ")) for lines in papers]
            if lang == "en":
                head = f"Papers on {topic}:"
                items = [f"{i}. {title} (arXiv:{ident})" for i, (title, ident) in enumerate(titles, 1)]
            else:
                head = f"关于{topic}的论文："
                items = [f"{i}. {title}（arXiv:{ident}）" for i, (title, ident) in enumerate(titles, 1)]
            parts.append("\n".join([head, *items]))
        return "\n\n".join(parts)

    # -- image tools and skills (first turns only: the demo config does not offer them) ------------
    def caption(self, lang: str, paths: list[str] | None = None) -> Request:
        paths = paths or [self.path()]
        if len(paths) > 1:
            user = (
                f"Describe each of these images: {self._join(paths, 'en')}."
                if lang == "en"
                else f"分别描述这几张图片：{self._join(paths, 'zh')}"
            )
        else:
            p = paths[0]
            user = self.pick(
                [f"What does {p} show?", f"Describe the image {p}.", f"What's in {p}?"]
                if lang == "en"
                else [f"{p} 这张图里有什么？", f"描述一下图片 {p}", f"看看 {p} 是什么"]
            )
        return Request("caption", lang, user, [ToolCall(name=CAPTION, arguments={"image": p}) for p in paths])

    def retrieval(self, lang: str) -> Request:
        scene = self.scene(lang)
        count = self.pick([None, None, 1, 2, 3, 5, 6])
        exclude = self.path() if self.rng.random() < 0.15 else None
        if lang == "en":
            user = (
                f"Find {count} pictures of {scene} in my gallery."
                if count
                else f"Find a picture of {scene} in my gallery."
            )
            if exclude:
                user = user[:-1] + f", but not {exclude}."
        else:
            user = f"在图库里找 {count} 张{scene}的图片" if count else f"在图库里找一张{scene}的图片"
            user += f"，不要 {exclude}。" if exclude else "。"
        args: dict[str, Any] = {"query": scene}
        if count:
            args["top_k"] = count
        if exclude:
            args["exclude"] = [exclude]
        return Request("retrieval", lang, user, [ToolCall(name=RETRIEVAL, arguments=args)])

    def understanding(self, lang: str) -> Request:
        paths = [self.path() for _ in range(self.pick([1, 1, 2]))]
        question = self.image_question(lang)
        if len(paths) == 1:
            user = (
                f"Look at {paths[0]} and tell me: {question}"
                if lang == "en"
                else f"看一下 {paths[0]}，{question}"
            )
        else:
            user = (
                f"Compare {paths[0]} and {paths[1]}: {question}"
                if lang == "en"
                else f"对比 {paths[0]} 和 {paths[1]}：{question}"
            )
        return Request(
            "understanding",
            lang,
            user,
            [ToolCall(name=UNDERSTANDING, arguments={"images": paths, "question": question})],
        )

    def writer(self, lang: str) -> Request:
        title = self.title(lang)
        user = self.pick(
            [
                f"Write an illustrated article titled '{title}'.",
                f"Write an article with pictures called '{title}'.",
            ]
            if lang == "en"
            else [f"写一篇图文并茂的文章，题目是《{title}》", f"以《{title}》为题写一篇配图文章"]
        )
        return Request("writer", lang, user, [ToolCall(name=WRITER, arguments={"title": title})])

    def persona(self, lang: str) -> Request:
        line = self.persona_line(lang)
        user = self.pick(
            [f'Ask Zhu Bajie: "{line}"', f'Let the persona chat answer this: "{line}"']
            if lang == "en"
            else [f"让猪八戒回答：“{line}”", f"问问猪八戒：“{line}”"]
        )
        return Request("persona", lang, user, [ToolCall(name=PERSONA, arguments={"message": line})])

    # -- no tools ----------------------------------------------------------------------------------
    def small_talk(self, lang: str) -> Request:
        pairs = (
            [
                (
                    "Hello!",
                    "Hello! I can calculate, run small Python programs, check the weather and search arXiv. What can I do for you?",
                ),
                ("Hi", "Hi! How can I help you today?"),
                ("Hi, how are you?", "I'm fine, thank you! How can I help?"),
                ("Good morning", "Good morning! What can I do for you?"),
                ("How are you?", "I'm doing well, thank you! How can I help?"),
                (
                    "Who are you?",
                    "I am inkagent's small demo assistant. I can do calculations and small programs in Python, check the weather, and search arXiv papers.",
                ),
                (
                    "What can you do?",
                    "I can calculate and run small Python programs, look up the weather for a place, and search arXiv for papers.",
                ),
                ("Thanks!", "You're welcome!"),
                ("Thanks a lot!", "You're welcome! Anything else?"),
                ("Thank you very much.", "You're welcome!"),
                ("Goodbye!", "Goodbye! Have a nice day."),
                ("Bye", "Bye! See you next time."),
                ("Nice to meet you.", "Nice to meet you too! How can I help?"),
                ("Are you a robot?", "I am a small language model running as an agent with a few tools."),
            ]
            if lang == "en"
            else [
                (
                    "你好",
                    "你好！我可以做计算、运行小段 Python 代码、查询天气和搜索 arXiv 论文。有什么可以帮你的？",
                ),
                ("你好！", "你好！有什么可以帮你的吗？"),
                ("早上好", "早上好！需要我做些什么？"),
                ("晚上好", "晚上好！有什么可以帮你？"),
                ("你是谁？", "我是 inkagent 的小型演示助手，可以用 Python 计算、查询天气、搜索 arXiv 论文。"),
                ("你能做什么？", "我可以做计算和运行小程序、查询某地的天气，以及在 arXiv 上搜索论文。"),
                ("谢谢", "不客气！"),
                ("谢谢你！", "不客气，还有别的需要吗？"),
                ("再见", "再见，祝你愉快！"),
                ("拜拜", "拜拜，下次见！"),
                ("你好吗？", "我很好，谢谢！有什么可以帮你？"),
                ("你是机器人吗？", "我是一个带有几个工具的小型语言模型智能体。"),
            ]
        )
        user, answer = self.pick(pairs)
        return Request("small_talk", lang, user, direct=answer)

    def out_of_scope(self, lang: str) -> Request:
        if lang == "en":
            subject = self.pick(
                [
                    "the sea",
                    "autumn",
                    "a cat",
                    "the moon",
                    "friendship",
                    "coffee",
                    "winter",
                    "a robot",
                    "home",
                ]
            )
            template, skill = self.pick(
                [
                    ("Write a poem about {s}.", "poems"),
                    ("Tell me a story about {s}.", "stories"),
                    ("Write an essay about {s}.", "essays"),
                    ("Who was the first emperor of Rome?", "history questions"),
                    ("When did World War II end?", "history questions"),
                    ("What year did the Second World War end?", "history questions"),
                    ("What happened in 1066?", "history questions"),
                    ("Who wrote Hamlet?", "literature questions"),
                    ("Translate 'good night' into French.", "translation"),
                    ("What is the capital of Australia?", "general knowledge questions"),
                    ("Tell me a joke.", "jokes"),
                    ("What is the meaning of life?", "philosophy questions"),
                    ("Summarize today's news.", "news"),
                    ("Recommend a good movie.", "recommendations"),
                    ("Recommend a good book.", "recommendations"),
                    ("Explain photosynthesis.", "science explanations"),
                    ("What does '{w}' mean?", "word definitions"),
                    ("Compose a song about {s}.", "songs"),
                    ("Give me advice on my career.", "advice"),
                ]
            )
            user = template.format(s=subject, w=self.pick(WORDS))
            answer = (
                f"Sorry, I am a small demo model and cannot help with {skill} reliably. "
                "I can calculate and run small Python programs, check the weather, and search arXiv papers."
            )
        else:
            subject = self.pick(["大海", "秋天", "月亮", "友谊", "猫", "春天", "家乡"])
            template, skill = self.pick(
                [
                    ("写一首关于{s}的诗", "写诗"),
                    ("给我讲一个故事", "讲故事"),
                    ("写一篇关于{s}的作文", "写作文"),
                    ("秦始皇是哪一年统一六国的？", "历史问题"),
                    ("唐朝是哪一年建立的？", "历史问题"),
                    ("把“晚安”翻译成英文", "翻译"),
                    ("讲个笑话", "讲笑话"),
                    ("讲个笑话吧", "讲笑话"),
                    ("推荐一部电影", "推荐"),
                    ("推荐一本好书", "推荐"),
                    ("解释一下光合作用", "科学解释"),
                    ("中国的首都是哪里？", "常识问答"),
                    ("人生的意义是什么？", "哲学问题"),
                ]
            )
            user = template.format(s=subject)
            answer = f"抱歉，我只是一个小型演示模型，无法可靠地处理{skill}。我可以用 Python 计算、查询天气和搜索 arXiv 论文。"
        return Request("out_of_scope", lang, user, direct=answer)

    def fit(self, request: Request, offered: set[str]) -> Request:
        """The request as the offered tools allow: its calls when all their tools are offered, else a
        "no such tool" answer."""
        if request.calls and not request.needs <= offered:
            return self.missing_tool(request, offered)
        return request

    def missing_tool(self, request: Request, offered: set[str]) -> Request:
        """The same request where its tool is not offered: say so, call nothing."""
        need = next(c.name for c in request.calls if c.name not in offered)
        lang = request.lang
        what = {
            INTERPRETER: ("a code interpreter", "代码解释器"),
            ARXIV: ("an arXiv search tool", "arXiv 搜索工具"),
            WEATHER_NOW: ("a tool for the current weather", "查询当前天气的工具"),
            WEATHER_FORECAST: ("a weather forecast tool", "天气预报工具"),
            CAPTION: ("an image captioning tool", "图片描述工具"),
            RETRIEVAL: ("an image search tool", "图片检索工具"),
            UNDERSTANDING: ("an image question tool", "图片问答工具"),
            WRITER: ("an article writing tool", "图文写作工具"),
            PERSONA: ("the persona chat", "角色聊天工具"),
        }[need]
        answer = _say(
            lang,
            f"Sorry, I cannot do that here: {what[0]} is not available to me.",
            f"抱歉，这里没有可用的{what[1]}，我无法完成这个请求。",
        )
        return Request("missing_tool", lang, request.user, direct=answer)

    def no_call_answer(self, user: str, lang: str) -> str:
        """The answer to a request no offered tool serves: small talk gets its reply, the rest a refusal."""
        for candidate_lang in ("en", "zh"):
            for _ in range(40):
                talk = self.small_talk(candidate_lang)
                if talk.user == user:
                    return talk.direct
        return _say(
            lang,
            "Sorry, none of the tools available here can do that.",
            "抱歉，这里没有能完成这个请求的工具。",
        )

    # -- mixtures ----------------------------------------------------------------------------------
    FAMILIES: dict[str, float] = {
        "arithmetic": 0.16,
        "worded": 0.04,
        "div0": 0.01,
        "program": 0.10,
        "weather": 0.10,
        "forecast": 0.07,
        "arxiv": 0.10,
        "caption": 0.04,
        "retrieval": 0.03,
        "understanding": 0.03,
        "writer": 0.03,
        "persona": 0.03,
        "small_talk": 0.05,
        "out_of_scope": 0.05,
        "parallel": 0.14,
        "combo": 0.12,
    }
    SINGLE = (
        "arithmetic",
        "program",
        "weather",
        "forecast",
        "arxiv",
        "caption",
        "retrieval",
        "understanding",
        "writer",
        "persona",
    )

    def single(self, family: str, lang: str) -> Request | None:
        return {
            "arithmetic": self.arithmetic,
            "worded": self.worded_arithmetic,
            "div0": self.division_by_zero,
            "program": self.program,
            "weather": lambda lg: self.weather(lg, forecast=False),
            "forecast": lambda lg: self.weather(lg, forecast=True),
            "arxiv": self.arxiv,
            "caption": self.caption,
            "retrieval": self.retrieval,
            "understanding": self.understanding,
            "writer": self.writer,
            "persona": self.persona,
            "small_talk": self.small_talk,
            "out_of_scope": self.out_of_scope,
        }[family](lang)

    def parallel(self, lang: str, family: str | None = None) -> Request:
        family = family or self.pick(["weather", "forecast", "arxiv", "caption"])
        n = self.pick([2, 2, 3])
        if family in ("weather", "forecast"):
            places = list(dict.fromkeys(self.place(lang) for _ in range(n)))
            request = self.weather(lang, forecast=family == "forecast", places=places)
        elif family == "arxiv":
            request = self.arxiv(lang, topics=list(dict.fromkeys(self.topic(lang) for _ in range(n))))
        else:
            request = self.caption(lang, paths=list(dict.fromkeys(self.path() for _ in range(n))))
        request.kind = "parallel_" + request.kind
        return request

    def combo(self, lang: str, families: tuple[str, str] | None = None) -> Request | None:
        first, second = families or self.rng.sample(list(self.SINGLE), 2)
        a, b = self.single(first, lang), self.single(second, lang)
        if a is None or b is None or not a.calls or not b.calls or a.needs & b.needs:
            return None
        joiner = (
            self.pick([" Also, ", " And ", " Then, "])
            if lang == "en"
            else self.pick(["另外，", "还有，", "然后，"])
        )
        first_text = a.user if a.user[-1] in ".?!。？！" else a.user + ("." if lang == "en" else "。")
        second_text = b.user[0].lower() + b.user[1:] if lang == "en" and not b.user[:2].isupper() else b.user
        user = first_text + joiner + second_text

        def finish(results: Results) -> str:
            n = len(a.calls)
            return ("\n" if lang == "en" else "\n").join([a.finish(results[:n]), b.finish(results[n:])])

        both = a.finish is not None and b.finish is not None
        return Request(
            "combo",
            lang,
            user,
            a.calls + b.calls,
            finish=finish if both else None,
            expected=a.expected + b.expected,
        )

    TOOL_OF = {
        "arithmetic": INTERPRETER,
        "worded": INTERPRETER,
        "program": INTERPRETER,
        "weather": WEATHER_NOW,
        "forecast": WEATHER_FORECAST,
        "arxiv": ARXIV,
        "caption": CAPTION,
        "retrieval": RETRIEVAL,
        "understanding": UNDERSTANDING,
        "writer": WRITER,
        "persona": PERSONA,
    }
    PARALLEL = ("weather", "forecast", "arxiv", "caption")

    def servable(self, offered: set[str], lang: str | None = None) -> Request | None:
        """A request that the offered tools serve: one call, the same tool several times, or two tools."""
        lang = lang or ("en" if self.rng.random() < 0.6 else "zh")
        families = [f for f in self.SINGLE if self.TOOL_OF[f] in offered]
        if not families:
            return None
        r = self.rng.random()
        parallel = [f for f in families if f in self.PARALLEL]
        if r < self.parallel_share and parallel:
            return self.parallel(lang, self.pick(parallel))
        if r < self.parallel_share + self.combo_share and len({self.TOOL_OF[f] for f in families}) > 1:
            first = self.pick(families)
            second = self.pick([f for f in families if self.TOOL_OF[f] != self.TOOL_OF[first]])
            return self.combo(lang, (first, second))
        return self.single(self.pick(families), lang)

    def sample(self, lang: str | None = None, families: dict[str, float] | None = None) -> Request:
        """One request from the mixture (retries the rare family that yields nothing)."""
        lang = lang or ("en" if self.rng.random() < 0.6 else "zh")
        table = families or self.families
        family = self.rng.choices(list(table), weights=list(table.values()))[0]
        if family == "parallel":
            request = self.parallel(lang)
        elif family == "combo":
            request = self.combo(lang)
        else:
            request = self.single(family, lang)
        return request if request is not None else self.sample(lang, families)


# -- dialogues -------------------------------------------------------------------------------------------


def dialogue(request: Request, world: ToolWorld, failure: str | None = None) -> list[Message]:
    """The whole dialogue of a request on the demo tools: call(s), the tools' answers, the final answer.

    `failure` makes the demo's network tools fail the way they do offline ("network"), or with an
    unknown place, a timeout or rate limiting.
    """
    user = Message(role="user", content=request.user)
    if not request.calls:
        return [user, Message(role="assistant", content=request.direct)]
    results: Results = []
    for call in request.calls:
        if call.name == INTERPRETER:
            results.append(world.run_python(call.arguments["command"]))
        elif call.name in (WEATHER_NOW, WEATHER_FORECAST):
            text, ok, _ = world.run_weather(call, failure or "ok")
            results.append((text, ok))
        elif call.name == ARXIV:
            if failure == "network":
                results.append((world.arxiv_error(), False))
            else:
                # at most 3 papers (2 per search when there are several): keeps dialogues short to train on
                most = 3 if len(request.calls) == 1 else 2
                results.append(
                    (
                        world.papers(
                            call.arguments["query"], min(most, call.arguments.get("max_results", 3))
                        ),
                        True,
                    )
                )
        else:
            raise ValueError(f"{call.name} is not a demo tool")
    messages = [user, Message(role="assistant", content=request.thought, tool_calls=list(request.calls))]
    messages += [
        Message(role="environment", content=text, name=call.kind)
        for call, (text, _) in zip(request.calls, results, strict=True)
    ]
    assert request.finish is not None
    messages.append(Message(role="assistant", content=request.finish(results)))
    return messages
