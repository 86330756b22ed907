"""``manage.py mapping_export NAME FILE``: write a mapping profile as a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.services.mappings import profile_find

ERR_UNKNOWN_PROFILE = "No mapping profile is named “{name}”."


class Command(BaseCommand):
    help = "Write a mapping profile to a JSON file (to edit, or to use on another console)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The profile's name or numeric id.")
        parser.add_argument("path", help="The JSON file to write (replaced if it exists).")

    def handle(self, *args, name, path, **options):
        profile = profile_find(reference=name)
        if profile is None:
            raise CommandError(ERR_UNKNOWN_PROFILE.format(name=name))
        text = json.dumps(profile.document, indent=2, ensure_ascii=False) + "\n"
        Path(path).write_text(text, encoding="utf-8")
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote mapping profile “{profile.name}” ({profile.kind}) to {path}."
            )
        )
