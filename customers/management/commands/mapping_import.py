"""``manage.py mapping_import FILE [--name NAME] --user NAME``: save a mapping file as a
profile (replacing the profile of that name, so importing a file again updates it)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.management.arguments import USER_HELP, service_errors, user_from_argument
from customers.mapping import MappingError, mapping_parse
from customers.models import MappingProfile
from customers.services.mappings import profile_save

ERR_NO_FILE = "There is no file at {path}."
ERR_JSON = "{path} is not valid JSON: {error}."
ERR_REFUSED = "{file} has {count} problem(s); no profile was saved."
ADD = "customers.add_mappingprofile"
CHANGE = "customers.change_mappingprofile"


class Command(BaseCommand):
    help = "Save a mapping file (JSON) as a mapping profile, checked first."
    # As the API's POST mappings/ (a new profile) and PUT mappings/<id>/ (an existing one).
    required_permissions = {"new": (ADD,), "existing": (CHANGE,)}

    def add_arguments(self, parser):
        parser.add_argument("path", help="The mapping file (JSON).")
        parser.add_argument("--name", help="The profile's name (default: the file's name).")
        parser.add_argument(
            "--user", required=True, help=USER_HELP + " Recorded as the author of a new profile."
        )

    def handle(self, *args, path, name, user, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(ERR_NO_FILE.format(path=path))
        try:
            document = json.loads(file.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(ERR_JSON.format(path=path, error=exc)) from exc
        name = name or file.name.removesuffix(".json").removesuffix(".mapping")
        existing = MappingProfile.objects.filter(name=name).first()
        author = user_from_argument(
            user, permissions=self.required_permissions["new" if existing is None else "existing"]
        )
        problems = mapping_problems(document)
        if problems:
            for message in problems:
                self.stderr.write(f"{file.name}: {message}")
            raise CommandError(ERR_REFUSED.format(file=file.name, count=len(problems)))
        with service_errors():
            profile = profile_save(name=name, document=document, user=author, profile=existing)
        verb = "Updated" if existing is not None else "Saved"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} mapping profile “{profile.name}” ({profile.kind}).")
        )


def mapping_problems(document) -> list[str]:
    """Every mistake in a mapping document, one per line (none when it is usable)."""
    try:
        mapping_parse(document)
    except MappingError as exc:
        return list(exc.messages)
    return []
