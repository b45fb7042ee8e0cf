"""The embedded default dataset: a synthetic category in the exact Amazon Reviews 2023 format.

:func:`synthesize` writes ``DIR/<category>.jsonl.gz`` (reviews) and ``DIR/meta_<category>.jsonl.gz``
(items) with every field, JSON type and key order of the official 2023 files, so everything
downstream (ingest, build, models, the worst-products mode) runs on it exactly as on real data.

The generative model, kept simple but with something for every model to learn:

* **Items** belong to one of 30 product kinds (earbuds, chargers, monitors ...), one of three
  price tiers and one of four platforms (iPhone & Mac, Android, Windows PC, Gaming); the
  (kind, tier, platform) triples are the taste clusters. Popularity is Zipf-like. Each item has
  a latent quality (about 8% are genuinely bad products, which still sell) and a small latent
  vector.
* **Users** write a heavy-tailed number of reviews (at least one each). Each user has sparse tastes
  over kinds (a gamma/Dirichlet draw whose mean is each kind's popularity mass; heavy reviewers
  spread wider), tier and platform preferences (platform loyalty links kinds), a rating bias and
  a latent vector. A review's item is drawn by choosing a kind, a tier and a platform from the
  user's tastes, then an item inside that cluster by popularity: P(item | user) is popularity x
  taste affinity. On average P(item) is the item's popularity (a long tail), yet item-item
  co-occurrence beats popularity at predicting a user's next item.
* **Ratings** come from ``quality + user bias + taste match + latent dot product + noise``, cut at
  thresholds calibrated on a pilot sample so the histogram is Amazon's J shape (about 10/5/8/17/60%
  for 1..5 stars). Bad items end up mostly at 1-2 stars, with complaint texts that often name the
  item's own defect.
* **Texts and titles** are composed from sentence pools by star and product kind (1-6 sentences).
  Helpful votes, verified purchases, review images, variant ASINs, timestamps (2005-2023, growing
  volume), about 0.5% duplicate (user, item) reviews and the item metadata are drawn to look like
  the real files.

Reviews are generated block by block of users and streamed to a gzip file, so memory is
O(n_users + n_items) whatever the number of reviews; compression runs in a helper thread (zlib
releases the GIL). Same seed, same bytes: gzip headers carry no name and mtime 0.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _jstr  # type: ignore[attr-defined]
from operator import index as _as_index
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepcart.errors import InputError
from deepcart.fsutil import atomic_path

__all__ = ["REVIEW_FIELDS", "META_FIELDS", "SynthResult", "synthesize"]

#: Key order of a 2023 review line, as in the official files.
REVIEW_FIELDS = (
    "rating",
    "title",
    "text",
    "images",
    "asin",
    "parent_asin",
    "user_id",
    "timestamp",
    "helpful_vote",
    "verified_purchase",
)
#: Key order of a 2023 item metadata line, as in the official files.
META_FIELDS = (
    "main_category",
    "title",
    "average_rating",
    "rating_number",
    "features",
    "description",
    "price",
    "images",
    "videos",
    "store",
    "categories",
    "details",
    "parent_asin",
    "bought_together",
)

_CATEGORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

# Target star shares (1..5) of Amazon's J-shaped histogram.
_STAR_SHARES = (0.10, 0.05, 0.08, 0.17, 0.60)
_BAD_ITEM_SHARE = 0.08
_DUPLICATE_SHARE = 0.005
_REVIEW_IMAGE_SHARE = 0.02
_N_TIERS = 3
#: Platforms an item is made for; users mostly stay within one, across product kinds.
_PLATFORMS = ("iPhone & Mac", "Android & Samsung Galaxy", "Windows PC", "Gaming")
_N_PLAT = len(_PLATFORMS)
_COMPATIBLE = (
    "iPhone, iPad, MacBook",
    "Samsung Galaxy, Google Pixel, Android Tablets",
    "Windows PC, Laptop, Desktop",
    "PS5, Xbox Series X, Nintendo Switch, Gaming PC",
)
_PLAT_ALPHA = 0.3  # Dirichlet concentration of user platform preferences: small = loyal
_ZIPF = 1.05  # item popularity ~ rank ** -_ZIPF
_TASTE_SHAPE = 0.01  # gamma shape scale of user tastes over kinds: small = few kinds per user
_TASTE_MIX = 0.995  # share of a user's choices driven by taste (the rest: global popularity)
_TIER_ALPHA = (0.5, 0.6, 0.4)  # Dirichlet of user preferences over budget/mainstream/premium
_LATENT_DIM = 4
_BLOCK_REVIEWS = 32_768
_PILOT_REVIEWS = 20_000

_T0 = datetime(2005, 1, 1, tzinfo=UTC).timestamp()  # first review
_T1 = datetime(2023, 9, 15, tzinfo=UTC).timestamp()  # last review (the 2023 crawl)


def _reflect(t: np.ndarray) -> np.ndarray:
    """Fold times outside [_T0, _T1] back inside by reflection at the bounds."""
    t = np.where(t > _T1, 2 * _T1 - t, t)
    t = np.where(t < _T0, 2 * _T0 - t, t)
    return np.clip(t, _T0, _T1)


_T_ITEMS0 = datetime(2003, 1, 1, tzinfo=UTC).timestamp()  # earliest item launch
_YEAR = 365.25 * 86400.0
_GROWTH = 0.25  # yearly growth rate of review volume (and of launches) ...
_T_PLATEAU = datetime(2021, 1, 1, tzinfo=UTC).timestamp()  # ... until volume levels off

_IMG = "https://m.media-amazon.com/images/I/"
_IMG_OLD = "https://images-na.ssl-images-amazon.com/images/I/"
_UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_IMG_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-"
_HEX = "0123456789abcdef"


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    noun: str
    plural: bool
    main_category: str
    path: tuple[str, ...]  # categories below the root
    price: float  # median price in USD
    title_nouns: tuple[str, ...]
    specs: tuple[str, ...]
    aspects: tuple[str, ...]
    defects: tuple[str, ...]


_CPA = "Cell Phones & Accessories"
_CA = "Computers & Accessories"
_PERIPH = (_CA, "Computer Accessories & Peripherals")
_HP = ("Headphones, Earbuds & Accessories", "Headphones & Earbuds")
_CAR = ("Car & Vehicle Electronics", "Car Electronics")

# fmt: off
_KINDS: tuple[_Kind, ...] = (
    _Kind(
        "earbuds", True, "All Electronics", (*_HP, "Earbud Headphones"), 29.99,
        ("Wireless Earbuds", "Bluetooth Earbuds", "True Wireless Earbuds"),
        ("Bluetooth 5.3", "40H Playtime", "IPX7 Waterproof", "Deep Bass", "Built-in Mic",
         "Touch Control", "Noise Cancelling"),
        ("sound quality", "battery life", "fit", "charging case"),
        ("The left earbud stopped charging after {dur}.",
         "The bluetooth connection drops every few minutes.",
         "One earbud is noticeably quieter than the other.",
         "The charging case stopped holding a charge after {dur}."),
    ),
    _Kind(
        "headphones", True, "All Electronics", (*_HP, "Over-Ear Headphones"), 59.99,
        ("Over Ear Headphones", "Wireless Headphones", "Noise Cancelling Headphones"),
        ("Active Noise Cancelling", "60H Playtime", "Hi-Res Audio", "Foldable",
         "Memory Foam Ear Cups", "Bluetooth 5.2"),
        ("sound", "comfort", "noise cancelling", "battery life"),
        ("The headband cracked after {dur}.",
         "The right side cut out after {dur}.",
         "The noise cancelling makes a constant hissing sound.",
         "The ear cushions started peeling after {dur}."),
    ),
    _Kind(
        "wall charger", False, _CPA, (_CPA, "Accessories", "Chargers & Power Adapters",
                                      "Wall Chargers"), 19.99,
        ("USB C Charger", "Fast Wall Charger", "GaN Charger Block"),
        ("20W PD", "65W GaN", "Dual Port", "Foldable Plug", "PPS Fast Charging"),
        ("charging speed", "build quality", "size"),
        ("It stopped charging my phone after {dur}.",
         "It gets extremely hot, too hot to touch.",
         "It only charges at the slow speed, never fast charging.",
         "The plug prongs came loose after {dur}."),
    ),
    _Kind(
        "USB-C cable", False, _CA, (*_PERIPH, "Cables & Accessories", "Cables", "USB Cables"),
        11.99,
        ("USB C to USB C Cable", "USB C Charging Cable", "Braided USB C Cable"),
        ("6.6ft", "3 Pack", "100W PD", "Nylon Braided", "10Gbps Data Transfer"),
        ("durability", "charging speed", "length", "connector fit"),
        ("The connector got loose after {dur}.",
         "It stopped charging after {dur}.",
         "The braiding frayed near the plug within {dur}.",
         "My phone keeps saying accessory not supported."),
    ),
    _Kind(
        "HDMI cable", False, "All Electronics", ("Television & Video", "Accessories", "Cables",
                                                 "HDMI Cables"), 12.99,
        ("HDMI Cable", "8K HDMI 2.1 Cable", "4K HDMI Cable"),
        ("48Gbps", "4K@120Hz", "10ft", "eARC", "Gold Plated"),
        ("picture quality", "length", "build quality"),
        ("The picture flickers and drops out every few minutes.",
         "It would not pass a 4K signal at all.",
         "The screen goes black randomly after {dur}."),
    ),
    _Kind(
        "power bank", False, _CPA, (_CPA, "Accessories", "Chargers & Power Adapters",
                                    "Portable Power Banks"), 32.99,
        ("Portable Charger", "Power Bank", "Magnetic Battery Pack"),
        ("10000mAh", "26800mAh", "PD 20W", "LED Display", "Slim"),
        ("capacity", "charging speed", "size", "weight"),
        ("It barely charged my phone once before dying.",
         "It stopped holding a charge after {dur}.",
         "The battery started to swell after {dur}.",
         "The display shows 100% and then it shuts off."),
    ),
    _Kind(
        "bluetooth speaker", False, "All Electronics", ("Portable Audio & Video",
                                                        "Portable Speakers & Docks",
                                                        "Portable Bluetooth Speakers"), 39.99,
        ("Bluetooth Speaker", "Portable Wireless Speaker", "Waterproof Speaker"),
        ("IPX7", "24H Playtime", "Stereo Pairing", "Loud Stereo Sound", "Built-in Mic"),
        ("sound", "volume", "bass", "battery life"),
        ("It stopped turning on after {dur}.",
         "It crackles and distorts at half volume.",
         "The battery went from hours to minutes within {dur}."),
    ),
    _Kind(
        "wireless mouse", False, "Computers", (*_PERIPH, "Keyboards, Mice & Accessories", "Mice"),
        19.99,
        ("Wireless Mouse", "Ergonomic Mouse", "Bluetooth Mouse"),
        ("2.4G", "Silent Click", "Rechargeable", "1600 DPI", "Ergonomic"),
        ("tracking", "comfort", "scroll wheel", "battery life"),
        ("The cursor jumps around and lags constantly.",
         "The left button started double clicking after {dur}.",
         "The scroll wheel broke after {dur}."),
    ),
    _Kind(
        "keyboard", False, "Computers", (*_PERIPH, "Keyboards, Mice & Accessories", "Keyboards"),
        44.99,
        ("Mechanical Keyboard", "Wireless Keyboard", "Gaming Keyboard"),
        ("RGB Backlit", "Hot Swappable", "Blue Switches", "Full Size", "Quiet Typing"),
        ("typing feel", "backlight", "key layout", "build quality"),
        ("Several keys stopped registering after {dur}.",
         "Keys repeat randomly while typing.",
         "The backlight died after {dur}."),
    ),
    _Kind(
        "laptop stand", False, "Computers", (_CA, "Laptop Accessories", "Laptop Stands"), 29.99,
        ("Laptop Stand", "Adjustable Laptop Riser", "Aluminum Laptop Stand"),
        ("Adjustable Height", "Ergonomic", "Aluminum", "Foldable", "Ventilated"),
        ("stability", "height adjustment", "build quality"),
        ("The hinge got loose and it wobbles badly.",
         "A screw stripped after {dur} and it collapsed.",
         "It scratched the bottom of my laptop."),
    ),
    _Kind(
        "USB hub", False, "Computers", (_CA, "USB Hubs"), 25.99,
        ("USB C Hub", "USB 3.0 Hub", "Multiport Adapter"),
        ("7-in-1", "4K HDMI", "100W PD Pass-Through", "SD Card Reader", "USB 3.0"),
        ("port selection", "data speed", "HDMI output"),
        ("The HDMI port stopped working after {dur}.",
         "Devices keep disconnecting randomly.",
         "It gets very hot and drops the connection."),
    ),
    _Kind(
        "external SSD", False, "Computers", (_CA, "Data Storage",
                                             "External Solid State Drives"), 89.99,
        ("Portable SSD", "External Solid State Drive", "USB C SSD"),
        ("1TB", "2TB", "1050MB/s", "USB 3.2 Gen 2", "Shock Resistant"),
        ("transfer speed", "size", "reliability"),
        ("It disconnects in the middle of large transfers.",
         "It died after {dur} and took my files with it.",
         "The real capacity is far less than advertised."),
    ),
    _Kind(
        "microSD card", False, "Computers", (*_PERIPH, "Memory Cards", "Micro SD Cards"), 14.99,
        ("microSDXC Memory Card", "Micro SD Card", "microSD Card with Adapter"),
        ("128GB", "256GB", "U3 A2", "V30", "Up to 170MB/s"),
        ("speed", "capacity", "reliability"),
        ("It got corrupted after {dur}.",
         "My camera says card error every other day.",
         "It turned read-only after {dur}."),
    ),
    _Kind(
        "webcam", False, "Computers", (*_PERIPH, "Audio & Video Accessories", "Webcams"), 39.99,
        ("1080P Webcam", "4K Webcam", "Webcam with Microphone"),
        ("Auto Focus", "Dual Microphone", "Privacy Cover", "Plug and Play", "Wide Angle"),
        ("picture quality", "microphone", "low light performance"),
        ("The image is grainy and washed out even in daylight.",
         "It stopped being recognized by my computer after {dur}.",
         "The microphone picks up a loud buzz."),
    ),
    _Kind(
        "monitor", False, "Computers", (_CA, "Monitors"), 179.99,
        ("Gaming Monitor", "IPS Monitor", "Computer Monitor"),
        ("27 Inch", "144Hz", "QHD 1440p", "FreeSync", "Eye Care", "Ultra Thin Bezel"),
        ("picture quality", "colors", "stand", "refresh rate"),
        ("It developed a row of dead pixels after {dur}.",
         "The screen flickers constantly.",
         "The backlight bleed is terrible in every corner."),
    ),
    _Kind(
        "smartwatch", False, _CPA, ("Wearable Technology", "Smartwatches"), 49.99,
        ("Smart Watch", "Fitness Smartwatch", "Smart Watch for Men Women"),
        ("1.8 Inch Touch Screen", "Heart Rate Monitor", "IP68", "Sleep Tracking", "Call Answer"),
        ("screen", "battery life", "app", "step counting"),
        ("It stopped syncing with the app after {dur}.",
         "The step count is wildly inaccurate.",
         "The screen stopped responding to touch after {dur}."),
    ),
    _Kind(
        "fitness tracker", False, _CPA, ("Wearable Technology", "Activity & Fitness Trackers"),
        34.99,
        ("Fitness Tracker", "Activity Tracker", "Fitness Band"),
        ("Heart Rate", "Sleep Monitor", "Waterproof", "Pedometer", "14 Day Battery"),
        ("accuracy", "battery life", "band", "app"),
        ("The band broke after {dur}.",
         "It will not charge anymore after {dur}.",
         "The heart rate readings are nonsense."),
    ),
    _Kind(
        "screen protectors", True, _CPA, (_CPA, "Accessories", "Screen Protectors"), 9.99,
        ("Tempered Glass Screen Protector", "Screen Protector 3 Pack", "Privacy Screen Protector"),
        ("9H Hardness", "Case Friendly", "Bubble Free", "Easy Install Frame", "HD Clear"),
        ("clarity", "fit", "installation"),
        ("They cracked at the edges within {dur}.",
         "They do not fit the screen, the edges lift up.",
         "Touch sensitivity got terrible after installing them."),
    ),
    _Kind(
        "phone case", False, _CPA, (_CPA, "Cases, Holsters & Sleeves", "Basic Cases"), 15.99,
        ("Phone Case", "Shockproof Case", "Clear Phone Case"),
        ("Military Grade Drop Protection", "Slim Fit", "Anti-Yellowing", "MagSafe Compatible",
         "Raised Edges"),
        ("protection", "grip", "fit", "look"),
        ("It turned yellow after {dur}.",
         "The buttons are so stiff they are hard to press.",
         "It cracked the first time I dropped my phone."),
    ),
    _Kind(
        "security camera", False, "Camera & Photo", ("Camera & Photo", "Video Surveillance",
                                                     "Surveillance Cameras"), 45.99,
        ("Security Camera", "Outdoor WiFi Camera", "Indoor Camera"),
        ("2K", "Color Night Vision", "Motion Detection", "Two-Way Audio", "Works with Alexa"),
        ("video quality", "night vision", "app", "motion alerts"),
        ("It keeps going offline every few hours.",
         "The app stopped connecting after {dur}.",
         "The motion alerts arrive minutes late or not at all."),
    ),
    _Kind(
        "dash cam", False, "Car Electronics", (*_CAR, "Car Video", "Dash Cams"), 59.99,
        ("Dash Cam", "Front and Rear Dash Cam", "4K Dash Camera"),
        ("4K", "Night Vision", "Loop Recording", "G-Sensor", "Parking Monitor"),
        ("video quality", "night footage", "mount", "app"),
        ("It stops recording without any warning.",
         "The suction mount fell off after {dur}.",
         "It froze and corrupted the footage after {dur}."),
    ),
    _Kind(
        "car phone mount", False, _CPA, (*_CAR, "Vehicle Electronics Accessories",
                                         "Cell Phone Mounts"), 19.99,
        ("Car Phone Holder", "Phone Mount for Car", "Magnetic Car Mount"),
        ("Dashboard & Windshield", "One Touch", "Strong Suction", "360 Rotation"),
        ("grip", "stability", "suction"),
        ("It falls off the dashboard in hot weather.",
         "The clamp broke after {dur}.",
         "My phone shakes so much it is useless."),
    ),
    _Kind(
        "tripod", False, "Camera & Photo", ("Camera & Photo", "Tripods & Monopods",
                                            "Complete Tripods"), 29.99,
        ("Camera Tripod", "Phone Tripod", "Travel Tripod"),
        ("67 Inch", "Lightweight Aluminum", "Bluetooth Remote", "Phone Holder", "Carry Bag"),
        ("stability", "height", "build quality"),
        ("A leg lock snapped after {dur}.",
         "It wobbles even with a light phone on top.",
         "The head will not stay tight."),
    ),
    _Kind(
        "streaming stick", False, "All Electronics", ("Television & Video",
                                                      "Streaming Media Players"), 39.99,
        ("4K Streaming Stick", "Streaming Media Player", "Streaming Device"),
        ("4K HDR", "Voice Remote", "Dolby Vision", "WiFi 6"),
        ("picture quality", "remote", "app selection", "speed"),
        ("It constantly buffers and restarts.",
         "The remote stopped pairing after {dur}.",
         "It overheats and reboots every evening."),
    ),
    _Kind(
        "soundbar", False, "Home Audio & Theater", ("Home Audio", "Speakers", "Sound Bars"),
        129.99,
        ("Sound Bar", "Soundbar with Subwoofer", "TV Soundbar"),
        ("2.1 Channel", "Dolby Atmos", "Wireless Subwoofer", "HDMI eARC", "Bluetooth 5.0"),
        ("sound", "dialogue clarity", "bass", "remote"),
        ("The sound cuts out every few minutes.",
         "It stopped turning on after {dur}.",
         "There is a constant delay between picture and sound."),
    ),
    _Kind(
        "TV wall mount", False, "All Electronics", ("Television & Video", "Accessories",
                                                    "TV Mounts, Stands & Turntables",
                                                    "TV Wall & Ceiling Mounts"), 32.99,
        ("TV Wall Mount", "Full Motion TV Mount", "Tilting TV Wall Bracket"),
        ("Fits 32-75 Inch TVs", "Full Motion", "VESA 600x400", "Holds up to 132 lbs"),
        ("sturdiness", "installation", "range of motion"),
        ("The arm sags so the TV is never level.",
         "Several bolts were missing from the box.",
         "A weld cracked after {dur}."),
    ),
    _Kind(
        "rechargeable batteries", True, "All Electronics", ("Household Batteries, Chargers & "
                                                            "Accessories", "Rechargeable "
                                                            "Batteries", "AA"), 21.99,
        ("Rechargeable AA Batteries", "AA Rechargeable Batteries 8 Pack",
         "NiMH Rechargeable Batteries"),
        ("2800mAh", "8 Pack", "Pre-Charged", "1200 Cycles", "Low Self Discharge"),
        ("capacity", "charge retention", "value"),
        ("They lose their charge within days.",
         "Half of them would not recharge after {dur}.",
         "They last a fraction of the advertised capacity."),
    ),
    _Kind(
        "WiFi router", False, "Computers", (_CA, "Networking Products", "Routers"), 79.99,
        ("WiFi 6 Router", "Dual Band Router", "Mesh WiFi Router"),
        ("AX3000", "Dual Band", "Gigabit", "Parental Controls", "4 Antennas"),
        ("range", "speed", "app", "setup"),
        ("The connection drops several times a day.",
         "It needs a reboot every evening.",
         "The speed fell to a crawl after {dur}."),
    ),
    _Kind(
        "surge protector", False, "All Electronics", ("Accessories & Supplies",
                                                      "Power Strips & Surge Protectors"), 22.99,
        ("Surge Protector Power Strip", "Power Strip with USB", "Flat Plug Surge Protector"),
        ("12 Outlets", "4 USB Ports", "6ft Extension Cord", "2100 Joules", "Wall Mountable"),
        ("outlet spacing", "build quality", "USB charging"),
        ("The USB ports stopped working after {dur}.",
         "It trips and shuts off for no reason.",
         "Plugs fall out of the loose outlets."),
    ),
    _Kind(
        "e-reader cover", False, "All Electronics", ("eBook Readers & Accessories", "Covers"),
        16.99,
        ("Case for Kindle Paperwhite", "E-Reader Cover", "Slim Kindle Case"),
        ("Auto Sleep Wake", "Premium PU Leather", "Hand Strap", "Water-Safe"),
        ("fit", "magnet", "material"),
        ("The auto sleep stopped working after {dur}.",
         "The cover started peeling after {dur}.",
         "The magnet is too weak to keep it closed."),
    ),
)

_DURATIONS = ("two weeks", "a month", "three days", "a week", "45 days", "two months", "ten days")
_TIMES = ("a few months", "over a year", "six months", "a couple of weeks", "two years")

# Sentence pools by star. Placeholders: {noun} {this} {This} {it} {It} {itobj} {is} {was} {works}
# {does} {doesnt} {has} {looks} {aspect} {dur} {time}.
_OPEN = {
    5: ("I love {this}!", "{This} {is} fantastic.", "Absolutely love {this}.",
        "Best {noun} I have ever owned.", "Wow, {this} {is} great.",
        "I am so happy with this purchase.", "{This} exceeded my expectations.",
        "Bought {this} as a gift and ended up keeping {itobj} for myself.",
        "This is my second purchase and {it} {is} still the best {noun} around.",
        "I did a lot of research before buying {this} and I'm glad I did.",
        "{This} {is} exactly what I was looking for.", "Great value for the money.",
        "I've had {itobj} for {time} now and {it} {works} perfectly.",
        "I was skeptical at first, but {this} {is} the real deal.",
        "Honestly the best purchase I made this year."),
    4: ("Very good {noun} overall.", "{This} {is} pretty good.", "Solid {noun} for the price.",
        "I'm happy with {this}, with one small complaint.", "Good product.",
        "{This} {does} what {it} should.", "Overall a good buy.", "Works well so far.",
        "I like {this} quite a bit.", "Pleasantly surprised by {this}.",
        "After {time} of use I'm mostly satisfied."),
    3: ("{This} {is} okay.", "It's just okay.", "Mixed feelings about {this}.",
        "{This} {is} decent but nothing special.", "Average {noun}.", "Not bad, not great.",
        "{This} {does} the job, mostly.", "It's fine for the price, I guess.",
        "I'm on the fence about {this}."),
    2: ("Disappointed with {this}.", "I wanted to like {this}.", "Not what I expected.",
        "{This} {is} underwhelming.", "I expected more from {this}.", "Meh.",
        "Not very good.", "Poor quality for the price.", "{This} barely {works}."),
    1: ("Do not buy {this}.", "Total junk.", "Complete waste of money.", "{This} {is} garbage.",
        "Worst {noun} I have ever bought.", "Terrible product.", "Save your money.",
        "Avoid {this}!", "I regret buying {this}.", "Very disappointed.", "Returned {itobj}.",
        "{This} {was} dead on arrival."),
}
_POS_MID = (
    "The {aspect} is excellent.", "The {aspect} is better than I expected.",
    "I'm really impressed with the {aspect}.", "Setup took less than five minutes.",
    "{It} {works} great with everything I own.", "Build quality feels solid and premium.",
    "Shipping was fast and it arrived well packaged.", "I use {itobj} every day without problems.",
    "The {aspect} is great for the price.", "{It} {was} easy to set up, no instructions needed.",
    "Compared to my old one, this is a huge upgrade.",
    "My wife liked {itobj} so much I ordered a second one.",
    "The {aspect} has held up well after {time} of daily use.",
    "{It} {looks} nice and {feels} well made.", "No complaints about the {aspect} at all.",
    "Customer service answered my question within a day.",
    "It was a great value compared to the name brands.",
    "I've recommended {itobj} to several friends.", "Everything works exactly as advertised.",
    "The packaging was nice and everything was included.",
    "I was worried about the {aspect}, but it turned out great.",
    "My kids use {itobj} too and {it} {has} survived so far.",
    "I was honestly expecting the usual cheap stuff, but the {aspect} is on par with brands that "
    "cost twice as much.",
    "It paired on the first try and I have not had to mess with any settings since then.",
    "After {time} of use there are no signs of wear, and it still works like the day I got it.",
    "The {aspect} alone makes {itobj} worth it, everything else is a bonus.",
    "I've been using {itobj} daily for {time} and the {aspect} is still as good as on day one, "
    "which I can't say about the last one I owned.",
    "What surprised me most was the {aspect}, which is noticeably better than on the model I "
    "replaced, and that one cost more.",
    "I took {itobj} on a two week trip and {it} held up to being tossed around in a bag without "
    "a scratch.",
    "The listing was accurate, the photos match what showed up, and there were no surprises "
    "when I opened the box.",
)
_CAVEAT = (
    "My only complaint is the {aspect}, which could be better.",
    "The instructions could be clearer.", "The {aspect} is a little weaker than advertised.",
    "It's a bit pricier than similar options.", "The packaging was a little flimsy.",
    "I would have liked more color options.", "It took a while to figure out the settings.",
    "It runs a little warm, but nothing serious.", "The {aspect} is just average.",
    "Shipping took longer than expected.",
)
_MIXED_MID = (
    "The {aspect} is fine, but nothing to write home about.",
    "Some days {it} {works} perfectly and some days not.",
    "For the price, I can't complain too much.",
    "It's not as good as the more expensive brands.",
    "The {aspect} is good but overall it feels cheap.",
    "It does what it says, but feels cheaply made.",
    "I had to return the first one, the replacement works so far.",
    "Not sure it will last long, time will tell.", "It works, but I expected a better {aspect}.",
    "The {aspect} is hit or miss.",
    "It works well enough for everyday use, but the {aspect} is clearly where they cut corners.",
    "If you just need something basic it will do, but don't expect premium quality here.",
    "The {aspect} is acceptable for casual use, though I noticed the difference right away "
    "compared to my old {noun}.",
    "It does the basics fine, but a few small annoyances add up when you use {itobj} every day.",
)
_NEG_MID = (
    "{It} stopped working after {dur}.", "{It} died after {dur}.", "The {aspect} is terrible.",
    "I returned {itobj} the next day.", "I had to return {itobj}.",
    "It felt cheap and flimsy out of the box.",
    "Customer service never responded to my emails.",
    "The product looks nothing like the pictures.", "{It} {doesnt} work as advertised.",
    "The {aspect} got worse every week.", "Mine arrived damaged and looked used.",
    "After {dur} {it} would not turn on at all.",
    "The replacement had the exact same problem.",
    "I tried everything in the manual and nothing helped.",
    "Within {dur} the {aspect} was basically gone.", "Definitely not worth the money.",
    "It's clearly a knockoff of a better product.", "The good reviews must be fake.",
    "The return window closed a day before {it} broke.",
    "I contacted the seller twice about a replacement and only got a copy-and-paste answer.",
    "At first {it} seemed fine, but the {aspect} kept getting worse until {it} {was} unusable.",
    "I went through every troubleshooting step I could find online and nothing fixed it.",
    "For what I paid I expected at least basic quality control, and this clearly had none.",
    "I wanted to give {itobj} a fair chance, so I kept using {itobj} for {dur}, but the {aspect} "
    "never got any better.",
    "The first one was defective, so I got a replacement, and the replacement started doing the "
    "same thing within {dur}.",
    "The listing promises a lot, but the {aspect} is nowhere near what the description and the "
    "photos suggest.",
    "I checked the settings, updated everything I could and even tried it with another device, "
    "and it still would not work properly.",
)
_MILD_NEG = (
    "The {aspect} is worse than I hoped.", "It works, but barely.",
    "It's usable, but I wouldn't buy it again.", "The {aspect} is mediocre at best.",
    "For the price I expected much better.", "It started acting up after {dur}.",
)
_CONTEXT = (
    "I bought {this} to replace an old {noun} that finally gave out after years of use.",
    "I mostly use {itobj} at my desk for work calls and the occasional movie at night.",
    "I ordered {itobj} on a Tuesday and {it} arrived two days later, well before the estimate.",
    "I compared about a dozen listings before settling on {this}, mainly because of the price.",
    "We got {itobj} for my teenage son, who is pretty hard on his electronics.",
    "I travel a lot for work, so I needed something small enough to throw in a backpack.",
    "I had been using a more expensive name brand {noun} before, so I had high expectations.",
    "This was a replacement for one that I lost on a trip last summer.",
    "My husband picked {itobj} out after reading a bunch of reviews online.",
    "I'm not a tech person, so I care most about something that just works.",
    "I have owned three or four different {noun} over the years, so I have something to compare.",
    "I use {itobj} almost every day, at home and in the car.",
)
_MID = {
    5: _POS_MID,
    4: _POS_MID + _CAVEAT,
    3: _MIXED_MID + _CAVEAT + _MILD_NEG,
    2: _NEG_MID + _MILD_NEG + _CAVEAT,
    1: _NEG_MID,
}
_CLOSE = {
    5: ("Highly recommend!", "Would definitely buy again.", "Five stars.",
        "You won't be disappointed.", "Worth every penny.", "Great purchase.",
        "I'd buy {this} again in a heartbeat.", "Love {itobj}!", "Can't beat it for the price.",
        "Thanks!", "A+", "I would definitely buy {this} again and I already recommended {itobj} "
        "to my family.", "If you are on the fence, just get {itobj}, you'll be glad you did.",
        "Easily one of the best purchases I've made this year."),
    4: ("Still, I would recommend {itobj}.", "Overall I'm satisfied.", "Four stars.",
        "Good value overall.", "Would buy again.", "Recommended with minor reservations.",
        "Not perfect, but for the price I would still recommend {itobj} to a friend.",
        "I'll update this review if anything changes, but so far so good."),
    3: ("It's okay for the price.", "Three stars.", "Not sure I would buy again.",
        "You get what you pay for.", "It will do for now.", "Maybe look at other options first.",
        "It's not terrible, but I would probably spend a little more on a better one next time.",
        "I'm keeping {itobj} for now, but I wouldn't buy {this} again."),
    2: ("I would not buy again.", "Two stars because it sort of works.", "Look elsewhere.",
        "Not recommended.", "Disappointed overall.", "Expected much better.",
        "I'm giving it two stars only because it worked for a little while.",
        "Spend a few more dollars and get something that actually works properly."),
    1: ("Do not waste your money.", "Stay away.", "Returning {itobj}.", "Avoid at all costs.",
        "One star is too generous.", "Buyer beware.", "I want my money back.",
        "Zero stars if I could.", "Save yourself the headache and buy a different brand.",
        "I'm still waiting on a refund, so stay away from this seller."),
}
_ONE = {
    5: ("Works great!", "Love {itobj}!", "Great {noun}, highly recommend.",
        "Exactly as described.", "Perfect!", "Excellent product.", "Does the job perfectly.",
        "Great value."),
    4: ("Good {noun} for the price.", "Works well.", "Pretty good.", "Nice, does what I need.",
        "Good, not perfect."),
    3: ("It's okay.", "Works, but nothing special.", "Average {noun}.", "It's fine.",
        "Meh, it works."),
    2: ("Not great.", "Cheaply made.", "Poor quality {noun}.", "Disappointing.",
        "Barely works."),
    1: ("Junk.", "Stopped working after {dur}.", "Broke after {dur}.", "Don't buy.",
        "Returned {itobj}.", "Garbage."),
}
_TITLE = {
    5: ("Five Stars", "Love {itobj}!", "Great {noun}", "Excellent!", "Highly recommend",
        "Best {noun} ever", "Perfect", "Exactly what I needed", "Great value", "Awesome {noun}",
        "Works great", "Love it", "Amazing!", "Very happy", "Great {aspect} for the price",
        "Excellent {aspect}, easy setup", "Exactly what I was looking for",
        "Best {noun} I have owned so far", "Great {noun}, would buy again",
        "Fantastic {aspect}, highly recommend"),
    4: ("Four Stars", "Good {noun}", "Pretty good", "Good value", "Works well",
        "Solid {noun} for the price", "Nice", "Happy with it", "Good, with one flaw",
        "Good {noun}, but the {aspect} could be better", "Pretty good {aspect} overall",
        "Does the job well for the money", "Almost perfect, one small issue"),
    3: ("Three Stars", "It's okay", "Just okay", "Average", "Meh", "Decent {noun}",
        "OK for the price", "Mixed feelings", "Could be better", "The {aspect} is just okay",
        "Decent, but you get what you pay for", "Works, but not as advertised",
        "Average {noun}, nothing special"),
    2: ("Two Stars", "Disappointed", "Not great", "Cheap quality", "Not worth it",
        "Could be much better", "Meh", "Expected more", "Disappointing {aspect}",
        "Cheaply made, would not buy again", "Not as good as the reviews say",
        "The {aspect} is a letdown"),
    1: ("One Star", "Junk", "Don't buy", "Stopped working after {dur}", "Waste of money",
        "Returned it", "Terrible {noun}", "Broke after {dur}", "Defective", "DO NOT BUY",
        "Garbage", "Terrible {aspect}, save your money", "Stopped working after {dur}, avoid",
        "Do not waste your money on this", "Died after {dur}, no response from seller"),
}

_BRAND_HEADS = (
    "Zen", "Tri", "Volt", "Nova", "Aero", "Lumi", "Pix", "Soni", "Max", "Core", "Flex", "Bolt",
    "Aura", "Eco", "Quan", "Vex", "Orbi", "Kin", "Tek", "Hyper", "Ultra", "Neo", "Ora", "Sky",
    "Blu", "Ion", "Xeno", "Zu", "Mira", "Rex", "Sol", "Vanta", "Astro", "Echo", "Lyn", "Tera",
)
_BRAND_TAILS = (
    "tek", "x", "ify", "ora", "ium", "on", "ex", "ly", "co", "gear", "link", "wave", "tron",
    "sync", "zon", "vox", "lab", "pro", "nix", "dyne",
)
_COLORS = (
    "Black", "White", "Silver", "Blue", "Gray", "Space Gray", "Red", "Rose Gold", "Green",
    "Pink", "Navy",
)
_FEATURE_CLAUSES = (
    "is designed for everyday use at home, at the office and on the go",
    "delivers stable and reliable performance you can count on",
    "is tested to meet strict quality and safety standards",
    "gives you a better experience than ordinary products",
    "is a thoughtful upgrade over the previous generation",
    "is built with premium materials to last for years",
    "is easy to use right out of the box, no app required",
)
_GENERIC_FEATURES = (
    "WIDE COMPATIBILITY: Works with iPhone, Samsung Galaxy, Google Pixel, iPad, MacBook and most "
    "Windows laptops.",
    "WHAT YOU GET: 1 x {tn}, 1 x user manual, worry-free 12-month warranty and friendly customer "
    "service.",
    "SATISFACTION GUARANTEED: If you have any problem with your {tn}, contact us and we will "
    "respond within 24 hours.",
    "COMPACT AND PORTABLE: Small and lightweight, easy to carry in your bag or pocket.",
)
_DESCRIPTIONS = (
    "The {brand} {tn} combines {spec0} and {spec1} in a compact, durable design. Whether you are "
    "working, traveling or relaxing at home, it is ready when you are.",
    "Product Description {brand} {tn}. Specifications: {spec0}; {spec1}. Package includes: "
    "{tn} x 1, user manual x 1.",
    "Why choose {brand}? We focus on quality and value. Our {tn} features {spec0}, and every unit "
    "is inspected before it leaves the factory.",
)
_VIDEO_TITLES = (
    "{brand} {tn} Review", "Unboxing the {tn}", "{tn} Setup Guide", "Honest review of {tn}",
    "Is the {brand} {noun} worth it?", "Watch before you buy", "{noun} comparison",
    "How to use your {noun}",
)

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)

# fmt: on


def _forms(kind: _Kind) -> dict[str, str]:
    """The words a sentence template needs for ``kind``, with singular/plural agreement."""
    if kind.plural:
        this, it, itobj = f"these {kind.noun}", "they", "them"
        verbs = dict(is_="are", was="were", works="work", does="do", doesnt="don't", has="have")
        verbs.update(looks="look", feels="feel")
    else:
        this, it, itobj = f"this {kind.noun}", "it", "it"
        verbs = dict(is_="is", was="was", works="works", does="does", doesnt="doesn't", has="has")
        verbs.update(looks="looks", feels="feels")
    out = {
        "noun": kind.noun,
        "this": this,
        "This": this[0].upper() + this[1:],
        "it": it,
        "It": it.capitalize(),
        "itobj": itobj,
        "is": verbs.pop("is_"),
    }
    out.update(verbs)
    return out


def _render(templates: tuple[str, ...], forms: dict[str, str], kind: _Kind) -> list[str]:
    """Every expansion of ``templates`` for one kind (over aspects, durations and times)."""
    out: list[str] = []
    for tpl in templates:
        variants = [tpl]
        for key, values in (("{aspect}", kind.aspects), ("{dur}", _DURATIONS), ("{time}", _TIMES)):
            if key in tpl:
                variants = [v.replace(key, x) for v in variants for x in values]
        out.extend(v.format(**forms) for v in variants)
    return out


class _TextBank:
    """All rendered sentences in one flat object array, addressed by (slot, kind, star, template).

    A slot (title, one, open, mid, close) of kind ``k`` and star ``s`` has ``n_tpl[slot][s]``
    templates; template ``t`` has ``size[slot][k, s, t]`` renderings (over aspects, durations ...)
    starting at ``off[slot][k, s, t]`` in :attr:`flat`. Drawing a template first, then a rendering,
    keeps templates equally likely. Defect sentences are addressed by (kind, defect) likewise.
    """

    SLOTS = ("title", "one", "open", "mid", "close", "context")

    def __init__(self) -> None:
        flat: list[str] = []
        n_k = len(_KINDS)
        pools = {
            "title": _TITLE,
            "one": _ONE,
            "open": _OPEN,
            "mid": _MID,
            "close": _CLOSE,
            "context": {s: _CONTEXT for s in range(1, 6)},
        }
        self.n_tpl: dict[str, np.ndarray] = {}
        self.off: dict[str, np.ndarray] = {}
        self.size: dict[str, np.ndarray] = {}
        for slot in self.SLOTS:
            n_tpl = np.array([1] + [len(pools[slot][s]) for s in range(1, 6)], np.int64)
            self.n_tpl[slot] = n_tpl
            self.off[slot] = np.zeros((n_k, 6, int(n_tpl.max())), np.int64)
            self.size[slot] = np.ones((n_k, 6, int(n_tpl.max())), np.int64)
        n_def = max(len(k.defects) for k in _KINDS)
        self.def_off = np.zeros((n_k, n_def), np.int64)
        self.def_size = np.ones((n_k, n_def), np.int64)
        for ki, kind in enumerate(_KINDS):
            forms = _forms(kind)
            for slot in self.SLOTS:
                for star in range(1, 6):
                    for ti, tpl in enumerate(pools[slot][star]):
                        rendered = _render((tpl,), forms, kind)
                        self.off[slot][ki, star, ti] = len(flat)
                        self.size[slot][ki, star, ti] = len(rendered)
                        flat.extend(rendered)
            for di, tpl in enumerate(kind.defects):
                rendered = _render((tpl,), forms, kind)
                self.def_off[ki, di] = len(flat)
                self.def_size[ki, di] = len(rendered)
                flat.extend(rendered)
        flat.append("")  # the blank used for unused sentence slots
        self.blank = len(flat) - 1
        self.flat = np.array(flat, dtype=object)

    def pick(
        self, slot: str, kind: np.ndarray, star: np.ndarray, tpl: np.ndarray, u: np.ndarray
    ) -> np.ndarray:
        """Flat indices of template ``tpl`` (taken modulo the pool size), rendering by ``u``."""
        t = tpl % self.n_tpl[slot][star]
        size = self.size[slot][kind, star, t]
        return self.off[slot][kind, star, t] + (u * size).astype(np.int64)


_BANK: _TextBank | None = None


def _bank() -> _TextBank:
    global _BANK
    if _BANK is None:
        _BANK = _TextBank()
    return _BANK


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote."""

    reviews_path: Path
    meta_path: Path
    n_reviews: int  # review lines written, duplicates included
    n_items: int  # item lines written
    n_users: int  # distinct users written
    n_duplicates: int  # review lines repeating an earlier (user, item) pair
    seed: int
    seconds: float

    def summary(self) -> str:
        return (
            f"Wrote {self.n_reviews:,} reviews by {self.n_users:,} users of {self.n_items:,} "
            f"items to {self.reviews_path} and {self.meta_path} "
            f"(seed {self.seed}, {self.seconds:.1f} s)"
        )


def synthesize(
    output_dir: str | Path,
    *,
    category: str = "Electronics",
    n_users: int = 3000,
    n_items: int = 1500,
    n_reviews: int = 40000,
    seed: int = 0,
    progress: bool = True,
) -> SynthResult:
    """Write a synthetic category in the exact Amazon Reviews 2023 raw format.

    Writes ``output_dir/<category>.jsonl.gz`` (reviews, grouped by user like the official files)
    and ``output_dir/meta_<category>.jsonl.gz`` (one line per item), each atomically.

    Rules: ``n_users >= 1``, ``n_items >= 1``, ``n_users <= n_reviews <= n_users * n_items``
    (every user writes at least one review, and a user reviews an item at most once apart from the
    ~0.5% deliberate duplicates), ``seed >= 0``, ``category`` letters, digits, '_' or '-'
    (1-64 characters). Every user appears; exactly ``n_reviews`` review lines are written. The
    same arguments always give byte-identical files.
    """
    n_users, n_items, n_reviews, seed = _validate(category, n_users, n_items, n_reviews, seed)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output-dir: {out} exists and is not a directory")
    started = time.perf_counter()
    reviews_path = out / f"{category}.jsonl.gz"
    meta_path = out / f"meta_{category}.jsonl.gz"
    for path in (reviews_path, meta_path):  # both files land, or neither: check before writing
        if path.is_dir():
            raise InputError(f"cannot write {path}: Is a directory")

    root = np.random.SeedSequence(seed)
    s_items, s_counts, s_pilot, s_blocks, s_meta = root.spawn(5)
    key = s_blocks.spawn_key
    cat = _Catalog.make(np.random.default_rng(s_items), n_items)
    counts = _user_counts(np.random.default_rng(s_counts), n_users, n_items, n_reviews)
    thresholds = _calibrate(np.random.default_rng(s_pilot), cat, counts)

    rating_sum = np.zeros(n_items, np.float64)
    rating_cnt = np.zeros(n_items, np.int64)
    n_dup = 0
    bar = tqdm(
        total=n_reviews,
        unit=" reviews",
        unit_scale=True,
        disable=not progress,
        desc=f"synth {category}",
    )
    # Both files land together: the reviews are renamed into place only once the meta is too.
    with atomic_path(reviews_path) as tmp_reviews:
        with bar, _gzip_open(tmp_reviews, 4) as gz, ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future[int] | None = None
            for b, (u0, u1) in enumerate(_blocks(counts)):
                rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(*key, b)))
                block = _ReviewBlock.make(rng, cat, counts[u0:u1], thresholds)
                data = block.lines(rng, cat).encode("ascii")
                np.add.at(rating_sum, block.items, block.stars)
                rating_cnt += np.bincount(block.items, minlength=n_items)
                n_dup += block.n_dup
                if pending is not None:
                    pending.result()
                pending = pool.submit(gz.write, data)  # compress while the next block is built
                bar.update(int(block.items.size))
            if pending is not None:
                pending.result()

        with atomic_path(meta_path) as tmp_meta, _gzip_open(tmp_meta, 6) as gz:
            rng = np.random.default_rng(s_meta)
            for chunk in _meta_chunks(rng, cat, rating_sum, rating_cnt, thresholds, category):
                gz.write(chunk.encode("ascii"))

    return SynthResult(
        reviews_path=reviews_path,
        meta_path=meta_path,
        n_reviews=n_reviews,
        n_items=n_items,
        n_users=n_users,
        n_duplicates=n_dup,
        seed=seed,
        seconds=time.perf_counter() - started,
    )


@contextlib.contextmanager
def _gzip_open(path: Path, level: int) -> Iterator[gzip.GzipFile]:
    """A reproducible gzip stream (no file name, mtime 0 in the header) writing ``path``."""
    with open(path, "wb") as fh:
        os.chmod(path, 0o644)  # atomic_path's mkstemp makes 0600; these are ordinary data files
        with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=level) as gz:
            yield gz


def _validate(
    category: object, n_users: object, n_items: object, n_reviews: object, seed: object
) -> tuple[int, int, int, int]:
    def whole(value: object, flag: str) -> int:
        if isinstance(value, bool):
            raise InputError(f"{flag}: expected a whole number, got {value!r}")
        try:
            return _as_index(value)  # type: ignore[arg-type]
        except TypeError:
            raise InputError(f"{flag}: expected a whole number, got {value!r}") from None

    if not isinstance(category, str) or not _CATEGORY_RE.match(category):
        raise InputError(
            f"--category: expected letters, digits, '_' or '-' (1-64 characters, starting with a "
            f"letter or digit), got {category!r}"
        )
    users, items = whole(n_users, "--users"), whole(n_items, "--items")
    reviews, seed_ = whole(n_reviews, "--reviews"), whole(seed, "--seed")
    if users < 1:
        raise InputError(f"--users: expected at least 1, got {users}")
    if items < 1:
        raise InputError(f"--items: expected at least 1, got {items}")
    if reviews < users:
        raise InputError(
            f"--reviews: expected at least --users ({users:,}; every user writes a review), "
            f"got {reviews:,}"
        )
    if reviews > users * items:
        raise InputError(
            f"--reviews: expected at most --users x --items ({users * items:,}; a user reviews "
            f"an item once), got {reviews:,}"
        )
    if seed_ < 0:
        raise InputError(f"--seed: expected a number >= 0, got {seed_}")
    return users, items, reviews, seed_


# --------------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------------


def _tokens(rng: np.random.Generator, n: int, length: int, alphabet: str) -> list[str]:
    """``n`` random strings of ``length`` characters drawn from ``alphabet``."""
    if n == 0:
        return []
    chars = np.frombuffer(alphabet.encode("ascii"), np.uint8)
    s = chars[rng.integers(0, len(alphabet), n * length)].tobytes().decode("ascii")
    return [s[i : i + length] for i in range(0, n * length, length)]


def _growth_times(rng: np.random.Generator, n: int, t0: float, t1: float) -> np.ndarray:
    """``n`` times in [t0, t1] (seconds): density growing by ``_GROWTH`` a year until 2021, then
    flat (by inverse transform sampling on a fine grid)."""
    grid = np.linspace(t0, t1, 2049)
    density = np.exp(_GROWTH * (np.minimum(grid, _T_PLATEAU) - t0) / _YEAR)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2.0)])
    return np.interp(rng.random(n) * cdf[-1], cdf, grid)


def _asin_prefix(launch: np.ndarray) -> np.ndarray:
    """ASIN prefixes by launch year, roughly as Amazon assigned them (B00 ... B0C)."""
    year = 1970 + launch / _YEAR
    edges = np.array([2016.0, 2017.0, 2017.4, 2020.0, 2021.0, 2022.0, 2023.0])
    prefixes = np.array(["B00", "B01", "B06", "B07", "B08", "B09", "B0B", "B0C"], dtype=object)
    return prefixes[np.searchsorted(edges, year, side="right")]


@dataclass
class _Catalog:
    """Latent and static state of every item: O(n_items)."""

    n: int
    kind: np.ndarray  # kind index
    tier: np.ndarray  # 0 budget, 1 mainstream, 2 premium
    platform: np.ndarray  # platform index
    cluster: np.ndarray  # (kind * _N_TIERS + tier) * _N_PLAT + platform
    pop: np.ndarray  # popularity weight
    quality: np.ndarray
    vec: np.ndarray  # (n, _LATENT_DIM)
    bad: np.ndarray  # bool
    defect: np.ndarray  # defect sentence index (used for bad items)
    launch: np.ndarray  # seconds
    brand: np.ndarray  # brand index
    brands: list[str]
    parent: np.ndarray  # object array of ASINs
    n_var: np.ndarray  # variant count (0 = reviews use the parent ASIN)
    var_off: np.ndarray
    variants: np.ndarray  # flat object array of variant ASINs
    kind_mass: np.ndarray  # popularity mass of each kind
    # cluster sampling tables
    order: np.ndarray  # item indices sorted by cluster
    cum: np.ndarray  # cumulative popularity in that order
    c_lo: np.ndarray  # first position of each cluster in ``order``
    c_hi: np.ndarray
    c_start: np.ndarray  # cumulative mass before each cluster
    c_mass: np.ndarray

    @classmethod
    def make(cls, rng: np.random.Generator, n: int) -> _Catalog:
        n_k = len(_KINDS)
        kind_share = 1.0 / (1.0 + np.arange(n_k)) ** 0.7
        kind_share = rng.permutation(kind_share / kind_share.sum())
        kind = rng.choice(n_k, size=n, p=kind_share)
        tier = rng.choice(_N_TIERS, size=n, p=[0.35, 0.45, 0.20])
        platform = rng.choice(_N_PLAT, size=n, p=[0.3, 0.3, 0.25, 0.15])
        cluster = (kind * _N_TIERS + tier) * _N_PLAT + platform
        ranks = rng.permutation(n) + 1.0
        pop = ranks**-_ZIPF * rng.lognormal(0.0, 0.3, n)
        pop /= pop.sum()

        n_brands = int(np.clip(n // 8, 4, 3000))
        brands: list[str] = []
        seen: set[str] = set()
        while len(brands) < n_brands:
            name = (
                _BRAND_HEADS[rng.integers(len(_BRAND_HEADS))]
                + (_BRAND_TAILS[rng.integers(len(_BRAND_TAILS))])
            )
            if len(seen) >= len(_BRAND_HEADS) * len(_BRAND_TAILS):
                name += _tokens(rng, 1, 2, _UPPER_DIGITS)[0]
            if name not in seen:
                seen.add(name)
                brands.append(name)
        brand_w = 1.0 / (1.0 + np.arange(n_brands)) ** 0.8
        brand = rng.choice(n_brands, size=n, p=brand_w / brand_w.sum())
        brand_q = rng.normal(0.0, 0.25, n_brands)

        bad = rng.random(n) < _BAD_ITEM_SHARE
        quality = rng.normal(0.0, 0.45, n) + brand_q[brand] + np.array([-0.1, 0.0, 0.15])[tier]
        quality[bad] = rng.normal(-2.7, 0.35, int(bad.sum()))
        vec = rng.normal(0.0, 0.6, (n, _LATENT_DIM))
        n_def = np.array([len(k.defects) for k in _KINDS])[kind]
        defect = (rng.random(n) * n_def).astype(np.int64)
        launch = _growth_times(rng, n, _T_ITEMS0, _T1 - 300 * 86400.0)

        parent = _unique_asins(rng, _asin_prefix(launch), set())
        n_var = np.where(rng.random(n) < 0.5, rng.integers(2, 7, n), 0)
        var_off = np.concatenate([[0], np.cumsum(n_var)[:-1]]).astype(np.int64)
        variants = _unique_asins(rng, np.repeat(_asin_prefix(launch), n_var), set(parent.tolist()))

        order = np.argsort(cluster, kind="stable")
        cum = np.cumsum(pop[order])
        cum[-1] = 1.0
        n_c = n_k * _N_TIERS * _N_PLAT
        sizes = np.bincount(cluster, minlength=n_c)
        c_hi = np.cumsum(sizes)
        c_lo = c_hi - sizes
        c_mass = np.bincount(cluster, weights=pop, minlength=n_c)
        c_start = np.concatenate([[0.0], np.cumsum(c_mass)[:-1]])
        return cls(
            n=n,
            kind=kind,
            tier=tier,
            platform=platform,
            cluster=cluster,
            pop=pop,
            quality=quality,
            vec=vec,
            bad=bad,
            defect=defect,
            launch=launch,
            brand=brand,
            brands=brands,
            parent=parent,
            n_var=n_var,
            var_off=var_off,
            variants=variants,
            kind_mass=c_mass.reshape(n_k, -1).sum(axis=1),
            order=order,
            cum=cum,
            c_lo=c_lo,
            c_hi=c_hi,
            c_start=c_start,
            c_mass=c_mass,
        )

    def draw(self, rng: np.random.Generator, clusters: np.ndarray) -> np.ndarray:
        """One item per entry of ``clusters``, by popularity within the cluster."""
        target = self.c_start[clusters] + rng.random(clusters.size) * self.c_mass[clusters]
        pos = np.searchsorted(self.cum, target, side="right")
        pos = np.clip(pos, self.c_lo[clusters], self.c_hi[clusters] - 1)
        return self.order[pos]


def _unique_asins(rng: np.random.Generator, prefixes: np.ndarray, taken: set[str]) -> np.ndarray:
    out = np.empty(prefixes.size, dtype=object)
    todo = np.arange(prefixes.size)
    while todo.size:
        tails = _tokens(rng, todo.size, 7, _UPPER_DIGITS)
        cand = [p + t for p, t in zip(prefixes[todo], tails, strict=True)]
        retry = []
        for i, a in zip(todo.tolist(), cand, strict=True):
            if a in taken:
                retry.append(i)
            else:
                taken.add(a)
                out[i] = a
        todo = np.array(retry, dtype=np.int64)
    return out


# --------------------------------------------------------------------------------------------
# Users and reviews
# --------------------------------------------------------------------------------------------


def _user_counts(
    rng: np.random.Generator, n_users: int, n_items: int, n_reviews: int
) -> np.ndarray:
    """Reviews per user: 1 each plus a heavy-tailed share of the rest, at most ``n_items`` each."""
    w = rng.lognormal(0.0, 1.3, n_users)
    counts = 1 + rng.multinomial(n_reviews - n_users, w / w.sum())
    for _ in range(100):
        over = counts > n_items
        if not over.any():
            break
        excess = int((counts[over] - n_items).sum())
        counts[over] = n_items
        room = counts < n_items
        p = w * room
        counts += rng.multinomial(excess, p / p.sum())
    else:  # pragma: no cover - only near n_reviews == n_users * n_items
        counts = np.minimum(counts, n_items)
        missing = n_reviews - int(counts.sum())
        for u in np.argsort(-w):
            add = min(missing, n_items - int(counts[u]))
            counts[u] += add
            missing -= add
            if not missing:
                break
    return counts.astype(np.int64)


def _blocks(counts: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous user ranges of about ``_BLOCK_REVIEWS`` reviews (and at most 4096 users)."""
    out = []
    cum = np.cumsum(counts)
    u0 = 0
    n = counts.size
    while u0 < n:
        base = cum[u0 - 1] if u0 else 0
        u1 = int(np.searchsorted(cum, base + _BLOCK_REVIEWS, side="left")) + 1
        u1 = max(u0 + 1, min(u1, u0 + 4096, n))
        out.append((u0, u1))
        u0 = u1
    return out


@dataclass
class _Users:
    """Latent state of one block of users."""

    taste: np.ndarray  # (B, n_kinds) probabilities
    tier: np.ndarray  # (B, _N_TIERS) probabilities
    platform: np.ndarray  # (B, _N_PLAT) probabilities
    cum: np.ndarray  # (B * n_clusters,) row-offset cumulative cluster probabilities
    bias: np.ndarray
    vec: np.ndarray
    centre: np.ndarray  # activity centre (seconds)
    spread: np.ndarray  # activity spread (seconds)

    @classmethod
    def make(cls, rng: np.random.Generator, cat: _Catalog, counts: np.ndarray) -> _Users:
        b = counts.size
        n_k = len(_KINDS)
        # Sparse tastes over kinds whose mean is each kind's popularity mass, so that on average
        # P(item) is the item's popularity while each user sticks to a few kinds; heavy
        # reviewers spread wider. Then a tier preference, then an item by popularity.
        mass = cat.kind_mass
        shape = _TASTE_SHAPE * (1.0 + np.log(counts))[:, None] * (n_k * mass)[None, :]
        g = rng.gamma(np.maximum(shape, 1e-3)) * (mass > 0)[None, :]
        g /= np.maximum(g.sum(axis=1, keepdims=True), 1e-300)
        taste = _TASTE_MIX * g + (1.0 - _TASTE_MIX) * mass[None, :]  # P(kind | user)
        tier = rng.dirichlet(_TIER_ALPHA, size=b) * 0.85 + 0.05
        plat = rng.dirichlet([_PLAT_ALPHA] * _N_PLAT, size=b) * 0.9 + 0.1 / _N_PLAT
        w = (tier[:, :, None] * plat[:, None, :]).reshape(b, 1, -1)
        w = w * cat.c_mass.reshape(n_k, -1)[None, :, :]
        w /= np.maximum(w.sum(axis=2, keepdims=True), 1e-300)  # P(tier, platform | kind, user)
        p = (taste[:, :, None] * w).reshape(b, -1)
        p /= p.sum(axis=1, keepdims=True)
        cum = np.cumsum(p, axis=1)
        cum[:, -1] = 1.0
        cum += np.arange(b)[:, None]
        return cls(
            taste=taste,
            tier=tier,
            platform=plat,
            cum=cum.ravel(),
            bias=rng.normal(0.0, 0.45, b),
            vec=rng.normal(0.0, 0.6, (b, _LATENT_DIM)),
            centre=_growth_times(rng, b, _T0, _T1),
            spread=_YEAR * rng.lognormal(0.0, 0.8, b),
        )

    def draw(self, rng: np.random.Generator, cat: _Catalog, ru: np.ndarray) -> np.ndarray:
        """An item for each review row (user ``ru``): a cluster by taste, then an item."""
        n_c = len(_KINDS) * _N_TIERS * _N_PLAT
        u = np.minimum(rng.random(ru.size), 1.0 - 1e-9)
        pos = np.searchsorted(self.cum, ru + u, side="right")
        return cat.draw(rng, pos - ru * n_c)

    def scores(
        self, rng: np.random.Generator, cat: _Catalog, ru: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """The latent rating score of each (user, item) review; stars come from thresholds."""
        kind = cat.kind[items]
        taste = np.clip(np.log(self.taste[ru, kind] / cat.kind_mass[kind]), -3.0, 2.0)
        tier = np.log(self.tier[ru, cat.tier[items]] * _N_TIERS)
        plat = np.log(self.platform[ru, cat.platform[items]] * _N_PLAT)
        dot = np.einsum("ij,ij->i", self.vec[ru], cat.vec[items])
        return (
            cat.quality[items]
            + self.bias[ru]
            + 0.3 * taste
            + 0.25 * tier
            + 0.2 * plat
            + 0.6 * dot
            + rng.normal(0.0, 0.7, ru.size)
        )


def _calibrate(rng: np.random.Generator, cat: _Catalog, counts: np.ndarray) -> np.ndarray:
    """Score thresholds that cut a pilot sample into the J-shaped star shares."""
    sample = counts[rng.integers(0, counts.size, _PILOT_REVIEWS)]  # users, with replacement
    take = int(np.searchsorted(np.cumsum(sample), _PILOT_REVIEWS)) + 1
    pilot = _ReviewBlock.make(rng, cat, sample[:take], None)
    return np.quantile(pilot.z, np.cumsum(_STAR_SHARES)[:-1])


def _dedupe(
    rng: np.random.Generator, users: _Users, cat: _Catalog, ru: np.ndarray, items: np.ndarray
) -> None:
    """Redraw repeated (user, item) pairs in place until every pair in the block is distinct."""
    n = cat.n
    for attempt in range(12):
        key = ru * n + items
        _, first = np.unique(key, return_index=True)
        dup = np.ones(key.size, bool)
        dup[first] = False
        idx = np.flatnonzero(dup)
        if not idx.size:
            return
        if attempt < 6:
            items[idx] = users.draw(rng, cat, ru[idx])
        else:  # tastes exhausted: fall back to plain popularity
            pos = np.searchsorted(cat.cum, rng.random(idx.size), side="right")
            items[idx] = cat.order[np.minimum(pos, n - 1)]
    key = ru * n + items
    _, first = np.unique(key, return_index=True)
    dup = np.ones(key.size, bool)
    dup[first] = False
    for u in np.unique(ru[dup]).tolist():
        rows = np.flatnonzero(ru == u)
        bad_rows = rows[dup[rows]]
        free = np.setdiff1d(np.arange(n), items[rows[~dup[rows]]])
        items[bad_rows] = rng.choice(free, size=bad_rows.size, replace=False)


@dataclass
class _ReviewBlock:
    """The reviews of one block of users, as arrays."""

    counts: np.ndarray
    users: _Users
    ru: np.ndarray  # local user of each review
    items: np.ndarray
    z: np.ndarray  # latent rating scores
    stars: np.ndarray  # 1..5 (0 without thresholds)
    n_dup: int

    @classmethod
    def make(
        cls,
        rng: np.random.Generator,
        cat: _Catalog,
        counts: np.ndarray,
        thresholds: np.ndarray | None,
    ) -> _ReviewBlock:
        users = _Users.make(rng, cat, counts)
        ru = np.repeat(np.arange(counts.size), counts)
        items = users.draw(rng, cat, ru)
        _dedupe(rng, users, cat, ru, items)
        # Deliberate duplicates: a later review repeats the user's previous item.
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        eligible = np.ones(ru.size, bool)
        eligible[first] = False
        dup = eligible & (rng.random(ru.size) < _DUPLICATE_SHARE * ru.size / max(eligible.sum(), 1))
        idx = np.flatnonzero(dup)
        for i in idx.tolist():  # in order, so a run of duplicates repeats one item
            items[i] = items[i - 1]
        z = users.scores(rng, cat, ru, items)
        stars = (
            np.zeros(z.size, np.int64) if thresholds is None else 1 + np.searchsorted(thresholds, z)
        )
        return cls(counts, users, ru, items, z, stars, int(idx.size))

    def lines(self, rng: np.random.Generator, cat: _Catalog) -> str:
        """The JSON lines of the block, in the official key order."""
        bank = _bank()
        users, ru, items, stars = self.users, self.ru, self.items, self.stars
        n = ru.size
        kind = cat.kind[items]

        # Sentences: 1..6, longer for low stars; slot 0 opener (or a one-liner), then middles
        # (distinct templates), then the closer at position n_sent - 1.
        n_sent = 1 + rng.binomial(5, np.array([0, 0.88, 0.86, 0.84, 0.82, 0.8])[stars])
        n_sent[(stars == 5) & (rng.random(n) < 0.1)] = 1
        u = rng.random((n, 15))
        big = (u[:, 0] * 1e6).astype(np.int64)  # a template draw, reduced modulo each pool size

        sent = np.full((n, 6), bank.blank, np.int64)
        one = bank.pick("one", kind, stars, big, u[:, 1])
        sent[:, 0] = np.where(n_sent == 1, one, bank.pick("open", kind, stars, big, u[:, 1]))
        n_mid = bank.n_tpl["mid"][stars]
        step = 1 + (u[:, 2] * np.maximum(n_mid // 5, 1)).astype(np.int64)
        base = (u[:, 3] * n_mid).astype(np.int64)
        for j in range(4):
            use = n_sent - 2 > j
            mid = bank.pick("mid", kind, stars, base + j * step, u[:, 4 + j])
            sent[use, j + 1] = mid[use]
        # Most longer reviews tell a little context after the opener.
        ctx = (n_sent >= 3) & (rng.random(n) < 0.8)
        ctx_t = (u[:, 12] * 1e6).astype(np.int64)
        sent[ctx, 1] = bank.pick("context", kind, stars, ctx_t, u[:, 13])[ctx]
        # Bad items: negative reviews usually name the item's own defect.
        neg = cat.bad[items] & (stars <= 2) & (rng.random(n) < 0.7)
        defect = cat.defect[items]
        d_idx = bank.def_off[kind, defect] + (u[:, 8] * bank.def_size[kind, defect]).astype(
            np.int64
        )
        col = np.where(n_sent >= 3, 1, 0)
        sent[neg, col[neg]] = d_idx[neg]
        rows = np.flatnonzero(n_sent >= 2)
        close = bank.pick("close", kind, stars, (u[:, 9] * 1e6).astype(np.int64), u[:, 10])
        sent[rows, n_sent[rows] - 1] = close[rows]
        title_t = (u[:, 11] * 1e6).astype(np.int64)
        title_idx = bank.pick("title", kind, stars, title_t, u[:, 14])
        texts = bank.flat[sent].tolist()
        titles = bank.flat[title_idx].tolist()
        ns = n_sent.tolist()

        # Timestamps (ms) around each user's activity centre, never before the item's launch.
        # Times outside [_T0, _T1] are reflected back inside (clipping would pile them up on
        # the last day).
        t = _reflect(users.centre[ru] + rng.normal(0.0, 1.0, n) * users.spread[ru])
        launch = cat.launch[items]
        late = t < launch
        t[late] = launch[late] + rng.exponential(150 * 86400.0, int(late.sum()))
        t = _reflect(t)
        ts = (t * 1000.0).astype(np.int64).tolist()

        # Helpful votes: mostly 0, heavy tail, more for negative, long and old reviews.
        age = (_T1 - t) / _YEAR
        rate = (
            np.exp(rng.normal(-2.7, 1.4, n))
            * (1.0 + 1.5 * (stars <= 2))
            * (0.3 + 0.25 * n_sent)
            * (1.0 + age / 4.0)
        )
        helpful = rng.poisson(rate).tolist()
        verified = np.where(
            rng.random(n) < np.where(t < 1.3e9, 0.6, 0.9) - 0.05 * (stars <= 2), "true", "false"
        ).tolist()

        # ASIN: a variant for items that have variants, else the parent.
        asin = cat.parent[items]
        has_var = cat.n_var[items] > 0
        vi = cat.var_off[items] + (rng.random(n) * cat.n_var[items]).astype(np.int64)
        asin[has_var] = cat.variants[vi[has_var]]
        asin_l = asin.tolist()
        parent_l = cat.parent[items].tolist()

        uids = ["A" + s for s in _tokens(rng, self.counts.size, 27, _UPPER_DIGITS)]
        uid_l = [uids[i] for i in ru.tolist()]
        rating_l = np.array(["", "1.0", "2.0", "3.0", "4.0", "5.0"], dtype=object)[stars].tolist()

        images = ["[]"] * n
        with_img = np.flatnonzero(rng.random(n) < _REVIEW_IMAGE_SHARE * (1.0 + (stars == 1)))
        for i in with_img.tolist():
            k = 1 + int(rng.integers(0, 3) == 0) + int(rng.integers(0, 6) == 0)
            host = _IMG if rng.random() < 0.85 else _IMG_OLD
            ids = _image_ids(rng, k, "6789")
            images[i] = json.dumps(
                [
                    {
                        "small_image_url": f"{host}{x}._SL256_.jpg",
                        "medium_image_url": f"{host}{x}._SL800_.jpg",
                        "large_image_url": f"{host}{x}._SL1600_.jpg",
                        "attachment_type": "IMAGE",
                    }
                    for x in ids
                ]
            )

        jstr = _jstr
        out = [
            f'{{"rating": {r}, "title": {jstr(ti)}, "text": {jstr(" ".join(tx[:k]))}, '
            f'"images": {im}, "asin": "{a}", "parent_asin": "{p}", "user_id": "{us}", '
            f'"timestamp": {tt}, "helpful_vote": {h}, "verified_purchase": {v}}}\n'
            for r, ti, tx, k, im, a, p, us, tt, h, v in zip(
                rating_l,
                titles,
                texts,
                ns,
                images,
                asin_l,
                parent_l,
                uid_l,
                ts,
                helpful,
                verified,
                strict=True,
            )
        ]
        return "".join(out)


class _TokenPool:
    """Random tokens of one length and alphabet, handed out from batches drawn in one go."""

    def __init__(self, rng: np.random.Generator, length: int, alphabet: str) -> None:
        self.rng, self.length, self.alphabet = rng, length, alphabet
        self.buf: list[str] = []
        self.pos = 0

    def take(self, n: int) -> list[str]:
        if self.pos + n > len(self.buf):
            fresh = _tokens(self.rng, max(4096, n), self.length, self.alphabet)
            self.buf, self.pos = self.buf[self.pos :] + fresh, 0
        self.pos += n
        return self.buf[self.pos - n : self.pos]


@dataclass
class _MetaTokens:
    """The token pools the item metadata draws from."""

    image: _TokenPool
    thumb_head: _TokenPool
    hires_head: _TokenPool
    hex8: _TokenPool
    hex32: _TokenPool

    @classmethod
    def make(cls, rng: np.random.Generator) -> _MetaTokens:
        return cls(
            _TokenPool(rng, 8, _IMG_CHARS),
            _TokenPool(rng, 1, "345"),
            _TokenPool(rng, 1, "5678"),
            _TokenPool(rng, 8, _HEX),
            _TokenPool(rng, 32, _HEX),
        )

    def images(self, n: int, hires: bool) -> list[str]:
        heads = (self.hires_head if hires else self.thumb_head).take(n)
        return [f"{h}1{t}L" for h, t in zip(heads, self.image.take(n), strict=True)]


def _image_ids(rng: np.random.Generator, n: int, first: str) -> list[str]:
    """Amazon-like image ids such as ``71YN+Qk3kCL``."""
    heads = [first[i] for i in rng.integers(0, len(first), n).tolist()]
    return [f"{h}1{t}L" for h, t in zip(heads, _tokens(rng, n, 8, _IMG_CHARS), strict=True)]


# --------------------------------------------------------------------------------------------
# Item metadata
# --------------------------------------------------------------------------------------------


def _date_text(seconds: float) -> str:
    d = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def _meta_chunks(
    rng: np.random.Generator,
    cat: _Catalog,
    rating_sum: np.ndarray,
    rating_cnt: np.ndarray,
    thresholds: np.ndarray,
    category: str,
    chunk: int = 2000,
):
    """JSON lines of the item metadata, ``chunk`` items at a time."""
    root = "Electronics" if category == "Electronics" else category.replace("_", " ")
    n = cat.n
    # Ratings without text: rating_number >= the reviews written, the average stays close.
    extra = rng.poisson(rating_cnt * rng.uniform(0.0, 1.5, n) + 0.5)
    number = rating_cnt + extra
    fallback = 1 + np.searchsorted(thresholds, cat.quality + rng.normal(0.0, 0.7, n))
    mean = np.where(rating_cnt > 0, rating_sum / np.maximum(rating_cnt, 1), fallback)
    mean = np.clip(mean + rng.normal(0.0, 0.08, n) * (extra > 0), 1.0, 5.0)
    average = (np.round(mean * 10.0) / 10.0).tolist()
    number_l = np.maximum(number, 1).tolist()
    pop_rank = np.empty(n, np.int64)
    pop_rank[np.argsort(-cat.pop)] = np.arange(n)
    tok = _MetaTokens.make(rng)

    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        lines = []
        uni = rng.random((hi - lo, 80)).tolist()
        nor = rng.standard_normal((hi - lo, 2)).tolist()
        for i in range(lo, hi):
            kind = _KINDS[int(cat.kind[i])]
            brand = cat.brands[int(cat.brand[i])]
            rec = _meta_record(
                uni[i - lo], nor[i - lo], tok, cat, i, kind, brand, root, int(pop_rank[i])
            )
            rec["average_rating"] = average[i]
            rec["rating_number"] = number_l[i]
            lines.append(json.dumps(rec))
        yield "\n".join(lines) + "\n"


def _meta_record(
    u: list[float],
    z: list[float],
    tok: _MetaTokens,
    cat: _Catalog,
    i: int,
    kind: _Kind,
    brand: str,
    root: str,
    rank: int,
) -> dict:
    """One item's metadata record from its uniforms ``u`` (at least 72) and normals ``z`` (2).

    The rating fields are placeholders the caller fills.
    """
    nxt = iter(u).__next__

    def pick(seq):  # a uniform choice from ``seq``
        return seq[int(nxt() * len(seq))]

    def geometric(p: float, hi: int) -> int:
        return min(hi, 1 + int(math.log1p(-nxt()) / math.log1p(-p)))

    tn = pick(kind.title_nouns)
    n_specs = 2 + int(nxt() * 3)
    specs = sorted(kind.specs, key=lambda _: nxt())[:n_specs]
    color = pick(_COLORS)
    title = f"{brand} {tn} {specs[0]}, " + ", ".join(specs[1:]) + f" - {color}"
    if nxt() < 0.3:
        title = f"{brand} {tn}, {specs[0]}"
    fmt = {"brand": brand, "tn": tn, "noun": kind.noun, "spec0": specs[0], "spec1": specs[-1]}

    features: list[str] = []
    if nxt() > 0.12:
        features = [f"{s.upper()}: The {tn} {pick(_FEATURE_CLAUSES)}." for s in specs]
        generic = sorted(_GENERIC_FEATURES, key=lambda _: nxt())[: int(nxt() * 3)]
        features.extend(g.format(**fmt) for g in generic)
    description: list[str] = []
    if nxt() < 0.6:
        description.append(pick(_DESCRIPTIONS).format(**fmt))

    price = None
    if nxt() < 0.5:
        p = kind.price * (0.6, 1.0, 1.8)[int(cat.tier[i])] * math.exp(0.35 * z[0])
        price = round(max(math.floor(p) + pick((0.99, 0.95, 0.49, 0.0)), 0.99), 2)

    n_img = geometric(0.16, 18)
    large = tok.images(n_img, hires=False)
    hires = tok.images(n_img, hires=True)
    sl = pick(("_AC_SL1500_", "_AC_SL1500_", "_AC_SL1000_", "_AC_SL1200_", "_AC_SL1050_"))
    no_hires = nxt() < 0.15
    images = [
        {
            "thumb": f"{_IMG}{large[j]}._AC_US40_.jpg",
            "large": f"{_IMG}{large[j]}._AC_.jpg",
            "variant": "MAIN" if j == 0 else f"PT{j:02d}",
            "hi_res": None if no_hires else f"{_IMG}{hires[j]}.{sl}.jpg",
        }
        for j in range(n_img)
    ]
    videos = []
    if nxt() < 0.45:
        for j in range(geometric(0.35, 10)):
            creator = f"/shop/influencer-{tok.hex8.take(1)[0]}" if nxt() >= 0.6 else ""
            videos.append(
                {
                    "title": pick(_VIDEO_TITLES).format(**fmt),
                    "url": f"https://www.amazon.com/vdp/{tok.hex32.take(1)[0]}?ref=dp_vse_rvc_{j}",
                    "user_id": creator,
                }
            )

    details: dict[str, object] = {}
    if nxt() < 0.8:
        details["Brand"] = brand
    if nxt() < 0.5:
        details["Color"] = color
    scale = (kind.price / 30.0) ** (1.0 / 3.0)
    dims = sorted((round(scale * (0.3 + 7.7 * nxt()), 2) for _ in range(3)), reverse=True)
    details["Product Dimensions"] = " x ".join(map(str, dims)) + " inches"
    details["Item Weight"] = f"{scale**3 * (0.5 + 9.5 * nxt()):.1f} ounces"
    details["Item model number"] = f"{brand[:2].upper()}-{100 + int(nxt() * 9900)}"
    if nxt() < 0.4:
        details["Is Discontinued By Manufacturer"] = "No"
    if nxt() < 0.5:
        details["Compatible Devices"] = _COMPATIBLE[int(cat.platform[i])]
    details["Date First Available"] = _date_text(float(cat.launch[i]))
    if nxt() < 0.9:
        details["Manufacturer"] = brand if nxt() < 0.7 else f"{brand} Technology Co., Ltd"
    if nxt() < 0.55:
        details["Best Sellers Rank"] = {
            root: rank * 37 + 1 + int(nxt() * 500),
            kind.path[-1]: rank * 2 + 1 + int(nxt() * 50),
        }

    categories = [root, *kind.path] if nxt() > 0.05 else []
    main = kind.main_category if nxt() > 0.012 else None
    store = brand if nxt() > 0.01 else None
    return {
        "main_category": main,
        "title": title,
        "average_rating": 0.0,  # filled by the caller
        "rating_number": 0,
        "features": features,
        "description": description,
        "price": price,
        "images": images,
        "videos": videos,
        "store": store,
        "categories": categories,
        "details": details,
        "parent_asin": cat.parent[i],
        "bought_together": None,
    }
