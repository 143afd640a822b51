"""``llmgine-nb users``: add users and tokens for the server (a token is printed once, stored as a hash)."""

from __future__ import annotations

import argparse
import sys

HELP = "manage the server's users and API tokens: add, list, token, revoke"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="SQLite file or postgresql:// URL (default: LLMGINE_DB or the per-user file)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a user and print their first token (shown once)")
    add.add_argument("name")
    actions.add_parser("list", help="list users and how many live tokens each has")
    token = actions.add_parser("token", help="print a new token for a user (shown once)")
    token.add_argument("name")
    revoke = actions.add_parser("revoke", help="revoke every token of a user")
    revoke.add_argument("name")


def run(args: argparse.Namespace) -> int:
    from ..store import Store, StoreError, users

    store = Store(args.db)
    try:
        if args.action == "add":
            user, token = users.add_user(store, args.name)
            print(f"Added {user.name}. Their API token (shown only now; keep it secret):")
            print(token)
        elif args.action == "token":
            token = users.new_token(store, args.name)
            print(f"A new API token for {args.name} (shown only now):")
            print(token)
        elif args.action == "revoke":
            count = users.revoke_tokens(store, args.name)
            print(f"Revoked {count} token{'s' if count != 1 else ''} of {args.name}.")
        else:
            rows = users.list_users(store)
            if not rows:
                print("No users yet; add one with: llmgine-nb users add NAME")
            for user, live in rows:
                print(f"{user.name}\t{live} live token{'s' if live != 1 else ''}")
    except (ValueError, LookupError, StoreError) as exc:
        print(f"llmgine-nb users: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0
