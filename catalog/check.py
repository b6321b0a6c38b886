#!/usr/bin/env python3
"""Checks the shipped template catalog (standard library only).

Usage: python3 catalog/check.py [catalog-dir]

Loads every `<key>.json` next to this script (or in the given directory), and the shared
`libraries.json` (library definitions and the masters they use), and checks:

* the file shape: known properties only, at every level, with the right JSON types;
* keys (`^[a-z][a-z0-9_]{0,62}$`), item codes, key prefixes, labels (ja and en, 1-200 chars,
  the ja label written in Japanese);
* masters: unique codes, known parents, no cycles; every select field's master shipped in the
  same file; masters shared between files identical; no unused masters;
* fields: type-specific properties, ranges, patterns, `allowed_items` codes;
* stages and states: unique keys, exactly one initial state, at least one terminal state,
  every state reachable from the initial one, a path to a terminal state from every state;
* transitions: known states, no transition out of a terminal state or into its own source,
  roles, guards (known fields, operator fits the type, values fit the field, select values
  are items of the master and of `allowed_items`), `requires` / `sets`, actions;
* guarded transitions leaving the same state must be provably exclusive;
* field rules: known states and fields; a field a state requires is guaranteed by every
  transition into it (required on every ticket, required by the transition, written by a
  `set_field` action, or already required in every state the transition leaves from);
  nothing a transition requires or sets is hidden in its target state;
* layout: known fields, no field twice in one layout, every field placed in the default layout;
* libraries (`libraries.json`): fields and masters as in a template, a layout placing every
  field, a non-internal text title field, the review interval, grantable access roles; every
  library referenced by a template (`library_ref` fields, library actions) is defined there;
* mappings (child tickets, library records): target fields exist, types are compatible
  (the engine's table), select fields share the master, literals are items of the target's
  master, text is not longer than the target allows, required fields of a child template (or
  of the library a `library_upsert` may create a record in) are all mapped, internal fields
  never flow into non-internal targets or libraries; `record_field` is a `library_ref` field
  into the same library;
* child-ticket templates form no cycle, so every entry can be installed after its children;
* the README lists every entry and every library.

Prints one line per problem as `file:/json/pointer: message` and exits 1 if there is any.
"""

import json
import os
import re
import sys
from datetime import date, datetime

EXPECTED = [
    "itil_incident", "itil_problem", "itil_change", "itil_service_request",
    "isms_security_incident", "isms_risk_treatment", "bpo_intake", "customer_inquiry",
]

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PREFIX_RE = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
EVENT_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
JAPANESE_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")

MAX_LABEL = 200
MAX_TEXT = 10_000
MAX_LONG_TEXT = 200_000

FIELD_TYPES = {
    "text", "long_text", "integer", "decimal", "date", "datetime", "boolean", "select",
    "multi_select", "user", "group", "organization", "library_ref", "attachment",
}
TEXTUAL = {"text", "long_text"}
ORDERED = {"integer", "decimal", "date", "datetime"}
SELECTS = {"select", "multi_select"}
REFERENCES = {"user", "group", "organization", "library_ref", "attachment"}
TEXT_LIKE = {"integer", "decimal", "date", "datetime", "boolean", "select"}

ROLES = {"tenant_admin", "process_manager", "agent", "requester", "partner", "auditor"}
SLA = {"running", "paused", "stopped"}
RULES = {"required", "read_only", "hidden"}
OPS = {"eq", "ne", "in", "gt", "ge", "lt", "le", "is_set"}
ORDERING_OPS = {"gt", "ge", "lt", "le"}
FACTS = {"all_children_closed"}

# The file holding the library definitions the catalog templates reference.
LIBRARY_FILE = "libraries.json"
LIBRARY_FILE_PROPS = {"masters": True, "libraries": True}
LIBRARY_PROPS = {"key": True, "definition": True}
DEFINITION_PROPS = {"name": True, "description": False, "fields": False, "title_field": True, "layout": False,
                    "review_interval_days": False, "access": False}
LIBRARY_LAYOUT_PROPS = {"sections": False}
ACCESS_PROPS = {"read": False, "write": False, "partner_organizations": False}
GRANTABLE_READ = {"agent", "requester"}
GRANTABLE_WRITE = {"agent"}
MAX_REVIEW_INTERVAL_DAYS = 3650
MAX_DESCRIPTION = 2000

ENTRY_PROPS = {"key": True, "name": True, "description": True, "masters": True, "template": True}
MASTER_PROPS = {"key": True, "name": True, "items": True}
ITEM_PROPS = {"code": True, "label": True, "order": False, "active": False, "parent": False}
TEMPLATE_PROPS = {"name": True, "key_prefix": True, "fields": False, "stages": True, "transitions": False,
                  "field_rules": False, "layout": False}
FIELD_PROPS = {"key": True, "type": True, "label": True, "required": False, "internal": False,
               "master": False, "library": False, "min_length": False, "max_length": False, "min": False,
               "max": False, "pattern": False, "allowed_items": False}
STAGE_PROPS = {"key": True, "label": True, "states": True}
STATE_PROPS = {"key": True, "label": True, "initial": False, "terminal": False, "sla": False}
TRANSITION_PROPS = {"key": True, "label": True, "from": True, "to": True, "allowed": False, "guard": False,
                    "requires": False, "sets": False, "actions": False}
ALLOWED_PROPS = {"roles": False, "groups": False, "assignee": False, "requester": False}
LAYOUT_PROPS = {"sections": False, "states": False}
SECTION_PROPS = {"key": True, "label": True, "fields": True}
LABEL_PROPS = {"ja": True, "en": True}
ACTION_PROPS = {
    "set_field": {"type": True, "field": True, "value": True},
    "assign": {"type": True, "group": False, "user": False, "from_field": False},
    "create_child_ticket": {"type": True, "template": True, "mapping": False},
    "library_upsert": {"type": True, "library": True, "record_field": False, "mapping": False},
    "library_update": {"type": True, "library": True, "record_field": True, "mapping": False},
    "notify": {"type": True, "event": True},
}


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


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_date(s):
    if not isinstance(s, str) or not DATE_RE.match(s):
        return None
    try:
        return date.fromisoformat(s)
    except ValueError:
        return None


def parse_datetime(s):
    if not isinstance(s, str) or not DATETIME_RE.match(s):
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def ordinal(kind, v):
    if kind in ("integer", "decimal"):
        return v if is_number(v) else None
    if kind == "date":
        return parse_date(v)
    if kind == "datetime":
        return parse_datetime(v)
    return None


class Checker:
    def __init__(self, directory):
        self.dir = directory
        self.p = Problems()
        self.entries = {}      # key -> entry
        self.files = {}        # key -> file name
        self.masters = {}      # key -> {master key -> master}
        self.libraries = {}    # library key -> {field key -> field}
        self.library_masters = {}  # master key -> master, from libraries.json

    # ---- generic shape -------------------------------------------------------------------

    def props(self, f, at, obj, spec, what):
        if not isinstance(obj, dict):
            self.p.add(f, at, f"{what} must be an object")
            return False
        for k in obj:
            if k not in spec:
                self.p.add(f, ptr(at, k), f"unknown property `{k}` in {what}")
        for k, needed in spec.items():
            if needed and k not in obj:
                self.p.add(f, at, f"{what} lacks `{k}`")
        return True

    def label(self, f, at, obj, max_chars=MAX_LABEL):
        if not self.props(f, at, obj, LABEL_PROPS, "label"):
            return
        for lang in ("ja", "en"):
            text = obj.get(lang)
            if not isinstance(text, str) or not text.strip():
                self.p.add(f, ptr(at, lang), "must be a non-empty string")
            elif len(text) > max_chars:
                self.p.add(f, ptr(at, lang), f"longer than {max_chars} characters ({len(text)})")
        ja = obj.get("ja")
        if isinstance(ja, str) and ja.strip() and not JAPANESE_RE.search(ja):
            self.p.add(f, ptr(at, "ja"), f"the ja label {ja!r} contains no Japanese")
        en = obj.get("en")
        if isinstance(en, str) and JAPANESE_RE.search(en):
            self.p.add(f, ptr(at, "en"), f"the en label {en!r} contains Japanese")

    def key(self, f, at, value, what, seen=None):
        if not isinstance(value, str) or not KEY_RE.match(value):
            self.p.add(f, at, f"{value!r} is not a valid {what} key (^[a-z][a-z0-9_]{{0,62}}$)")
            return
        if seen is not None:
            if value in seen:
                self.p.add(f, at, f"{what} key `{value}` is used more than once")
            seen.add(value)

    def str_list(self, f, at, value, what):
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.p.add(f, at, f"{what} must be a list of strings")
            return []
        return value

    # ---- loading -----------------------------------------------------------------------------

    def load(self):
        names = sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))
        for name in names:
            path = os.path.join(self.dir, name)
            try:
                with open(path, encoding="utf-8") as fh:
                    entry = json.load(fh, object_pairs_hook=no_duplicate_keys)
            except (OSError, ValueError) as e:
                self.p.add(name, "", f"cannot read: {e}")
                continue
            stem = name[:-5]
            if name == LIBRARY_FILE:
                self.library_file = entry
                continue
            if not isinstance(entry, dict):
                self.p.add(name, "", "the file must hold an object")
                continue
            if entry.get("key") != stem:
                self.p.add(name, "/key", f"key {entry.get('key')!r} does not match the file name `{stem}`")
            self.entries[stem] = entry
            self.files[stem] = name
        for key in EXPECTED:
            if key not in self.entries:
                self.p.add(f"{key}.json", "", "missing catalog entry")
        if not hasattr(self, "library_file"):
            self.p.add(LIBRARY_FILE, "", "missing library definitions")
            self.library_file = {"masters": [], "libraries": []}

    # ---- masters -------------------------------------------------------------------------------

    def check_masters(self, f, entry):
        own = {}
        masters = entry.get("masters")
        if not isinstance(masters, list):
            self.p.add(f, "/masters", "must be a list")
            return own
        seen = set()
        for n, m in enumerate(masters):
            at = ptr("/masters", n)
            if not self.props(f, at, m, MASTER_PROPS, "master"):
                continue
            self.key(f, ptr(at, "key"), m.get("key"), "master", seen)
            self.label(f, ptr(at, "name"), m.get("name"))
            items = m.get("items")
            if not isinstance(items, list) or not items:
                self.p.add(f, ptr(at, "items"), "must be a non-empty list")
                continue
            codes = {}
            for i, item in enumerate(items):
                iat = ptr(at, "items", i)
                if not self.props(f, iat, item, ITEM_PROPS, "master item"):
                    continue
                code = item.get("code")
                if not isinstance(code, str) or not CODE_RE.match(code):
                    self.p.add(f, ptr(iat, "code"), f"{code!r} is not a valid item code")
                elif code in codes:
                    self.p.add(f, ptr(iat, "code"), f"item code `{code}` appears twice")
                else:
                    codes[code] = item.get("parent")
                self.label(f, ptr(iat, "label"), item.get("label"))
                if "order" in item and not is_int(item["order"]):
                    self.p.add(f, ptr(iat, "order"), "must be an integer")
                if "active" in item and not isinstance(item["active"], bool):
                    self.p.add(f, ptr(iat, "active"), "must be true or false")
                if "parent" in item and not isinstance(item["parent"], str):
                    self.p.add(f, ptr(iat, "parent"), "must be an item code")
            for i, item in enumerate(items):
                parent = item.get("parent") if isinstance(item, dict) else None
                if isinstance(parent, str) and parent not in codes:
                    self.p.add(f, ptr(at, "items", i, "parent"), f"unknown parent item `{parent}`")
            for start in codes:
                trail, cur = set(), start
                while isinstance(cur, str) and cur in codes:
                    if cur in trail:
                        self.p.add(f, ptr(at, "items"), f"item `{start}` is its own ancestor")
                        break
                    trail.add(cur)
                    cur = codes[cur]
            if isinstance(m.get("key"), str):
                own[m["key"]] = m
        return own

    def check_shared_masters(self):
        first = {}
        shipped = [(self.files[key], self.entries[key], masters) for key, masters in self.masters.items()]
        shipped.append((LIBRARY_FILE, self.library_file, self.library_masters))
        for f, doc, masters in shipped:
            for mkey, m in masters.items():
                canon = json.dumps(m, sort_keys=True, ensure_ascii=False)
                if mkey not in first:
                    first[mkey] = (f, canon)
                elif first[mkey][1] != canon:
                    idx = next(i for i, x in enumerate(doc["masters"]) if x.get("key") == mkey)
                    self.p.add(f, ptr("/masters", idx),
                               f"master `{mkey}` differs from the one shipped in {first[mkey][0]}; "
                               "shared masters must be identical")

    # ---- libraries -----------------------------------------------------------------------------

    def check_libraries(self):
        """libraries.json: `{masters, libraries: [{key, definition}]}`. Runs before the templates,
        which are checked against these definitions."""
        f, doc = LIBRARY_FILE, self.library_file
        if not self.props(f, "", doc, LIBRARY_FILE_PROPS, "library file"):
            return
        self.library_masters = self.check_masters(f, doc)
        libraries = doc.get("libraries")
        if not isinstance(libraries, list) or not libraries:
            self.p.add(f, "/libraries", "must be a non-empty list")
            return
        seen = set()
        for n, lib in enumerate(libraries):
            at = ptr("/libraries", n)
            if not self.props(f, at, lib, LIBRARY_PROPS, "library"):
                continue
            self.key(f, ptr(at, "key"), lib.get("key"), "library", seen)
            if isinstance(lib.get("key"), str):
                fields = lib.get("definition", {}).get("fields") if isinstance(lib.get("definition"), dict) else None
                self.libraries[lib["key"]] = {fd["key"]: fd for fd in fields or []
                                              if isinstance(fd, dict) and isinstance(fd.get("key"), str)}
        used = set()
        for n, lib in enumerate(libraries):
            if isinstance(lib, dict) and isinstance(lib.get("definition"), dict):
                used |= LibraryCheck(self, f, ptr("/libraries", n, "definition"), lib["definition"]).run()
        for mkey in self.library_masters:
            if mkey not in used:
                self.p.add(f, "/masters", f"master `{mkey}` is shipped but no library field uses it")

    # ---- template --------------------------------------------------------------------------------

    def check_entry(self, key, entry):
        f = self.files[key]
        if isinstance(entry, dict) and "libraries" in entry:
            self.p.add(f, "/libraries", f"catalog files carry no libraries: they are defined in {LIBRARY_FILE} "
                                        "and given to each entry that references them")
            entry = {k: v for k, v in entry.items() if k != "libraries"}
        self.props(f, "", entry, ENTRY_PROPS, "catalog entry")
        self.label(f, "/name", entry.get("name"))
        self.label(f, "/description", entry.get("description"))
        masters = self.check_masters(f, entry)
        self.masters[key] = masters
        tpl = entry.get("template")
        if not self.props(f, "/template", tpl, TEMPLATE_PROPS, "template"):
            return
        TemplateCheck(self, key, f, tpl, masters).run()

    def check_catalog(self):
        prefixes = {}
        for key, entry in self.entries.items():
            tpl = entry.get("template") if isinstance(entry, dict) else None
            prefix = tpl.get("key_prefix") if isinstance(tpl, dict) else None
            if isinstance(prefix, str):
                if prefix in prefixes:
                    self.p.add(self.files[key], "/template/key_prefix",
                               f"key prefix `{prefix}` is also used by {prefixes[prefix]}")
                prefixes[prefix] = self.files[key]
        readme = os.path.join(self.dir, "README.md")
        try:
            with open(readme, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            self.p.add("README.md", "", "missing")
            return
        for key in self.entries:
            if f"`{key}`" not in text:
                self.p.add("README.md", "", f"does not list `{key}`")
        for key in self.libraries:
            if f"`{key}`" not in text:
                self.p.add("README.md", "", f"does not describe the library `{key}`")

    def check_install_order(self):
        """Child-ticket templates must be installed first, so their graph must have no cycle."""
        deps = {}
        for key, entry in self.entries.items():
            tpl = entry.get("template") if isinstance(entry, dict) else None
            children = set()
            for t in (tpl or {}).get("transitions", []) if isinstance(tpl, dict) else []:
                for a in t.get("actions", []) if isinstance(t, dict) else []:
                    if isinstance(a, dict) and a.get("type") == "create_child_ticket" and a.get("template") in self.entries:
                        children.add(a["template"])
            deps[key] = children - {key}
        order, done = [], set()
        while len(done) < len(deps):
            ready = sorted(k for k in deps if k not in done and deps[k] <= done)
            if not ready:
                stuck = sorted(k for k in deps if k not in done)
                for k in stuck:
                    self.p.add(self.files[k], "/template/transitions",
                               f"child-ticket templates form a cycle among {stuck}; no install order exists")
                return
            for k in ready:
                order.append(k)
                done.add(k)
        INSTALL_ORDER[:] = order

    def run(self):
        self.load()
        self.check_libraries()
        LIBRARY_KEYS[:] = list(self.libraries)
        for key in sorted(self.entries):
            self.check_entry(key, self.entries[key])
        self.check_shared_masters()
        self.check_catalog()
        self.check_install_order()
        return self.p.items


class TemplateCheck:
    def __init__(self, checker, key, f, tpl, masters, base="/template"):
        self.c = checker
        self.base = base           # JSON pointer of the definition in its file
        self.p = checker.p
        self.key = key
        self.f = f
        self.t = tpl
        self.masters = masters
        self.fields = {}
        self.states = {}           # key -> state
        self.state_order = []
        self.used_masters = set()

    def err(self, at, message):
        self.p.add(self.f, self.base + at, message)

    # -- helpers --

    def master_codes(self, field):
        m = self.masters.get(field.get("master"))
        if not m:
            return None
        codes = {i.get("code") for i in m.get("items", []) if isinstance(i, dict)}
        allowed = field.get("allowed_items")
        if isinstance(allowed, list):
            codes &= set(allowed)
        return codes

    def value_problem(self, field, v, as_operand=False):
        """Why `v` is not a value of `field`, or None. Operands of multi-selects are one code."""
        kind = field.get("type")
        if kind in TEXTUAL:
            if not isinstance(v, str):
                return "must be a string"
            if as_operand:
                return None
            maxlen = field.get("max_length")
            if is_int(maxlen) and len(v) > maxlen:
                return f"is longer than max_length {maxlen}"
            minlen = field.get("min_length")
            if is_int(minlen) and v and len(v) < minlen:
                return f"is shorter than min_length {minlen}"
            pat = field.get("pattern")
            if isinstance(pat, str) and v:
                try:
                    if not re.search(pat, v):
                        return f"does not match the pattern {pat!r}"
                except re.error:
                    pass
            return None
        if kind == "integer" and not is_int(v):
            return "must be an integer"
        if kind == "decimal" and not is_number(v):
            return "must be a number"
        if kind == "date" and parse_date(v) is None:
            return "must be a date (YYYY-MM-DD)"
        if kind == "datetime" and parse_datetime(v) is None:
            return "must be an RFC 3339 datetime"
        if kind in ORDERED and not as_operand:
            o = ordinal(kind, v)
            lo, hi = ordinal(kind, field.get("min")), ordinal(kind, field.get("max"))
            if lo is not None and o < lo:
                return f"is below min {field.get('min')}"
            if hi is not None and o > hi:
                return f"is above max {field.get('max')}"
            return None
        if kind == "boolean" and not isinstance(v, bool):
            return "must be true or false"
        if kind in SELECTS:
            values = [v] if (kind == "select" or as_operand) else v
            if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
                return "must be an item code" if kind == "select" or as_operand else "must be a list of item codes"
            codes = self.master_codes(field)
            if codes is not None:
                for x in values:
                    if x not in codes:
                        return f"is not an item of master `{field.get('master')}`" + (
                            " (within allowed_items)" if "allowed_items" in field else "")
            return None
        if kind in REFERENCES and not (isinstance(v, str) and UUID_RE.match(v)):
            return "must be an id (UUID string)"
        return None

    # -- fields --

    def check_fields(self):
        fields = self.t.get("fields", [])
        if not isinstance(fields, list):
            self.err("/fields", "must be a list")
            return
        seen = set()
        for n, fd in enumerate(fields):
            at = ptr("/fields", n)
            if not self.c.props(self.f, self.base + at, fd, FIELD_PROPS, "field"):
                continue
            self.c.key(self.f, self.base + ptr(at, "key"), fd.get("key"), "field", seen)
            self.c.label(self.f, self.base + ptr(at, "label"), fd.get("label"))
            kind = fd.get("type")
            if kind not in FIELD_TYPES:
                self.err(ptr(at, "type"), f"unknown field type {kind!r}")
                continue
            for b in ("required", "internal"):
                if b in fd and not isinstance(fd[b], bool):
                    self.err(ptr(at, b), "must be true or false")
            if kind in SELECTS:
                master = fd.get("master")
                if master is None:
                    self.err(at, f"a {kind} field needs a `master`")
                elif master not in self.masters:
                    self.err(ptr(at, "master"), f"master `{master}` is not shipped in this file")
                else:
                    self.used_masters.add(master)
            elif "master" in fd:
                self.err(ptr(at, "master"), f"`master` does not apply to {kind} fields")
            if kind == "library_ref":
                if fd.get("library") not in self.c.libraries:
                    self.err(ptr(at, "library"), f"unknown library {fd.get('library')!r}")
            elif "library" in fd:
                self.err(ptr(at, "library"), f"`library` does not apply to {kind} fields")
            for prop in ("min_length", "max_length", "pattern"):
                if prop in fd and kind not in TEXTUAL:
                    self.err(ptr(at, prop), f"`{prop}` does not apply to {kind} fields")
            if kind in TEXTUAL:
                cap = MAX_TEXT if kind == "text" else MAX_LONG_TEXT
                mx, mn = fd.get("max_length"), fd.get("min_length")
                if mx is not None and (not is_int(mx) or not 1 <= mx <= cap):
                    self.err(ptr(at, "max_length"), f"must be an integer from 1 to {cap}")
                if mn is not None and (not is_int(mn) or mn < 0):
                    self.err(ptr(at, "min_length"), "must be a non-negative integer")
                if is_int(mx) and is_int(mn) and mn > mx:
                    self.err(ptr(at, "min_length"), "is greater than max_length")
                if "pattern" in fd:
                    pat = fd["pattern"]
                    if not isinstance(pat, str) or len(pat) > 500:
                        self.err(ptr(at, "pattern"), "must be a string of at most 500 characters")
                    else:
                        try:
                            re.compile(pat)
                        except re.error as e:
                            self.err(ptr(at, "pattern"), f"not a valid regular expression: {e}")
            for prop in ("min", "max"):
                if prop not in fd:
                    continue
                if kind not in ORDERED:
                    self.err(ptr(at, prop), f"`{prop}` does not apply to {kind} fields")
                elif ordinal(kind, fd[prop]) is None or (kind == "integer" and not is_int(fd[prop])):
                    self.err(ptr(at, prop), f"`{prop}` is not a value of a {kind} field")
            if kind in ORDERED:
                lo, hi = ordinal(kind, fd.get("min")), ordinal(kind, fd.get("max"))
                if lo is not None and hi is not None and lo > hi:
                    self.err(ptr(at, "min"), "is greater than max")
            if "allowed_items" in fd:
                items = fd["allowed_items"]
                if kind not in SELECTS:
                    self.err(ptr(at, "allowed_items"), f"`allowed_items` does not apply to {kind} fields")
                elif not isinstance(items, list) or not items:
                    self.err(ptr(at, "allowed_items"), "must be a non-empty list of item codes")
                else:
                    m = self.masters.get(fd.get("master"), {})
                    codes = {i.get("code") for i in m.get("items", []) if isinstance(i, dict)}
                    dup = set()
                    for j, code in enumerate(items):
                        if code in dup:
                            self.err(ptr(at, "allowed_items", j), f"item `{code}` listed twice")
                        dup.add(code)
                        if code not in codes:
                            self.err(ptr(at, "allowed_items", j),
                                     f"`{code}` is not an item of master `{fd.get('master')}`")
            if isinstance(fd.get("key"), str) and fd["key"] not in self.fields:
                self.fields[fd["key"]] = fd

    # -- stages --

    def check_stages(self):
        stages = self.t.get("stages")
        if not isinstance(stages, list) or not stages:
            self.err("/stages", "must be a non-empty list")
            return
        stage_keys, state_keys = set(), set()
        initials, terminals = [], 0
        for si, stage in enumerate(stages):
            at = ptr("/stages", si)
            if not self.c.props(self.f, self.base + at, stage, STAGE_PROPS, "stage"):
                continue
            self.c.key(self.f, self.base + ptr(at, "key"), stage.get("key"), "stage", stage_keys)
            self.c.label(self.f, self.base + ptr(at, "label"), stage.get("label"))
            states = stage.get("states")
            if not isinstance(states, list) or not states:
                self.err(ptr(at, "states"), "a stage needs at least one state")
                continue
            for ti, st in enumerate(states):
                sat = ptr(at, "states", ti)
                if not self.c.props(self.f, self.base + sat, st, STATE_PROPS, "state"):
                    continue
                self.c.key(self.f, self.base + ptr(sat, "key"), st.get("key"), "state", state_keys)
                self.c.label(self.f, self.base + ptr(sat, "label"), st.get("label"))
                for b in ("initial", "terminal"):
                    if b in st and not isinstance(st[b], bool):
                        self.err(ptr(sat, b), "must be true or false")
                sla = st.get("sla", "running")
                if sla not in SLA:
                    self.err(ptr(sat, "sla"), f"unknown SLA category {sla!r}")
                if st.get("initial") is True:
                    initials.append((sat, st.get("key")))
                if st.get("terminal") is True:
                    terminals += 1
                    if st.get("initial") is True:
                        self.err(ptr(sat, "terminal"), "the initial state cannot be terminal")
                    if sla != "stopped":
                        self.err(ptr(sat, "sla"), "a terminal state should stop the SLA clock (`stopped`)")
                if isinstance(st.get("key"), str) and st["key"] not in self.states:
                    self.states[st["key"]] = st
                    self.state_order.append(st["key"])
        if len(initials) != 1:
            self.err("/stages", f"exactly one state must be initial, found {len(initials)}: "
                                f"{[k for _, k in initials]}")
        if terminals == 0:
            self.err("/stages", "no state is terminal")
        overlap = stage_keys & state_keys
        for k in sorted(overlap):
            self.err("/stages", f"`{k}` is both a stage key and a state key")

    def terminal(self, s):
        return self.states.get(s, {}).get("terminal") is True

    def from_states(self, t):
        frm = t.get("from")
        if frm == "*":
            return [s for s in self.state_order if not self.terminal(s)]
        if isinstance(frm, list):
            return [s for s in frm if isinstance(s, str) and s in self.states]
        return []

    # -- guards --

    def check_guard(self, g, at, depth=1):
        if depth > 16:
            self.err(at, "guards may nest at most 16 levels")
            return
        if not isinstance(g, dict):
            self.err(at, "a guard must be an object")
            return
        shapes = [k for k in ("all", "any", "not", "fact") if k in g]
        compare = any(k in g for k in ("field", "op", "value"))
        if len(shapes) + (1 if compare else 0) != 1 or (shapes and len(g) != 1):
            self.err(at, "a guard is exactly one of all / any / not / fact / {field, op, value}")
            return
        if shapes and shapes[0] in ("all", "any"):
            word = shapes[0]
            children = g[word]
            if not isinstance(children, list) or not children:
                self.err(ptr(at, word), f"`{word}` needs a non-empty list")
                return
            for n, child in enumerate(children):
                self.check_guard(child, ptr(at, word, n), depth + 1)
            return
        if shapes and shapes[0] == "not":
            self.check_guard(g["not"], ptr(at, "not"), depth + 1)
            return
        if shapes and shapes[0] == "fact":
            if g["fact"] not in FACTS:
                self.err(ptr(at, "fact"), f"unknown fact {g['fact']!r}")
            return
        extra = set(g) - {"field", "op", "value"}
        for k in extra:
            self.err(ptr(at, k), f"unknown property `{k}` in a comparison")
        field = self.fields.get(g.get("field"))
        if field is None:
            self.err(ptr(at, "field"), f"unknown field {g.get('field')!r}")
            return
        op = g.get("op")
        if op not in OPS:
            self.err(ptr(at, "op"), f"unknown operator {op!r}")
            return
        kind = field["type"]
        if op == "is_set":
            if "value" in g:
                self.err(ptr(at, "value"), "`is_set` takes no value")
            return
        if "value" not in g:
            self.err(at, f"`{op}` needs a value")
            return
        if op in ORDERING_OPS and kind not in ORDERED:
            self.err(ptr(at, "op"), f"`{op}` cannot compare a {kind} field")
            return
        values = g["value"]
        if op == "in":
            if not isinstance(values, list) or not values:
                self.err(ptr(at, "value"), "`in` needs a non-empty list")
                return
        else:
            values = [values]
        for n, v in enumerate(values):
            vat = ptr(at, "value", n) if op == "in" else ptr(at, "value")
            problem = self.value_problem(field, v, as_operand=True)
            if problem:
                self.err(vat, f"{json.dumps(v, ensure_ascii=False)} {problem} (field `{field['key']}`)")

    # -- exclusivity of guards --

    def literals(self, g):
        """The guard as a conjunction of (polarity, clause) literals; `any` stays opaque."""
        if "all" in g:
            out = []
            for child in g["all"]:
                out += self.literals(child)
            return out
        if "not" in g:
            inner = g["not"]
            if "all" not in inner and "any" not in inner and "not" not in inner:
                return [(False, inner)]
            if "not" in inner:
                return self.literals(inner["not"])
            return [(False, inner)]
        return [(True, g)]

    def values_of(self, clause):
        if clause.get("op") == "eq":
            return [clause.get("value")]
        if clause.get("op") == "in" and isinstance(clause.get("value"), list):
            return list(clause["value"])
        return None

    def contradict(self, a, b):
        (pa, ca), (pb, cb) = a, b
        if ca == cb and pa != pb:
            return True
        fa, fb = ca.get("field"), cb.get("field")
        if fa is None or fa != fb:
            return False
        kind = self.fields.get(fa, {}).get("type")
        # set vs unset
        def asserts_set(p, c):
            return p and c.get("op") in OPS
        def asserts_unset(p, c):
            return (not p) and c.get("op") == "is_set"
        if (asserts_set(pa, ca) and asserts_unset(pb, cb)) or (asserts_set(pb, cb) and asserts_unset(pa, ca)):
            return True
        if kind == "multi_select":
            return False
        va, vb = self.values_of(ca), self.values_of(cb)
        if pa and pb and va is not None and vb is not None:
            return not any(x == y for x in va for y in vb)
        if pa and not pb and va is not None and vb is not None:
            return all(x in vb for x in va)
        if pb and not pa and va is not None and vb is not None:
            return all(x in va for x in vb)
        if pa and pb and kind in ORDERED:
            def admits(c, v):
                o, x, y = c.get("op"), ordinal(kind, v), ordinal(kind, c.get("value"))
                if x is None or y is None:
                    return True
                return {"gt": x > y, "ge": x >= y, "lt": x < y, "le": x <= y}.get(o, True)
            if va is not None and cb.get("op") in ORDERING_OPS:
                return not any(admits(cb, v) for v in va)
            if vb is not None and ca.get("op") in ORDERING_OPS:
                return not any(admits(ca, v) for v in vb)
            if ca.get("op") in ORDERING_OPS and cb.get("op") in ORDERING_OPS:
                lo = [c for c in (ca, cb) if c["op"] in ("gt", "ge")]
                hi = [c for c in (ca, cb) if c["op"] in ("lt", "le")]
                if len(lo) == 1 and len(hi) == 1:
                    low, high = ordinal(kind, lo[0]["value"]), ordinal(kind, hi[0]["value"])
                    if low is None or high is None:
                        return False
                    if low > high:
                        return True
                    return low == high and not (lo[0]["op"] == "ge" and hi[0]["op"] == "le")
        return False

    def exclusive(self, ga, gb):
        la, lb = self.literals(ga), self.literals(gb)
        return any(self.contradict(a, b) for a in la for b in lb)

    def check_overlaps(self, transitions):
        guarded = [(n, t) for n, t in enumerate(transitions) if isinstance(t, dict) and isinstance(t.get("guard"), dict)]
        for s in self.state_order:
            if self.terminal(s):
                continue
            leaving = [(n, t) for n, t in guarded if s in self.from_states(t)]
            for i in range(len(leaving)):
                for j in range(i + 1, len(leaving)):
                    (na, ta), (nb, tb) = leaving[i], leaving[j]
                    try:
                        ok = self.exclusive(ta["guard"], tb["guard"])
                    except (AttributeError, TypeError):
                        ok = False
                    if not ok:
                        self.err(ptr("/transitions", nb, "guard"),
                                 f"the guards of `{ta.get('key')}` and `{tb.get('key')}` can both hold "
                                 f"in state `{s}`")

    # -- transitions --

    def check_transitions(self):
        transitions = self.t.get("transitions", [])
        if not isinstance(transitions, list) or not transitions:
            self.err("/transitions", "must be a non-empty list")
            return []
        seen = set()
        for n, t in enumerate(transitions):
            at = ptr("/transitions", n)
            if not self.c.props(self.f, self.base + at, t, TRANSITION_PROPS, "transition"):
                continue
            self.c.key(self.f, self.base + ptr(at, "key"), t.get("key"), "transition", seen)
            self.c.label(self.f, self.base + ptr(at, "label"), t.get("label"))
            frm, to = t.get("from"), t.get("to")
            if frm != "*":
                if not isinstance(frm, list) or not frm:
                    self.err(ptr(at, "from"), "must be \"*\" or a non-empty list of state keys")
                else:
                    dup = set()
                    for j, s in enumerate(frm):
                        if s not in self.states:
                            self.err(ptr(at, "from", j), f"unknown state {s!r}")
                        elif s in dup:
                            self.err(ptr(at, "from", j), f"state `{s}` listed twice")
                        elif self.terminal(s):
                            self.err(ptr(at, "from", j), f"`{s}` is terminal; nothing leaves a terminal state")
                        dup.add(s)
            if to not in self.states:
                self.err(ptr(at, "to"), f"unknown state {to!r}")
            elif isinstance(frm, list) and to in frm:
                self.err(ptr(at, "to"), f"the transition leads from `{to}` back into itself")
            allowed = t.get("allowed", {})
            if self.c.props(self.f, self.base + ptr(at, "allowed"), allowed, ALLOWED_PROPS, "allowed"):
                roles = self.c.str_list(self.f, self.base + ptr(at, "allowed", "roles"),
                                        allowed.get("roles", []), "roles")
                for j, r in enumerate(roles):
                    if r not in ROLES:
                        self.err(ptr(at, "allowed", "roles", j), f"unknown role {r!r}")
                groups = self.c.str_list(self.f, self.base + ptr(at, "allowed", "groups"),
                                         allowed.get("groups", []), "groups")
                for j, g in enumerate(groups):
                    if not g.strip() or len(g) > 200:
                        self.err(ptr(at, "allowed", "groups", j), "a group key must be 1 to 200 characters")
                for b in ("assignee", "requester"):
                    if b in allowed and not isinstance(allowed[b], bool):
                        self.err(ptr(at, "allowed", b), "must be true or false")
                if not roles and not groups and not allowed.get("assignee") and not allowed.get("requester"):
                    self.err(ptr(at, "allowed"), "nobody may fire this transition")
                if "auditor" in roles:
                    self.err(ptr(at, "allowed", "roles"), "auditors are read-only")
            if "guard" in t:
                self.check_guard(t["guard"], ptr(at, "guard"))
            for list_name in ("requires", "sets"):
                lst = self.c.str_list(self.f, self.base + ptr(at, list_name), t.get(list_name, []), list_name)
                dup = set()
                for j, k in enumerate(lst):
                    if k not in self.fields:
                        self.err(ptr(at, list_name, j), f"unknown field {k!r}")
                        continue
                    if k in dup:
                        self.err(ptr(at, list_name, j), f"field `{k}` listed twice")
                    dup.add(k)
                    if self.rule(to, k) == "hidden":
                        self.err(ptr(at, list_name, j), f"`{k}` is hidden in the target state `{to}`")
            actions = t.get("actions", [])
            if not isinstance(actions, list):
                self.err(ptr(at, "actions"), "must be a list")
                continue
            for j, a in enumerate(actions):
                self.check_action(a, ptr(at, "actions", j), t)
        return transitions

    def rule(self, state, field):
        rules = self.t.get("field_rules", {})
        if isinstance(rules, dict) and isinstance(rules.get(state), dict):
            return rules[state].get(field)
        return None

    # -- actions and mappings --

    def check_action(self, a, at, t):
        if not isinstance(a, dict) or a.get("type") not in ACTION_PROPS:
            self.err(at, f"unknown action type {a.get('type') if isinstance(a, dict) else a!r}")
            return
        kind = a["type"]
        self.c.props(self.f, self.base + at, a, ACTION_PROPS[kind], f"{kind} action")
        if kind == "set_field":
            field = self.fields.get(a.get("field"))
            if field is None:
                self.err(ptr(at, "field"), f"unknown field {a.get('field')!r}")
            elif a.get("value") is None:
                if self.rule(t.get("to"), field["key"]) == "required":
                    self.err(ptr(at, "value"), f"clears `{field['key']}`, which the target state requires")
                if field.get("required"):
                    self.err(ptr(at, "value"), f"clears `{field['key']}`, which every ticket requires")
            else:
                problem = self.value_problem(field, a["value"])
                if problem:
                    self.err(ptr(at, "value"), f"the value {problem}")
        elif kind == "assign":
            targets = [k for k in ("group", "user", "from_field") if k in a]
            if len(targets) != 1:
                self.err(at, "`assign` needs exactly one of `group`, `user` or `from_field`")
            if "user" in a and not (isinstance(a["user"], str) and UUID_RE.match(a["user"])):
                self.err(ptr(at, "user"), "must be a user id (UUID)")
            if "group" in a and not (isinstance(a["group"], str) and a["group"].strip()):
                self.err(ptr(at, "group"), "must be a group key")
            if "from_field" in a:
                field = self.fields.get(a["from_field"])
                if field is None:
                    self.err(ptr(at, "from_field"), f"unknown field {a['from_field']!r}")
                elif field["type"] not in ("user", "group"):
                    self.err(ptr(at, "from_field"), f"must be a user or group field, not {field['type']}")
        elif kind == "create_child_ticket":
            tpl_key = a.get("template")
            if tpl_key == self.key:
                self.err(ptr(at, "template"), "a child ticket must come from another catalog template")
            other = self.c.entries.get(tpl_key)
            if other is None:
                self.err(ptr(at, "template"), f"unknown catalog template {tpl_key!r}")
                return
            other_tpl = other.get("template", {})
            targets = {}
            other_masters = {m.get("key"): m for m in other.get("masters", []) if isinstance(m, dict)}
            for fd in other_tpl.get("fields", []):
                if isinstance(fd, dict) and isinstance(fd.get("key"), str):
                    targets[fd["key"]] = fd
            mapping = a.get("mapping", {})
            self.check_mapping(mapping, ptr(at, "mapping"), targets, other_masters, to_library=False)
            for k, fd in targets.items():
                if fd.get("required") and k not in (mapping if isinstance(mapping, dict) else {}):
                    self.err(ptr(at, "mapping"), f"`{tpl_key}` requires `{k}` on every ticket but it is not mapped")
        elif kind in ("library_upsert", "library_update"):
            lib = a.get("library")
            if lib not in self.c.libraries:
                self.err(ptr(at, "library"), f"unknown library {lib!r} (not defined in {LIBRARY_FILE})")
                return
            targets = self.c.libraries[lib]
            if "record_field" in a:
                rf = self.fields.get(a.get("record_field"))
                if rf is None:
                    self.err(ptr(at, "record_field"), f"unknown field {a.get('record_field')!r}")
                elif rf["type"] != "library_ref" or rf.get("library") != lib:
                    self.err(ptr(at, "record_field"), f"must be a library_ref field of library `{lib}`")
            mapping = a.get("mapping", {})
            if not mapping:
                self.err(ptr(at, "mapping"), "writes nothing")
            self.check_mapping(mapping, ptr(at, "mapping"), targets, self.c.library_masters, to_library=True)
            if kind == "library_upsert" and isinstance(mapping, dict):
                for k, fd in targets.items():
                    if fd.get("required") and k not in mapping:
                        self.err(ptr(at, "mapping"), f"library `{lib}` requires `{k}` on every record but it "
                                                     "is not mapped (the upsert may create a record)")
        elif kind == "notify":
            ev = a.get("event")
            if not isinstance(ev, str) or len(ev) > 100 or not EVENT_RE.match(ev):
                self.err(ptr(at, "event"), f"{ev!r} is not an event name (dot-separated lowercase words)")

    def compatible(self, target, source):
        if target == source:
            return True
        if target == "text":
            return source in TEXT_LIKE
        if target == "long_text":
            return source == "text" or source in TEXT_LIKE
        if target == "decimal":
            return source == "integer"
        if target == "multi_select":
            return source == "select"
        return False

    def check_mapping(self, mapping, at, targets, target_masters, to_library):
        if not isinstance(mapping, dict):
            self.err(at, "must be an object")
            return
        for target, source in mapping.items():
            eat = ptr(at, target)
            tf = targets.get(target)
            if tf is None:
                self.err(eat, f"the target has no field `{target}`")
                continue
            if not isinstance(source, str):
                self.err(eat, "the source must be a field key or an =literal")
                continue
            if source.startswith("="):
                literal, kind = source[1:], tf["type"]
                if kind in SELECTS:
                    m = target_masters.get(tf.get("master"))
                    codes = {i.get("code") for i in m.get("items", [])} if m else None
                    values = [x.strip() for x in literal.split(",")] if kind == "multi_select" else [literal]
                    if codes is None:
                        self.err(eat, "a literal for a select field whose master is unknown")
                    elif literal and any(v not in codes for v in values):
                        self.err(eat, f"`{literal}` is not an item of master `{tf.get('master')}`")
                elif kind in TEXTUAL:
                    mx = tf.get("max_length")
                    if is_int(mx) and len(literal) > mx:
                        self.err(eat, f"the literal is longer than max_length {mx}")
                elif literal:
                    ok = {
                        "integer": lambda s: re.fullmatch(r"-?\d+", s) is not None,
                        "decimal": lambda s: re.fullmatch(r"-?\d+(\.\d+)?", s) is not None,
                        "boolean": lambda s: s in ("true", "false"),
                        "date": lambda s: parse_date(s) is not None,
                        "datetime": lambda s: parse_datetime(s) is not None,
                    }.get(kind, lambda s: UUID_RE.match(s) is not None)(literal)
                    if not ok:
                        self.err(eat, f"the literal `{literal}` is not a {kind} value")
                continue
            sf = self.fields.get(source)
            if sf is None:
                self.err(eat, f"this template has no field `{source}`")
                continue
            if not self.compatible(tf["type"], sf["type"]):
                self.err(eat, f"a {sf['type']} field (`{source}`) cannot be written into a {tf['type']} field")
                continue
            if tf["type"] in SELECTS and sf["type"] in SELECTS:
                if tf.get("master") is None:
                    self.err(eat, "the target select field's master is unknown; cannot map a select into it")
                elif tf.get("master") != sf.get("master"):
                    self.err(eat, f"`{source}` uses master `{sf.get('master')}` but the target uses "
                                  f"`{tf.get('master')}`")
            if tf["type"] == "library_ref" and tf.get("library") != sf.get("library"):
                self.err(eat, f"`{source}` refers to library `{sf.get('library')}`, the target to "
                              f"`{tf.get('library')}`")
            # text into text everywhere; long_text too for library records (child-ticket
            # long_text mappings are not held to this yet).
            if tf["type"] in TEXTUAL and sf["type"] in TEXTUAL and (to_library or tf["type"] == "text"):
                def longest(fd):
                    return fd.get("max_length", MAX_TEXT if fd["type"] == "text" else MAX_LONG_TEXT)
                smax, tmax = longest(sf), longest(tf)
                if smax > tmax:
                    self.err(eat, f"`{source}` may hold {smax} characters, the target only {tmax}")
            if sf.get("internal") and (to_library or not tf.get("internal")):
                self.err(eat, f"the internal field `{source}` would leak into a non-internal target")

    # -- graph --

    def check_graph(self, transitions):
        succ = {s: set() for s in self.state_order}
        for t in transitions:
            if not isinstance(t, dict) or t.get("to") not in self.states:
                continue
            for s in self.from_states(t):
                succ[s].add(t["to"])
        initial = [s for s in self.state_order if self.states[s].get("initial") is True]
        if initial:
            reached, todo = {initial[0]}, [initial[0]]
            while todo:
                for nxt in succ[todo.pop()]:
                    if nxt not in reached:
                        reached.add(nxt)
                        todo.append(nxt)
            for s in self.state_order:
                if s not in reached:
                    self.err(self.state_ptr(s), f"state `{s}` cannot be reached from `{initial[0]}`")
        finishing = {s for s in self.state_order if self.terminal(s)}
        changed = True
        while changed:
            changed = False
            for s in self.state_order:
                if s not in finishing and succ[s] & finishing:
                    finishing.add(s)
                    changed = True
        for s in self.state_order:
            if s not in finishing:
                self.err(self.state_ptr(s), f"no sequence of transitions leads from `{s}` to a terminal state")

    def state_ptr(self, key):
        for si, stage in enumerate(self.t.get("stages", [])):
            for ti, st in enumerate(stage.get("states", []) if isinstance(stage, dict) else []):
                if isinstance(st, dict) and st.get("key") == key:
                    return ptr("/stages", si, "states", ti)
        return "/stages"

    # -- field rules --

    def check_field_rules(self, transitions):
        rules = self.t.get("field_rules", {})
        if not isinstance(rules, dict):
            self.err("/field_rules", "must be an object")
            return
        for state, per in rules.items():
            at = ptr("/field_rules", state)
            if state not in self.states:
                self.err(at, f"unknown state `{state}`")
            if not isinstance(per, dict):
                self.err(at, "must be an object")
                continue
            for k, r in per.items():
                if k not in self.fields:
                    self.err(ptr(at, k), f"unknown field `{k}`")
                elif r not in RULES:
                    self.err(ptr(at, k), f"unknown rule {r!r}")
                elif r == "hidden" and self.fields[k].get("required"):
                    self.err(ptr(at, k), f"`{k}` is required on every ticket but hidden in `{state}`")
        initial = next((s for s in self.state_order if self.states[s].get("initial") is True), None)
        for k, fd in self.fields.items():
            if fd.get("required") and initial and self.rule(initial, k) in ("read_only", "hidden"):
                self.err(ptr("/field_rules", initial, k),
                         f"`{k}` is required on creation but {self.rule(initial, k)} in the initial state")
        # A state's required fields must be guaranteed by every transition into it.
        for n, t in enumerate(transitions):
            if not isinstance(t, dict):
                continue
            to = t.get("to")
            per = rules.get(to) if isinstance(rules.get(to), dict) else {}
            requires = set(t.get("requires", []) if isinstance(t.get("requires"), list) else [])
            written = {a.get("field") for a in t.get("actions", []) if isinstance(a, dict)
                       and a.get("type") == "set_field" and a.get("value") is not None}
            guaranteed = {lit[1].get("field") for lit in self.literals(t["guard"])
                          if lit[0] and lit[1].get("field")} if isinstance(t.get("guard"), dict) else set()
            sources = self.from_states(t)
            for k, r in per.items():
                if r != "required" or k not in self.fields:
                    continue
                if self.fields[k].get("required") or k in requires or k in written or k in guaranteed:
                    continue
                if sources and all(self.rule(s, k) == "required" for s in sources):
                    continue
                self.err(ptr("/transitions", n),
                         f"`{t.get('key')}` enters `{to}`, which requires `{k}`, without requiring it "
                         f"(and not every source state requires it)")

    # -- layout --

    def check_layout(self):
        layout = self.t.get("layout", {})
        if not self.c.props(self.f, self.base + "/layout", layout, LAYOUT_PROPS, "layout"):
            return
        placed = self.check_sections(layout.get("sections", []), "/layout/sections")
        for k in self.fields:
            if k not in placed:
                self.err("/layout/sections", f"field `{k}` is not placed in the default layout")
        states = layout.get("states", {})
        if not isinstance(states, dict):
            self.err("/layout/states", "must be an object")
            return
        for s, sections in states.items():
            if s not in self.states:
                self.err(ptr("/layout/states", s), f"unknown state `{s}`")
            for k in self.check_sections(sections, ptr("/layout/states", s)):
                if self.rule(s, k) == "hidden":
                    self.err(ptr("/layout/states", s), f"`{k}` is placed in the layout of `{s}` but hidden there")

    def check_sections(self, sections, at):
        placed = []
        if not isinstance(sections, list) or not sections:
            self.err(at, "must be a non-empty list of sections")
            return placed
        keys = set()
        for n, sec in enumerate(sections):
            sat = ptr(at, n)
            if not self.c.props(self.f, self.base + sat, sec, SECTION_PROPS, "section"):
                continue
            self.c.key(self.f, self.base + ptr(sat, "key"), sec.get("key"), "section", keys)
            self.c.label(self.f, self.base + ptr(sat, "label"), sec.get("label"))
            for j, k in enumerate(self.c.str_list(self.f, self.base + ptr(sat, "fields"), sec.get("fields"), "fields")):
                if k not in self.fields:
                    self.err(ptr(sat, "fields", j), f"unknown field `{k}`")
                elif k in placed:
                    self.err(ptr(sat, "fields", j), f"field `{k}` appears more than once in this layout")
                else:
                    placed.append(k)
        return placed

    # -- everything --

    def run(self):
        self.c.label(self.f, self.base + "/name", self.t.get("name"))
        prefix = self.t.get("key_prefix")
        if not isinstance(prefix, str) or not PREFIX_RE.match(prefix):
            self.err("/key_prefix", f"{prefix!r} is not a valid key prefix (^[A-Z][A-Z0-9]{{0,9}}$)")
        self.check_fields()
        self.check_stages()
        transitions = self.check_transitions()
        self.check_overlaps(transitions)
        self.check_graph(transitions)
        self.check_field_rules(transitions)
        self.check_layout()
        for mkey in self.masters:
            if mkey not in self.used_masters:
                self.p.add(self.f, "/masters", f"master `{mkey}` is shipped but no field uses it")
        self.stats = {
            "stages": len(self.t.get("stages", [])),
            "states": len(self.states),
            "fields": len(self.fields),
            "transitions": len(transitions),
            "guarded": sum(1 for t in transitions if isinstance(t, dict) and "guard" in t),
            "masters": len(self.masters),
        }
        STATS[self.key] = self.stats


class LibraryCheck(TemplateCheck):
    """A library definition: fields exactly as in a template (same checks, same masters rules,
    against the masters of libraries.json), a layout of sections placing every field, the title
    field, the review interval and access."""

    def __init__(self, checker, f, base, definition):
        super().__init__(checker, None, f, definition, checker.library_masters, base=base)

    def err(self, at, message):
        self.p.add(self.f, self.base + at, message)

    def run(self):
        d = self.t
        if not self.c.props(self.f, self.base, d, DEFINITION_PROPS, "library definition"):
            return self.used_masters
        self.c.label(self.f, self.base + "/name", d.get("name"))
        desc = d.get("description", "")
        if not isinstance(desc, str) or len(desc) > MAX_DESCRIPTION:
            self.err("/description", f"must be a string of at most {MAX_DESCRIPTION} characters")
        self.check_fields()
        layout = d.get("layout", {})
        if self.c.props(self.f, self.base + "/layout", layout, LIBRARY_LAYOUT_PROPS, "layout"):
            placed = self.check_sections(layout.get("sections", []), "/layout/sections")
            for k in self.fields:
                if k not in placed:
                    self.err("/layout/sections", f"field `{k}` is not placed in the layout")
        title = self.fields.get(d.get("title_field"))
        if title is None:
            self.err("/title_field", f"there is no field {d.get('title_field')!r}")
        elif title.get("type") != "text":
            self.err("/title_field", f"the title field must be a text field, not {title.get('type')}")
        elif title.get("internal"):
            self.err("/title_field", "the title field cannot be internal")
        elif not title.get("required"):
            self.err("/title_field", "the title field should be required: a record without it has no title")
        days = d.get("review_interval_days")
        if days is not None and (not is_int(days) or not 1 <= days <= MAX_REVIEW_INTERVAL_DAYS):
            self.err("/review_interval_days", f"must be an integer from 1 to {MAX_REVIEW_INTERVAL_DAYS} (days)")
        access = d.get("access", {})
        if self.c.props(self.f, self.base + "/access", access, ACCESS_PROPS, "access"):
            for name, grantable in (("read", GRANTABLE_READ), ("write", GRANTABLE_WRITE)):
                roles = self.c.str_list(self.f, self.base + ptr("/access", name), access.get(name, ["agent"]), name)
                for j, r in enumerate(roles):
                    if r not in grantable:
                        self.err(ptr("/access", name, j), f"`{r}` cannot be granted {name} access; "
                                                          f"grant {' or '.join(sorted(grantable))}")
            orgs = access.get("partner_organizations", [])
            if not isinstance(orgs, list) or not all(isinstance(o, str) and UUID_RE.match(o) for o in orgs):
                self.err("/access/partner_organizations", "must be a list of organization ids (UUIDs)")
        return self.used_masters


STATS = {}
INSTALL_ORDER = []
LIBRARY_KEYS = []


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    problems = Checker(directory).run()
    if STATS:
        print(f"{'template':<24}{'stages':>7}{'states':>7}{'fields':>7}{'trans.':>7}{'guarded':>8}{'masters':>8}")
        for key in sorted(STATS):
            s = STATS[key]
            print(f"{key:<24}{s['stages']:>7}{s['states']:>7}{s['fields']:>7}{s['transitions']:>7}"
                  f"{s['guarded']:>8}{s['masters']:>8}")
    if INSTALL_ORDER:
        print("install order (child-ticket templates first): " + ", ".join(INSTALL_ORDER))
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print(f"OK: {len(STATS)} catalog entries, {len(LIBRARY_KEYS)} libraries, no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
