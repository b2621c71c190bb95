"""Wenzhou (温州) districts with their GB/T 2260 region codes, and industries."""

from __future__ import annotations

from sandu.domain.certs import (  # noqa: F401  (re-exported for the simulator)
    CERT_GAOXIN,
    CERT_KEJIXING,
    CERT_XIAOJUREN,
    CERT_ZHUANJINGTEXIN,
    CERTIFICATIONS,
)

# district → (region code, share of enterprises)
DISTRICTS: dict[str, tuple[str, float]] = {
    "鹿城": ("330302", 0.12),
    "龙湾": ("330303", 0.10),
    "瓯海": ("330304", 0.11),
    "洞头": ("330305", 0.02),
    "永嘉": ("330324", 0.09),
    "平阳": ("330326", 0.07),
    "苍南": ("330327", 0.07),
    "文成": ("330328", 0.02),
    "泰顺": ("330329", 0.02),
    "瑞安": ("330381", 0.13),
    "乐清": ("330382", 0.19),
    "龙港": ("330383", 0.06),
}

# industry → (tech baseline, electricity intensity kWh per 万元 revenue, share, name word)
INDUSTRIES: dict[str, tuple[float, float, float, str]] = {
    "低压电器": (0.4, 180.0, 0.16, "电气"),
    "汽车零部件": (0.3, 260.0, 0.12, "汽配"),
    "阀门泵业": (0.0, 240.0, 0.10, "阀门"),
    "鞋革": (-0.8, 120.0, 0.10, "鞋业"),
    "服装": (-0.9, 90.0, 0.08, "服饰"),
    "电子元器件": (0.8, 210.0, 0.09, "电子"),
    "医疗器械": (0.9, 150.0, 0.05, "医疗器械"),
    "塑料包装": (-0.2, 300.0, 0.07, "塑业"),
    "新材料": (0.7, 350.0, 0.06, "新材料"),
    "智能装备": (0.9, 170.0, 0.07, "智能科技"),
    "软件信息": (1.2, 40.0, 0.05, "信息技术"),
    "眼镜锁具": (-0.4, 110.0, 0.05, "实业"),
}

# Industries counted as strategic emerging (战略性新兴产业) for tech share reports.
TECH_INDUSTRIES = frozenset({"电子元器件", "医疗器械", "新材料", "智能装备", "软件信息", "汽车零部件"})

BRAND_SYLLABLES = (
    "华", "正", "德", "力", "宏", "信", "瑞", "泰", "恒", "通", "创", "联", "鑫", "达", "安",
    "中", "天", "博", "凯", "盛", "捷", "新", "远", "源", "明", "永", "丰", "海", "科", "立",
)

