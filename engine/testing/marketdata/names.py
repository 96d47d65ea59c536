"""Asset names for the generated catalog: well-known coins plus seeded synthetic ones.

The well-known list carries the symbol, the Korean and English names the exchange displays, and a
rough USD price used only to give each pair a realistic scale. Synthetic assets are built from
Latin/Hangul syllable pairs so that both names read plausibly and stay stable for a seed.
"""

from __future__ import annotations

import random
from typing import NamedTuple

__all__ = ("Asset", "KNOWN_ASSETS", "synthetic_assets")


class Asset(NamedTuple):
    symbol: str
    korean_name: str
    english_name: str
    usd_price: float


# Majors first: the catalog lists the first entries on every quote market and gives them the most
# traffic. Prices are rough orders of magnitude, not quotes.
KNOWN_ASSETS: tuple[Asset, ...] = (
    Asset("BTC", "비트코인", "Bitcoin", 80_000.0),
    Asset("ETH", "이더리움", "Ethereum", 3_000.0),
    Asset("XRP", "엑스알피(리플)", "XRP", 2.3),
    Asset("SOL", "솔라나", "Solana", 150.0),
    Asset("DOGE", "도지코인", "Dogecoin", 0.2),
    Asset("USDT", "테더", "Tether", 1.0),
    Asset("USDC", "유에스디코인", "USD Coin", 1.0),
    Asset("ADA", "에이다", "Cardano", 0.7),
    Asset("TRX", "트론", "TRON", 0.25),
    Asset("LINK", "체인링크", "Chainlink", 15.0),
    Asset("AVAX", "아발란체", "Avalanche", 25.0),
    Asset("XLM", "스텔라루멘", "Stellar Lumens", 0.3),
    Asset("BCH", "비트코인캐시", "Bitcoin Cash", 450.0),
    Asset("DOT", "폴카닷", "Polkadot", 5.0),
    Asset("SHIB", "시바이누", "Shiba Inu", 0.000013),
    Asset("HBAR", "헤데라", "Hedera", 0.2),
    Asset("SUI", "수이", "Sui", 3.0),
    Asset("NEAR", "니어프로토콜", "NEAR Protocol", 3.0),
    Asset("APT", "앱토스", "Aptos", 6.0),
    Asset("ETC", "이더리움클래식", "Ethereum Classic", 20.0),
    Asset("POL", "폴리곤 에코시스템 토큰", "POL (ex-MATIC)", 0.3),
    Asset("ATOM", "코스모스", "Cosmos", 5.0),
    Asset("ARB", "아비트럼", "Arbitrum", 0.5),
    Asset("OP", "옵티미즘", "Optimism", 0.8),
    Asset("ALGO", "알고랜드", "Algorand", 0.2),
    Asset("SAND", "샌드박스", "The Sandbox", 0.3),
    Asset("MANA", "디센트럴랜드", "Decentraland", 0.3),
    Asset("AXS", "엑시인피니티", "Axie Infinity", 3.0),
    Asset("EOS", "이오스", "EOS", 0.6),
    Asset("XTZ", "테조스", "Tezos", 0.8),
    Asset("VET", "비체인", "VeChain", 0.03),
    Asset("THETA", "쎄타토큰", "Theta Token", 1.0),
    Asset("STX", "스택스", "Stacks", 1.2),
    Asset("SEI", "세이", "Sei", 0.3),
    Asset("PEPE", "페페", "Pepe", 0.00001),
    Asset("BONK", "봉크", "Bonk", 0.00002),
    Asset("WLD", "월드코인", "Worldcoin", 1.5),
    Asset("TIA", "셀레스티아", "Celestia", 3.0),
    Asset("INJ", "인젝티브", "Injective", 15.0),
    Asset("GRT", "더그래프", "The Graph", 0.1),
    Asset("AAVE", "에이브", "Aave", 250.0),
    Asset("UNI", "유니스왑", "Uniswap", 8.0),
    Asset("CRV", "커브", "Curve", 0.6),
    Asset("ICX", "아이콘", "ICON", 0.15),
    Asset("BAT", "베이직어텐션토큰", "Basic Attention Token", 0.2),
    Asset("ZRX", "제로엑스", "0x Protocol", 0.3),
    Asset("QTUM", "퀀텀", "Qtum", 2.5),
    Asset("NEO", "네오", "NEO", 6.0),
    Asset("ONT", "온톨로지", "Ontology", 0.2),
    Asset("ZIL", "질리카", "Zilliqa", 0.015),
    Asset("IOST", "아이오에스티", "IOST", 0.005),
    Asset("STORJ", "스토리지", "Storj", 0.4),
    Asset("SNT", "스테이터스네트워크토큰", "Status Network Token", 0.03),
    Asset("KAVA", "카바", "Kava", 0.4),
    Asset("FLOW", "플로우", "Flow", 0.5),
    Asset("CHZ", "칠리즈", "Chiliz", 0.05),
    Asset("ENS", "이더리움네임서비스", "Ethereum Name Service", 20.0),
    Asset("IMX", "이뮤터블엑스", "Immutable X", 0.6),
    Asset("GMT", "스테픈", "STEPN", 0.06),
    Asset("BLUR", "블러", "Blur", 0.1),
    Asset("MASK", "마스크네트워크", "Mask Network", 1.5),
    Asset("ARKM", "아캄", "Arkham", 0.5),
    Asset("STRK", "스타크넷", "Starknet", 0.15),
    Asset("ONDO", "온도파이낸스", "Ondo Finance", 1.0),
    Asset("JUP", "주피터", "Jupiter", 0.5),
    Asset("PYTH", "피스네트워크", "Pyth Network", 0.15),
    Asset("ENA", "에테나", "Ethena", 0.4),
    Asset("ZRO", "레이어제로", "LayerZero", 2.0),
    Asset("MOVE", "무브먼트", "Movement", 0.2),
    Asset("RENDER", "렌더토큰", "Render", 4.0),
    Asset("FIL", "파일코인", "Filecoin", 3.0),
    Asset("ANKR", "앵커", "Ankr", 0.02),
    Asset("1INCH", "1인치네트워크", "1inch Network", 0.25),
    Asset("CELO", "셀로", "Celo", 0.4),
    Asset("EGLD", "멀티버스엑스", "MultiversX", 15.0),
    Asset("MINA", "미나", "Mina", 0.3),
    Asset("STG", "스타게이트파이낸스", "Stargate Finance", 0.2),
    Asset("ELF", "엘프", "aelf", 0.3),
    Asset("GRS", "그로스톨코인", "Groestlcoin", 0.3),
    Asset("XEC", "이캐시", "eCash", 0.00002),
    Asset("T", "쓰레스홀드", "Threshold", 0.015),
    Asset("JST", "저스트", "JUST", 0.03),
    Asset("BTT", "비트토렌트", "BitTorrent", 0.0000008),
    Asset("MED", "메디블록", "MediBloc", 0.006),
    Asset("MBL", "무비블록", "MovieBloc", 0.002),
    Asset("HUNT", "헌트", "Hunt", 0.2),
    Asset("META", "메타디움", "Metadium", 0.02),
    Asset("POWR", "파워렛저", "Powerledger", 0.15),
    Asset("LSK", "리스크", "Lisk", 0.5),
    Asset("ARDR", "아더", "Ardor", 0.07),
    Asset("STEEM", "스팀", "Steem", 0.15),
    Asset("HIVE", "하이브", "Hive", 0.2),
    Asset("AERGO", "아르고", "Aergo", 0.1),
    Asset("CVC", "시빅", "Civic", 0.1),
    Asset("GLM", "골렘", "Golem", 0.3),
    Asset("AKT", "아카시네트워크", "Akash Network", 1.5),
    Asset("ASTR", "아스타", "Astar", 0.03),
    Asset("BORA", "보라", "BORA", 0.1),
    Asset("SC", "시아코인", "Siacoin", 0.004),
    Asset("ONG", "온톨로지가스", "Ontology Gas", 0.2),
    Asset("ZETA", "제타체인", "ZetaChain", 0.3),
    Asset("BIGTIME", "빅타임", "Big Time", 0.08),
    Asset("AQT", "알파쿼크", "Alpha Quark Token", 1.0),
    Asset("CTC", "크레딧코인", "Creditcoin", 0.6),
    Asset("VTHO", "비토르토큰", "VeThor Token", 0.002),
    Asset("IQ", "아이큐", "IQ", 0.004),
    Asset("TT", "썬더코어", "ThunderCore", 0.003),
)

# Latin syllable -> Hangul spelling; synthetic names concatenate two or three of them.
_SYLLABLES: tuple[tuple[str, str], ...] = (
    ("ka", "카"), ("ki", "키"), ("ko", "코"), ("ku", "쿠"), ("ra", "라"), ("ri", "리"),
    ("ro", "로"), ("ru", "루"), ("ma", "마"), ("mi", "미"), ("mo", "모"), ("na", "나"),
    ("ni", "니"), ("no", "노"), ("ta", "타"), ("ti", "티"), ("to", "토"), ("sa", "사"),
    ("si", "시"), ("so", "소"), ("ve", "베"), ("ze", "제"), ("lu", "루"), ("da", "다"),
    ("do", "도"), ("be", "베"), ("bo", "보"), ("fi", "피"), ("ne", "네"), ("te", "테"),
    ("pe", "페"), ("pa", "파"), ("vo", "보"), ("ga", "가"), ("go", "고"), ("ha", "하"),
    ("ho", "호"), ("ya", "야"), ("yo", "요"), ("je", "제"), ("zo", "조"), ("xi", "시"),
    ("qua", "콰"), ("vi", "비"), ("le", "레"), ("me", "메"), ("se", "세"), ("du", "두"),
)  # fmt: skip

_ENDINGS: tuple[tuple[str, str], ...] = (("", ""), ("", ""), ("x", "스"), ("s", "스"), ("t", "트"))

_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("", ""), ("", ""), ("", ""), (" Protocol", "프로토콜"), (" Network", "네트워크"),
    (" Chain", "체인"), (" Finance", "파이낸스"), (" Coin", "코인"), (" Token", "토큰"),
    (" Labs", "랩스"), (" AI", "에이아이"), (" Swap", "스왑"),
)  # fmt: skip


def _usd_price(rng: random.Random) -> float:
    # Log-uniform over small caps, with an occasional expensive asset.
    if rng.random() < 0.05:
        return round(10 ** rng.uniform(1.5, 3.0), 2)
    return float(f"{10 ** rng.uniform(-3.3, 1.3):.4g}")


def synthetic_assets(rng: random.Random, count: int, taken: set[str]) -> list[Asset]:
    """``count`` new assets whose symbols avoid ``taken`` (which is updated)."""
    assets: list[Asset] = []
    while len(assets) < count:
        parts = [rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3)))]
        ending = rng.choice(_ENDINGS)
        suffix = rng.choice(_SUFFIXES)
        latin = "".join(p[0] for p in parts) + ending[0]
        symbol = latin[: rng.choice((3, 4, 4, 5))].upper()
        if symbol in taken:
            continue
        taken.add(symbol)
        english = latin.capitalize() + suffix[0]
        korean = "".join(p[1] for p in parts) + ending[1] + suffix[1]
        assets.append(Asset(symbol, korean, english, _usd_price(rng)))
    return assets
