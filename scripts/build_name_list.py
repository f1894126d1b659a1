"""Build the person-name gazetteer the PII screening ships: first names and surnames from
Faker's person providers in every locale written in Latin script.

    .venv/bin/python scripts/build_name_list.py

Faker (MIT) is a dev dependency: it is read here, never at run time. The output is
byte-identical for one Faker version, which the files' headers record with the locales.

First names that are also ordinary English words or places ("May", "Will", "Grant", "Georgia")
are marked ``word``: the finder accepts them only before a known surname. The words are
Faker's own English lorem words, colours, US states and month and day names, plus the short
list below of common words the other sources miss.
"""

from __future__ import annotations

import importlib
import pkgutil
import unicodedata
import warnings
from pathlib import Path

import faker
from faker import Generator
from faker.providers import person

OUT = Path(__file__).resolve().parent.parent / "assets" / "screening" / "data"
MONTHS_AND_DAYS = ("January February March April May June July August September October November December "
                   "Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
COMMON_WORDS = (
    "Bill Mark Rose Page Grant Hope Joy Faith Grace Chase Hunter Art Guy Jack Pat Sue Rich Sunny Summer Dawn Ray "
    "Miles Frank Earl Drew Lance Dean Penny Ruby Amber Crystal Sky Max Glen Dale Bishop King Young Price Wade "
    "Cliff Rod Don Ken Gene Carol Bob Chip Chuck Rusty Sandy Stormy Misty Brook Brooke River Forest Autumn Winter "
    "Spring Holly Ivy Lily Daisy Violet Heather Iris Jade Pearl Ginger Honey Angel Baby Star Precious Royal "
    "Prince Princess Duke Major General Sterling Noble Justice Liberty Harmony Melody Destiny Trinity Unity "
    "Serenity Patience Prudence Constance Charity Mercy Christian Israel Jordan Paris Sydney Austin Dallas "
    "Houston Chelsea Madison Brooklyn Victoria Kent Lincoln Washington Clay Stone Reed Heath Moss Ash Rowan Hazel "
    "Sage Basil Olive Cherry Berry Barry Gay Sonny Buddy Happy Lucky Tiny Bunny Kitty Dusty Windy Pepper Candy "
    "Cookie Doll Trance Blue Green Gray Grey Black White Brown Golden Silver Ebony Tag Will Bud Rock Rocky Gale "
    "Storm Rain Sunshine Tuesday Friday Genesis Journey Legend Story Echo Haven Harbor Shelby Dove Wren Robin Jay "
    "Drake Hawk Fox Wolf Lane Way Street Park Hill Field Wood Woods Marsh Banks Beach Ford Holland China India "
    "America Asia Africa Europe Florida Georgia Virginia Carolina Dakota Montana Nevada Tennessee Kansas Indiana "
    "Alabama Arizona Cheyenne Denver Phoenix Cairo Vienna Florence Geneva Siena Milan Roma Lourdes Bethany Eden "
    "Salem Zion Canon Marshall Porter Cooper Mason Carter Taylor Baker Fisher Tanner Miller Walker Turner Parker "
    "Spencer Sawyer Archer Gardner Fletcher Chandler Deacon Pastor Judge Sergeant Captain Colonel Admiral Ace "
    "Abbot Pope Ransom Rebel Saint Tempest Tiger Van Von Del Della Dell Case Cash Banner Bay Cole Coal Corona Lux "
    "Nova Neo Rio Sol Luna Stella Mars Venus Jupiter Apollo Atlas Orion Titan Zeus Mega"
)


def _latin(name: str) -> bool:
    return all(c in "-'’" or "LATIN" in unicodedata.name(c, "") for c in name)


def _values(provider, kind: str) -> set[str]:
    """The tokens of every list of names of one kind a provider holds, by whatever name it
    keeps them (``last_names``, ``male_last_names``, ``first_names_female``)."""
    found: set[str] = set()
    for attr in dir(provider):
        value = getattr(provider, attr) if kind in attr else ()
        if isinstance(value, dict | tuple | list | set | frozenset):
            found |= {token for name in value for token in str(name).split()}
    return found


def _usable(name: str) -> bool:
    """A capitalised name of two letters or more (no initials, no all-capitals forms)."""
    return len(name) > 1 and name[0].isupper() and not name.isupper()


def _locales() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(person.__path__) if m.ispkg)


def _english_words() -> set[str]:
    from faker.providers.address.en_US import Provider as Address
    from faker.providers.color.en_US import Provider as Color
    from faker.providers.lorem.en_US import Provider as Lorem

    colours = {token for name in Color.all_colors for token in name.replace("(", " ").split()}
    states = {token for state in Address.states for token in state.split()}
    words = {*Lorem.word_list, *colours, *states, *MONTHS_AND_DAYS.split(), *COMMON_WORDS.split()}
    return {word.casefold() for word in words}


def build() -> tuple[str, str]:
    """The two files' text: first names (``Name`` or ``Name<TAB>word``) and surnames."""
    first: set[str] = set()
    last: set[str] = set()
    locales = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated locales (fr_QC) still carry names
        for locale in _locales():
            provider = importlib.import_module(f"{person.__name__}.{locale}").Provider(Generator())
            firsts = {n for n in _values(provider, "first_names") if _latin(n)}
            lasts = {n for n in _values(provider, "last_names") if _latin(n)}
            if firsts or lasts:
                locales.append(locale)
            first |= firsts
            last |= lasts
    words = _english_words()
    header = (f"# Generated by scripts/build_name_list.py from Faker {faker.VERSION} (MIT) person providers,\n"
              f"# Latin-script locales: {' '.join(locales)}\n")
    first_lines = [f"{n}\tword" if n.casefold() in words else n for n in sorted(filter(_usable, first))]
    last_lines = sorted(filter(_usable, last))
    first_text = header + "# first names; <TAB>word marks an ordinary English word or place\n" + "\n".join(first_lines)
    return first_text + "\n", header + "# surnames\n" + "\n".join(last_lines) + "\n"


def main() -> None:
    first, last = build()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "first_names.txt").write_text(first, encoding="utf-8")
    (OUT / "surnames.txt").write_text(last, encoding="utf-8")
    print(f"{first.count(chr(10)) - 3} first names, {last.count(chr(10)) - 3} surnames in {OUT}")


if __name__ == "__main__":
    main()
