"""Clicks an item of a process's tray menu over D-Bus, as a tray host does.

On Linux the tray icon is a StatusNotifierItem whose menu is exported with
the com.canonical.dbusmenu interface; a panel shows it and sends `Event(id,
"clicked", …)` when the user picks an item. This does the same with `gdbus`,
so the tray's actions can be tested without a panel.

    python3 tray.py click --pid PID --label Quit
    python3 tray.py labels --pid PID
"""

import argparse
import ast
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET


def gdbus(*args):
    r = subprocess.run(["gdbus", *args], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, ["gdbus", *args], r.stdout, r.stderr.strip())
    return r.stdout


def names_of(pid):
    out = gdbus(
        "call", "--session", "--dest", "org.freedesktop.DBus",
        "--object-path", "/org/freedesktop/DBus", "--method", "org.freedesktop.DBus.ListNames",
    )
    for name in re.findall(r"'(:[0-9.]+)'", out):
        try:
            owner = gdbus(
                "call", "--session", "--dest", "org.freedesktop.DBus",
                "--object-path", "/org/freedesktop/DBus",
                "--method", "org.freedesktop.DBus.GetConnectionUnixProcessID", name,
            )
        except subprocess.CalledProcessError:
            continue
        if re.search(r"\(uint32 (\d+),\)", owner).group(1) == str(pid):
            yield name


def menus(name, path="/"):
    """Object paths under `path` that implement com.canonical.dbusmenu."""
    try:
        out = gdbus(
            "call", "--session", "--timeout", "2", "--dest", name, "--object-path", path,
            "--method", "org.freedesktop.DBus.Introspectable.Introspect",
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return
    # ('<xml…>',)
    node = ET.fromstring(ast.literal_eval(out.strip())[0])
    if any(i.get("name") == "com.canonical.dbusmenu" for i in node.findall("interface")):
        yield path
    for child in node.findall("node"):
        sub = child.get("name", "").strip("/")
        if sub:
            yield from menus(name, path.rstrip("/") + "/" + sub)


def items(name, path):
    """(id, label) of every menu item."""
    layout = gdbus(
        "call", "--session", "--dest", name, "--object-path", path,
        "--method", "com.canonical.dbusmenu.GetLayout", "--", "0", "-1", "@as []",
    )
    return [(int(i), label) for i, label in re.findall(r"\((\d+), \{[^{}]*?'label': <'([^']*)'>", layout)]


def find_menu(pid, wait):
    deadline = time.monotonic() + wait
    while True:
        for name in names_of(pid):
            for path in menus(name):
                found = items(name, path)
                if found:
                    return name, path, found
        if time.monotonic() > deadline:
            sys.exit(f"no dbusmenu with items exported by pid {pid}")
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["click", "labels"])
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--label")
    ap.add_argument("--wait", type=float, default=10)
    args = ap.parse_args()
    try:
        name, path, found = find_menu(args.pid, args.wait)
    except subprocess.CalledProcessError as e:
        sys.exit(f"{' '.join(e.cmd)}: {e.stderr}")
    if args.action == "labels":
        for _, label in found:
            print(label)
        return
    ids = [i for i, label in found if label == args.label]
    if not ids:
        sys.exit(f"no item {args.label!r} in the tray menu: {[l for _, l in found]}")
    gdbus(
        "call", "--session", "--dest", name, "--object-path", path,
        "--method", "com.canonical.dbusmenu.Event", "--", str(ids[0]), "clicked", "<int32 0>", "0",
    )


if __name__ == "__main__":
    main()
