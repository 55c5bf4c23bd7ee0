"""`mmdata diff A B`: what changed between two versions of a dataset (thin command over mmdata.shards.diff)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape

from mmdata.cli.common import card_text, console, note, one_line_path, one_of, plural, print_json, table
from mmdata.shards.index import UNLABELLED_GROUP

#: ``--fail-on`` values: the kinds of sample difference, ``card`` (class names, fields) and ``any`` (all of them)
FAIL_ON = ("added", "removed", "changed", "relabelled", "moved", "renamed", "card", "any")


def _fail_on(value: Optional[str]) -> list[str]:
    """``--fail-on added,removed``: the kinds, checked (``any``: every kind and the card)."""
    if not value:
        return []
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    bad = [k for k in kinds if k not in FAIL_ON]
    if bad:
        raise typer.BadParameter(f"{', '.join(map(repr, bad))}: expected a comma-separated list of "
                                 f"{', '.join(FAIL_ON)}", param_hint="--fail-on")
    return list(FAIL_ON[:-1]) if "any" in kinds else list(dict.fromkeys(kinds))


def _json_key(k: dict) -> str:
    """One metadata key's change: ``snr -16 -> 18``, ``note added ('x')``, ``snr removed (was -16)``."""
    if k["what"] == "added":
        return f"{k['key']} added ({k['b']!r})"
    if k["what"] == "removed":
        return f"{k['key']} removed (was {k['a']!r})"
    return f"{k['key']} {k['a']!r} -> {k['b']!r}"


def _what(kind: str, item: dict) -> str:
    """One sample's change, in words."""
    if kind in ("added", "removed"):
        other = {"renamed_to": "renamed: now", "renamed_from": "renamed: was",
                 "possibly_relabelled_to": "possibly relabelled (sizes only): now",
                 "possibly_relabelled_from": "possibly relabelled (sizes only): was"}
        how = "".join(f"; {v} {item[k]}" for k, v in other.items() if k in item)
        return f"split {item['split']}" + (f", class {item['label']}" if item["label"] is not None else "") + how
    if kind == "possibly_relabelled":
        return (f"class {item['a'] or UNLABELLED_GROUP} -> {item['b'] or UNLABELLED_GROUP} (moved to another class "
                f"folder? was {item['a_key']}; sizes only, no CRC-32s: counted as removed + added)")
    if kind == "moved":
        return f"split {item['a']} -> {item['b']}"
    if kind == "renamed":
        return (f"was {item['a_key']} (the same files: every member's size and CRC-32; also counted as removed + "
                f"added)")
    if kind == "relabelled":
        # an unlabelled sample of A (a pool file at the root) was outside the class folders (QA33 docsread #12)
        where = "from outside the class folders into one" if item["a"] is None else "to another class folder"
        how = f" (moved {where}; was {item['a_key']})" if item.get("matched") else ""
        return f"class {item['a'] or UNLABELLED_GROUP} -> {item['b'] or UNLABELLED_GROUP}{how}"
    parts = []
    for m in item["members"]:
        if m["what"] == "bytes" and m.get("keys"):  # a json member decoded: the metadata keys that changed
            said = ", ".join(_json_key(k) for k in m["keys"])
            more = f" and {m['keys_not_listed']} more keys" if m.get("keys_not_listed") else ""
            parts.append(f"{m['member']}: {said}{more}")
        elif m["what"] == "bytes":
            parts.append(f"{m['member']}: {m['a_size']:,} -> {m['b_size']:,} bytes" if m["a_size"] != m["b_size"]
                         else f"{m['member']}: other bytes, same size ({m['a_size']:,})")
        else:
            parts.append(f"{m['member']} {m['what']}")
    return "; ".join(parts)


def diff(
    a: Annotated[str, typer.Argument(help="The earlier version: a dataset folder written by `mmdata shard` (a path, or an fsspec URL).")],
    b: Annotated[str, typer.Argument(help="The later version: a dataset folder written by `mmdata shard` (a path, or an fsspec URL).")],
    by: Annotated[str, typer.Option("--by", callback=one_of("key", "source_key"), help="Match samples by key (default) or source_key (what each sample was sharded from: robust when the key rules changed between the two shardings).")] = "key",
    split: Annotated[Optional[list[str]], typer.Option("--split", help="Only samples in this split in A or B (repeatable): `--split test --fail-on any` fails when anything in the test split changed, a sample moved into or out of it included.")] = None,
    fail_on: Annotated[Optional[str], typer.Option("--fail-on", help="Exit 1 when one of these kinds is not empty: a comma-separated list of added, removed, changed, relabelled, moved, renamed (another key, the same files; such samples are also added and removed), card (class names, class count, fields, layout, license, description or what the jobs left out differ; not name or command), or any (all of them). Without it diff exits 0 whatever changed.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="Samples listed per kind (the counts are always whole). Default: 20 in the table; every one with --json (a deletion log must be complete), or N with --json --limit N. 0 lists none.")] = None,
    groups: Annotated[Optional[str], typer.Option("--groups", help="Also count the samples per value of this metadata key (a --meta column) or index column in A and B, the values whose count changed first (QA39 fairness #9): what the changes did to the groups. Reads every sample's json member from the local shards.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of tables (an error too: {\"ok\": false, \"error\": ..., \"exit_code\": N}); stderr keeps the progress, warnings and problems. A changed member's a_digest / b_digest are the index's signed 64-bit ints, which jq and JavaScript round: compare a_sha256_prefix / b_sha256_prefix, the same digests as 16 hex digits (sha256sum FILE | cut -c1-16). A --groups value that is a list / object, or inf, has a \"type\" beside it.")] = False,
) -> None:
    """What changed from the dataset version A to B: samples added, removed, changed (members whose size or sha256
    prefix differ — the index's member_digest; CRC-32 where an index has none, said in a warning — members added
    or removed), relabelled (class names compared, not ids: the two versions may number their classes otherwise;
    a sample moved to another class folder is paired by its path inside the folder and its members' bytes),
    moved between splits, renamed (another key, every member's size and sha256 prefix the same — size and CRC-32
    where an index has no digests, confirmed by the local shards' bytes — bytes no other sample of A or B holds;
    the class may differ, then it is relabelled too; also counted as removed + added); a
    summary per split; and the cards' differences (class names
    added / removed / renamed / spelt in another case / kept under another id, num_classes, fingerprint, fields, license, description, name,
    command, what the jobs left out).

    Reads dataset.json and index.parquet of each version, nothing is decoded (the index records each member's size,
    CRC-32 and sha256 prefix; an index written before 2026-12-07 has no sha256 prefix, and one written before
    2026-12-04 has sizes only, each said in a warning); shards are read only to confirm a rename found by CRC-32
    alone, and a listed changed sample's json members to name the metadata keys that changed (`json: snr -16 -> 18`).

    Exit status: 0 compared (whatever changed, unless --fail-on); 1 a kind named by --fail-on is not empty (a CI
    gate: `mmdata diff v1 v2 --split test --fail-on any`); 2 A or B is not a readable dataset folder, or usage.
    docs/versions.md describes the result."""
    from mmdata.shards.diff import diff as run

    kinds = _fail_on(fail_on)
    # the table shows 20 a kind by default; --json lists every sample unless --limit caps it (QA38 F #3)
    shown = limit if limit is not None else (None if json_ else 20)
    rep = run(a, b, by=by, splits=split, limit=shown, groups=groups)
    failed = [k for k in kinds if (rep["card"]["changed"] if k == "card" else _total(rep, k))]
    code = 1 if failed else 0
    error = (f"mmdata diff: {', '.join(f'{k} ({_count(rep, k)})' for k in failed)} between {rep['a']['path']} and "
             f"{rep['b']['path']}"  # the result's paths: a URL's credentials masked
             + (f" in split {', '.join(split)}" if split else "") + " (--fail-on)") if failed else None
    if json_:
        print_json({"ok": not failed, "exit_code": code, **({"error": error} if error else {}),
                    "fail_on": kinds, "failed_on": failed, **rep})
    else:
        _print(rep, shown)
    for w in rep["warnings"]:
        note(f"[yellow]warning:[/] {escape(w)}")
    if failed:
        note(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(1)


def _total(rep: dict, kind: str) -> int:
    """How many samples are of ``kind`` (``renamed`` pairs are also counted in ``added`` and ``removed``)."""
    return rep["renamed"]["total"] if kind == "renamed" else rep["counts"][kind]


def _count(rep: dict, kind: str) -> str:
    if kind == "card":
        return "class names, class count, fields, layout, license, description or left-out entries"
    return plural(_total(rep, kind), "sample")


def _print(rep: dict, limit: int | None) -> None:
    """The human summary: one line, a table per split, the cards' differences, the samples of each kind."""
    from mmdata.shards.diff import KINDS

    c = rep["counts"]
    renamed = rep["renamed"]["total"]
    possibly = rep["possibly_relabelled"]["total"]
    said = ", ".join([*(f"{c[k]} {k}" for k in KINDS if c[k]),
                      *([f"{renamed} of the added / removed renamed"] if renamed else []),
                      *([f"{possibly} of the added / removed possibly relabelled (sizes only)"] if possibly else [])]) \
        or "no sample differs"
    side = lambda v: f"{escape(one_line_path(v['path']))} ({plural(v['samples'], 'sample')})"  # noqa: E731
    console.print(f"[bold]{side(rep['a'])}[/] -> [bold]{side(rep['b'])}[/], matched by {rep['by']}"
                  + (f", splits {escape(', '.join(rep['splits']))}" if rep["splits"] else "")
                  + f": {said}; {c['unchanged']} unchanged", highlight=False)
    t = table("split", "A", "B", "added", "removed", "renamed", "changed", "relabelled", "moved in", "moved out",
              "unchanged")
    for s, row in rep["per_split"].items():
        t.add_row(escape(one_line_path(s)), *(str(row[f]) for f in ("a", "b", "added", "removed", "renamed",
                                                                      "changed", "relabelled", "moved_in",
                                                                      "moved_out", "unchanged")))
    console.print(t)
    card = rep["card"]
    names = card["label_names"]
    lines = []
    ct = card_text  # every string from a card: control characters escaped, long ones cut (a card is downloaded data)
    if bool(names["a"]) != bool(names["b"]):
        lines.append(f"class names: {', '.join(map(ct, names['a'] or ['none (ids)']))} -> "
                     f"{', '.join(map(ct, names['b'] or ['none (ids)']))}")
    for k in ("added", "removed"):
        if names[k]:
            lines.append(f"classes {k}: {', '.join(map(ct, names[k]))}")
    if names["renamed"]:
        lines.append("classes renamed: " + ", ".join(f"id {r['id']} {ct(r['a'])} -> {ct(r['b'])}" for r in names["renamed"]))
    if names.get("case_only"):
        lines.append("names differ only in case (or width, spaces): " + ", ".join(
            f"{ct(r['a'])} -> {ct(r['b'])}" for r in names["case_only"]))
    if names["id_changed"]:
        lines.append("class ids changed: " + ", ".join(
            f"{ct(r['a_name']) + '/' if 'a_name' in r else ''}{ct(r['name'])} {r['a']} -> {r['b']}" for r in names["id_changed"]))
    if card["num_classes"]["a"] != card["num_classes"]["b"]:
        lines.append(f"num_classes: {card['num_classes']['a']} -> {card['num_classes']['b']}")
    for k in ("added", "removed"):
        if card["fields"][k]:
            lines.append(f"fields {k}: {', '.join(map(ct, card['fields'][k]))}")
    if card["layout"]["a"] != card["layout"]["b"]:
        lines.append(f"layout: {ct(card['layout']['a'])} -> {ct(card['layout']['b'])}")
    for k in ("license", "description", "name", "command"):
        if k in card and not card[k]["same"]:
            # an entry the older card lacks was never recorded, not changed (not gated by --fail-on card)
            was = "not recorded in A (an older mmdata)" if card[k].get("recorded_now") else ct(card[k]["a"])
            lines.append(f"{k}: {was} -> {ct(card[k]['b'])}")
    skipped = card.get("skipped")
    if skipped and (skipped["added"] or skipped["removed"] or skipped.get("not_listed")):
        cut = skipped.get("not_listed") or {}
        total = {k: len(skipped[k]) + cut.get(k, 0) for k in ("added", "removed")}
        lines.append(f"left out by the jobs: {skipped['a']} -> {skipped['b']} entries ("
                     + "; ".join(f"{total[k]} {k}" + (f", e.g. {ct(skipped[k][0])}" if skipped[k] else "")
                                 for k in ("added", "removed") if total[k]) + ")")
    if skipped and skipped.get("renormalised"):  # one name in two Unicode forms looks the same: shown escaped
        r = skipped["renormalised"]
        lines.append(f"left out by both jobs, named in another Unicode normalisation form: "
                     f"{plural(r['count'], 'entry', 'entries')} (e.g. {ct(r['example'][0])} -> {ct(r['example'][1])}); "
                     f"compared in NFC, as keys are")
    fp = card["fingerprint"]
    lines.append("fingerprint: the same" if fp["same"] else f"fingerprint: {ct(fp['a'])} -> {ct(fp['b'])}")
    for line in lines:
        console.print(escape(line), highlight=False)
    for pairs, what in (("relabelled_pairs", "relabelled"), ("moved_pairs", "moved")):
        if rep[pairs]:
            console.print(escape(f"{what}: " + ", ".join(f"{card_text(k)}: {v}" for k, v in rep[pairs].items())),
                          highlight=False)
    if rep.get("groups"):  # the group composition in A and B (QA39 fairness #9)
        from mmdata.shards.inspect import group_text

        g = rep["groups"]
        t = table(escape(card_text(g["field"])), "A", "B", "change")
        for r in g["values"]:
            value = group_text(r)  # a list apart from its text, inf unquoted (QA40 hostile #3, #4)
            # a side none of whose json members were read: its counts unknown, not 0 (QA39 review evaluate #3)
            blind = {s: g["unread"][s] and not any(x[s] for x in g["values"]) for s in ("a", "b")}
            t.add_row(escape(card_text(value)), "?" if blind["a"] else str(r["a"]), "?" if blind["b"] else str(r["b"]),
                      "?" if r["change"] is None else f"{r['change']:+d}" if r["change"] else "")
        console.print(t)
        if any(g["unread"].values()):
            console.print(f"not counted (json member unreadable): A {g['unread']['a']}, B {g['unread']['b']}", highlight=False)
        if g.get("edges"):
            console.print(escape(card_text(f"{g['field']}: read as numbers, in A's {len(g['edges']) - 1} equal-count "
                                           "bins")), highlight=False)
    kinds = (*KINDS, "renamed", "possibly_relabelled")
    if limit and any(c[k] for k in KINDS):
        t = table("kind", "key", "change")
        for k in kinds:
            for item in rep[k]["items"]:
                t.add_row(k, escape(one_line_path(item["key"])), escape(card_text(_what(k, item))))
        console.print(t)
        more = [f"{rep[k]['total'] - len(rep[k]['items'])} more {k}" for k in kinds if rep[k]["truncated"]]
        if more:
            console.print(f"not listed: {', '.join(more)} (--limit N lists N of each kind; --json lists every one)",
                          highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``mmdata diff`` to the app."""
    app.command()(diff)
