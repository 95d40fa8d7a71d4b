#!/usr/bin/env python3
"""Independent oracle and case generator for the text-encoding conformance corpus.

This is a second implementation of RULES.md, written from the rules alone (Python 3.11
standard library only, no code shared with the Rust implementation).  It computes every
expected field of a corpus record from the record's `text`:

  python3 tests/corpus/generate.py --verify tests/corpus/cases.jsonl
      Recompute every record of the file and compare every field (and the id format,
      id uniqueness and the JSON line layout).  Prints each mismatch; exit status 0
      only when there is none.

  python3 tests/corpus/generate.py --append [tests/corpus/cases.jsonl]
      Generate the additional cases (deterministic: fixed seeds, no clock, no hash
      ordering) and append those whose id is not in the file yet.  Running it twice
      appends nothing the second time; an id present with different content is an
      error and nothing is written.  Existing lines are never changed or reordered.

  python3 tests/corpus/generate.py --stats [tests/corpus/cases.jsonl]
      Per-category counts.

  python3 tests/corpus/generate.py --print
      Write the generated cases to standard output instead of appending them.
"""

import argparse
import collections
import hashlib
import json
import random
import re
import sys
import unicodedata
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parent / "cases.jsonl"

# --------------------------------------------------------------------------------------
# RULES.md section 1: character repertoire
# --------------------------------------------------------------------------------------

# Default alphabet, septet value -> character, row by row as in the RULES.md table
# (column = high nibble 0x00..0x70, row = low nibble).  None marks 0x1B (escape).
_COLUMNS = [
    # 0x00..0x0F
    ["@", "\u00a3", "$", "\u00a5", "\u00e8", "\u00e9", "\u00f9", "\u00ec",
     "\u00f2", "\u00c7", "\n", "\u00d8", "\u00f8", "\r", "\u00c5", "\u00e5"],
    # 0x10..0x1F
    ["\u0394", "_", "\u03a6", "\u0393", "\u039b", "\u03a9", "\u03a0", "\u03a8",
     "\u03a3", "\u0398", "\u039e", None, "\u00c6", "\u00e6", "\u00df", "\u00c9"],
    # 0x20..0x2F
    [" ", "!", '"', "#", "\u00a4", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/"],
    # 0x30..0x3F
    ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?"],
    # 0x40..0x4F
    ["\u00a1", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O"],
    # 0x50..0x5F
    ["P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z",
     "\u00c4", "\u00d6", "\u00d1", "\u00dc", "\u00a7"],
    # 0x60..0x6F
    ["\u00bf", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"],
    # 0x70..0x7F
    ["p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z",
     "\u00e4", "\u00f6", "\u00f1", "\u00fc", "\u00e0"],
]

GSM_DEFAULT = {}
for _hi, _col in enumerate(_COLUMNS):
    for _lo, _ch in enumerate(_col):
        if _ch is not None:
            GSM_DEFAULT[_ch] = _hi * 16 + _lo

GSM_EXTENSION = {
    "\u000c": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "\u20ac": 0x65,
}

assert len(GSM_DEFAULT) == 127, len(GSM_DEFAULT)
assert len(GSM_EXTENSION) == 10
assert not set(GSM_DEFAULT) & set(GSM_EXTENSION)
assert sorted(GSM_DEFAULT.values()) == [v for v in range(128) if v != 0x1B]

ESC = 0x1B
LIMITS = {
    # encoding: (single part, per segment 8-bit ref, per segment 16-bit ref)
    "GSM7": (160, 153, 152),
    "UCS2": (70, 67, 66),
}
MAX_SEGMENTS = 255


def is_gsm(ch):
    return ch in GSM_DEFAULT or ch in GSM_EXTENSION


def gsm_char_octets(ch):
    """Unpacked GSM7 octets of one GSM character (section 4)."""
    if ch in GSM_DEFAULT:
        return bytes([GSM_DEFAULT[ch]])
    return bytes([ESC, GSM_EXTENSION[ch]])


def ucs2_char_octets(ch):
    """UTF-16BE octets of one scalar value (section 4); 2 or 4 octets."""
    cp = ord(ch)
    if 0xD800 <= cp <= 0xDFFF:
        raise ValueError("lone surrogate U+%04X (RULES.md section 7)" % cp)
    return ch.encode("utf-16-be")


# --------------------------------------------------------------------------------------
# RULES.md sections 2-6
# --------------------------------------------------------------------------------------

def detect(text):
    return "GSM7" if all(is_gsm(ch) for ch in text) else "UCS2"


def char_chunks(text, encoding):
    """The message as indivisible chunks: (payload octets, length in septets/units)."""
    out = []
    for ch in text:
        if encoding == "GSM7":
            b = gsm_char_octets(ch)
            out.append((b, len(b)))          # one septet per octet (unpacked)
        else:
            b = ucs2_char_octets(ch)
            out.append((b, len(b) // 2))     # one unit per two octets
    return out


def split(chunks, total, single, per_segment):
    """Section 5: single part when it fits, else greedy, chunks never divided."""
    if total <= single:
        return [b"".join(b for b, _ in chunks)]
    segments, cur, used = [], [], 0
    for b, n in chunks:
        if used + n > per_segment:
            segments.append(b"".join(cur))
            cur, used = [], 0
        cur.append(b)
        used += n
    if cur:
        segments.append(b"".join(cur))
    if len(segments) > MAX_SEGMENTS:
        raise ValueError("more than %d segments" % MAX_SEGMENTS)
    return segments


def force_gsm7(text):
    """Section 4, GSM7_FORCE: each non-GSM code point becomes '?' (0x3F)."""
    return b"".join(gsm_char_octets(ch) if is_gsm(ch) else b"\x3f" for ch in text)


def fingerprint(encoding, count, payload):
    """Section 6."""
    return hashlib.sha256(("%s:%d:" % (encoding, count)).encode("ascii") + payload).hexdigest()[:32]


def compute(text):
    """Every compared field of a corpus record, from the text alone."""
    encoding = detect(text)
    chunks = char_chunks(text, encoding)
    total = sum(n for _, n in chunks)
    payload = b"".join(b for b, _ in chunks)
    single, per8, per16 = LIMITS[encoding]
    seg8 = split(chunks, total, single, per8)
    seg16 = split(chunks, total, single, per16)
    assert b"".join(seg8) == payload and b"".join(seg16) == payload
    return {
        "encoding": encoding,
        "septets_or_units": total,
        "segments_8bit": [s.hex() for s in seg8],
        "segments_16bit": [s.hex() for s in seg16],
        "segment_count_8bit": len(seg8),
        "segment_count_16bit": len(seg16),
        "fingerprint": fingerprint(encoding, len(seg8), payload),
        "force_gsm7_hex": force_gsm7(text).hex(),
    }


FIELDS = [
    "encoding",
    "septets_or_units",
    "segments_8bit",
    "segments_16bit",
    "segment_count_8bit",
    "segment_count_16bit",
    "fingerprint",
    "force_gsm7_hex",
]
KEY_ORDER = ["id", "text"] + FIELDS + ["category", "note"]


def units(text):
    """Length per section 3 (septets for GSM text, UTF-16 units otherwise)."""
    return compute_length(text, detect(text))


def compute_length(text, encoding):
    if encoding == "GSM7":
        return sum(2 if ch in GSM_EXTENSION else 1 for ch in text)
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


# --------------------------------------------------------------------------------------
# RULES.md section 8: the JSON line
# --------------------------------------------------------------------------------------

def _needs_escape(ch):
    """Invisible / formatting characters written as \\uXXXX (section 8)."""
    cat = unicodedata.category(ch)
    if cat in ("Cf", "Zl", "Zp"):
        return True
    if cat == "Cc" and ord(ch) >= 0x80:           # C1 controls
        return True
    if cat == "Zs" and ch != " ":                  # no-break and other odd spaces
        return True
    return False


def _escape(ch):
    cp = ord(ch)
    if cp > 0xFFFF:
        hi, lo = divmod(cp - 0x10000, 0x400)
        return "\\u%04x\\u%04x" % (0xD800 + hi, 0xDC00 + lo)
    return "\\u%04x" % cp


def dump_line(record):
    s = json.dumps({k: record[k] for k in KEY_ORDER if k in record}, ensure_ascii=False)
    return "".join(_escape(ch) if _needs_escape(ch) else ch for ch in s)


ID_RE = re.compile(r"^([a-z0-9_]+)-(\d{4})$")


# --------------------------------------------------------------------------------------
# --verify
# --------------------------------------------------------------------------------------

def verify(path):
    problems = 0
    seen = {}
    n = 0
    with open(path, encoding="utf-8", newline="\n") as f:
        raw = f.read()
    if raw and not raw.endswith("\n"):
        print("%s: last line has no newline" % path)
        problems += 1
    for lineno, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        n += 1
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            print("line %d: not JSON: %s" % (lineno, e))
            problems += 1
            continue
        cid = rec.get("id")
        where = "line %d (%s)" % (lineno, cid)
        m = ID_RE.match(str(cid))
        if not m:
            print("%s: id does not match <category>-NNNN" % where)
            problems += 1
        elif m.group(1) != rec.get("category"):
            print("%s: id prefix differs from category %r" % (where, rec.get("category")))
            problems += 1
        if cid in seen:
            print("%s: duplicate id (first on line %d)" % (where, seen[cid]))
            problems += 1
        seen[cid] = lineno
        missing = [k for k in KEY_ORDER if k not in rec and k != "note"]
        extra = [k for k in rec if k not in KEY_ORDER]
        if missing or extra:
            print("%s: missing fields %s, unknown fields %s" % (where, missing, extra))
            problems += 1
        text = rec.get("text")
        if not isinstance(text, str):
            print("%s: text is not a string" % where)
            problems += 1
            continue
        try:
            exp = compute(text)
        except ValueError as e:
            print("%s: cannot compute: %s" % (where, e))
            problems += 1
            continue
        for field in FIELDS:
            if rec.get(field) != exp[field]:
                got = json.dumps(rec.get(field))
                want = json.dumps(exp[field])
                print("%s: %s is %s, the rules give %s" % (
                    where, field, got[:200], want[:200]))
                problems += 1
        if dump_line(rec) != line:
            print("%s: JSON layout differs from the canonical form (section 8)" % where)
            problems += 1
    print("%d records checked, %d mismatches" % (n, problems))
    return 0 if problems == 0 else 1


# --------------------------------------------------------------------------------------
# Case generation
# --------------------------------------------------------------------------------------

# Highest id number per category in the 306 public cases; generated ids continue from
# here.  Fixed on purpose: the generated ids must not depend on what was appended.
BASE_IDS = {
    "edge_misc": 52,
    "ascii": 130,
    "pashto": 113,
    "dari": 117,
    "arabic": 120,
    "persian_digits": 120,
    "mixed_latin_arabic": 112,
    "gsm_latin1": 64,
    "latin1_non_gsm": 66,
    "gsm_ext_boundary": 109,
    "gsm_exact_length": 98,
    "ucs2_exact_length": 89,
    "emoji_boundary": 93,
    "joiners_bidi_tatweel": 98,
    "single_non_gsm": 52,
    "long_multipart": 39,
}
CATEGORY_ORDER = list(BASE_IDS)

ZWNJ = "\u200c"
ZWJ = "\u200d"
LRM = "\u200e"
RLM = "\u200f"
ALM = "\u061c"
TATWEEL = "\u0640"

WESTERN = "0123456789"
PERSIAN_DIGITS = "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9"   # ۰-۹
ARABIC_DIGITS = "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"  # ٠-٩
ARABIC_THOUSANDS = "\u066c"   # ٬
ARABIC_PERCENT = "\u066a"     # ٪


class Filler:
    """Random values for the {placeholders} of the message templates."""

    def __init__(self, rng, digits, names, extra=None):
        self.rng = rng
        self.digits = digits
        self.names = names
        self.extra = extra or {}

    def d(self, s):
        if self.digits is WESTERN:
            return s
        return s.translate(str.maketrans(WESTERN, self.digits))

    def num(self, lo_len, hi_len):
        n = self.rng.randint(lo_len, hi_len)
        first = str(self.rng.randint(1, 9))
        return first + "".join(str(self.rng.randint(0, 9)) for _ in range(n - 1))

    def amount(self):
        v = self.num(1, 7)
        style = self.rng.random()
        if len(v) > 3 and style < 0.4:
            sep = ARABIC_THOUSANDS if (self.digits is not WESTERN and self.rng.random() < 0.6) else ","
            groups = []
            while v:
                groups.insert(0, v[-3:])
                v = v[:-3]
            v = sep.join(groups)
        return self.d(v)

    def value(self, key):
        r = self.rng
        if key == "otp":
            return self.d(self.num(4, 8))
        if key in ("amt", "amt2"):
            return self.amount()
        if key == "n":
            return self.d(str(r.choice([1, 2, 3, 5, 7, 10, 12, 15, 20, 25, 30, 50])))
        if key == "d":
            return self.d(str(r.randint(1, 30)))
        if key == "ref":
            return self.d(self.num(6, 8))
        if key == "last4":
            return self.d("%04d" % r.randint(0, 9999))
        if key == "acct":
            return self.d("**" + "%04d" % r.randint(0, 9999))
        if key == "code":
            return self.d(str(r.randint(100, 999)))
        if key == "time":
            self.hour = r.randint(0, 21)
            return self.d("%02d:%02d" % (self.hour, r.choice([0, 15, 30, 45])))
        if key == "time2":    # later than the last {time}
            h = min(23, getattr(self, "hour", 8) + r.randint(1, 4))
            return self.d("%02d:%02d" % (h, r.choice([0, 15, 30, 45])))
        if key == "few":
            return self.d(str(r.randint(3, 10)))
        if key == "date":
            y, m, dd = r.choice([(1403, 1404), (2025, 2026)])[r.randint(0, 1)], r.randint(1, 12), r.randint(1, 28)
            fmt = r.choice(["%04d/%02d/%02d", "%04d-%02d-%02d"]) if y < 2000 else r.choice(
                ["%04d-%02d-%02d", "%02d/%02d/%04d"])
            s = fmt % ((y, m, dd) if fmt.startswith("%04d") else (dd, m, y))
            return self.d(s)
        if key == "name":
            return r.choice(self.names)
        if key == "trk":
            return r.choice(["RF", "TX", "AB", "ZX"]) + self.num(8, 8)
        if key in self.extra:
            return r.choice(self.extra[key])
        raise KeyError(key)

    def fill(self, template):
        """Fill every {key}; a key used twice in one template gets the same value."""
        seen = {}

        def one(m):
            key = m.group(1)
            if key not in seen:
                seen[key] = self.value(key)
            return seen[key]
        return re.sub(r"\{(\w+)\}", one, template)


PASHTO = [
    "ستاسو د تایید کوډ {otp} دی.",
    "دا کوډ له هیچا سره مه شریکوئ.",
    "ګرانه پیرودونکیه، ستاسو حساب ته {amt} افغانۍ ولېږدول شوې.",
    "ستاسو له حساب څخه {amt} افغانۍ وایستل شوې. پاتې بیلانس: {amt2} افغانۍ.",
    "ستاسو د انټرنېټ کڅوړه فعاله شوه: {n} جي بي د {d} ورځو لپاره.",
    "ښه راغلاست! ستاسو نوم لیکنه بشپړه شوه.",
    "اختر مو مبارک شه! د {name} له لوري نېکې هیلې.",
    "نوی کال مو مبارک شه، تل روغ او خوشاله اوسئ.",
    "سلام {name}، سبا ساعت {time} بجې غونډه لرو.",
    "ستاسو د برېښنا بل {amt} افغانۍ دی. مهرباني وکړئ تر {date} پورې یې ورکړئ.",
    "د ټیکټ شمېره {ref}: ستاسو الوتنه سبا ساعت {time} بجې ده.",
    "ستاسو د ګرځنده تلیفون بیلانس {amt} افغانۍ ته راټیټ شو.",
    "د بیلانس د ډکولو لپاره *{code}# وکاروئ.",
    "ستاسو فرمایش {ref} ثبت شو او په {d} ورځو کې به درته ورسېږي.",
    "زموږ د خدمتونو د کارولو له امله مننه.",
    "د پولیو ضد واکسین کمپاین له {date} نېټې پیلېږي. خپل ماشومان واکسین کړئ.",
    "ستاسو پاسورډ بدل شو. که دا تاسو نه یاست، سمدلاسه موږ ته زنګ ووهئ.",
    "ستاسو د ښوونځي فیس {amt} افغانۍ دی.",
    "د ژمي رخصتۍ له {date} نېټې څخه پیلېږي.",
    "د خپل بیلانس د کتلو لپاره د اپلیکیشن لومړۍ پاڼه وګورئ.",
    "د کابل ښاروالۍ: سبا د اوبو رسونه له {time} څخه تر {time2} بجو پورې بنده وي.",
    "ستاسو کارت په بریالیتوب سره فعال شو.",
    "ستاسو پارسل د پوستې دفتر ته ورسېد. د تعقیب شمېره: {ref}.",
    "سبا په کابل کې د واورې د ورېدو امکان شته.",
    "ستاسو د ګاډي د جواز نوې کولو وخت {date} دی.",
    "ستاسو د روغتون نوبت سبا ساعت {time} بجې دی. مهرباني وکړئ لس دقیقې مخکې راشئ.",
    "د مور او ماشوم د روغتیا پروګرام کې ستاسو نوم ثبت شو.",
    "ستاسو زېرمه شوې پیسې: {amt} افغانۍ. ګټه: {amt2} افغانۍ.",
    "که پوښتنه لرئ، د {code} شمېرې سره اړیکه ونیسئ.",
    "ستاسو د اوبو بل تادیه شو. ډېره مننه!",
]
PASHTO_NAMES = ["اجمل", "نوریه", "خوشحال", "ملالۍ", "زرمینه", "وږمه", "میرویس", "پلوشه",
                "ګلالۍ", "ښکلا", "ننګیالی", "سپوږمۍ"]
PASHTO_VARIANTS = [
    ("نوم لیکنه", "نوم" + ZWNJ + "لیکنه", "ZWNJ in نوم‌لیکنه"),
    ("وایستل شوې", "وایستل" + ZWNJ + "شوې", "ZWNJ in وایستل‌شوې"),
    ("زېرمه شوې", "زېرمه" + ZWNJ + "شوې", "ZWNJ in زېرمه‌شوې"),
    ("ولېږدول شوې", "ولېږدول" + ZWNJ + "شوې", "ZWNJ in ولېږدول‌شوې"),
]

DARI = [
    "کود تایید شما {otp} است.",
    "لطفاً این کود را با هیچ کس شریک نسازید.",
    "مشتری محترم، مبلغ {amt} افغانی به حساب شما واریز شد.",
    "مبلغ {amt} افغانی از حساب شما برداشت شد. بیلانس فعلی: {amt2} افغانی.",
    "بل برق شما {amt} افغانی است. لطفاً تا تاریخ {date} پرداخت نمایید.",
    "کریدت شما رو به ختم است. برای چارج کردن *{code}# را بزنید.",
    "فرمایش شما با شماره {ref} ثبت شد و در {d} روز به شما می‌رسد.",
    "پرواز شما فردا ساعت {time} از میدان هوایی کابل حرکت می‌کند.",
    "سلام {name} جان، فردا ساعت {time} جلسه داریم.",
    "عید تان مبارک! با احترام، {name}",
    "نوروز تان پیروز و سال نو مبارک!",
    "تشکر از اینکه از خدمات ما استفاده می‌کنید.",
    "به شبکه ما خوش آمدید!",
    "وزارت صحت عامه: کمپاین واکسین پولیو از تاریخ {date} آغاز می‌شود.",
    "بسته انترنت {n} گیگابایتی شما فعال شد و تا {d} روز اعتبار دارد.",
    "رمز عبور شما تغییر کرد. اگر این کار را شما نکرده‌اید، فوراً با ما تماس بگیرید.",
    "بسته پستی شما به دفتر پست رسید. کود رهگیری: {ref}",
    "امتحانات مکتب از تاریخ {date} شروع می‌شود.",
    "شاروالی کابل: فردا آب از ساعت {time} تا {time2} قطع می‌باشد.",
    "قرارداد شما با موفقیت تمدید گردید.",
    "تخفیف ویژه: {n}" + ARABIC_PERCENT + " تخفیف برای تمام بسته‌های انترنتی تا آخر هفته.",
    "موتر شما آماده است. لطفاً به نمایندگی مراجعه کنید.",
    "نوبت شما در شفاخانه فردا ساعت {time} است.",
    "معاش ماه جاری به مبلغ {amt} افغانی به حساب شما انتقال یافت.",
    "برای معلومات بیشتر به شماره {code} زنگ بزنید.",
    "کارت بانکی شما تا تاریخ {date} اعتبار دارد.",
    "هوای کابل فردا ابری و بارانی خواهد بود.",
    "جلسه والدین شاگردان روز پنجشنبه ساعت {time} برگزار می‌گردد.",
]
DARI_VARIANTS = [
    ("خوش آمدید", "خوش" + ZWNJ + "آمدید", "ZWNJ in خوش‌آمدید"),
    ("تشکر از اینکه", "تشکر از این" + ZWNJ + "که", "ZWNJ in این‌که"),
    ("می" + ZWNJ, "می ", "ZWNJ of می typed as a space"),
]
DARI_NAMES = ["مریم", "نجیب", "فریدون", "شکیبا", "مرسل", "فرشته", "حمید", "زهرا", "پروین",
              "سهراب", "نیلوفر", "وحید"]

ARABIC = [
    "رمز التحقق الخاص بك هو {otp}.",
    "لا تشارك هذا الرمز مع أي شخص.",
    "تم خصم {amt} درهم من بطاقتك المنتهية بـ {last4} لدى {shop}.",
    "الرصيد المتاح: {amt} ريال.",
    "عزيزي العميل، تم إيداع {amt} ريال في حسابك.",
    "مرحباً {name}، موعدك غداً الساعة {time}.",
    "طلبك رقم {ref} في الطريق وسيصل خلال {few} أيام.",
    "فاتورتك بقيمة {amt} دينار مستحقة بتاريخ {date}.",
    "تم شحن رصيدك بمبلغ {amt} جنيه. شكراً لاستخدامك خدماتنا.",
    "تنبيه أمني: تمت محاولة تسجيل دخول إلى حسابك. إذا لم تكن أنت، اتصل بنا فوراً.",
    "رمضان كريم! نتمنى لكم شهراً مباركاً.",
    "عيد مبارك وكل عام وأنتم بخير! {name}",
    "تم تأكيد حجزك في فندق {hotel} ليلة {date}.",
    "مَرْحَبًا بِكُمْ فِي خِدْمَةِ الرَّسَائِلِ.",
    "تم تفعيل باقة الإنترنت {n} جيجابايت، صالحة حتى {date}.",
    "شحنتك جاهزة للاستلام من أقرب فرع.",
    "تم تغيير كلمة المرور الخاصة بك بنجاح.",
    "موعد تطعيم طفلك يوم {date}. نرجو الحضور قبل الموعد بعشر دقائق.",
    "تم استلام دفعتك بقيمة {amt} ريال. رقم المرجع: {ref}.",
    "تمّت عملية التحويل بنجاح.",
    "للاستفسار اتصل على {code} على مدار الساعة.",
    "تم تجديد اشتراكك الشهري حتى {date}.",
    "عرض خاص: خصم {n}" + ARABIC_PERCENT + " على جميع المنتجات حتى نهاية الأسبوع.",
    "سيتم قطع المياه عن منطقتكم غداً من الساعة {time} حتى {time2}.",
    "شكراً لتسوقك معنا. نتطلع لرؤيتك مجدداً.",
    "إِنَّ مَعَ العُسْرِ يُسْرًا.",
]
ARABIC_VARIANTS = [
    ("بنجاح", "بنجــاح", "tatweel U+0640 in بنجــاح"),
    ("مبارك", "مبــارك", "tatweel U+0640 in مبــارك"),
    ("الرصيد", "الرَّصِيد", "harakat in الرَّصِيد"),
    ("شكراً", "شكرًا", "tanwin before the alef: شكرًا"),
    ("كريم", "كَرِيم", "harakat in كَرِيم"),
]
ARABIC_NAMES = ["محمد", "فاطمة", "سارة", "عبد الله", "مريم", "خالد", "ليلى", "يوسف", "نورة",
                "أحمد", "هدى"]
ARABIC_SHOPS = ["أمازون", "جرير", "لولو هايبر", "صيدلية النهدي", "كارفور", "نون"]
ARABIC_HOTELS = ["روتانا", "هيلتون", "موفنبيك", "الريتز", "البستان"]
ARABIC_EXTRA = {"shop": ARABIC_SHOPS, "hotel": ARABIC_HOTELS}

PERSIAN_POOL = [
    "رمز یکبار مصرف شما {otp} است و تا {n} دقیقه معتبر است.",
    "این کد را در اختیار دیگران قرار ندهید.",
    "بانک ملت: مبلغ {amt} ریال از حساب {acct} برداشت شد.",
    "مانده حساب: {amt} ریال",
    "واریز {amt} ریال به حساب شما در تاریخ {date} ساعت {time}",
    "قسط {n} وام شما به مبلغ {amt} ریال سررسید شده است.",
    "قبض برق شما به مبلغ {amt} ریال صادر شد. شناسه پرداخت: {ref}",
    "مرسوله شما با کد رهگیری {ref} تحویل پست شد.",
    "نوبت شما در تاریخ {date} ساعت {time} ثبت شد.",
    "شارژ {amt} تومانی با موفقیت انجام شد.",
    "بسته اینترنت {n} گیگابایتی شما فعال شد.",
    "بلیت قطار شماره {ref} برای تاریخ {date} صادر شد.",
    "یلدا مبارک! شب‌تان پر از خوشی باد.",
    "نوروزتان پیروز! سال نو مبارک.",
    "کد تأیید شما: {otp}",
    "سلام {name} عزیز، جلسه فردا ساعت {time} برگزار می‌شود.",
    "سفارش شما با شماره {ref} ارسال شد و تا {n} روز کاری می‌رسد.",
    "اعتبار بسته شما {d} روز دیگر به پایان می‌رسد.",
    "برای لغو عضویت عدد {n} را به {code} ارسال کنید.",
    "بانک سپه: مبلغ {amt} ریال به حساب {acct} واریز شد.",
    "تخفیف {n}" + ARABIC_PERCENT + " ویژه مشترکین تا پایان هفته.",
    "پرواز شماره {ref} ساعت {time} از فرودگاه مهرآباد انجام می‌شود.",
    "کلاس‌های ترم جدید از {date} آغاز می‌شود.",
    "اقساط معوق شما {n} مورد است. لطفاً پرداخت کنید.",
]
PERSIAN_NAMES = ["حسین", "لیلا", "فرشته", "مهدی", "سارا", "رضا", "نرگس", "علی", "مینا", "کاوه"]

MIXED = [
    "OTP {otp} - کد تایید شما",
    "Your code is {otp} | رمز التحقق: {otp}",
    "Dear {lname}, مبلغ {amt} AFN به حساب شما واریز شد.",
    "Order #{ref} confirmed. سفارش شما ثبت شد.",
    "رقم الشحنة: {trk} - DHL Express",
    "مرحبا {lname}! Welcome to {op}.",
    "{op}: ستاسو SIM کارت فعال شو. Dial *{code}# for balance.",
    "ستاسو د WiFi پاسورډ {otp} دی.",
    "Meeting at {time} in Room B2 - جلسه در اتاق B2",
    "تذكير: Flight {ref} departs at {time} من مطار دبي.",
    "{op} Bank: تم خصم USD {amt} من حسابك. Ref: {trk}",
    "Download our app: {host}/app - اپلیکیشن ما را دانلود کنید",
    "للمزيد من المعلومات زوروا https://{host}/ar",
    "{op}: تم تفعيل خدمة Roaming بنجاح.",
    "کود PIN شما {otp} است. Do not share.",
    "Your taxi has arrived - تاکسی شما رسید. Plate: KBL {code}",
    "Password reset: https://{host}/reset - رمز عبور خود را تغییر دهید",
    "Invoice INV-{ref}: مبلغ {amt} AFN تا {date} پرداخت شود.",
    "{op} 4G: {n}GB بسته انترنت فعال شد.",
    "Your parcel {trk} is ready. بسته شما آماده تحویل است.",
    "Login from new device? اگر شما نبودید، رمز را عوض کنید.",
    "Wallet top-up {amt} AFN successful - د {op} والټ ډک شو.",
]
MIXED_NAMES = ["Omar", "Sara", "Layla", "Fatima", "Ahmad", "Nadia", "Karim", "Zahra", "Ali"]
MIXED_EXTRA = {
    "lname": MIXED_NAMES,
    "op": ["Zain", "MTN", "STC", "Irancell", "Ooredoo", "Vodafone", "Etisalat", "AWCC",
           "Roshan", "Salaam"],
    "host": ["bank.example", "my.example.net", "shop.example.org"],
}

ASCII_SENTENCES = [
    "Your verification code is {otp}. Do not share it with anyone.",
    "Your package {trk} is out for delivery today.",
    "Welcome to {op}! Your PIN is {otp}. Keep it safe.",
    "Balance: {amt} | Data left: {n}GB | Valid till {date}",
    "Reply YES to confirm or NO to cancel.",
    "Thanks for your payment of ${amt}. Ref: {trk}",
    "Hi {lname}, your ride is arriving in {d} min. Look for a grey Toyota (ABC-{code}).",
    "Reminder: your appointment is on {date} at {time}.",
    "Your flight {ref} to Dubai is delayed. New departure {time}, gate B{d}.",
    "Use code WELCOME10 for {n}% off your next order. T&Cs apply. Reply STOP to opt out.",
    "Happy birthday, {lname}! Wishing you a wonderful year ahead :)",
    "ALERT: Card x{last4} used for ${amt} at Grocer. If not you, reply NO.",
    "Your password reset link: https://{host}/r/{trk}",
    "Good morning! Meeting moved to {time}, room #4. Bring the Q3 report.",
    "Your order #{ref} has shipped and will arrive within 3-5 business days.",
    "Low balance: top up now with *{code}# and get 1GB free.",
    "Your bill of ${amt} is due on {date}. Pay online to avoid a late fee.",
    "Your table for 2 at 19:30 is confirmed. See you soon!",
    "Service notice: maintenance tonight 01:00-03:00. Sorry for any inconvenience.",
    "Your one-time password is {otp}. It expires in 5 minutes.",
]

GSM_FILLER = [
    "Thank you for banking with us.",
    "Your monthly statement is now available in the app.",
    "Please call our support line at 0800 123 456 if you need any help.",
    "We have received your request and will contact you shortly.",
    "Your order has been shipped and will arrive within 3-5 business days.",
    "Our offices will be closed on Friday for the public holiday.",
    "This message was sent automatically, please do not reply.",
    "Top up now and get 2GB of free data for 7 days!",
    "Remember to update your contact details before the end of the month.",
    "Your subscription renews on the 1st of every month.",
]

GSM_EXT_SENTENCES = [
    "Pay €{amt} by card | bank transfer | cash.",
    "{\"otp\":\"{otp}\",\"ttl\":300}",
    "Price: ~€{amt} (incl. VAT) [offer ends {date}]",
    "Growth: 2^10 = 1024 users this week.",
    "Temp ~25C today, wind ~10km/h.",
    "Reply [Y] to confirm or [N] to cancel.",
    "Path: C:\\Users\\Public\\report.txt",
    "Login code: {otp} | Expires in 5 min | Do not share",
    "Page 1 of 2\f",
    "Your bill of EUR {amt} (€{amt}) is due on {date}.",
]

GSM_LATIN1_SENTENCES = [
    "Votre code de vérification est {otp}. Il expire dans 5 minutes.",
    "Ihr Bestätigungscode lautet {otp}.",
    "Il tuo codice è {otp}. Perché aspettare? Città più bella, però!",
    "ÉCOLE FERMÉE DEMAIN. Año nuevo en Øresund.",
    "Rendez-vous confirmé à {time} chez le médecin.",
    "¡Feliz año nuevo! Mañana te llamo, {lname}.",
    "Prices: £{amt}, ¥{amt} or ¤{amt}. See § 4.",
    "Straße gesperrt: Umleitung über Öhringen und Übach.",
    "Æblekage og smørrebrød på menuen i dag.",
    "Ça va? On se voit demain à {time}.",
    "Δ = {amt}, Ω-3, ΣΦΓΛΠΨΘΞ test.",
    "Grüße aus München! Wir sehen uns nächste Woche.",
    "¿Vienes mañana? Te espero en la plaza.",
    "Ihre Rechnung über {amt} € ist fällig am {date}.",
    "Välkommen till Göteborg! Åter öppet måndag.",
    "Hälsningar från Malmö och Ålesund.",
    "Niño pequeño, año nuevo, señor Muñoz.",
]

LATIN1_NON_GSM_SENTENCES = [
    "Votre reçu est disponible dans l'application.",
    "¿Cómo estás, {lname}? Llámame cuando puedas.",
    "Você tem uma nova mensagem de voz.",
    "Joyeux Noël et bonne année!",
    "Olá! Seu código é {otp}.",
    "Ángel, tu pedido está en camino.",
    "Descuento del ½ precio. © {op} ®",
    "Medida: 5 µm ± 0,1 × 2",
    "Entrée gratuite, café naïve au programme.",
    "Fenêtre ouverte: température 21 °C.",
    "Sua conta está bloqueada. Ligue para o número {code}.",
    "La réunion aura lieu à l'hôtel de ville.",
    "Código de verificación: {otp}. Válido por 10 minutos.",
    "Þú átt ný skilaboð. Takk fyrir, Þórður.",
]

for _pool, _enc in ((ASCII_SENTENCES, "GSM7"), (GSM_FILLER, "GSM7"), (GSM_EXT_SENTENCES, "GSM7"),
                    (GSM_LATIN1_SENTENCES, "GSM7"), (LATIN1_NON_GSM_SENTENCES, "UCS2"),
                    (PASHTO, "UCS2"), (DARI, "UCS2"), (ARABIC, "UCS2"), (PERSIAN_POOL, "UCS2"),
                    (MIXED, "UCS2")):
    for _s in _pool:
        assert detect(_s) == _enc, _s

ASCII_EXTRA = dict(MIXED_EXTRA)
ASCII_EXTRA["host"] = ["bank.example", "my.example.net", "shop.example.org"]


def rng_for(name):
    """A generator per section of the output, seeded with a fixed number derived from
    its name (never Python's randomized str hash)."""
    seed = int.from_bytes(hashlib.sha256(("corpus-v1:" + name).encode()).digest()[:8], "big")
    return random.Random(seed)


def compose(filler, pool, lo, hi, sep=" "):
    """Join random filled sentences until the message reaches at least lo characters
    (the generator never exceeds hi if it can help it)."""
    r = filler.rng
    parts = []
    length = 0
    while True:
        s = filler.fill(r.choice(pool))
        if parts and length + len(sep) + len(s) > hi:
            break
        parts.append(s)
        length = units(sep.join(parts))
        if length >= lo:
            break
    text = parts[0]
    for p in parts[1:]:
        text += (r.choice([sep, sep, sep, "\n"]) if sep == " " else sep) + p
    return text


def compose_exact(filler, pool, target, tries=20000, sep=" ", post=None):
    """A natural message (whole sentences) of exactly `target` septets/units, found by
    random search.  `post` may rewrite the text (insert ZWNJ...) before measuring."""
    r = filler.rng
    for _ in range(tries):
        parts = []
        while True:
            s = filler.fill(r.choice(pool))
            cand = (sep.join(parts + [s]))
            if post:
                cand = post(cand)
            n = units(cand)
            if n == target:
                return cand
            if n > target:
                break
            parts.append(s)
    return None


def fit_exact(source, target, encoding_hint=None):
    """Characters of `source` (cycled) taken while they fit, until exactly `target`
    septets/units (a two-unit character that does not fit is skipped)."""
    out = []
    used = 0
    i = 0
    enc = encoding_hint or detect(source)
    guard = 0
    while used < target:
        ch = source[i % len(source)]
        i += 1
        n = compute_length(ch, enc)
        if used + n <= target:
            out.append(ch)
            used += n
        guard += 1
        if guard > 100000:
            raise RuntimeError("cannot fit")
    return "".join(out)


def digits_note(text):
    has_p = any(c in PERSIAN_DIGITS for c in text)
    has_a = any(c in ARABIC_DIGITS for c in text)
    has_w = any(c in WESTERN for c in text)
    kinds = [k for k, v in (("persian", has_p), ("arabic-indic", has_a), ("western", has_w)) if v]
    return "+".join(kinds) if kinds else "no digits"


def shape_note(text):
    f = compute(text)
    enc = f["encoding"]
    unit = ("septet" if enc == "GSM7" else "unit") + ("" if f["septets_or_units"] == 1 else "s")
    return "%d %s, %d/%d segments (8/16-bit)" % (
        f["septets_or_units"], unit, f["segment_count_8bit"], f["segment_count_16bit"])


class Out:
    def __init__(self):
        self.cases = []
        self.next = dict(BASE_IDS)
        self.texts = set()

    def add(self, category, text, note):
        if text in self.texts:
            return False
        f = compute(text)
        if max(f["segment_count_8bit"], f["segment_count_16bit"]) > 18:
            raise AssertionError("keep at most 18 segments (RULES.md §5): %r" % note)
        self.next[category] += 1
        rec = {"id": "%s-%04d" % (category, self.next[category]), "text": text}
        rec.update(f)
        rec["category"] = category
        rec["note"] = note
        self.cases.append(rec)
        self.texts.add(text)
        return True


# Boundary targets (UTF-16 units) around the single-part limit and the multipart limits
# of both reference sizes: 67k / 66k (+-1).
UCS2_TARGETS = [65, 66, 67, 68, 69, 70, 71, 72,
                131, 132, 133, 134, 135, 136,
                197, 198, 199, 200, 201, 202,
                263, 264, 265, 267, 268, 269]
GSM_TARGETS = [151, 152, 153, 154, 159, 160, 161, 162,
               303, 304, 305, 306, 307,
               455, 456, 457, 458, 459, 460, 461,
               607, 608, 612, 613]

EMOJI = ["\U0001F600", "\U0001F389", "\U0001F4B0", "\U0001F680", "\U0001F64F", "\U0001F319",
         "\U0001F4E6", "\U0001F510", "\U0001F91D", "\U0001F44D", "\U0001F54C", "\U0001F381"]
CLUSTERS = [
    ("\U0001F1E6\U0001F1EB", "flag U+1F1E6+U+1F1EB"),
    ("\U0001F468\u200d\U0001F469\u200d\U0001F467", "ZWJ family U+1F468+U+200D+U+1F469+U+200D+U+1F467"),
    ("\U0001F44D\U0001F3FD", "thumbs up + skin tone U+1F44D+U+1F3FD"),
    ("\u2764\ufe0f", "U+2764+U+FE0F (BMP emoji + VS16)"),
    ("1\ufe0f\u20e3", "keycap 1+U+FE0F+U+20E3"),
    ("\U0001F3F3\ufe0f\u200d\U0001F308", "rainbow flag U+1F3F3+U+FE0F+U+200D+U+1F308"),
]


def gen_script(out, category, pool, names, digit_modes, label, variants, extra=None):
    """About 80 cases of one script: natural messages and exact boundary lengths.
    `variants`: (old, new, note) spelling variants applied to some texts."""
    r = rng_for(category)
    zwnj_pairs = any(ZWNJ in new for _, new, _ in variants)

    def filler(mode):
        return Filler(r, mode, names, extra)

    def mode_name(m):
        return {id(WESTERN): "western", id(PERSIAN_DIGITS): "persian", id(ARABIC_DIGITS): "arabic-indic"}[id(m)]

    # 1. Exact lengths around every UCS2 boundary (26 targets), with changing digits.
    for i, target in enumerate(UCS2_TARGETS):
        mode = digit_modes[i % len(digit_modes)]
        text = compose_exact(filler(mode), pool, target)
        assert text is not None, (category, target)
        out.add(category, text, "%s: exactly %d units, %s digits; %s" % (
            label, target, mode_name(mode), shape_note(text)))

    # 2. Natural messages of 1..6 sentences (short OTPs to multipart).
    spans = [(10, 40), (20, 60), (40, 70), (60, 120), (100, 200), (150, 300), (250, 420)]
    for i in range(34):
        mode = digit_modes[i % len(digit_modes)]
        lo, hi = spans[i % len(spans)]
        text = compose(filler(mode), pool, lo, hi)
        out.add(category, text, "%s: %s digits; %s" % (label, mode_name(mode), shape_note(text)))

    # 3. A joiner (ZWNJ inside a word) or, for Arabic, a haraka (combining mark) exactly at
    #    the boundary units, found in natural text: the split separates it from its base.
    def post(text):
        for old, new, _ in variants:
            if new.count(ZWNJ) > old.count(ZWNJ) or not zwnj_pairs:
                text = text.replace(old, new)
        return text

    if zwnj_pairs:
        pred, what = (lambda ch: ch == ZWNJ), "ZWNJ U+200C (inside a word)"
    else:
        pred, what = (lambda ch: unicodedata.category(ch) == "Mn"), "haraka (combining mark)"
    for i, pos in enumerate([66, 67, 68, 70, 71, 132, 133, 134, 135]):
        f = filler(digit_modes[i % len(digit_modes)])
        text = compose_with_at(f, pool, pos, pred, post)
        assert text is not None, (category, pos)
        at = char_at_unit(text, pos)
        out.add(category, text, "%s: %s at unit %d; %s" % (
            label, what if zwnj_pairs else "haraka U+%04X" % ord(at), pos, shape_note(text)))

    # 4. Emoji (surrogate pair) straddling the boundaries: the pair starts at unit p.
    em_positions = [65, 66, 67, 69, 70, 132, 133, 134]
    for i, pos in enumerate(em_positions):
        mode = digit_modes[i % len(digit_modes)]
        f = filler(mode)
        before = compose_exact(f, pool, pos - 2) + " "
        e = EMOJI[i % len(EMOJI)]
        after = compose(f, pool, 10, 80)
        text = before + e + " " + after
        out.add(category, text, "%s: U+%04X surrogate pair at units %d-%d; %s" % (
            label, ord(e), pos, pos + 1, shape_note(text)))

    # 5. Spelling variants seen in real traffic: ZWNJ in compounds (or typed as a space),
    #    tatweel, harakat.
    for i in range(8):
        f = filler(digit_modes[i % len(digit_modes)])
        old, new, what = variants[i % len(variants)]
        for _ in range(2000):
            text = compose(f, pool, 140, 300)
            if old in text:
                break
        else:
            raise AssertionError((category, old))
        text = text.replace(old, new)
        out.add(category, text, "%s: %s; %s" % (label, what, shape_note(text)))


def char_at_unit(text, pos):
    """The character occupying unit/septet `pos` (1-based) of a UCS2 text."""
    off = 0
    for ch in text:
        off += 2 if ord(ch) > 0xFFFF else 1
        if off >= pos:
            return ch
    return None


def compose_with_at(f, pool, pos, pred, post=None, tries=40000):
    """A natural message in which the character starting at unit `pos` (1-based)
    satisfies `pred`, and which is longer than `pos` by at least 10 units."""
    for _ in range(tries):
        text = compose(f, pool, pos + 10, pos + 160)
        if post:
            text = post(text)
        off = 0
        for ch in text:
            if off == pos - 1:
                if pred(ch) and units(text) >= pos + 10:
                    return text
                break
            off += 2 if ord(ch) > 0xFFFF else 1
    return None


def gen_persian_digits(out):
    r = rng_for("persian_digits")
    modes = [("ext", PERSIAN_DIGITS), ("arabic", ARABIC_DIGITS), ("mixed", None)]

    for i, target in enumerate(UCS2_TARGETS):
        mode = modes[i % 3]
        if mode[1] is not None:
            text = compose_exact(Filler(r, mode[1], PERSIAN_NAMES), PERSIAN_POOL, target)
        else:
            for _ in range(200):
                a = compose(Filler(r, PERSIAN_DIGITS, PERSIAN_NAMES), PERSIAN_POOL, 20, max(21, target - 30))
                rest = target - units(a) - 1
                if rest < 15:
                    continue
                b = compose_exact(Filler(r, ARABIC_DIGITS, PERSIAN_NAMES), PERSIAN_POOL, rest, tries=3000)
                if b:
                    text = a + " " + b
                    break
            else:
                raise AssertionError(target)
        assert units(text) == target
        out.add("persian_digits", text, "digits: %s; exactly %d units; %s" % (
            mode[0], target, shape_note(text)))
    spans = [(10, 50), (30, 70), (50, 110), (90, 180), (150, 280), (250, 420)]
    for i in range(30):
        mode = modes[i % 3]
        lo, hi = spans[i % len(spans)]
        if mode[1] is not None:
            text = compose(Filler(r, mode[1], PERSIAN_NAMES), PERSIAN_POOL, lo, hi)
        else:
            text = compose(Filler(r, PERSIAN_DIGITS, PERSIAN_NAMES), PERSIAN_POOL, lo // 2, hi // 2) + " " + \
                compose(Filler(r, ARABIC_DIGITS, PERSIAN_NAMES), PERSIAN_POOL, lo // 2, hi // 2)
        out.add("persian_digits", text, "digits: %s; %s" % (mode[0], shape_note(text)))
    # A digit (one unit) on each side of the splits: run of digits across unit 67/66.
    for i, pos in enumerate([64, 65, 66, 67, 68, 130, 131, 132, 133, 134]):
        digits = PERSIAN_DIGITS if i % 2 == 0 else ARABIC_DIGITS
        f = Filler(r, digits, PERSIAN_NAMES)
        lead = "شناسه پرداخت: "
        # a long payment id whose digits cover the boundary
        before = compose_exact(f, PERSIAN_POOL, pos - len(lead) - 4)
        assert before is not None
        ident = "".join(digits[r.randint(0, 9)] for _ in range(12))
        text = before + " " + lead + ident + " " + compose(f, PERSIAN_POOL, 10, 60)
        out.add("persian_digits", text, "digits: %s; 12-digit id starting at unit %d; %s" % (
            "ext" if digits is PERSIAN_DIGITS else "arabic", pos - 3, shape_note(text)))
    # ZWNJ words with digits near the boundary, and emoji straddling.
    for i, pos in enumerate([66, 67, 68, 133, 134]):
        digits = PERSIAN_DIGITS if i % 2 == 0 else ARABIC_DIGITS
        f = Filler(r, digits, PERSIAN_NAMES)
        before = compose_exact(f, PERSIAN_POOL, pos - 2) + " "
        e = EMOJI[(i + 3) % len(EMOJI)]
        text = before + e + " " + compose(f, PERSIAN_POOL, 10, 80)
        out.add("persian_digits", text, "digits: %s; U+%04X surrogate pair at units %d-%d; %s" % (
            "ext" if digits is PERSIAN_DIGITS else "arabic", ord(e), pos, pos + 1, shape_note(text)))
    # Only digits: a bare OTP in each digit set, and the ten digits themselves.
    for digits, name in ((PERSIAN_DIGITS, "ext"), (ARABIC_DIGITS, "arabic")):
        out.add("persian_digits", digits, "digits: %s; all ten digits; %s" % (name, shape_note(digits)))
        otp = "".join(digits[r.randint(0, 9)] for _ in range(6))
        out.add("persian_digits", otp, "digits: %s; bare 6-digit code; %s" % (name, shape_note(otp)))
    # 70 / 71 / 134 / 135 units of digits only (one unit each).
    for n, digits in ((70, PERSIAN_DIGITS), (71, ARABIC_DIGITS), (134, PERSIAN_DIGITS), (135, ARABIC_DIGITS)):
        t = "".join(digits[(k * 7 + 3) % 10] for k in range(n))
        out.add("persian_digits", t, "digits: %s; %d digits only; %s" % (
            "ext" if digits is PERSIAN_DIGITS else "arabic", n, shape_note(t)))


def gen_mixed(out):
    r = rng_for("mixed_latin_arabic")
    label = "mixed"
    modes = [WESTERN, ARABIC_DIGITS, PERSIAN_DIGITS]
    names = MIXED_NAMES

    def f(mode):
        return Filler(r, mode, names, MIXED_EXTRA)

    for i, target in enumerate(UCS2_TARGETS):
        text = compose_exact(f(modes[i % 3]), MIXED, target)
        assert text is not None, target
        out.add("mixed_latin_arabic", text, "mixed: exactly %d units; %s" % (target, shape_note(text)))
    spans = [(10, 50), (30, 70), (50, 110), (90, 180), (150, 280), (250, 400)]
    for i in range(34):
        lo, hi = spans[i % len(spans)]
        text = compose(f(modes[i % 3]), MIXED, lo, hi)
        out.add("mixed_latin_arabic", text, "mixed: digits %s; %s" % (
            digits_note(text), shape_note(text)))
    # Bidi marks next to Latin runs, at the boundary.
    marks = [(LRM, "LRM U+200E"), (RLM, "RLM U+200F"), (ALM, "ALM U+061C")]
    for i, pos in enumerate([66, 67, 68, 70, 71, 133, 134, 135]):
        mk, name = marks[i % 3]
        g = f(modes[i % 3])
        before = compose_exact(g, MIXED, pos - 1)
        assert before is not None
        text = before + mk + compose(g, MIXED, 20, 90)
        out.add("mixed_latin_arabic", text, "mixed: %s at unit %d; %s" % (name, pos, shape_note(text)))
    # Surrogate pair right at the boundaries.
    for i, pos in enumerate([65, 66, 67, 69, 70, 132, 133, 134]):
        g = f(modes[i % 3])
        before = compose_exact(g, MIXED, pos - 2) + " "
        e = EMOJI[(i + 5) % len(EMOJI)]
        text = before + e + " " + compose(g, MIXED, 10, 80)
        out.add("mixed_latin_arabic", text, "mixed: U+%04X surrogate pair at units %d-%d; %s" % (
            ord(e), pos, pos + 1, shape_note(text)))
    # Latin text that would be GSM7 plus one Arabic word: the whole message goes UCS2.
    for i, n in enumerate([150, 160, 200, 300]):
        g = Filler(r, WESTERN, names, ASCII_EXTRA)
        base = compose(g, ASCII_SENTENCES, n - 20, n)
        word = ["شكراً", "مرحبا", "تشکر", "مننه"][i]
        text = base + " " + word
        out.add("mixed_latin_arabic", text, "mixed: GSM text plus one Arabic-script word (%s); %s" % (
            "U+%04X..." % ord(word[0]), shape_note(text)))
    # Arabic text with a single GSM extension character (brackets, euro): UCS2, one unit each.
    for i, text in enumerate([
        "السعر: €" + "٢٥" + " [شامل الضريبة]",
        "ستاسو کوډ {" + "۴۵۶۷" + "} دی | Code {4567}",
        "قیمت ~" + "۱۲۰" + " یورو \\ نرخ ارز ^ افزایش",
    ]):
        out.add("mixed_latin_arabic", text, "mixed: GSM extension characters inside UCS2 (one unit each); %s" % shape_note(text))


def gen_ascii(out):
    r = rng_for("ascii")
    f = Filler(r, WESTERN, MIXED_NAMES, ASCII_EXTRA)
    for target in [1, 5, 70, 140, 152, 153, 154, 158, 159, 160, 161, 162, 300, 305, 306, 307, 458, 459]:
        text = compose_exact(f, ASCII_SENTENCES, target)
        if text is None:
            text = fit_exact(compose(f, ASCII_SENTENCES, target, target + 200) + " ", target)
        out.add("ascii", text, "ascii: exactly %d septet(s); %s" % (target, shape_note(text)))
    spans = [(10, 60), (40, 120), (100, 170), (140, 320), (300, 480)]
    for i in range(18):
        lo, hi = spans[i % len(spans)]
        text = compose(f, ASCII_SENTENCES, lo, hi)
        out.add("ascii", text, "ascii: %s" % shape_note(text))
    for text, note in [
        ("a", "single letter"),
        (" ", "single space"),
        ("0000", "digits only"),
        ("\r\n", "CRLF only: two septets"),
        ("Line 1\nLine 2\nLine 3", "LF line breaks"),
        ("@" * 160, "160 x @ (octet 0x00): single part"),
        ("@" * 161, "161 x @ (octet 0x00): two parts"),
        ("$" * 153 + "_", "153 x $ then _: 154 septets"),
    ]:
        out.add("ascii", text, "ascii: %s; %s" % (note, shape_note(text)))


def ext_prefix(f, septets):
    """Plain GSM text (no extension characters) of exactly `septets` septets."""
    src = " ".join(f.rng.sample(GSM_FILLER, len(GSM_FILLER))) + " "
    return fit_exact(src, septets, "GSM7")


def gen_gsm_ext_boundary(out):
    r = rng_for("gsm_ext_boundary")
    f = Filler(r, WESTERN, MIXED_NAMES, ASCII_EXTRA)
    ext_chars = list(GSM_EXTENSION)
    placements = [
        (151, "fits both"),
        (152, "fits 8-bit, moves for 16-bit"),
        (153, "moves to segment 2 (8-bit)"),
        (154, "starts segment 2"),
        (159, "ends at septet 160 in a 160-septet message: single part"),
    ]
    i = 0
    for start, what in placements:
        for k in range(2):
            ch = ext_chars[i % len(ext_chars)]
            i += 1
            prefix = ext_prefix(f, start - 1)
            if start == 159:
                text = prefix + ch
            else:
                text = prefix + ch + " " + compose(f, GSM_FILLER, 20, 80)
            out.add("gsm_ext_boundary", text, "U+%04X escape pair at %d-%d %s; %s" % (
                ord(ch), start, start + 1, what, shape_note(text)))
    # 161 septets because the last character is an escape pair.
    for k in range(2):
        ch = ext_chars[i % len(ext_chars)]
        i += 1
        text = ext_prefix(f, 159) + ch
        out.add("gsm_ext_boundary", text, "U+%04X escape pair at 160-161 makes 161 septets: split; %s" % (
            ord(ch), shape_note(text)))
    # Second boundary: first segment full (153 / 152) then a pair around 306 / 304.
    for start, what in [(303, "fits both second segments"), (304, "fits 8-bit, moves for 16-bit"),
                        (305, "fits 8-bit, moves for 16-bit"), (306, "moves to segment 3 (8-bit)"),
                        (307, "starts segment 3 (8-bit)")]:
        ch = ext_chars[i % len(ext_chars)]
        i += 1
        text = ext_prefix(f, start - 1) + ch + " " + compose(f, GSM_FILLER, 20, 80)
        out.add("gsm_ext_boundary", text, "U+%04X escape pair at %d-%d (second boundary) %s; %s" % (
            ord(ch), start, start + 1, what, shape_note(text)))
    # Runs of extension characters at odd/even offsets.
    for lead, n in [("", 76), ("", 77), ("a", 76), ("a", 77), ("ab", 152), ("a", 153)]:
        ch = ext_chars[i % len(ext_chars)]
        i += 1
        text = lead + ch * n
        out.add("gsm_ext_boundary", text, "%d leading septets then %d x U+%04X; %s" % (
            len(lead), n, ord(ch), shape_note(text)))
    # Every extension character alone and in pairs; FF page break in text.
    for ch in ext_chars:
        text = "Code " + ch + ch + " ok"
        out.add("gsm_ext_boundary", text, "U+%04X twice in a short text; %s" % (ord(ch), shape_note(text)))
    # Realistic texts with extension characters near the boundaries.
    for k in range(5):
        text = compose(f, GSM_EXT_SENTENCES + GSM_FILLER, 150, 330)
        out.add("gsm_ext_boundary", text, "realistic text with extension characters; %s" % shape_note(text))


def gen_gsm_exact(out):
    r = rng_for("gsm_exact_length")
    f = Filler(r, WESTERN, MIXED_NAMES, ASCII_EXTRA)
    kinds = ["plain", "ext_inside", "ext_end", "latin1", "at"]
    for i, target in enumerate(GSM_TARGETS + [1, 2, 153 * 3, 152 * 3 + 1, 153 * 4 + 1]):
        kind = kinds[i % len(kinds)]
        if kind == "plain":
            text = fit_exact(" ".join(r.sample(GSM_FILLER, len(GSM_FILLER))) + " ", target, "GSM7")
        elif kind == "ext_inside":
            src = " ".join(r.sample(GSM_FILLER, len(GSM_FILLER)))
            src = src.replace(" the ", " [the] ", 1).replace(" 2GB ", " ~2GB ")
            text = fit_exact(src + " € ", target, "GSM7")
        elif kind == "ext_end":
            if target < 2:
                kind = "plain"
                text = fit_exact("Hello ", target, "GSM7")
            else:
                text = fit_exact(" ".join(r.sample(GSM_FILLER, len(GSM_FILLER))) + " ", target - 2, "GSM7") + "€"
        elif kind == "latin1":
            text = fit_exact(" ".join(Filler(r, WESTERN, MIXED_NAMES, ASCII_EXTRA).fill(s)
                                      for s in r.sample(GSM_LATIN1_SENTENCES, len(GSM_LATIN1_SENTENCES))) + " ",
                             target, "GSM7")
        else:
            text = fit_exact("Your new login is ali.khan@mail.example.org " +
                             " ".join(r.sample(GSM_FILLER, len(GSM_FILLER))) + " ", target, "GSM7")
        assert detect(text) == "GSM7" and units(text) == target, (target, kind)
        out.add("gsm_exact_length", text, "%d septets (%s); %s" % (target, kind, shape_note(text)))


UCS2_SOURCES = {
    "hindi": "आपका सत्यापन कोड 482193 है। इसे किसी के साथ साझा न करें। धन्यवाद। ",
    "chinese": "您的验证码是482193，五分钟内有效。请勿泄露给他人。感谢您使用我们的服务。",
    "russian": "Ваш код подтверждения 4821. Никому не сообщайте этот код. С уважением, ваш банк. ",
    "greek_lower": "Ο κωδικός σας είναι 4821. Μην τον μοιραστείτε με κανέναν. ",
}


def gen_ucs2_exact(out):
    r = rng_for("ucs2_exact_length")
    scripts = ["persian", "pashto", "dari", "arabic", "hindi", "chinese", "russian", "emoji_inside",
               "emoji_end", "gsm_plus_one", "greek_lower"]
    targets = [1, 2, 66, 67, 68, 69, 70, 71, 72, 132, 133, 134, 135, 136, 198, 199, 200, 201, 202,
               264, 265, 268, 269, 335, 336, 402]
    for i, target in enumerate(targets + [70, 71, 134, 135, 201, 202, 66, 67, 133, 200]):
        script = scripts[i % len(scripts)]
        if script in UCS2_SOURCES:
            text = fit_exact(UCS2_SOURCES[script], target, "UCS2")
        elif script in ("persian", "pashto", "dari", "arabic"):
            pool, names, digits = {
                "persian": (PERSIAN_POOL, PERSIAN_NAMES, PERSIAN_DIGITS),
                "pashto": (PASHTO, PASHTO_NAMES, WESTERN),
                "dari": (DARI, DARI_NAMES, PERSIAN_DIGITS),
                "arabic": (ARABIC, ARABIC_NAMES, ARABIC_DIGITS),
            }[script]
            g = Filler(r, digits, names, ARABIC_EXTRA)
            text = fit_exact(compose(g, pool, target + 10, target + 400) + " ", target, "UCS2")
        elif script == "emoji_inside":
            g = Filler(r, ARABIC_DIGITS, ARABIC_NAMES, ARABIC_EXTRA)
            base = compose(g, ARABIC, target + 20, target + 400)
            words = base.split(" ")
            base = " ".join(w + (EMOJI[k % len(EMOJI)] if k % 3 == 1 else "") for k, w in enumerate(words))
            text = fit_exact(base + " ", target, "UCS2")
        elif script == "emoji_end":
            if target < 2:
                text = "\u2764"
                script = "bmp_symbol"
            else:
                g = Filler(r, PERSIAN_DIGITS, PERSIAN_NAMES)
                text = fit_exact(compose(g, PERSIAN_POOL, target + 10, target + 400) + " ", target - 2, "UCS2") + \
                    EMOJI[i % len(EMOJI)]
        else:  # gsm_plus_one: GSM text made UCS2 by one typographic apostrophe
            src = "We\u2019re sorry we missed you. " + " ".join(r.sample(GSM_FILLER, len(GSM_FILLER))) + " "
            text = fit_exact(src, target, "UCS2") if target >= 3 else "\u2019" * target
        assert detect(text) == "UCS2" and units(text) == target, (target, script)
        out.add("ucs2_exact_length", text, "%d units (%s); %s" % (target, script, shape_note(text)))


def gen_emoji_boundary(out):
    r = rng_for("emoji_boundary")
    sources = [
        (PERSIAN_POOL, PERSIAN_NAMES, PERSIAN_DIGITS),
        (ARABIC, ARABIC_NAMES, ARABIC_DIGITS),
        (PASHTO, PASHTO_NAMES, WESTERN),
        (DARI, DARI_NAMES, PERSIAN_DIGITS),
    ]

    def prefix(k, n):
        pool, names, digits = sources[k % len(sources)]
        g = Filler(r, digits, names, ARABIC_EXTRA)
        if k % 5 == 4:
            return fit_exact(UCS2_SOURCES["russian"], n, "UCS2")
        return fit_exact(compose(g, pool, n + 10, n + 300) + " ", n, "UCS2")

    def tail(k):
        pool, names, digits = sources[(k + 1) % len(sources)]
        return compose(Filler(r, digits, names, ARABIC_EXTRA), pool, 10, 60)

    k = 0
    cases = [
        (64, "fits both"), (65, "fits both"), (66, "fits 8-bit, moves for 16-bit"),
        (67, "moves to segment 2 (8-bit)"), (68, "starts segment 2"),
        (131, "fits both second segments"), (132, "fits 8-bit, moves for 16-bit (second boundary)"),
        (133, "fits 8-bit, moves for 16-bit (second boundary)"), (134, "moves to segment 3 (8-bit)"),
        (199, "third boundary, 8-bit"), (200, "third boundary, 8-bit"), (198, "third boundary, 16-bit"),
    ]
    for pos, what in cases:
        for rep in range(2):
            e = EMOJI[k % len(EMOJI)]
            text = prefix(k, pos - 1) + e + tail(k)
            k += 1
            out.add("emoji_boundary", text, "U+%04X surrogate pair at units %d-%d %s; %s" % (
                ord(e), pos, pos + 1, what, shape_note(text)))
    for total, what in [(70, "emoji ends at unit 70: single part"), (71, "emoji makes 71 units: split"),
                        (72, "emoji makes 72 units: split")]:
        for rep in range(2):
            e = EMOJI[k % len(EMOJI)]
            k += 1
            text = prefix(k, total - 2) + e
            out.add("emoji_boundary", text, "%s; %s" % (what, shape_note(text)))
    for j, (cl, name) in enumerate(CLUSTERS):
        for pos in (66, 67):
            text = prefix(k, pos - 1) + cl + tail(k)
            k += 1
            out.add("emoji_boundary", text, "cluster %s starts at unit %d (cluster may be split); %s" % (
                name, pos, shape_note(text)))
    # Only emoji: 35 = 70 units, 36 = 72 units, odd offset; 34 emoji + ZWJ etc.
    for lead, n in [("", 35), ("", 36), ("a", 34), ("a", 35), ("", 67), ("ab", 66)]:
        e = EMOJI[k % len(EMOJI)]
        k += 1
        text = lead + e * n
        out.add("emoji_boundary", text, "%d leading units then %d x U+%04X; %s" % (
            len(lead), n, ord(e), shape_note(text)))
    # Non-emoji supplementary characters: musical symbol, CJK extension B, math bold.
    for text, note in [("\U0001D11E", "U+1D11E musical G clef: surrogate pair"),
                       ("\U00020BB7\u91ce\u5bb6", "U+20BB7 CJK extension B + BMP"),
                       ("\U0001D400\U0001D401\U0001D402 = ABC", "math bold capitals (look-alikes, not GSM)"),
                       ("OK " + "\U0001F44D" * 2, "GSM text plus two emoji")]:
        out.add("emoji_boundary", text, "%s; %s" % (note, shape_note(text)))


def gen_joiners(out):
    r = rng_for("joiners_bidi_tatweel")
    sources = [
        (PERSIAN_POOL, PERSIAN_NAMES, PERSIAN_DIGITS, "persian"),
        (DARI, DARI_NAMES, PERSIAN_DIGITS, "dari"),
        (PASHTO, PASHTO_NAMES, WESTERN, "pashto"),
        (ARABIC, ARABIC_NAMES, ARABIC_DIGITS, "arabic"),
    ]
    marks = [(ZWNJ, "U+200C"), (ZWJ, "U+200D"), (LRM, "U+200E"), (RLM, "U+200F"), (ALM, "U+061C"),
             ("\u2066", "U+2066"), ("\u2069", "U+2069"), ("\u202b", "U+202B"), ("\u202c", "U+202C"),
             (TATWEEL, "U+0640")]
    k = 0
    for pos in (66, 67, 68, 70, 71, 133, 134, 135):
        for rep in range(2):
            mk, name = marks[k % len(marks)]
            pool, names, digits, lab = sources[k % len(sources)]
            g = Filler(r, digits, names, ARABIC_EXTRA)
            before = fit_exact(compose(g, pool, pos + 10, pos + 300) + " ", pos - 1, "UCS2")
            text = before + mk + compose(g, pool, 10, 60)
            k += 1
            out.add("joiners_bidi_tatweel", text, "%s at unit %d (%s); %s" % (name, pos, lab, shape_note(text)))
    # Whole-text variants: ZWNJ-rich Persian, tatweel-stretched Arabic, isolates around numbers.
    for j in range(8):
        pool, names, digits, lab = sources[j % len(sources)]
        g = Filler(r, digits, names, ARABIC_EXTRA)
        text = compose(g, pool, 60, 220)
        kind = ["zwnj", "tatweel", "isolate", "marks"][j % 4]
        if kind == "zwnj":
            text = text.replace(" شما", ZWNJ + " شما").replace("ها ", ZWNJ + "ها ").replace("ستاسو ", "ستاسو" + ZWNJ + " ")
        elif kind == "tatweel":
            words = text.split(" ")
            text = " ".join(w[:1] + TATWEEL * 2 + w[1:] if len(w) > 3 and i % 3 == 0 else w
                            for i, w in enumerate(words))
        elif kind == "isolate":
            text = re.sub(r"([0-9\u06f0-\u06f9\u0660-\u0669][0-9\u06f0-\u06f9\u0660-\u0669:/\-,\u066c]*)",
                          lambda m: "\u2066" + m.group(1) + "\u2069", text)
        else:
            text = RLM + text.replace(". ", "." + ALM + " ")
        out.add("joiners_bidi_tatweel", text, "%s (%s); %s" % (kind, lab, shape_note(text)))
    for text, note in [
        (ZWJ, "ZWJ alone"),
        (RLM + LRM, "RLM + LRM only"),
        (TATWEEL * 70, "70 tatweels: single part"),
        (TATWEEL * 71, "71 tatweels: split"),
        (ZWNJ * 67 + "ب", "67 ZWNJ then beh: 68 units"),
        ("\u202eABC\u202c", "RLO override around GSM letters: UCS2"),
        ("\u2067" + "کد ۱۲۳۴" + "\u2069", "RLI ... PDI isolate"),
        ("\u200b" + "سلام", "ZERO WIDTH SPACE U+200B before text"),
    ]:
        out.add("joiners_bidi_tatweel", text, "%s; %s" % (note, shape_note(text)))


def gen_gsm_latin1(out):
    r = rng_for("gsm_latin1")
    f = Filler(r, WESTERN, MIXED_NAMES, ASCII_EXTRA)
    spans = [(20, 80), (60, 150), (140, 200), (150, 330)]
    for i in range(10):
        lo, hi = spans[i % len(spans)]
        text = compose(f, GSM_LATIN1_SENTENCES, lo, hi)
        assert detect(text) == "GSM7", text
        out.add("gsm_latin1", text, "GSM Latin-1 letters; %s" % shape_note(text))
    for text, note in [
        ("Ç", "capital C-cedilla alone: GSM 0x09"),
        ("ÇÇ ç", "capital C-cedilla is GSM but small c-cedilla is not: UCS2"),
        ("ÆØÅæøåÄÖÑÜäöñüßÉ", "all upper/lower Latin-1 GSM letters"),
        ("£¥¤§¡¿", "GSM Latin-1 symbols"),
        ("èéùìòà", "GSM accented lower-case letters"),
        ("ΔΦΓΛΩΠΨΣΘΞ", "the ten GSM Greek capitals"),
    ]:
        out.add("gsm_latin1", text, "%s; %s" % (note, shape_note(text)))
    # 160 / 161 septets of GSM Latin-1 text.
    src = " ".join(f.fill(s) for s in GSM_LATIN1_SENTENCES) + " "
    for n in (160, 161):
        text = fit_exact(src, n, "GSM7")
        out.add("gsm_latin1", text, "%d septets of GSM Latin-1 text; %s" % (n, shape_note(text)))


def gen_latin1_non_gsm(out):
    r = rng_for("latin1_non_gsm")
    f = Filler(r, WESTERN, MIXED_NAMES, ASCII_EXTRA)
    spans = [(20, 70), (50, 120), (100, 200)]
    for i in range(8):
        lo, hi = spans[i % len(spans)]
        text = compose(f, LATIN1_NON_GSM_SENTENCES, lo, hi)
        assert detect(text) == "UCS2", text
        out.add("latin1_non_gsm", text, "non-GSM Latin-1 letters; %s" % shape_note(text))
    for ch in "áíóúâêîôûëïõÿçÀÈÌÒÙÁÓÚÂ°«»":
        if any(c["text"] == ch for c in out.cases):
            continue
        out.add("latin1_non_gsm", ch, "single non-GSM Latin-1 U+%04X" % ord(ch))
        if sum(1 for c in out.cases if c["category"] == "latin1_non_gsm") >= 16:
            break


GSM_ALPHABET_TEXT = "".join(sorted(GSM_DEFAULT, key=GSM_DEFAULT.get))
GSM_EXTENSION_TEXT = "".join(sorted(GSM_EXTENSION, key=GSM_EXTENSION.get))


def gen_edge_misc(out):
    for text, note in [
        ("", "empty message: GSM7, one empty segment"),
        ("\u001b", "ESC U+001B in the text: not GSM"),
        ("\u00a0", "NO-BREAK SPACE U+00A0: not GSM"),
        ("ç", "small c-cedilla U+00E7: not GSM"),
        ("Ç", "capital C-cedilla U+00C7 alone is covered elsewhere; here with text: Ça?"),
        ("@", "commercial at: octet 0x00"),
        ("\u000c", "FORM FEED alone: escape pair 1b0a"),
        ("\r\n\r\n", "two CRLF: four septets"),
        ("\u2126", "OHM SIGN U+2126: not GSM"),
        ("\u0391", "GREEK CAPITAL ALPHA U+0391: not GSM"),
        ("\u0410", "CYRILLIC CAPITAL A U+0410: not GSM"),
        ("\u2029", "paragraph separator U+2029"),
        ("\u0085", "C1 control NEL U+0085"),
        ("soft\u00adhyphen", "SOFT HYPHEN U+00AD"),
        ("\u0000", "NUL U+0000: not GSM"),
        ("\u00e7a va", "decomposed? no: precomposed small c-cedilla makes UCS2"),
        ("C\u0327a", "decomposed C + U+0327 combining cedilla: UCS2"),
        ("\u20ac", "euro sign alone: escape pair 1b65"),
        ("\ufe0f", "VARIATION SELECTOR-16 alone"),
        ("\U000e0041", "TAG LATIN CAPITAL LETTER A U+E0041: surrogate pair"),
        ("\r", "CR alone: septet 0x0d"),
        (GSM_ALPHABET_TEXT, "the whole default alphabet in septet order (0x00-0x7f without 0x1b): 127 septets"),
        (GSM_EXTENSION_TEXT, "the ten extension characters in code order: 20 septets"),
        (GSM_ALPHABET_TEXT + GSM_EXTENSION_TEXT, "default alphabet then extension table: 147 septets, single part"),
        (GSM_ALPHABET_TEXT + GSM_EXTENSION_TEXT + "\u00e7", "all 137 GSM characters then small c-cedilla: UCS2, 138 units"),
    ]:
        if text == "Ç":
            text = "Ça?"
            note = "capital C-cedilla in text: GSM7"
        if text == "\u00e7a va":
            note = "precomposed small c-cedilla U+00E7 in text: UCS2"
        out.add("edge_misc", text, note)


def gen_single_non_gsm(out):
    r = rng_for("single_non_gsm")
    chars = ["\u2019", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026", "\u2022", "\u00e7", "\u0060",
             "\u0009", "\U0001F600", "\u00a0", "\u00ad", "\u043e", "\u0391", "\u0301", "\u00b0",
             "\u20b9", "\u2122", "\U0001F44D", "\u00e1", "\u0644", "\u06f5", "\u0007"]
    lengths = [69, 70, 71, 100, 134, 135, 159, 160, 161, 200, 300, 400]
    for i, ch in enumerate(chars):
        n = lengths[i % len(lengths)]
        base = fit_exact(" ".join(r.sample(GSM_FILLER, len(GSM_FILLER))) + " ", n, "GSM7")
        off = r.randint(0, n)
        text = base[:off] + ch + base[off:]
        out.add("single_non_gsm", text, "one U+%04X in ASCII text at offset %d; %s" % (
            ord(ch), off, shape_note(text)))


def gen_long_multipart(out):
    r = rng_for("long_multipart")
    gsm_src = " ".join(r.sample(GSM_FILLER, len(GSM_FILLER))) + " "
    ext_src = " ".join(Filler(r, WESTERN, MIXED_NAMES, ASCII_EXTRA).fill(s) for s in GSM_EXT_SENTENCES) + " "
    for k, extra in [(4, 0), (6, 1), (8, 0), (8, 1), (12, 0), (16, 1), (17, 0)]:
        n = 153 * k + extra
        if 152 * 18 < n:
            continue
        text = fit_exact(gsm_src, n, "GSM7")
        out.add("long_multipart", text, "ascii: %d septets = %d x 153 %+d; %s" % (n, k, extra, shape_note(text)))
    for k, extra in [(5, 0), (7, 1), (10, 0), (11, 1), (18, 0)]:
        n = 152 * k + extra
        text = fit_exact(gsm_src, n, "GSM7")
        out.add("long_multipart", text, "ascii: %d septets = %d x 152 %+d; %s" % (n, k, extra, shape_note(text)))
    for n in (153 * 5, 152 * 9 + 1, 153 * 12 - 1):
        text = fit_exact(ext_src, n, "GSM7")
        out.add("long_multipart", text, "gsm_ext: %d septets; %s" % (n, shape_note(text)))
    ucs_sources = [
        ("persian", Filler(r, PERSIAN_DIGITS, PERSIAN_NAMES), PERSIAN_POOL),
        ("pashto", Filler(r, WESTERN, PASHTO_NAMES), PASHTO),
        ("dari", Filler(r, PERSIAN_DIGITS, DARI_NAMES), DARI),
        ("arabic", Filler(r, ARABIC_DIGITS, ARABIC_NAMES, ARABIC_EXTRA), ARABIC),
        ("mixed", Filler(r, WESTERN, MIXED_NAMES, MIXED_EXTRA), MIXED),
    ]
    j = 0
    for k, per, extra in [(4, 67, 0), (5, 66, 0), (6, 67, 1), (7, 66, 1), (9, 67, 0), (10, 66, 0),
                          (12, 67, 1), (13, 66, 1), (15, 67, 0), (17, 66, 0), (16, 67, 1), (18, 66, 0)]:
        name, g, pool = ucs_sources[j % len(ucs_sources)]
        j += 1
        n = per * k + extra
        text = fit_exact(compose(g, pool, n + 20, n + 400) + " ", n, "UCS2")
        out.add("long_multipart", text, "%s: %d units = %d x %d %+d; %s" % (name, n, k, per, extra, shape_note(text)))
    # Emoji every few characters: surrogate pairs hit many boundaries.
    base = compose(Filler(r, PERSIAN_DIGITS, PERSIAN_NAMES), PERSIAN_POOL, 500, 900)
    text = "".join(ch + (EMOJI[i % len(EMOJI)] if i % 9 == 8 else "") for i, ch in enumerate(base))
    out.add("long_multipart", text, "emoji_mix: %s" % shape_note(text))


def generate():
    out = Out()
    # Texts of the public cases are not repeated.
    out.texts = set(PUBLIC_TEXTS)
    gen_edge_misc(out)
    gen_ascii(out)
    gen_script(out, "pashto", PASHTO, PASHTO_NAMES, [WESTERN, PERSIAN_DIGITS], "pashto", PASHTO_VARIANTS)
    gen_script(out, "dari", DARI, DARI_NAMES, [PERSIAN_DIGITS, WESTERN], "dari", DARI_VARIANTS)
    gen_script(out, "arabic", ARABIC, ARABIC_NAMES, [ARABIC_DIGITS, WESTERN], "arabic", ARABIC_VARIANTS,
               extra=ARABIC_EXTRA)
    gen_persian_digits(out)
    gen_mixed(out)
    gen_gsm_latin1(out)
    gen_latin1_non_gsm(out)
    gen_gsm_ext_boundary(out)
    gen_gsm_exact(out)
    gen_ucs2_exact(out)
    gen_emoji_boundary(out)
    gen_joiners(out)
    gen_single_non_gsm(out)
    gen_long_multipart(out)
    return out.cases


PUBLIC_TEXTS = []


def load(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        raw = f.read()
    return raw, [json.loads(l) for l in raw.split("\n") if l.strip()]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--verify", metavar="CASES", help="recompute and compare every record of CASES")
    g.add_argument("--append", nargs="?", const=str(DEFAULT_CORPUS), metavar="CASES",
                   help="append the generated cases missing from CASES (default: %(const)s)")
    g.add_argument("--print", action="store_true", help="print the generated cases")
    g.add_argument("--stats", nargs="?", const=str(DEFAULT_CORPUS), metavar="CASES",
                   help="per-category counts of CASES")
    args = ap.parse_args(argv)

    if args.verify:
        return verify(args.verify)
    if args.stats:
        _, recs = load(args.stats)
        c = collections.Counter(rec["category"] for rec in recs)
        for cat in CATEGORY_ORDER:
            print("%-22s %5d" % (cat, c.get(cat, 0)))
        print("%-22s %5d" % ("total", len(recs)))
        return 0

    path = args.append or str(DEFAULT_CORPUS)
    raw, recs = load(path)
    # The public cases: ids at or below the fixed base per category.
    for rec in recs:
        m = ID_RE.match(rec["id"])
        if m and int(m.group(2)) <= BASE_IDS.get(m.group(1), 10 ** 6):
            PUBLIC_TEXTS.append(rec["text"])
    cases = generate()
    if args.print:
        for c in cases:
            sys.stdout.write(dump_line(c) + "\n")
        return 0

    by_id = {rec["id"]: rec for rec in recs}
    new = []
    for c in cases:
        old = by_id.get(c["id"])
        if old is None:
            new.append(c)
        elif {k: old.get(k) for k in KEY_ORDER} != {k: c.get(k) for k in KEY_ORDER}:
            print("%s: already in %s with different content; nothing written" % (c["id"], path))
            return 1
    if new:
        with open(path, "a", encoding="utf-8", newline="\n") as f:
            if raw and not raw.endswith("\n"):
                f.write("\n")
            for c in new:
                f.write(dump_line(c) + "\n")
    print("%d generated, %d appended, %d already present" % (len(cases), len(new), len(cases) - len(new)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
