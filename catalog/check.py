#!/usr/bin/env python3
"""Checks what is particular to the shipped catalog files (standard library only).

Usage: python3 catalog/check.py [catalog-dir]

The templates and libraries themselves are linted by the server's linter, the one every
tenant gets from `POST /template-lint` and at publication: the unit test
`catalog::tests::every_catalog_template_lints_clean` (and `..._library_...`) requires every
entry and library to lint with no error and no warning in the context of a full catalog
install. This script checks only what no tenant's template has (see catalog/README.md):

* the files: every expected entry present, valid JSON without duplicate properties, the key
  equal to the file name, the entry's top-level properties, `libraries.json` present and
  entries carrying no libraries of their own;
* masters as shipped: item codes well formed and unique, known parents, no cycles, labels;
  every select field's master shipped in the same file (`libraries.json` for libraries);
  masters shared between files identical; no master shipped that no field uses;
* labels: every ja label written in Japanese, no en label in Japanese;
* key prefixes unique across the catalog; child tickets come from another catalog entry,
  and the child-ticket graph has no cycle, so an install order exists (printed);
* the README lists every entry and every library.

Prints one line per problem as `file:/json/pointer: message` and exits 1 if there is any.
"""

import json
import os
import re
import sys

EXPECTED = [
    "itil_incident", "itil_problem", "itil_change", "itil_service_request",
    "isms_security_incident", "isms_risk_treatment", "bpo_intake", "customer_inquiry",
]

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
JAPANESE_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
SELECTS = {"select", "multi_select"}

LIBRARY_FILE = "libraries.json"
ENTRY_PROPS = {"key", "name", "description", "masters", "template"}
MASTER_PROPS = {"key", "name", "items"}
ITEM_PROPS = {"code", "label", "order", "active", "parent"}


class Problems:
    def __init__(self):
        self.items = []

    def add(self, file, pointer, message):
        self.items.append(f"{file}:{pointer or '/'}: {message}")


def ptr(base, *parts):
    out = base
    for p in parts:
        out += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return out


def no_duplicate_keys(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate property {k!r}")
        seen[k] = v
    return seen


def is_label(obj):
    return isinstance(obj, dict) and set(obj) == {"ja", "en"}


def fields_of(definition):
    fields = definition.get("fields", []) if isinstance(definition, dict) else []
    return [f for f in fields if isinstance(f, dict)]


def child_templates(template):
    """(pointer, key) of every create_child_ticket action's template."""
    out = []
    transitions = template.get("transitions", []) if isinstance(template, dict) else []
    for n, t in enumerate(transitions):
        for j, a in enumerate(t.get("actions", []) if isinstance(t, dict) else []):
            if isinstance(a, dict) and a.get("type") == "create_child_ticket":
                out.append((ptr("/template/transitions", n, "actions", j, "template"), a.get("template")))
    return out


class Checker:
    def __init__(self, directory):
        self.dir = directory
        self.p = Problems()
        self.entries = {}          # key -> entry
        self.files = {}            # key -> file name
        self.library_file = None
        self.install_order = []

    def load(self):
        for name in sorted(n for n in os.listdir(self.dir) if n.endswith(".json")):
            try:
                with open(os.path.join(self.dir, name), encoding="utf-8") as fh:
                    doc = json.load(fh, object_pairs_hook=no_duplicate_keys)
            except (OSError, ValueError) as e:
                self.p.add(name, "", f"cannot read: {e}")
                continue
            if name == LIBRARY_FILE:
                self.library_file = doc if isinstance(doc, dict) else {}
                continue
            stem = name[:-5]
            if not isinstance(doc, dict):
                self.p.add(name, "", "the file must hold an object")
                continue
            if doc.get("key") != stem:
                self.p.add(name, "/key", f"key {doc.get('key')!r} does not match the file name `{stem}`")
            for k in doc:
                if k == "libraries":
                    self.p.add(name, "/libraries", f"catalog files carry no libraries: they are defined in "
                                                   f"{LIBRARY_FILE} and given to each entry that references them")
                elif k not in ENTRY_PROPS:
                    self.p.add(name, ptr("", k), f"unknown property `{k}` in a catalog entry")
            for k in sorted(ENTRY_PROPS - set(doc)):
                self.p.add(name, "", f"catalog entry lacks `{k}`")
            self.entries[stem] = doc
            self.files[stem] = name
        for key in EXPECTED:
            if key not in self.entries:
                self.p.add(f"{key}.json", "", "missing catalog entry")
        if self.library_file is None:
            self.p.add(LIBRARY_FILE, "", "missing library definitions")
            self.library_file = {}

    def definitions(self):
        """(file, pointer, definition, masters of that file) for every template and library."""
        for key in sorted(self.entries):
            entry = self.entries[key]
            yield self.files[key], "/template", entry.get("template"), entry.get("masters")
        libraries = self.library_file.get("libraries", [])
        for n, lib in enumerate(libraries if isinstance(libraries, list) else []):
            if isinstance(lib, dict):
                yield LIBRARY_FILE, ptr("/libraries", n, "definition"), lib.get("definition"), \
                    self.library_file.get("masters")

    # ---- masters ---------------------------------------------------------------------------

    def check_masters(self, f, masters):
        if not isinstance(masters, list):
            self.p.add(f, "/masters", "must be a list")
            return
        seen = set()
        for n, m in enumerate(masters):
            at = ptr("/masters", n)
            if not isinstance(m, dict):
                self.p.add(f, at, "a master must be an object")
                continue
            for k in set(m) - MASTER_PROPS:
                self.p.add(f, ptr(at, k), f"unknown property `{k}` in a master")
            if m.get("key") in seen:
                self.p.add(f, ptr(at, "key"), f"master `{m.get('key')}` is shipped twice")
            seen.add(m.get("key"))
            items = m.get("items")
            if not isinstance(items, list) or not items:
                self.p.add(f, ptr(at, "items"), "must be a non-empty list")
                continue
            parents = {}
            for i, item in enumerate(items):
                iat = ptr(at, "items", i)
                if not isinstance(item, dict):
                    self.p.add(f, iat, "an item must be an object")
                    continue
                for k in set(item) - ITEM_PROPS:
                    self.p.add(f, ptr(iat, k), f"unknown property `{k}` in a master item")
                code = item.get("code")
                if not isinstance(code, str) or not CODE_RE.match(code):
                    self.p.add(f, ptr(iat, "code"), f"{code!r} is not a valid item code")
                elif code in parents:
                    self.p.add(f, ptr(iat, "code"), f"item code `{code}` appears twice")
                else:
                    parents[code] = item.get("parent")
            for i, item in enumerate(items):
                parent = item.get("parent") if isinstance(item, dict) else None
                if parent is not None and parent not in parents:
                    self.p.add(f, ptr(at, "items", i, "parent"), f"unknown parent item `{parent}`")
            for start in parents:
                trail, cur = set(), start
                while isinstance(cur, str) and cur in parents:
                    if cur in trail:
                        self.p.add(f, ptr(at, "items"), f"item `{start}` is its own ancestor")
                        break
                    trail.add(cur)
                    cur = parents[cur]

    def check_master_use(self):
        """Select fields use masters shipped in the same file; every shipped master is used."""
        used = {}
        for f, base, definition, masters in self.definitions():
            shipped = {m.get("key") for m in masters or [] if isinstance(m, dict)}
            for n, fd in enumerate(fields_of(definition)):
                if fd.get("type") in SELECTS and fd.get("master") not in shipped:
                    self.p.add(f, ptr(base, "fields", n, "master"),
                               f"master `{fd.get('master')}` is not shipped in this file")
                used.setdefault(f, set()).add(fd.get("master"))
        files = [(self.files[k], self.entries[k]) for k in sorted(self.entries)]
        files.append((LIBRARY_FILE, self.library_file))
        for f, doc in files:
            masters = doc.get("masters")
            for n, m in enumerate(masters if isinstance(masters, list) else []):
                if isinstance(m, dict) and m.get("key") not in used.get(f, set()):
                    self.p.add(f, ptr("/masters", n), f"master `{m.get('key')}` is shipped but no field uses it")

    def check_shared_masters(self):
        first = {}
        files = [(self.files[k], self.entries[k]) for k in sorted(self.entries)]
        files.append((LIBRARY_FILE, self.library_file))
        for f, doc in files:
            masters = doc.get("masters")
            for n, m in enumerate(masters if isinstance(masters, list) else []):
                if not isinstance(m, dict):
                    continue
                canon = json.dumps(m, sort_keys=True, ensure_ascii=False)
                key = m.get("key")
                if key not in first:
                    first[key] = (f, canon)
                elif first[key][1] != canon:
                    self.p.add(f, ptr("/masters", n), f"master `{key}` differs from the one shipped in "
                                                      f"{first[key][0]}; shared masters must be identical")

    # ---- labels ------------------------------------------------------------------------------

    def check_labels(self, f, value, at=""):
        if is_label(value):
            ja, en = value["ja"], value["en"]
            if isinstance(ja, str) and ja.strip() and not JAPANESE_RE.search(ja):
                self.p.add(f, ptr(at, "ja"), f"the ja label {ja!r} contains no Japanese")
            if isinstance(en, str) and JAPANESE_RE.search(en):
                self.p.add(f, ptr(at, "en"), f"the en label {en!r} contains Japanese")
        elif isinstance(value, dict):
            for k, v in value.items():
                self.check_labels(f, v, ptr(at, k))
        elif isinstance(value, list):
            for n, v in enumerate(value):
                self.check_labels(f, v, ptr(at, n))

    # ---- the catalog as a whole -----------------------------------------------------------

    def check_prefixes(self):
        prefixes = {}
        for key in sorted(self.entries):
            tpl = self.entries[key].get("template")
            prefix = tpl.get("key_prefix") if isinstance(tpl, dict) else None
            if isinstance(prefix, str):
                if prefix in prefixes:
                    self.p.add(self.files[key], "/template/key_prefix",
                               f"key prefix `{prefix}` is also used by {prefixes[prefix]}")
                prefixes[prefix] = self.files[key]

    def check_install_order(self):
        """Child-ticket templates are other catalog entries, installed first: no cycle."""
        deps = {}
        for key, entry in self.entries.items():
            children = set()
            for at, child in child_templates(entry.get("template")):
                if child == key:
                    self.p.add(self.files[key], at, "a child ticket must come from another catalog template")
                elif child not in self.entries:
                    self.p.add(self.files[key], at, f"{child!r} is not a catalog entry")
                else:
                    children.add(child)
            deps[key] = children
        done = set()
        while len(done) < len(deps):
            ready = sorted(k for k in deps if k not in done and deps[k] <= done)
            if not ready:
                stuck = sorted(k for k in deps if k not in done)
                for k in stuck:
                    self.p.add(self.files[k], "/template/transitions",
                               f"child-ticket templates form a cycle among {stuck}; no install order exists")
                return
            self.install_order += ready
            done |= set(ready)

    def check_readme(self):
        try:
            with open(os.path.join(self.dir, "README.md"), encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            self.p.add("README.md", "", "missing")
            return
        for key in sorted(self.entries):
            if f"`{key}`" not in text:
                self.p.add("README.md", "", f"does not list `{key}`")
        libraries = self.library_file.get("libraries", [])
        for lib in libraries if isinstance(libraries, list) else []:
            key = lib.get("key") if isinstance(lib, dict) else None
            if f"`{key}`" not in text:
                self.p.add("README.md", "", f"does not describe the library `{key}`")

    def run(self):
        self.load()
        for key in sorted(self.entries):
            self.check_masters(self.files[key], self.entries[key].get("masters"))
            self.check_labels(self.files[key], self.entries[key])
        self.check_masters(LIBRARY_FILE, self.library_file.get("masters"))
        self.check_labels(LIBRARY_FILE, self.library_file)
        self.check_master_use()
        self.check_shared_masters()
        self.check_prefixes()
        self.check_install_order()
        self.check_readme()
        return self.p.items


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    checker = Checker(directory)
    problems = checker.run()
    if checker.install_order:
        print("install order (child-ticket templates first): " + ", ".join(checker.install_order))
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    libraries = checker.library_file.get("libraries", [])
    print(f"OK: {len(checker.entries)} catalog entries, {len(libraries)} libraries, no catalog-only problems "
          "(the templates and libraries are linted by `cargo test catalog`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
